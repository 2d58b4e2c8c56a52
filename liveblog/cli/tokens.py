"""`liveblog token create|list|rotate|revoke`: API tokens, straight from the store (the
configured Redis, or the embedded one: see liveblog/cli/store.py), so they work with the
server down as well as up."""

from __future__ import annotations

import re

import click

from liveblog.cli.store import with_store
from liveblog.config import Config
from liveblog.domain.commands import ACTOR_NAME_PATTERN
from liveblog.service import utcnow
from liveblog.store import Store
from liveblog.tokens import new_token

TOKEN_NAME = re.compile(ACTOR_NAME_PATTERN)


@click.group()
def token() -> None:
    """Create, list, rotate and revoke API tokens."""


@token.command("create")
@click.option("--name", required=True, help="Who uses it; becomes the author of their posts.")
@click.option("--role", type=click.Choice(["contributor", "reporter", "editor"]), required=True,
              help="contributor: submits for an editor to publish; reporter: publishes its "
                   "own; editor: runs the blog.")
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
