"""`liveblog demo`: the product in one minute. Starts the store (embedded unless
LIVEBLOG_REDIS_URL says otherwise) and the server, opens a blog, and tells the Tartus and
Jableh story on it at a compressed pace while a newcomer watches the reader page.

The server (uvicorn and the app) is imported when the command runs, not when the CLI
loads."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import click
import httpx
import msgspec

from liveblog.cli.serve import exit_cleanly
from liveblog.cli.store import with_store
from liveblog.config import Config
from liveblog.embedded import redis_url_for
from liveblog.service import utcnow
from liveblog.store import Store
from liveblog.story import DESCRIPTION, SLUG, STORY, TITLE, resolve
from liveblog.tokens import new_token

# Who tells the story: token name, role, and the byline readers see (invented names).
PEOPLE = {"editor": ("desk", "editor", "Lina Nasser"),
          "reporter": ("rania", "reporter", "Rania Haddad"),
          "other_reporter": ("omar", "reporter", "Omar Saleh")}

# The demo's secrets, kept between runs so that it makes its three tokens once (the store
# keeps only their hashes, and the demo posts through the API like anyone else).
TOKENS_FILE = "demo-tokens.json"


class Kept(msgspec.Struct, frozen=True, kw_only=True):
    """One of the demo's tokens: its name, its secret and the identity it was issued to
    (so that a token a user made later under the same name is never rotated by the demo)."""

    name: str
    secret: str
    identity: str


def _read_kept(path: Path) -> dict[str, Kept]:
    try:
        return msgspec.json.decode(path.read_bytes(), type=dict[str, Kept])
    except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
        return {}  # none yet, or unreadable: the demo makes (or takes back) its tokens


def _write_kept(path: Path, kept: dict[str, Kept]) -> None:
    """Owner-only from the start (never briefly readable by others), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(msgspec.json.encode(kept))
    os.replace(partial, path)


async def _token(store: Store, who: str, old: Kept | None) -> Kept:
    """The demo's token for `who`: the kept one if the store still accepts it, else the
    same identity with a new secret, else a new token (a fresh name if one is taken)."""
    name, role, byline = PEOPLE[who]
    if old is not None:
        record = await store.find_token(old.secret)
        if record is not None and record.name == old.name and record.id == old.identity:
            return old
        current = {r.name: r for r in await store.list_tokens()}.get(old.name)
        if current is not None and current.id == old.identity:
            secret = new_token()
            if await store.rotate_token(old.name, secret) is not None:
                return Kept(name=old.name, secret=secret, identity=old.identity)
    secret = new_token()
    candidate, n = name, 1
    while not await store.create_token(candidate, role, secret, utcnow(),
                                       display_name=byline):
        n += 1
        candidate = f"{name}{n}"
    record = await store.find_token(secret)
    assert record is not None  # just created; revoking needs the CLI, not running yet
    return Kept(name=candidate, secret=secret, identity=record.id)


async def _tokens(store: Store, path: Path) -> dict[str, Kept]:
    """A token for each person in the story, made on the first run and reused after."""
    kept = _read_kept(path)
    made = {who: await _token(store, who, kept.get(who)) for who in PEOPLE}
    if made != kept:
        _write_kept(path, made)
    return made


@click.command()
@click.option("--host", help="Interface to listen on [LIVEBLOG_HOST].")
@click.option("--port", type=int, help="Port to listen on [LIVEBLOG_PORT].")
@click.option("--pace", type=float, default=4.0, show_default=True,
              help="Seconds between the story's updates.")
def demo(host: str | None, port: int | None, pace: float) -> None:
    """Serve, open a demo blog and tell a breaking story on it, live."""
    import uvicorn

    from liveblog.web.app import create_app

    signal.signal(signal.SIGTERM, exit_cleanly)  # stop the server and the store cleanly
    config = Config.from_env(host=host, port=port)
    with redis_url_for(config.redis_url, config.data_dir) as url:
        config = dataclasses.replace(config, redis_url=url)
        kept_in = config.data_dir / TOKENS_FILE
        kept = with_store(config, lambda store: _tokens(store, kept_in))
        tokens = {who: k.secret for who, k in kept.items()}
        names = [k.name for k in kept.values()]
        server = uvicorn.Server(uvicorn.Config(create_app(config), host=config.host,
                                               port=config.port, log_level="warning",
                                               timeout_graceful_shutdown=2))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise click.ClickException(f"could not serve on {config.host}:{config.port}")
            time.sleep(0.05)
        try:
            _tell(config, tokens, names, kept_in, pace)
            click.echo("The story is told. The server keeps running: Ctrl-C to stop.")
            while thread.is_alive():
                thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _tell(config: Config, tokens: dict[str, str], names: list[str], kept_in: Path,
          pace: float) -> None:
    base = config.public_url
    with httpx.Client(base_url=f"http://127.0.0.1:{config.port}", timeout=15) as client:
        slug = SLUG
        for n in range(2, 100):
            opened = client.post("/api/blogs", json={"slug": slug, "title": TITLE,
                                                     "description": DESCRIPTION},
                                 headers={"Authorization": f"Bearer {tokens['editor']}"})
            if opened.status_code != 409:
                opened.raise_for_status()
                break
            slug = f"{SLUG}-{n}"
        click.echo(
            f"\nliveblog demo: the story of the Tartus and Jableh bombings, told live.\n"
            f"  Reader page:   {base}/blogs/{slug}   (open it now)\n"
            f"  The blog list: {base}/\n"
            f"  Newsroom:      {base}/newsroom/{slug}  (sign in with the editor token)\n"
            f"  Replay:        {base}/blogs/{slug}/replay  (editors)\n"
            f"  The event log: {base}/api/blogs/{slug}/events  (editor token below)\n"
            f"  Editor token:  {tokens['editor']}\n"
            f"  The demo's tokens ({', '.join(names)}) are kept in {kept_in} and reused by\n"
            f"  the next demo. To revoke them:\n"
            + "".join(f"    liveblog token revoke {name}\n" for name in names)
        )
        posted: list[str] = []
        for step in STORY:
            time.sleep(pace)
            who, method = step[0], step[1]
            path, body = resolve(step, posted)
            response = client.request(method, f"/api/blogs/{slug}/{path}", json=body,
                                      headers={"Authorization": f"Bearer {tokens[who]}"})
            response.raise_for_status()
            if path == "entries":
                posted.append(response.json()["entry"]["id"])
            what = body.get("title") or body.get("note") or body.get("label") or \
                str(body.get("body", body))[:60]
            click.echo(f"  {time.strftime('%H:%M:%S')}  {PEOPLE[who][0]:>5}  {method:<5} "
                       f"{path.split('/')[0]:<8} {what}")


