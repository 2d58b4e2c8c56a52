"""Settings, read once from the environment (and overridden by command-line flags).

Each setting is data: its environment name, the Config field it fills, its type and bounds,
its default and a line of help. Reading, checking and the README's settings table (a test
compares them) all come from this one list, so none goes unchecked or undocumented.
`liveblog serve` reads them once and hands the result to its workers as one encoded value
(see `Config.encoded` and `Config.for_worker`), so every worker runs with the same settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import msgspec

from liveblog.durability import Policy
from liveblog.errors import ConfigError
from liveblog.logs import LogFormat

Kind = Literal["int", "float", "text", "path", "choice", "redis-url", "http-url"]

# The environment variable `liveblog serve` hands its workers the settings it read in.
WORKER_ENV = "LIVEBLOG_RESOLVED_SETTINGS"


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    kind: Kind
    default: str | None
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """The type column of the README's settings table."""
        match self.kind:
            case "int":
                return f"whole number, {self.low:,.0f} to {self.high:,.0f}"
            case "float":
                return f"number, {self.low:g} to {self.high:g}"
            case "choice":
                return " or ".join(f"`{c}`" for c in self.choices)
            case "redis-url":
                return "Redis URL"
            case "http-url":
                return "http(s) URL"
            case "path":
                return "directory"
            case _:
                return "text"

    def parse(self, value: object) -> object:
        """The typed value of `value` (a string from the environment, or a flag's value);
        ConfigError naming the setting if it is not one."""
        name = self.env
        match self.kind:
            case "int" | "float":
                cast: type[int] | type[float] = int if self.kind == "int" else float
                what = "a whole number" if self.kind == "int" else "a number"
                try:
                    number = cast(str(value))
                except ValueError:
                    raise ConfigError(f"{name} must be {what}, got {value!r}") from None
                assert self.low is not None and self.high is not None
                if not self.low <= number <= self.high:
                    raise ConfigError(f"{name} must be between {self.low:g} and "
                                      f"{self.high:g}, got {number}")
                return number
            case "choice":
                if value not in self.choices:
                    raise ConfigError(f"{name} must be {' or '.join(self.choices)}, "
                                      f"got {value!r}")
                return value
            case "redis-url":
                if not str(value).startswith(REDIS_SCHEMES):
                    raise ConfigError(f"{name} must start with {', '.join(REDIS_SCHEMES)}, "
                                      f"got {value!r}")
                return str(value)
            case "http-url":
                if not str(value).startswith(("http://", "https://")):
                    raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
                return str(value).rstrip("/")
            case "path":
                return Path(str(value))
            case _:
                text = str(value).strip()
                if not text:
                    raise ConfigError(f"{name} must not be empty")
                return text


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "LIVEBLOG_REDIS_URL", "redis_url", "redis-url", None,
        "Redis to use (redis://, rediss:// or unix://). Unset: start an embedded redis-server.",
    ),
    Setting(
        "LIVEBLOG_DATA_DIR", "data_dir", "path", "./var",
        "Where the embedded redis-server keeps its append-only file and socket.",
    ),
    Setting("LIVEBLOG_HOST", "host", "text", "127.0.0.1", "Interface the HTTP server listens on."),
    Setting("LIVEBLOG_PORT", "port", "int", "8000", "Port the HTTP server listens on.",
            low=1, high=65535),
    Setting(
        "LIVEBLOG_MAX_BODY_BYTES", "max_body_bytes", "int", "262144",
        "Largest request body accepted; larger ones get 413.",
        low=1024, high=64 * 1024 * 1024,
    ),
    Setting(
        "LIVEBLOG_HEARTBEAT_SECONDS", "heartbeat_seconds", "float", "15",
        "Seconds between comment heartbeats on idle reader streams.",
        low=0.05, high=15,
    ),
    Setting(
        "LIVEBLOG_READER_QUEUE", "reader_queue", "int", "256",
        "Messages a reader may fall behind before it is cut off (it resumes from its last id).",
        low=1, high=100_000,
    ),
    Setting(
        "LIVEBLOG_DURABILITY", "durability", "choice", "strict",
        "strict: refuse an external Redis that would lose acknowledged updates (no "
        "append-only file, or evicting keys); warn: log it and serve anyway.",
        choices=("strict", "warn"),
    ),
    Setting(
        "LIVEBLOG_MAX_STREAMS", "max_streams", "int", "10000",
        "Reader streams one process holds at once; past it a new stream gets 503 with "
        "Retry-After.",
        low=1, high=10_000_000,
    ),
    Setting(
        "LIVEBLOG_MAX_STREAMS_PER_IP", "max_streams_per_ip", "int", "1000",
        "Reader streams one client address (an IPv6 /64) holds at once per process; past it "
        "503 with Retry-After.",
        low=1, high=10_000_000,
    ),
    Setting(
        "LIVEBLOG_MAX_TAILERS", "max_tailers", "int", "100",
        "Blogs one process tails at once; past it the longest-idle one without readers stops, "
        "or a new blog's stream gets 503.",
        low=1, high=100_000,
    ),
    Setting(
        "LIVEBLOG_MAX_TAILERS_PER_IP", "max_tailers_per_ip", "int", "10",
        "Blogs one client address (an IPv6 /64) may make one process start tailing, counted "
        "while they are tailed; past it a stream of yet another blog gets 503 with "
        "Retry-After.",
        low=1, high=100_000,
    ),
    Setting(
        "LIVEBLOG_FORWARDED_ALLOW_IPS", "forwarded_allow_ips", "text", "127.0.0.1",
        "Proxies trusted to name the client in X-Forwarded-For (comma-separated addresses or "
        "networks, or *): the address the per-address limits count. Any other peer counts "
        "as itself.",
    ),
    Setting(
        "LIVEBLOG_TAIL_BLOCK_MS", "tail_block_ms", "int", "5000",
        # Each block's end costs the tailer an XREAD and a check of the log: not too often.
        "Longest wait of a tailer's XREAD; a dead Redis connection is noticed within this plus "
        "2 s, a replaced log within this.",
        low=100, high=60_000,
    ),
    Setting(
        "LIVEBLOG_DRAIN_RETRY_SECONDS", "drain_retry_seconds", "float", "5",
        "On SIGTERM each reader stream ends with a retry: telling its browser to reconnect "
        "(to another server) after a random delay between a tenth of this and this.",
        low=0.01, high=600,
    ),
    Setting(
        "LIVEBLOG_LOG_FORMAT", "log_format", "choice", "auto",
        "text, json (one object per line, with a request id), or auto: json unless stderr "
        "is a terminal.",
        choices=("auto", "text", "json"),
    ),
    Setting(
        "LIVEBLOG_PUBLIC_URL", "public_url", "http-url", None,
        "Base URL readers use (printed at start; the pages' canonical, og:url and JSON-LD "
        "links). Unset: http://HOST:PORT.",
    ),
)


@dataclass(frozen=True)
class Config:
    redis_url: str | None
    data_dir: Path
    host: str
    port: int
    max_body_bytes: int
    public_url: str
    heartbeat_seconds: float = 15.0
    reader_queue: int = 256
    durability: Policy = "strict"
    max_streams: int = 10_000
    max_streams_per_ip: int = 1000
    max_tailers: int = 100
    max_tailers_per_ip: int = 10
    forwarded_allow_ips: str = "127.0.0.1"
    tail_block_ms: int = 5000
    drain_retry_seconds: float = 5.0
    log_format: LogFormat = "auto"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> Config:
        """Read every setting; `overrides` (from flags, by field name) win over the
        environment."""
        env = os.environ if environ is None else environ
        unknown = set(overrides) - {s.field for s in SETTINGS}
        if unknown:
            raise TypeError(f"no such setting: {', '.join(sorted(unknown))}")
        values: dict[str, object] = {}
        for setting in SETTINGS:
            given = overrides.get(setting.field)
            raw = given if given is not None else env.get(setting.env) or setting.default
            values[setting.field] = None if raw is None else setting.parse(raw)
        if values["public_url"] is None:
            host = str(values["host"])
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            values["public_url"] = f"http://{shown}:{values['port']}"
        return cls(**values)  # type: ignore[arg-type]

    def encoded(self) -> str:
        """These settings as one string, for WORKER_ENV."""
        return msgspec.json.encode(self, enc_hook=str).decode()

    @classmethod
    def for_worker(cls, environ: Mapping[str, str] | None = None) -> Config:
        """The settings `liveblog serve` read and handed over in WORKER_ENV, if it did;
        else read from the environment."""
        env = os.environ if environ is None else environ
        given = env.get(WORKER_ENV)
        if not given:
            return cls.from_env(env)
        return msgspec.json.decode(given, type=cls, dec_hook=_decode)


def _decode(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(kind)


def redacted(url: str) -> str:
    """A Redis URL fit to print or log: its password (in the user part or the query)
    replaced by ***, so it never reaches a terminal, a log or a problem body."""
    parts = urlsplit(url)
    if parts.password is None and "password=" not in parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:***@{host}"
    query = "&".join(
        f"{key}=***" if key == "password" else f"{key}={value}" if value else key
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
