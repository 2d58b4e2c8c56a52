"""Settings, read once from the environment (and overridden by command-line flags).

Each setting is data: its environment name, the Config field it fills, its type and bounds,
its default and a line of help. Reading, checking and the README's settings table (a test
compares them) all come from this one list, so none goes unchecked or undocumented.
`liveblog serve` reads them once and hands the result to its workers as one encoded value
(see `Config.encoded` and `Config.for_worker`), so every worker runs with the same settings.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import msgspec

from liveblog.durability import Policy
from liveblog.errors import ConfigError
from liveblog.logs import LogFormat

Kind = Literal["int", "float", "bool", "text", "path", "choice", "redis-url", "http-url",
               "origins"]

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
            case "bool":
                return "`true` or `false`"
            case "redis-url":
                return "Redis URL"
            case "http-url":
                return "http(s) URL"
            case "path":
                return "directory"
            case "origins":
                return "`*` or origins"
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
            case "bool":
                return _flag(name, value)
            case "redis-url":
                # Checked whole, with LIVEBLOG_REDIS_CLUSTER, once both are read.
                return str(value)
            case "http-url":
                if not str(value).startswith(("http://", "https://")):
                    raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
                return str(value).rstrip("/")
            case "path":
                return Path(str(value))
            case "origins":
                return origins(name, str(value))
            case _:
                text = str(value).strip()
                if not text:
                    raise ConfigError(f"{name} must not be empty")
                return text


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "LIVEBLOG_REDIS_URL", "redis_url", "redis-url", None,
        "Redis to use (redis://, rediss://, unix://, or redis+sentinel://[[user]:password@]"
        "host[:port][,host[:port]...]/service[/db]). Unset: start an embedded redis-server.",
    ),
    Setting(
        "LIVEBLOG_REDIS_CLUSTER", "redis_cluster", "bool", "false",
        "true: LIVEBLOG_REDIS_URL (redis:// or rediss://) names any node of a Redis Cluster.",
    ),
    Setting(
        "LIVEBLOG_REDIS_WAIT_REPLICAS", "wait_replicas", "int", "0",
        "Replicas that must have each change (Redis WAIT) before it is acknowledged; fewer "
        "within LIVEBLOG_REDIS_WAIT_TIMEOUT_MS: 503, retry with the same Idempotency-Key.",
        low=0, high=100,
    ),
    Setting(
        "LIVEBLOG_REDIS_WAIT_TIMEOUT_MS", "wait_timeout_ms", "int", "1000",
        # 0 would be WAIT's "for ever": a request held until a replica comes back.
        "Longest wait for LIVEBLOG_REDIS_WAIT_REPLICAS replicas to have a change.",
        low=1, high=60_000,
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
        "LIVEBLOG_WEBHOOKS_FORBID_PRIVATE", "webhooks_forbid_private", "bool", "false",
        "true: refuse webhook endpoints whose host is, or resolves to, a loopback, private, "
        "link-local or other non-public address, at registration and at every delivery.",
    ),
    Setting(
        "LIVEBLOG_WEBHOOKS_TIMEOUT_SECONDS", "webhooks_timeout_seconds", "float", "10",
        "Longest a webhook delivery waits for the endpoint's answer; then it has failed, and "
        "is retried.",
        low=0.1, high=60,
    ),
    Setting(
        "LIVEBLOG_PUBLIC_URL", "public_url", "http-url", None,
        "Base URL readers use (printed at start; the pages' canonical, og:url and JSON-LD "
        "links). Unset: http://HOST:PORT.",
    ),
    Setting(
        # Bounded: every entry is rendered into each answer, and feed readers poll.
        "LIVEBLOG_FEED_ENTRIES", "feed_entries", "int", "50",
        "Entries in a blog's Atom and JSON feeds, the newest first.",
        low=1, high=500,
    ),
    Setting(
        "LIVEBLOG_EMBED_ORIGINS", "embed_origins", "origins", "*",
        "Sites that may put a blog's embed page (/blogs/SLUG/embed) in a frame: * for any, "
        "or origins separated by spaces (https://news.example). Other pages: none.",
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
    redis_cluster: bool = False
    wait_replicas: int = 0
    wait_timeout_ms: int = 1000
    webhooks_forbid_private: bool = False
    webhooks_timeout_seconds: float = 10.0
    feed_entries: int = 50
    # "*", or "'self'" and origins: the embed page's CSP frame-ancestors (see `origins`).
    embed_origins: str = "*"

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
        redis_url = values["redis_url"]
        if redis_url is not None:
            _check_redis_url(str(redis_url), bool(values["redis_cluster"]))
        elif values["redis_cluster"]:
            raise ConfigError("LIVEBLOG_REDIS_CLUSTER=true needs LIVEBLOG_REDIS_URL to name a "
                              "node of the cluster (the embedded Redis is a single server)")
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


SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelAddress:
    """What a redis+sentinel:// URL names: the Sentinels to ask, the service (the master's
    name in their configuration), and how to log in to the master and pick its database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    # ?sentinel_password=: for Sentinels that require one of their own (requirepass in
    # sentinel.conf); the password in the URL's user part is the master's.
    sentinel_password: str | None = None


def sentinel_address(url: str) -> SentinelAddress:
    """Parse redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]
    (port 26379 if left out); ConfigError naming what is wrong."""
    what = "LIVEBLOG_REDIS_URL"
    form = "redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]"
    if not url.startswith("redis+sentinel://"):
        raise ConfigError(f"{what} is not a redis+sentinel:// URL")
    rest = url[len("redis+sentinel://"):]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels: list[tuple[str, int]] = []
    for part in hosts.split(","):
        host, port = _host_and_port(part.strip(), what, form)
        sentinels.append((host, port))
    segments = [unquote(segment) for segment in path.split("/")] if path else []
    if not segments or not segments[0]:
        raise ConfigError(f"{what} names no Sentinel service; the form is {form}")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdecimal()):
        raise ConfigError(f"{what}: after the service only a database number may follow "
                          f"(/service/0); the form is {form}")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - {"sentinel_password"})
    if unknown:
        raise ConfigError(f"{what}: unknown option {unknown[0]!r} in a redis+sentinel:// URL "
                          "(only sentinel_password is understood)")
    return SentinelAddress(
        sentinels=tuple(sentinels), service=segments[0],
        db=int(segments[1]) if len(segments) == 2 else 0,
        username=username, password=password,
        sentinel_password=options.get("sentinel_password") or None,
    )


def _host_and_port(part: str, what: str, form: str) -> tuple[str, int]:
    if part.startswith("["):  # [IPv6]:port
        host, _, port = part[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = part.partition(":")
    if not host:
        raise ConfigError(f"{what} names a Sentinel without a host; the form is {form}")
    if not port:
        return host, SENTINEL_PORT
    if not port.isdecimal() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what}: {port!r} is not a port (of Sentinel {host}); the form "
                          f"is {form}")
    return host, int(port)


def _check_redis_url(url: str, cluster: bool) -> None:
    if url.startswith("redis+sentinel://"):
        if cluster:
            raise ConfigError("LIVEBLOG_REDIS_CLUSTER=true needs a redis:// or rediss:// URL "
                              "of a cluster node, not a redis+sentinel:// one")
        sentinel_address(url)
        return
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"LIVEBLOG_REDIS_URL must start with redis://, rediss://, unix:// or "
            f"redis+sentinel://, got {redacted(url)!r}"
        )
    if cluster and url.startswith("unix://"):
        raise ConfigError("LIVEBLOG_REDIS_CLUSTER=true needs a redis:// or rediss:// URL: a "
                          "cluster's nodes tell each other TCP addresses")


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
        f"{key}=***" if key.endswith("password") else f"{key}={value}" if value else key
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# A CSP host-source that is an origin: http(s), a host (a DNS name, optionally with a first
# label of "*", an IPv4 address or a bracketed IPv6 one) and a port; nothing else, so that
# nothing in the setting can end the directive or add another.
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?/?")


def origins(name: str, value: str) -> str:
    """The CSP frame-ancestors sources for `value`: `*` (any site), or "'self'" and each
    origin of a space-separated list, lowercased (this site may always frame its own
    embed). ConfigError naming the setting and the first word that is not an origin."""
    words = value.split()
    if words == ["*"]:
        return "*"
    if not words:
        raise ConfigError(f"{name} must be * or origins separated by spaces, got {value!r}")
    found = ["'self'"]
    for word in words:
        match = _ORIGIN.fullmatch(word.lower())
        port = match and match["port"]
        if match is None or (port and not 0 < int(port) < 65536) or (
                match["host"].startswith("[") and not _ipv6(match["host"][1:-1])):
            raise ConfigError(
                f"{name} must be * or origins (scheme://host[:port], e.g. "
                f"https://news.example) separated by spaces; {word!r} is not an origin")
        origin = f"{match['scheme']}://{match['host']}" + (f":{port}" if port else "")
        if origin not in found:
            found.append(origin)
    return " ".join(found)


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _flag(name: str, value: object) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")
