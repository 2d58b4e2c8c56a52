"""`liveblog post`, `edit`, `retract`, `publish`, `reject`, `pin`, `fact`: the newsroom's
API from a terminal.

They talk HTTP to a running server (LIVEBLOG_URL, default the local one) with a token
(LIVEBLOG_TOKEN or --token), so they work from a reporter's laptop as well as on the box.
"""

from __future__ import annotations

import uuid
from typing import Any

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8000"

url_option = click.option("--url", envvar="LIVEBLOG_URL", default=DEFAULT_URL,
                          show_default=True, help="The server [LIVEBLOG_URL].")
token_option = click.option("--token", envvar="LIVEBLOG_TOKEN", required=True,
                            help="Your API token [LIVEBLOG_TOKEN].")


def call(url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One API call; a problem+json answer becomes a readable error (exit status 1)."""
    all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=15) as client:
            # Retried once on a dropped connection; posts carry an Idempotency-Key, so the
            # retry cannot post twice.
            for attempt in (1, 2):
                try:
                    response = client.request(method, path, json=body, headers=all_headers)
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        raise
    except httpx.TransportError as exc:
        raise click.ClickException(f"cannot reach {url} ({exc}); is the server running?") \
            from None
    if response.status_code >= 400:
        raise click.ClickException(_problem(response))
    result: dict[str, Any] = response.json()
    return result


def _problem(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    lines = [f"{problem.get('title', 'Error')} ({response.status_code}): "
             f"{problem.get('detail', '')}"]
    for error in problem.get("errors", []):
        lines.append(f"  {error['field']}: {error['message']}")
    return "\n".join(lines)


def _compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


@click.command()
@click.argument("slug")
@click.argument("text")
@click.option("--title", help="Short title, shown in the key events list.")
@click.option("--key-event", is_flag=True, help="Mark as a key event.")
@click.option("--image", help="Image URL.")
@click.option("--alt", help="The image's alt text (required with --image).")
@click.option("--caption", default="", help="The image's caption.")
@click.option("--credit", default="", help="The image's credit.")
@click.option("--embed", help="A link to a social post or video, shown as a card.")
@click.option("--draft", is_flag=True, help="Keep it as a draft: readers see nothing yet.")
@click.option("--at", "publish_at", metavar="TIME",
              help="Publish it at this ISO 8601 time, with its zone (2026-05-01T14:30Z).")
@url_option
@token_option
def post(slug: str, text: str, title: str | None, key_event: bool, image: str | None,
         alt: str | None, caption: str, credit: str, embed: str | None, draft: bool,
         publish_at: str | None, url: str, token: str) -> None:
    """Post an update (a contributor's waits for an editor); prints its id."""
    if draft and publish_at:
        raise click.UsageError("give --draft or --at, not both")
    body = _compact(body=text, title=title, key_event=key_event or None,
                    image=_compact(url=image, alt=alt, caption=caption or None,
                                   credit=credit or None) if image else None,
                    embed={"url": embed} if embed else None,
                    publish="draft" if draft else publish_at)
    result = call(url, token, "POST", f"/api/blogs/{slug}/entries", body,
                  headers={"Idempotency-Key": str(uuid.uuid4())})
    entry = result["entry"]
    state = entry.get("state", "published")
    said = {"published": "posted", "draft": "saved draft", "submitted": "submitted",
            "scheduled": "scheduled"}.get(state, state)
    when = f" for {entry['publish_at']}" if entry.get("publish_at") else ""
    click.echo(f"{said} {entry['id']}{when} (version {result['version']})")


@click.command()
@click.argument("slug")
@click.argument("entry_id")
@click.option("--at", "publish_at", metavar="TIME",
              help="Schedule (or reschedule) it for this ISO 8601 time instead of now.")
@url_option
@token_option
def publish(slug: str, entry_id: str, publish_at: str | None, url: str, token: str) -> None:
    """Publish a draft or a submitted update now (editors; reporters their own drafts)."""
    result = call(url, token, "POST", f"/api/blogs/{slug}/entries/{entry_id}/publish",
                  _compact(publish_at=publish_at))
    entry = result["entry"]
    if entry["state"] == "scheduled":
        click.echo(f"scheduled {entry_id} for {entry['publish_at']}")
    else:
        click.echo(f"published {entry_id}" if result["event_id"] else
                   f"{entry_id} was published already")


@click.command()
@click.argument("slug")
@click.argument("entry_id")
@click.option("--reason", required=True, help="Why; its author sees it in the queue.")
@url_option
@token_option
def reject(slug: str, entry_id: str, reason: str, url: str, token: str) -> None:
    """Reject an unpublished update (editors)."""
    call(url, token, "POST", f"/api/blogs/{slug}/entries/{entry_id}/reject",
         {"reason": reason})
    click.echo(f"rejected {entry_id}")


@click.command()
@click.argument("slug")
@click.argument("entry_id")
@click.argument("text", required=False)
@click.option("--title", help="New short title.")
@click.option("--note", help="What was corrected (kept in the log, for the newsroom).")
@click.option("--correction",
              help="A correction shown to readers under the update (plain text).")
@click.option("--revision", type=int, help="Only if the entry is still at this revision.")
@url_option
@token_option
def edit(slug: str, entry_id: str, text: str | None, title: str | None, note: str | None,
         correction: str | None, revision: int | None, url: str, token: str) -> None:
    """Edit an update (your own, or any as an editor), or add a correction to it."""
    headers = {"If-Match": f'"{revision}"'} if revision is not None else {}
    result = call(url, token, "PATCH", f"/api/blogs/{slug}/entries/{entry_id}",
                  _compact(body=text, title=title, note=note, correction=correction),
                  headers=headers)
    click.echo(f"{entry_id} is at revision {result['entry']['revision']}")


@click.command()
@click.argument("slug")
@click.argument("entry_id")
@click.option("--reason", default="", help="Why (kept in the log, shown to editors).")
@url_option
@token_option
def retract(slug: str, entry_id: str, reason: str, url: str, token: str) -> None:
    """Retract an update: it leaves every open page; the log keeps it."""
    call(url, token, "DELETE", f"/api/blogs/{slug}/entries/{entry_id}", {"reason": reason})
    click.echo(f"retracted {entry_id}")


@click.command()
@click.argument("slug")
@click.argument("entry_id")
@url_option
@token_option
def pin(slug: str, entry_id: str, url: str, token: str) -> None:
    """Pin an update (editors); `none` unpins."""
    target = None if entry_id.lower() == "none" else entry_id
    call(url, token, "PUT", f"/api/blogs/{slug}/pinned", {"entry_id": target})
    click.echo("unpinned" if target is None else f"pinned {target}")


@click.command()
@click.argument("slug")
@click.argument("key")
@click.argument("label")
@click.argument("value")
@click.option("--numeric", type=float, help="The number, for the chart of its history.")
@click.option("--source", help="Who says so.")
@url_option
@token_option
def fact(slug: str, key: str, label: str, value: str, numeric: float | None,
         source: str | None, url: str, token: str) -> None:
    """Update a key figure, e.g. fact SLUG deaths Deaths "at least 80" --numeric 80."""
    result = call(url, token, "PUT", f"/api/blogs/{slug}/facts/{key}",
                  _compact(label=label, value=value, numeric=numeric, source=source))
    click.echo(f"{result['fact']['label']}: {result['fact']['value']}")


COMMANDS = (post, edit, retract, publish, reject, pin, fact)
