"""Settings, read once from the environment (and overridden by command-line flags).

Each setting is data: its environment name, its default and a line of help. The README's
settings table is checked against this list by a test, so none goes undocumented.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from liveblog.durability import Policy
from liveblog.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    env: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "LIVEBLOG_REDIS_URL",
        None,
        "Redis to use (redis://, rediss://, unix://, or redis+sentinel://[[user]:password@]"
        "host[:port][,host[:port]...]/service[/db]). Unset: start an embedded redis-server.",
    ),
    Setting(
        "LIVEBLOG_REDIS_CLUSTER",
        "false",
        "true: LIVEBLOG_REDIS_URL (redis:// or rediss://) names any node of a Redis Cluster.",
    ),
    Setting(
        "LIVEBLOG_REDIS_WAIT_REPLICAS",
        "0",
        "Replicas that must have each change (Redis WAIT) before it is acknowledged; fewer "
        "within LIVEBLOG_REDIS_WAIT_TIMEOUT_MS: 503, retry with the same Idempotency-Key.",
    ),
    Setting(
        "LIVEBLOG_REDIS_WAIT_TIMEOUT_MS",
        "1000",
        "Longest wait for LIVEBLOG_REDIS_WAIT_REPLICAS replicas to have a change.",
    ),
    Setting(
        "LIVEBLOG_DATA_DIR",
        "./var",
        "Where the embedded redis-server keeps its append-only file and socket.",
    ),
    Setting("LIVEBLOG_HOST", "127.0.0.1", "Interface the HTTP server listens on."),
    Setting("LIVEBLOG_PORT", "8000", "Port the HTTP server listens on."),
    Setting(
        "LIVEBLOG_MAX_BODY_BYTES",
        "262144",
        "Largest request body accepted; larger ones get 413.",
    ),
    Setting(
        "LIVEBLOG_HEARTBEAT_SECONDS",
        "15",
        "Seconds between comment heartbeats on idle reader streams.",
    ),
    Setting(
        "LIVEBLOG_READER_QUEUE",
        "256",
        "Messages a reader may fall behind before it is cut off (it resumes from its last id).",
    ),
    Setting(
        "LIVEBLOG_DURABILITY",
        "strict",
        "strict: refuse an external Redis that would lose acknowledged updates (no "
        "append-only file, or evicting keys); warn: log it and serve anyway.",
    ),
    Setting(
        "LIVEBLOG_MAX_STREAMS",
        "10000",
        "Reader streams one process holds at once; past it a new stream gets 503 with "
        "Retry-After.",
    ),
    Setting(
        "LIVEBLOG_MAX_STREAMS_PER_IP",
        "1000",
        "Reader streams one client address (an IPv6 /64) holds at once per process; past it "
        "503 with Retry-After.",
    ),
    Setting(
        "LIVEBLOG_MAX_TAILERS",
        "100",
        "Blogs one process tails at once; past it the longest-idle one without readers stops, "
        "or a new blog's stream gets 503.",
    ),
    Setting(
        "LIVEBLOG_MAX_TAILERS_PER_IP",
        "10",
        "Blogs one client address (an IPv6 /64) may make one process start tailing, counted "
        "while they are tailed; past it a stream of yet another blog gets 503 with "
        "Retry-After.",
    ),
    Setting(
        "LIVEBLOG_FORWARDED_ALLOW_IPS",
        "127.0.0.1",
        "Proxies trusted to name the client in X-Forwarded-For (comma-separated addresses or "
        "networks, or *): the address the per-address limits count. Any other peer counts "
        "as itself.",
    ),
    Setting(
        "LIVEBLOG_TAIL_BLOCK_MS",
        "5000",
        "Longest wait of a tailer's XREAD; a dead Redis connection is noticed within this plus "
        "2 s, a replaced log within this.",
    ),
    Setting(
        "LIVEBLOG_PUBLIC_URL",
        None,
        "Base URL readers use (for printed links). Unset: http://HOST:PORT.",
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
    redis_cluster: bool = False
    wait_replicas: int = 0
    wait_timeout_ms: int = 1000

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> Config:
        """Read every setting; `overrides` (from flags) win over the environment."""
        env = os.environ if environ is None else environ

        def raw(name: str) -> str | None:
            setting = next(s for s in SETTINGS if s.env == name)
            value = env.get(name)
            if value is None or value == "":
                return setting.default
            return value

        redis_url = _override(overrides, "redis_url", raw("LIVEBLOG_REDIS_URL"))
        cluster = _flag("LIVEBLOG_REDIS_CLUSTER",
                        _override(overrides, "redis_cluster", raw("LIVEBLOG_REDIS_CLUSTER")))
        if redis_url is not None:
            _check_redis_url(str(redis_url), cluster)
        elif cluster:
            raise ConfigError("LIVEBLOG_REDIS_CLUSTER=true needs LIVEBLOG_REDIS_URL to name a "
                              "node of the cluster (the embedded Redis is a single server)")
        host = str(_override(overrides, "host", raw("LIVEBLOG_HOST")))
        port = _integer(
            "LIVEBLOG_PORT", _override(overrides, "port", raw("LIVEBLOG_PORT")), 1, 65535
        )
        max_body = _integer(
            "LIVEBLOG_MAX_BODY_BYTES", raw("LIVEBLOG_MAX_BODY_BYTES"), 1024, 64 * 1024 * 1024
        )
        data_dir = Path(str(_override(overrides, "data_dir", raw("LIVEBLOG_DATA_DIR"))))
        heartbeat = _number(
            "LIVEBLOG_HEARTBEAT_SECONDS",
            _override(overrides, "heartbeat_seconds", raw("LIVEBLOG_HEARTBEAT_SECONDS")),
            0.05, 15,
        )
        reader_queue = _integer(
            "LIVEBLOG_READER_QUEUE",
            _override(overrides, "reader_queue", raw("LIVEBLOG_READER_QUEUE")), 1, 100_000,
        )
        durability = raw("LIVEBLOG_DURABILITY")
        if durability not in ("strict", "warn"):
            raise ConfigError(f"LIVEBLOG_DURABILITY must be strict or warn, got {durability!r}")
        policy: Policy = "warn" if durability == "warn" else "strict"

        def limit(key: str, name: str, low: int, high: int) -> int:
            return _integer(name, _override(overrides, key, raw(name)), low, high)

        max_streams = limit("max_streams", "LIVEBLOG_MAX_STREAMS", 1, 10_000_000)
        max_streams_per_ip = limit("max_streams_per_ip", "LIVEBLOG_MAX_STREAMS_PER_IP",
                                   1, 10_000_000)
        max_tailers = limit("max_tailers", "LIVEBLOG_MAX_TAILERS", 1, 100_000)
        max_tailers_per_ip = limit("max_tailers_per_ip", "LIVEBLOG_MAX_TAILERS_PER_IP",
                                   1, 100_000)
        # Each block's end costs the tailer an XREAD and a check of the log: not too often.
        tail_block_ms = limit("tail_block_ms", "LIVEBLOG_TAIL_BLOCK_MS", 100, 60_000)
        wait_replicas = limit("wait_replicas", "LIVEBLOG_REDIS_WAIT_REPLICAS", 0, 100)
        # 0 would be WAIT's "for ever": a request held until a replica comes back.
        wait_timeout_ms = limit("wait_timeout_ms", "LIVEBLOG_REDIS_WAIT_TIMEOUT_MS", 1, 60_000)
        forwarded_allow_ips = str(_override(overrides, "forwarded_allow_ips",
                                            raw("LIVEBLOG_FORWARDED_ALLOW_IPS"))).strip()
        if not forwarded_allow_ips:
            raise ConfigError("LIVEBLOG_FORWARDED_ALLOW_IPS must name at least one address")
        public = raw("LIVEBLOG_PUBLIC_URL")
        if public is not None and not public.startswith(("http://", "https://")):
            raise ConfigError(f"LIVEBLOG_PUBLIC_URL must be an http(s) URL, got {public!r}")
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        public_url = (public or f"http://{shown_host}:{port}").rstrip("/")
        return cls(
            redis_url=None if redis_url is None else str(redis_url),
            data_dir=data_dir,
            host=host,
            port=port,
            max_body_bytes=max_body,
            public_url=public_url,
            heartbeat_seconds=heartbeat,
            reader_queue=reader_queue,
            durability=policy,
            max_streams=max_streams,
            max_streams_per_ip=max_streams_per_ip,
            max_tailers=max_tailers,
            max_tailers_per_ip=max_tailers_per_ip,
            forwarded_allow_ips=forwarded_allow_ips,
            tail_block_ms=tail_block_ms,
            redis_cluster=cluster,
            wait_replicas=wait_replicas,
            wait_timeout_ms=wait_timeout_ms,
        )


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


def _flag(name: str, value: object) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _override(overrides: Mapping[str, object], key: str, value: str | None) -> object:
    given = overrides.get(key)
    return value if given is None else given


def _integer(name: str, value: object, low: int, high: int) -> int:
    return int(_bounded(name, value, low, high, int, "a whole number"))


def _number(name: str, value: object, low: float, high: float) -> float:
    return _bounded(name, value, low, high, float, "a number")


def _bounded(name: str, value: object, low: float, high: float,
             cast: type[int] | type[float], what: str) -> float:
    try:
        number = cast(str(value))
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {number}")
    return number
