"""`liveblog serve`: the API and the pages, on the configured Redis or an embedded one.

Settings come from the environment (see liveblog.config); flags override them. uvicorn
(and through it the app) is imported when the command runs, not when the CLI loads.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import sys

import click

from liveblog import version
from liveblog.cli.store import with_store
from liveblog.config import WORKER_ENV, Config, redacted
from liveblog.durability import judge
from liveblog.embedded import redis_url_for
from liveblog.logs import log_config
from liveblog.metrics import multiprocess_dir
from liveblog.service import utcnow
from liveblog.store import Store
from liveblog.tokens import new_token

FIRST_EDITOR = "admin"


@click.command()
@click.option("--host", help="Interface to listen on [LIVEBLOG_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [LIVEBLOG_PORT, default 8000].")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes; all share one Redis.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the API (and start an embedded Redis when LIVEBLOG_REDIS_URL is unset)."""
    import uvicorn

    config = Config.from_env(host=host, port=port)
    # With several workers, they add up their figures for /metrics in a directory they
    # share (set up before they start, removed after they end).
    with redis_url_for(config.redis_url, config.data_dir) as url, multiprocess_dir(workers):
        config = dataclasses.replace(config, redis_url=url)
        created = with_store(config, functools.partial(_prepare, config))
        where = "embedded Redis in " + str(config.data_dir.resolve()) \
            if os.environ.get("LIVEBLOG_REDIS_URL") in (None, "") else redacted(url)
        site = config.public_url
        lines = [
            f"liveblog {version()} on {site}  (store: {where})",
            f"  home:     {site}/",
            f"  console:  {site}/newsroom  (sign in with a token)",
            f"  readers:  {site}/blogs/<slug>",
            f"  blogs:    {site}/api/blogs",
            f"  API docs: {site}/openapi.json",
            f"  health:   {site}/healthz",
        ]
        if created:
            lines += [
                "",
                f"First start: created the editor token {FIRST_EDITOR!r}. Keep it; it is not "
                "shown again:",
                f"  export LIVEBLOG_TOKEN={created}",
            ]
        click.echo("\n".join(lines), err=False)
        sys.stdout.flush()
        # Workers are separate processes: they get the settings read here (flags, the
        # environment, the embedded Redis's URL) as one value, not by reading the
        # environment again, so every one runs with the same settings as this process.
        os.environ[WORKER_ENV] = config.encoded()
        # uvicorn shuts down gracefully on these, then raises the signal again to exit;
        # turning that into SystemExit lets the `with` above stop the embedded Redis.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, exit_cleanly)
        uvicorn.run(
            "liveblog.web.app:app_from_env",
            factory=True,
            host=config.host,
            port=config.port,
            workers=workers,
            log_level="info",
            log_config=log_config(config.log_format),
            access_log=False,  # the app logs requests itself, all but reader streams
            # Reader streams of tailed blogs are answered by the protocol itself, with no
            # task per connection (see liveblog/web/protocol.py).
            http="liveblog.web.protocol:StreamingHttpToolsProtocol",
            proxy_headers=True,
            # Who may name the client (X-Forwarded-For): what the per-address limits count.
            # protocol.py's fast path reads the same list from uvicorn's proxy middleware.
            forwarded_allow_ips=config.forwarded_allow_ips,
            # A spike brings thousands of readers within seconds: let the kernel hold them
            # while the loop accepts (it caps this at net.core.somaxconn).
            backlog=8192,
            # Reader streams never end by themselves: give them a moment, then close them
            # (browsers reconnect, with Last-Event-ID, to the next process).
            timeout_graceful_shutdown=5,
        )


def exit_cleanly(signum: int, frame: object) -> None:
    """A signal handler that unwinds (`with` blocks stop the embedded Redis) and exits 0."""
    raise SystemExit(0)


async def _prepare(config: Config, store: Store) -> str | None:
    """Refuse a Redis that would lose updates (a clear message, before uvicorn starts; each
    worker checks again), then make the first editor token of a new store."""
    judge(await store.durability(), config.durability)
    return await _first_editor(store)


async def _first_editor(store: Store) -> str | None:
    if await store.list_tokens():
        return None
    secret = new_token()
    created = await store.create_token(FIRST_EDITOR, "editor", secret, utcnow())
    return secret if created else None
