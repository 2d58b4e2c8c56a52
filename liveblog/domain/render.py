"""Reporter Markdown to HTML that is safe to put in a reader's page.

markdown-it-py renders CommonMark with raw HTML switched off and unsafe link schemes
refused; nh3 (ammonia) then keeps only an allow-list of tags, attributes and URL schemes,
so whatever the first step lets through, no script, event handler or javascript: URL
reaches the page. The stored body is never changed: this runs on the way out.
"""

from __future__ import annotations

from functools import lru_cache
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore

_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _align_attributes(state: StateCore) -> None:
    """Table columns aligned with `align`, not `style`: pages forbid style attributes (their
    Content-Security-Policy has no 'unsafe-inline')."""
    for token in state.tokens:
        style = token.attrs.get("style") if token.type in ("th_open", "td_open") else None
        if isinstance(style, str) and style.startswith("text-align:"):
            del token.attrs["style"]
            token.attrs["align"] = style.removeprefix("text-align:")


_markdown.core.ruler.push("align_attributes", _align_attributes)

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "img", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
}
ALIGN = {"align": {"left", "center", "right"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}
# The allowed tags that start a line of their own; the rest (strong, em, a...) sit inside one.
BLOCK_TAGS = ALLOWED_TAGS - {"strong", "em", "del", "s", "code", "a", "img"}


def render_markdown(body: str) -> str:
    """Sanitized HTML for a Markdown body (cached: bodies repeat across readers and replays)."""
    return _cached(body)


@lru_cache(maxsize=2048)
def _cached(body: str) -> str:
    return render_uncached(body)


def render_uncached(body: str) -> str:
    """The same, without the cache: for previews, which are typed once and thrown away."""
    html = _markdown.render(body)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer nofollow ugc",
        tag_attribute_values={"th": ALIGN, "td": ALIGN},
    ).strip()


def text_of(html: str) -> str:
    """Rendered HTML as a reader reads it, on one line: inline elements join their
    neighbours as they stand ("**80** people." -> "80 people."), blocks are a space apart,
    runs of whitespace are one space. For places that take text (JSON-LD, a headline)."""
    reader = _Text()
    reader.feed(html)
    reader.close()
    return " ".join("".join(reader.parts).split())


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
