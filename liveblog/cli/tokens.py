"""`liveblog token create|list|set|rotate|revoke`: API tokens, straight from the store (the
configured Redis, or the embedded one: see liveblog/cli/store.py), so they work with the
server down as well as up."""

from __future__ import annotations

import re

import click

from liveblog.cli.store import with_store
from liveblog.config import Config
from liveblog.domain.commands import ACTOR_NAME_PATTERN, display_name
from liveblog.domain.events import Actor
from liveblog.errors import InvalidInput
from liveblog.service import Renamed, Service, utcnow
from liveblog.store import Store
from liveblog.tokens import new_token

TOKEN_NAME = re.compile(ACTOR_NAME_PATTERN)


@click.group()
def token() -> None:
    """Create, list, rotate and revoke API tokens."""


def _display_name(_: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return display_name(value)
    except InvalidInput as exc:
        raise click.BadParameter(exc.errors[0].message, param=param) from None


@token.command("create")
@click.option("--name", required=True,
              help="Who uses it (the newsroom's handle for them, as in the log).")
@click.option("--display-name", callback=_display_name,
              help="The byline readers see on their posts, e.g. \"Rania Abouzeid\" "
                   "(default: the name).")
@click.option("--role", type=click.Choice(["contributor", "reporter", "editor"]), required=True,
              help="contributor: submits for an editor to publish; reporter: publishes its "
                   "own; editor: runs the blog.")
def token_create(name: str, display_name: str | None, role: str) -> None:
    """Create a token; it is printed once, as the last line."""
    if not TOKEN_NAME.match(name):
        raise click.BadParameter(
            "use 1 to 64 letters, digits, '.', '_' or '-'", param_hint="--name"
        )
    secret = new_token()

    async def create(store: Store) -> bool:
        return await store.create_token(name, role, secret, utcnow(),
                                        display_name=display_name)

    if not with_store(Config.from_env(), create):
        raise click.ClickException(f"a token named {name!r} exists already")
    click.echo(f"created {role} token {name!r}; it is shown only now:", err=True)
    click.echo(secret)


@token.command("list")
def token_list() -> None:
    """List tokens by name, role and byline (the secrets are stored hashed and cannot be
    shown)."""
    people = with_store(Config.from_env(), lambda store: store.list_people())
    active = [person for person in people if person.status == "active"]
    if not active:
        click.echo("no tokens")
    for person in active:
        click.echo(f"{person.name}\t{person.role}\tcreated {person.created_at.isoformat()}"
                   f"\tidentity {person.id}\tbyline {person.display_name}")


@token.command("set")
@click.argument("name")
@click.option("--display-name", callback=_display_name, required=True,
              help="The new byline, on their next posts and on every entry they posted.")
def token_set(name: str, display_name: str) -> None:
    """Change NAME's byline. Each blog where they posted logs the change (a byline-changed
    event, as from them), so its pages, open ones included, show the new name, and its
    replay shows the old one before it."""

    async def rename(store: Store) -> Renamed | None:
        record = await store.token_named(name)
        if record is None:
            return None
        actor = Actor(record.name, record.role, record.id,  # type: ignore[arg-type]
                      display_name)
        return await Service(store).rename(record.id, display_name, actor)

    renamed = with_store(Config.from_env(), rename)
    if renamed is None:
        raise click.ClickException(f"no token named {name!r}")
    blogs = ", ".join(event.slug for event in renamed.events) or "none"
    click.echo(f"{name!r} now signs as {renamed.person.display_name!r}; "
               f"blogs changed: {blogs}")


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
