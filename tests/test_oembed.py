"""The oEmbed provider (issue 11): GET /oembed?url=<a blog's page>&format=json answers a
rich oEmbed 1.0 response whose html is the blog's embed page in an iframe; a URL that is
not a blog here is a 404, format=xml a 501, and the reader page names the endpoint. Real
Redis and uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from tests.support import Api, Tokens, UvicornThread, app_config, assert_problem

PUBLIC = "https://live.example.org"
TITLE = 'Blasts in "Tartus" & <Jableh>'


@pytest.fixture
def server(redis_url: str) -> Iterator[UvicornThread]:
    # A public URL unlike the test's address: the iframe must name it.
    with UvicornThread(app_config(redis_url, public_url=PUBLIC)) as running:
        yield running


@pytest.fixture
def blog(api: Api, tokens: Tokens) -> str:
    # A title with what HTML must escape, in an attribute of the iframe.
    response = api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": TITLE})
    assert response.status_code == 201, response.text
    return "tartus"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser.tags


def oembed(api: Api, **params: str) -> httpx.Response:
    return api("GET", "/oembed", params=params)


def embedded(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer: dict[str, Any] = response.json()
    return answer


def test_a_blog_page_is_a_rich_embed_of_its_embed_page(api: Api, blog: str) -> None:
    answer = embedded(oembed(api, url=f"{PUBLIC}/blogs/tartus", format="json"))
    assert answer["type"] == "rich" and answer["version"] == "1.0"
    assert answer["title"] == TITLE
    assert answer["provider_name"] == "liveblog"
    assert answer["provider_url"] == f"{PUBLIC}/"
    assert (answer["width"], answer["height"]) == (640, 800)
    [(tag, attrs)] = tags(answer["html"])
    assert tag == "iframe"
    assert attrs["src"] == f"{PUBLIC}/blogs/tartus/embed"
    assert (attrs["width"], attrs["height"]) == ("640", "800")
    assert attrs["title"] == TITLE  # escaped in the attribute, the same once parsed
    assert "<Jableh>" not in answer["html"] and "</iframe>" in answer["html"]

    # format is json when not given; the same blog, however its address is written.
    same = [f"{PUBLIC}/blogs/tartus", f"{PUBLIC}/blogs/tartus/", "http://live.example.org/blogs/tartus",
            f"{PUBLIC}/blogs/tartus?utm_source=x#entry-1", "HTTPS://LIVE.EXAMPLE.ORG/blogs/tartus",
            "https://live.example.org:443/blogs/tartus", f"{PUBLIC}/blogs/tartus/embed"]
    for url in same:
        assert embedded(oembed(api, url=url)) == answer, url


def test_an_update_page_embeds_its_blog(api: Api, tokens: Tokens, blog: str) -> None:
    posted = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": "First"})
    entry_id = posted.json()["entry"]["id"]
    answer = embedded(oembed(api, url=f"{PUBLIC}/blogs/tartus/entries/{entry_id}"))
    [(_, attrs)] = tags(answer["html"])
    assert attrs["src"] == f"{PUBLIC}/blogs/tartus/embed"


def test_the_address_the_request_came_to_is_here_too(api: Api, blog: str,
                                                     server: UvicornThread) -> None:
    answer = embedded(oembed(api, url=f"{server.base_url}/blogs/tartus"))
    [(_, attrs)] = tags(answer["html"])
    assert attrs["src"] == f"{PUBLIC}/blogs/tartus/embed"  # always the public address


def test_maxwidth_and_maxheight_are_honoured(api: Api, blog: str) -> None:
    url = f"{PUBLIC}/blogs/tartus"
    small = embedded(oembed(api, url=url, maxwidth="320", maxheight="240"))
    assert (small["width"], small["height"]) == (320, 240)
    [(_, attrs)] = tags(small["html"])
    assert (attrs["width"], attrs["height"]) == ("320", "240")
    roomy = embedded(oembed(api, url=url, maxwidth="5000", maxheight="5000"))
    assert (roomy["width"], roomy["height"]) == (640, 800)
    for name, value in (("maxwidth", "0"), ("maxheight", "wide"), ("maxwidth", "10001")):
        assert_problem(oembed(api, url=url, **{name: value}), 422, fields={name})


def test_a_url_that_is_not_a_blog_here_is_a_404(api: Api, blog: str) -> None:
    for url in [
        "https://elsewhere.example/blogs/tartus",      # another host
        "https://live.example.org.evil/blogs/tartus",
        "https://live.example.org:8443/blogs/tartus",  # another port
        f"{PUBLIC}/blogs/nowhere",                     # no such blog
        f"{PUBLIC}/blogs/Not-A-Slug!",
        f"{PUBLIC}/",                                  # other paths here
        f"{PUBLIC}/newsroom/tartus",
        f"{PUBLIC}/blogs/tartus/replay",
        f"{PUBLIC}/blogs/tartus/feed.atom",
        f"{PUBLIC}/api/blogs/tartus",
        f"{PUBLIC}/x/blogs/tartus",
        "ftp://live.example.org/blogs/tartus",
        "javascript:alert(1)//live.example.org/blogs/tartus",
        "/blogs/tartus",                               # not a whole URL
        "tartus",
        "https://live.example.org:99999/blogs/tartus",
        "http://[::1/blogs/tartus",
    ]:
        problem = assert_problem(oembed(api, url=url, format="json"), 404)
        assert "not the address of a blog" in problem["detail"] or "no blog" in problem["detail"]


def test_xml_is_not_implemented_and_a_missing_url_is_refused(api: Api, blog: str) -> None:
    url = f"{PUBLIC}/blogs/tartus"
    assert_problem(oembed(api, url=url, format="xml"), 501)
    assert_problem(oembed(api, url=url, format="yaml"), 422, fields={"format"})
    assert_problem(oembed(api, format="json"), 422, fields={"url"})
    assert_problem(oembed(api, url=""), 422, fields={"url"})
    assert_problem(oembed(api, url=url + "x" * 2048), 422, fields={"url"})


def test_the_answer_revalidates_and_follows_the_headline(api: Api, tokens: Tokens,
                                                         blog: str) -> None:
    url = f"{PUBLIC}/blogs/tartus"
    first = oembed(api, url=url)
    tag = first.headers["etag"]
    assert oembed(api, url=url).headers["etag"] == tag
    assert api("GET", "/oembed", params={"url": url},
               headers={"If-None-Match": tag}).status_code == 304
    changed = api("PATCH", "/api/blogs/tartus", tokens.editor, json={"title": "Two cities"})
    assert changed.status_code == 200, changed.text
    after = api("GET", "/oembed", params={"url": url}, headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.json()["title"] == "Two cities"


def test_the_reader_page_advertises_the_endpoint(api: Api, blog: str) -> None:
    links = [attrs for tag, attrs in tags(api("GET", "/blogs/tartus").text)
             if tag == "link" and attrs.get("type") == "application/json+oembed"]
    [link] = links
    assert link["rel"] == "alternate" and link["title"] == TITLE
    href = link["href"] or ""
    assert href.startswith(f"{PUBLIC}/oembed?")
    # What a consumer that found the link gets (the public URL is a proxy's address; the
    # app answers here at the test's own).
    answer = embedded(api("GET", href.removeprefix(PUBLIC)))
    [(_, attrs)] = tags(answer["html"])
    assert attrs["src"] == f"{PUBLIC}/blogs/tartus/embed"
