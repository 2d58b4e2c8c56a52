"""The `liveblog` command: serve the blog, and manage tokens.

Settings come from the environment (see liveblog.config); flags override them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import secrets
import signal
import sys
from typing import TypeVar

import click

from liveblog import version
from liveblog.cli_store import with_store
from liveblog.config import Config, redacted
from liveblog.domain.commands import ACTOR_NAME_PATTERN
from liveblog.durability import judge
from liveblog.embedded import redis_url_for
from liveblog.errors import LiveblogError
from liveblog.logs import log_config
from liveblog.metrics import multiprocess_dir
from liveblog.service import utcnow
from liveblog.store import Store

T = TypeVar("T")
TOKEN_NAME = re.compile(ACTOR_NAME_PATTERN)
FIRST_EDITOR = "admin"


def new_token() -> str:
    return "lb_" + secrets.token_urlsafe(32)


@click.group()
@click.version_option(package_name="liveblog")
def cli() -> None:
    """liveblog: an event-sourced live blog for breaking news."""


@cli.command()
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
        lines = [
            f"liveblog {version()} on {config.public_url}  (store: {where})",
            f"  blogs:    {config.public_url}/api/blogs",
            f"  API docs: {config.public_url}/openapi.json",
            f"  health:   {config.public_url}/healthz",
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
        # Workers are separate processes: they read the Redis URL from the environment.
        os.environ["LIVEBLOG_REDIS_URL"] = url
        # So are the flags: the app (in each worker, and in this process with one) reads
        # its settings from the environment, where --port and --host must be too, or its
        # links would name the default port while it listens on another.
        os.environ["LIVEBLOG_HOST"] = config.host
        os.environ["LIVEBLOG_PORT"] = str(config.port)
        # uvicorn shuts down gracefully on these, then raises the signal again to exit;
        # turning that into SystemExit lets the `with` above stop the embedded Redis.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _exit_cleanly)
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


def _exit_cleanly(signum: int, frame: object) -> None:
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


@cli.group()
def token() -> None:
    """Create, list, rotate and revoke API tokens."""


@token.command("create")
@click.option("--name", required=True, help="Who uses it; becomes the author of their posts.")
@click.option("--role", type=click.Choice(["reporter", "editor"]), required=True)
def token_create(name: str, role: str) -> None:
    """Create a token; it is printed once, as the last line."""
    if not TOKEN_NAME.match(name):
        raise click.BadParameter(
            "use 1 to 64 letters, digits, '.', '_' or '-'", param_hint="--name"
        )
    secret = new_token()

    async def create(store: Store) -> bool:
        return await store.create_token(name, role, secret, utcnow())

    if not with_store(Config.from_env(), create):
        raise click.ClickException(f"a token named {name!r} exists already")
    click.echo(f"created {role} token {name!r}; it is shown only now:", err=True)
    click.echo(secret)


@token.command("list")
def token_list() -> None:
    """List tokens by name and role (the secrets are stored hashed and cannot be shown)."""
    records = with_store(Config.from_env(), lambda store: store.list_tokens())
    if not records:
        click.echo("no tokens")
    for record in records:
        click.echo(f"{record.name}\t{record.role}\tcreated {record.created_at.isoformat()}"
                   f"\tidentity {record.id}")


@token.command("rotate")
@click.argument("name")
def token_rotate(name: str) -> None:
    """Give NAME a new secret (printed once, as the last line); the old one stops working.
    The identity stays: its entries and idempotency keys remain its own."""
    secret = new_token()
    record = with_store(Config.from_env(), lambda store: store.rotate_token(name, secret))
    if record is None:
        raise click.ClickException(f"no token named {name!r}")
    click.echo(f"rotated {record.role} token {name!r}; the new one is shown only now:",
               err=True)
    click.echo(secret)


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke a token by name; requests with it get 401 from now on. Its identity goes
    with it: a new token given the same name is someone else, and owns nothing of this
    one's."""
    if not with_store(Config.from_env(), lambda store: store.revoke_token(name)):
        raise click.ClickException(f"no token named {name!r}")
    click.echo(f"revoked {name!r}")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except LiveblogError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _register() -> None:
    from liveblog.cli_client import COMMANDS
    from liveblog.cli_log import export, import_, replay
    from liveblog.demo import demo

    for command in (*COMMANDS, export, import_, replay, demo):
        cli.add_command(command)


_register()
