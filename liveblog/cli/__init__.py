"""The `liveblog` command: serve the blog, manage tokens, work the newsroom from a
terminal, export, import and replay a log, and tell the demo story.

One module per family of commands, each registered here by name. None of them imports
the web stack (starlette, uvicorn, liveblog.web) at import time: only `serve` and `demo`
need it, when they run, so `liveblog token list` does not pay for it (tests/test_cli.py
checks)."""

from __future__ import annotations

import sys

import click

from liveblog.cli.demo import demo
from liveblog.cli.log import export, import_, replay
from liveblog.cli.newsroom import edit, fact, pin, post, publish, reject, retract
from liveblog.cli.serve import serve
from liveblog.cli.tokens import token
from liveblog.errors import LiveblogError


@click.group()
@click.version_option(package_name="liveblog")
def cli() -> None:
    """liveblog: an event-sourced live blog for breaking news."""


for command in (serve, token, post, edit, retract, publish, reject, pin, fact, export, import_,
                replay, demo):
    cli.add_command(command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except LiveblogError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
