"""Reporter Markdown renders to HTML with nothing executable left in it."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from liveblog.domain.render import render_markdown

# From the OWASP XSS filter evasion cheat sheet and common Markdown-specific vectors.
PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="javascript:alert(1)">',
    "<svg/onload=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click]( javascript:alert(1) )",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '![x](https://ok.example/a.png"onerror="alert(1))',
    "[x](https://ok.example/ \"title\" onmouseover=alert(1))",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<body onload=alert(1)>",
    "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
    "<details open ontoggle=alert(1)>",
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
    "<style>body{background:red}</style>",
    "<<script>script>alert(1)<</script>/script>",
    "[a](<javascript:alert(1)>)",
    "<a href='&#106;avascript:alert(1)'>x</a>",
    "`<script>alert(1)</script>`",
    "```\n<script>alert(1)</script>\n```",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
]

BAD_TAGS = {"script", "iframe", "svg", "math", "object", "embed", "form", "meta", "style",
            "body", "details", "div", "button", "link", "base"}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data"}


class Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BAD_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"handler {name}")
            if name == "style" and value and "url(" in value:
                self.problems.append("style url()")
            if name in URL_ATTRS and value is not None:
                scheme = value.strip().split(":", 1)[0].lower() if ":" in value else ""
                if scheme and scheme not in ("http", "https", "mailto"):
                    self.problems.append(f"{name} with scheme {scheme}:")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_renders_inert(payload: str) -> None:
    inspector = Inspector()
    inspector.feed(render_markdown(payload))
    assert inspector.problems == []


def test_the_inspector_catches_what_it_looks_for() -> None:
    # The check above must be able to fail: feed it raw dangerous HTML directly.
    inspector = Inspector()
    inspector.feed('<a href="javascript:x" onclick="y">x</a><script></script>')
    assert len(inspector.problems) == 3


def test_ordinary_markdown_survives() -> None:
    html = render_markdown(
        "**Seven** blasts, per [SOHR](https://www.syriahr.com/en/).\n\n"
        "- four in Jableh\n- three in Tartus\n\n> a quote\n\n![Smoke](https://img.example/1.jpg)"
    )
    assert "<strong>Seven</strong>" in html
    assert '<a href="https://www.syriahr.com/en/" rel="noopener noreferrer nofollow ugc">' in html
    assert "<li>four in Jableh</li>" in html and "<blockquote>" in html
    assert '<img src="https://img.example/1.jpg" alt="Smoke">' in html


def test_text_that_looks_like_html_is_shown_not_interpreted() -> None:
    assert render_markdown("1 < 2 & <b>bold</b>") == "<p>1 &lt; 2 &amp; &lt;b&gt;bold&lt;/b&gt;</p>"
