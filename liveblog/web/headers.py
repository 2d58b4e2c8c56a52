"""The headers every response carries for the browser's sake (issue 8, item 6).

- A Content-Security-Policy with no 'unsafe-inline' anywhere: scripts only from /static,
  the one inline `<style>` (the page's CSS, inlined to save a request before first paint)
  allowed by its hash (the console's pages inline the console's CSS after the readers',
  so readers never download it, and carry CONSOLE_POLICY with that style's hash), no
  plugins, no `<base>` URL, and no framing except where a route says so (`framed_by`: the
  reader page by this site, the embed page by LIVEBLOG_EMBED_ORIGINS). A sanitiser gap then
  still cannot run a script. No X-Frame-Options: every browser that reads frame-ancestors
  ignores it where both are sent, and it cannot name a list of sites.
- `X-Content-Type-Options: nosniff`, so nothing a reporter wrote is ever read as script or
  HTML because a browser guessed its type.
- `Referrer-Policy: strict-origin-when-cross-origin`: links out tell only our origin.
- `Cache-Control: no-store` on API writes and on API responses to a signed-in request
  (a token or the session cookie): nothing an editor saw stays in a shared cache.
  The newsroom and replay pages set it themselves (pages.py).

Reader streams do not come through the app's wrapper (see app.py): stream.py sends nosniff
with its own headers, and wraps its error and 204 answers itself.
"""

from __future__ import annotations

import base64
import hashlib

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Scope, Send

from liveblog.resources import STATIC

STYLE = STATIC / "style.css"
CONSOLE_STYLE = STATIC / "console" / "console.css"


def _style_hash(css: str) -> str:
    digest = hashlib.sha256(css.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def content_security_policy(framed_by: str = "'none'", style_hashes: str = "") -> str:
    """The policy for a page that `framed_by` may put in a frame ('none', 'self', ...),
    whose inline styles have the hashes `style_hashes` (the readers' CSS unless told)."""
    return "; ".join((
        "default-src 'none'",
        "script-src 'self'",
        f"style-src {style_hashes or STYLE_HASH}",
        # Reporters' images are on any http(s) host; data: is the page's empty favicon.
        "img-src 'self' https: http: data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        f"frame-ancestors {framed_by}",
    ))


# The page's CSS, as pages.py inlines it: the hash is of exactly these characters.
CSS = STYLE.read_text()
STYLE_HASH = _style_hash(CSS)
NOT_FRAMED = content_security_policy("'none'")
# The newsroom console and the replay: the readers' CSS, then the console's, in one <style>.
# The readers' alone is allowed too: the replay's frames are reader pages in srcdoc, and a
# srcdoc document lives under the policy of the page that holds it.
CONSOLE_CSS = CSS + CONSOLE_STYLE.read_text()
CONSOLE_POLICY = content_security_policy("'none'", f"{_style_hash(CONSOLE_CSS)} {STYLE_HASH}")
SAME_ORIGIN_FRAMES = content_security_policy("'self'")

ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("content-security-policy", NOT_FRAMED),
)
_SAFE = frozenset(("GET", "HEAD", "OPTIONS"))


def with_security_headers(scope: Scope, send: Send, session_cookie: bytes = b"") -> Send:
    """`send`, adding the headers above to the response's start, where the app did not set
    them already (a route that may be framed sets its own policy)."""
    no_store = scope["path"].startswith("/api/") and (
        scope["method"] not in _SAFE or _signed_in(scope, session_cookie or b"liveblog-"))

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in ALWAYS:
                headers.setdefault(name, value)
            if no_store:
                headers["cache-control"] = "no-store"
        await send(message)

    return sending


def _signed_in(scope: Scope, session_cookie: bytes) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization" or (name == b"cookie" and session_cookie in value):
            return True
    return False
