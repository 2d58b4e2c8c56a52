"""`liveblog demo`: the product in one minute. Starts the store (embedded unless
LIVEBLOG_REDIS_URL says otherwise) and the server, opens a blog, and tells the Tartus and
Jableh story on it at a compressed pace while a newcomer watches the reader page.

The server (uvicorn and the app) is imported when the command runs, not when the CLI
loads."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time

import click
import httpx

from liveblog.cli.serve import exit_cleanly
from liveblog.cli.store import with_store
from liveblog.config import Config
from liveblog.embedded import redis_url_for
from liveblog.service import utcnow
from liveblog.store import Store
from liveblog.story import DESCRIPTION, SLUG, STORY, TITLE, resolve
from liveblog.tokens import new_token

PEOPLE = {"editor": ("desk", "editor"), "reporter": ("rania", "reporter"),
          "other_reporter": ("omar", "reporter")}


async def _tokens(store: Store) -> dict[str, str]:
    """A token for each person in the story (a fresh name if one is taken)."""
    made = {}
    for who, (name, role) in PEOPLE.items():
        secret = new_token()
        candidate, n = name, 1
        while not await store.create_token(candidate, role, secret, utcnow()):
            n += 1
            candidate = f"{name}{n}"
        made[who] = secret
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
        tokens = with_store(config, _tokens)
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
            _tell(config, tokens, pace)
            click.echo("The story is told. The server keeps running: Ctrl-C to stop.")
            while thread.is_alive():
                thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _tell(config: Config, tokens: dict[str, str], pace: float) -> None:
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


