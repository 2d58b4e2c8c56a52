"""Reporter Markdown to HTML that is safe to put in a reader's page.

markdown-it-py renders CommonMark with raw HTML switched off and unsafe link schemes
refused; nh3 (ammonia) then keeps only an allow-list of tags, attributes and URL schemes,
so whatever the first step lets through, no script, event handler or javascript: URL
reaches the page. The stored body is never changed: this runs on the way out.
"""

from __future__ import annotations

from functools import lru_cache

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
