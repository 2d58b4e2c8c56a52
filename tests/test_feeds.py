"""A blog's feeds (issue 11): Atom 1.0 at /blogs/{slug}/feed.atom and JSON Feed 1.1 at
/blogs/{slug}/feed.json, against a real Redis and uvicorn. The Atom feed is read as
aggregators read it (feedparser, which must find nothing to complain of) and checked for
what RFC 4287 requires; the JSON one against a schema of JSON Feed 1.1 (tests/data). An
edit moves an item's `updated` and changes its content, a retraction removes it, both
validators revalidate, and the reader page names both feeds."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from jsonschema import Draft202012Validator

from liveblog.web.caching import READER_CACHE
from tests.support import Api, Tokens, UvicornThread, app_config, assert_problem, wait_until

PUBLIC = "https://live.example.org"
LIMIT = 3
FEEDS = {"/blogs/tartus/feed.atom": "application/atom+xml",
         "/blogs/tartus/feed.json": "application/feed+json"}
A = "{http://www.w3.org/2005/Atom}"
JSON_FEED = Draft202012Validator(
    json.loads((Path(__file__).parent / "data" / "jsonfeed-1.1.schema.json").read_text()),
    format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture
def server(redis_url: str) -> Iterator[UvicornThread]:
    # A public URL unlike the test's address (feeds name it), and a small feed.
    with UvicornThread(app_config(redis_url, public_url=PUBLIC, feed_entries=LIMIT)) as running:
        yield running


def post(api: Api, tokens: Tokens, **entry: object) -> str:
    response = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json=entry)
    assert response.status_code == 201, response.text
    entry_id: str = response.json()["entry"]["id"]
    return entry_id


def atom(api: Api) -> feedparser.FeedParserDict:
    response = api("GET", "/blogs/tartus/feed.atom")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml"
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def json_feed(api: Api) -> dict[str, Any]:
    """The JSON feed, checked against JSON Feed 1.1 (feedparser 6 reads only XML feeds)."""
    response = api("GET", "/blogs/tartus/feed.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/feed+json"
    document: dict[str, Any] = response.json()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in JSON_FEED.iter_errors(document)]
    assert errors == []
    for item in document["items"]:
        for name in ("date_published", "date_modified"):
            assert _time(item[name]).tzinfo is not None  # RFC 3339: with its offset
    return document


def permalink(entry_id: str) -> str:
    return f"{PUBLIC}/blogs/tartus/entries/{entry_id}"


def test_both_feeds_carry_the_newest_entries_as_the_page_shows_them(
        api: Api, tokens: Tokens, blog: str) -> None:
    oldest = post(api, tokens, body="The first report, soon out of the feed.")
    pictured = post(api, tokens, title="Smoke over the station", body="A **second** blast.",
                    image={"url": "/static/demo/tartus.svg", "alt": "Smoke",
                           "caption": "Jableh", "credit": "Stringer"})
    embedded = post(api, tokens, body="Video of the blast [here](https://example.com/v).",
                    embed={"url": "https://video.example.com/watch/1"})
    untitled = post(api, tokens, body="Ambulances are arriving from *Latakia*. More soon.")
    newest_first = [untitled, embedded, pictured]  # the limit (3) leaves the oldest out
    shown = {e["id"]: e for e in api("GET", "/api/blogs/tartus").json()["entries"]}

    feed = atom(api)
    assert feed.feed.id == f"{PUBLIC}/blogs/tartus"
    assert feed.feed.title == "Blasts in Tartus and Jableh"
    assert feed.feed.link == f"{PUBLIC}/blogs/tartus"
    assert {link.rel: link.href for link in feed.feed.links}["self"] == (
        f"{PUBLIC}/blogs/tartus/feed.atom")
    assert [e.id for e in feed.entries] == [permalink(i) for i in newest_first]
    assert oldest not in str(feed)
    by_id = {e.id: e for e in feed.entries}
    for entry_id in newest_first:
        item = by_id[permalink(entry_id)]
        assert item.link == permalink(entry_id)  # the update's own page
        assert item.author == "rania"
        assert item.published == item.updated  # never edited
        # The same sanitized HTML the page shows, first.
        assert item.content[0].type == "text/html"
        assert item.content[0].value.startswith(shown[entry_id]["html"])
    assert by_id[permalink(pictured)].title == "Smoke over the station"
    # No title: the body's first words, as text.
    assert by_id[permalink(untitled)].title == "Ambulances are arriving from Latakia. More soon."
    assert "<strong>second</strong>" in by_id[permalink(pictured)].content[0].value
    [enclosure] = [link for link in by_id[permalink(pictured)].links if link.rel == "enclosure"]
    assert enclosure.href == f"{PUBLIC}/static/demo/tartus.svg"
    assert enclosure.type == "image/svg+xml"
    assert f'src="{PUBLIC}/static/demo/tartus.svg"' in by_id[permalink(pictured)].content[0].value
    assert "https://video.example.com/watch/1" in by_id[permalink(embedded)].content[0].value

    document = json_feed(api)
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["home_page_url"] == f"{PUBLIC}/blogs/tartus"
    assert document["feed_url"] == f"{PUBLIC}/blogs/tartus/feed.json"
    items = document["items"]
    assert [i["id"] for i in items] == [permalink(i) for i in newest_first]
    assert [i["url"] for i in items] == [permalink(i) for i in newest_first]
    for item, entry_id in zip(items, newest_first, strict=True):
        assert item["content_html"].startswith(shown[entry_id]["html"])
        assert item["authors"] == [{"name": "rania"}]
        assert item["date_published"] == item["date_modified"]
        assert _time(item["date_published"]) == _time(shown[entry_id]["posted_at"])
    assert items[0]["title"] == "Ambulances are arriving from Latakia. More soon."
    assert items[2]["image"] == f"{PUBLIC}/static/demo/tartus.svg"
    assert items[2]["attachments"] == [
        {"url": f"{PUBLIC}/static/demo/tartus.svg", "mime_type": "image/svg+xml"}]
    assert "image" not in items[0] and "attachments" not in items[0]


def test_the_atom_document_has_what_the_spec_requires(api: Api, tokens: Tokens,
                                                      blog: str) -> None:
    """RFC 4287: the feed's id, title and updated (4.1.1), and each entry's id, title,
    updated (4.1.2) and an author (the entry's, as the feed has none); ids are IRIs,
    dates RFC 3339."""
    post(api, tokens, body="First report")
    post(api, tokens, title="Second", body="Second report")
    # A reporter's text may hold what XML cannot carry; the feed must stay well-formed.
    post(api, tokens, body="A bell\x07 and a form feed\x0c in the wire copy")
    root = ET.fromstring(api("GET", "/blogs/tartus/feed.atom").content)
    assert root.tag == f"{A}feed"
    for parent in (root, *root.findall(f"{A}entry")):
        for name in ("id", "title", "updated"):
            [element] = parent.findall(f"{A}{name}")
            assert element.text and element.text.strip(), name
        assert re.match(r"https://live\.example\.org/blogs/tartus", parent.findtext(f"{A}id", ""))
        datetime.fromisoformat(parent.findtext(f"{A}updated", ""))
    entries = root.findall(f"{A}entry")
    assert len(entries) == 3
    for entry in entries:
        assert entry.findtext(f"{A}author/{A}name") == "rania"
        assert entry.find(f"{A}published") is not None
        assert entry.find(f"{A}link[@rel='alternate']") is not None
    assert "\ufffd" in (entries[0].findtext(f"{A}content") or "")
    atom(api)  # and bozo 0
    json_feed(api)


def test_an_edit_moves_updated_and_changes_the_content(api: Api, tokens: Tokens,
                                                       blog: str) -> None:
    entry_id = post(api, tokens, body="At least 40 dead, officials say.")
    before = atom(api).entries[0]
    # updated is to the millisecond: the edit must land in a later one than the post.
    posted = _time(before.published)
    wait_until(lambda: datetime.now(UTC) - posted > timedelta(milliseconds=1),
               what="the clock to pass the post's millisecond")
    edited = api("PATCH", f"/api/blogs/tartus/entries/{entry_id}", tokens.reporter,
                 json={"body": "At least 80 dead, officials say.",
                       "correction": "An earlier version gave the toll as 40."})
    assert edited.status_code == 200, edited.text

    item = atom(api).entries[0]
    assert item.id == before.id == permalink(entry_id)  # the same item, changed
    assert item.published == before.published
    assert _time(item.updated) > _time(item.published)
    content = item.content[0].value
    assert "At least 80 dead" in content and "40 dead" not in content
    assert "Correction" in content and "An earlier version gave the toll as 40." in content

    [json_item] = json_feed(api)["items"]
    assert json_item["id"] == permalink(entry_id)
    assert _time(json_item["date_modified"]) > _time(json_item["date_published"])
    assert "At least 80 dead" in json_item["content_html"]
    assert "An earlier version gave the toll as 40." in json_item["content_html"]


def test_a_retraction_removes_the_item_from_both(api: Api, tokens: Tokens, blog: str) -> None:
    kept = post(api, tokens, body="Still standing")
    gone = post(api, tokens, title="Unverified claim", body="A claim we cannot verify")
    assert len(atom(api).entries) == 2 and len(json_feed(api)["items"]) == 2  # cached now
    retracted = api("DELETE", f"/api/blogs/tartus/entries/{gone}", tokens.editor,
                    json={"reason": "unverified"})
    assert retracted.status_code == 200, retracted.text

    assert [e.id for e in atom(api).entries] == [permalink(kept)]
    assert [i["id"] for i in json_feed(api)["items"]] == [permalink(kept)]
    for path in FEEDS:
        text = api("GET", path).text
        assert gone not in text and "cannot verify" not in text and "Unverified" not in text


def test_unpublished_entries_are_absent_until_published(api: Api, tokens: Tokens,
                                                         blog: str) -> None:
    """Issue 10's workflow: drafts, submissions and scheduled entries are not public."""
    shown = post(api, tokens, body="Confirmed: two blasts")
    waiting = {}
    for publish in ("draft", (datetime.now(UTC) + timedelta(hours=1)).isoformat()):
        response = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                       json={"body": f"Embargoed {publish[:5]}", "publish": publish})
        assert response.status_code == 201, response.text
        waiting[publish] = response.json()["entry"]["id"]
    assert [e.id for e in atom(api).entries] == [permalink(shown)]
    assert [i["id"] for i in json_feed(api)["items"]] == [permalink(shown)]
    for path in FEEDS:
        assert "Embargoed" not in api("GET", path).text
    draft = waiting["draft"]
    published = api("POST", f"/api/blogs/tartus/entries/{draft}/publish", tokens.reporter)
    assert published.status_code == 200, published.text
    assert [e.id for e in atom(api).entries] == [permalink(draft), permalink(shown)]
    assert [i["id"] for i in json_feed(api)["items"]] == [permalink(draft), permalink(shown)]


@pytest.mark.parametrize("path", FEEDS)
def test_both_validators_revalidate(api: Api, tokens: Tokens, blog: str, path: str) -> None:
    post(api, tokens, body="First report")
    first = api("GET", path)
    assert first.headers["content-type"] == FEEDS[path]
    assert first.headers["cache-control"] == READER_CACHE
    tag = first.headers["etag"]
    again = api("GET", path, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""

    # Last-Modified is given once the second of the last change is over (caching.py).
    def dated() -> httpx.Response | None:
        response = api("GET", path)
        return response if "last-modified" in response.headers else None

    wait_until(lambda: dated() is not None, timeout=3, what="a Last-Modified")
    response = dated()
    assert response is not None
    modified = response.headers["last-modified"]
    assert parsedate_to_datetime(modified) <= datetime.now(UTC)
    assert api("GET", path, headers={"If-Modified-Since": modified}).status_code == 304
    later = format_datetime(parsedate_to_datetime(modified) + timedelta(hours=1), usegmt=True)
    assert api("GET", path, headers={"If-Modified-Since": later}).status_code == 304
    earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(seconds=1),
                              usegmt=True)
    assert api("GET", path, headers={"If-Modified-Since": earlier}).status_code == 200
    assert api("GET", path, headers={"If-Modified-Since": "not a date"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2).
    assert api("GET", path, headers={"If-None-Match": '"other"',
                                     "If-Modified-Since": later}).status_code == 200

    # A change: neither old validator matches any more.
    post(api, tokens, body="Second report")
    changed = api("GET", path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and "Second report" in changed.text
    assert api("GET", path, headers={"If-Modified-Since": modified}).status_code == 200


def test_an_unknown_blog_has_no_feed(api: Api, blog: str) -> None:
    for path in FEEDS:
        assert_problem(api("GET", path.replace("tartus", "nowhere")), 404)
        assert_problem(api("GET", path.replace("tartus", "Not-A-Slug!")), 404)


def test_an_empty_blog_has_an_empty_feed(api: Api, blog: str) -> None:
    assert atom(api).entries == []
    assert json_feed(api)["items"] == []


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.alternates: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("rel") == "alternate":
            self.alternates[found["type"] or ""] = found["href"] or ""


def alternates(html: str) -> dict[str, str]:
    links = Links()
    links.feed(html)
    return links.alternates


@pytest.mark.parametrize("page", ["/blogs/tartus", "/blogs/tartus/entries/{entry}"])
def test_the_pages_name_both_feeds_and_they_resolve(api: Api, tokens: Tokens, blog: str,
                                                    server: UvicornThread, page: str) -> None:
    entry_id = post(api, tokens, body="First report")
    found = alternates(api("GET", page.format(entry=entry_id)).text)
    assert found["application/atom+xml"] == f"{PUBLIC}/blogs/tartus/feed.atom"
    assert found["application/feed+json"] == f"{PUBLIC}/blogs/tartus/feed.json"
    for media_type, href in found.items():
        # The public URL is a proxy's address; here the app answers at the test's own.
        response = api("GET", href.removeprefix(PUBLIC))
        assert response.status_code == 200, href
        expected = {"application/json+oembed": "application/json"}.get(media_type, media_type)
        assert response.headers["content-type"] == expected


def _time(text: str) -> datetime:
    """An RFC 3339 time (or feedparser's copy of one) as a datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
