"""Links a reporter gives (an image, an embed): accepted only if every browser can use them.

A URL goes into `<img src>`, `<a href>` and, on the reader page, `new URL()` (live.js), so
one that a browser's WHATWG parser refuses breaks whatever handles it: in live.js it threw
and took the rest of a snapshot with it (issue 8, item 5). Python's `urlsplit` is far more
lenient than a browser (it takes `https://example.com:99999/` and `https://%zz/`), so the
check here is stricter than the WHATWG parser, never looser: what passes, Chromium parses
to the same host (tests/test_urls.py checks that against Chromium itself).

Also refused, because a reader cannot tell where they lead: user names and passwords
(`https://bbc.co.uk@evil.example/`) and backslashes (a browser reads `\\` as `/`, so
`https://evil.example\\@bbc.co.uk/` goes to evil.example while Python sees bbc.co.uk).

An image may also be a path on the blog's own site (`/static/demo/tartus.svg`, issue 9): the
log then holds no host or port, so the blog shows its pictures wherever it is served (another
port, a public URL behind a proxy, a restored copy). A path must start with a single `/`
(`//evil.example/x` and `/\\evil.example/x` are links to another host), holds only what
RFC 3986 allows in a path, query and fragment (so a browser asks for it as written), and is
stored without `.` and `..` segments, as the browser would resolve it.
"""

from __future__ import annotations

import ipaddress
import re

import idna

MAX_LENGTH = 2000
_SCHEME = re.compile(r"^https?://")
# C0 controls, space, DEL, and the Unicode spaces browsers strip or encode.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]|\s")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_PORT = re.compile(r"^[0-9]{0,5}$")
_NUMERIC = re.compile(r"^(?:[0-9]+|0[xX][0-9a-fA-F]*)$")
_QUAD = re.compile(r"^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$")
# A path from the site's root, as RFC 3986 spells it (letters, digits, -._~!$&()*+,;=:@/,
# %XX), never with "//" (first, it leads to another host), with an optional query and
# fragment. Not "'", which RFC 3986 allows but browsers escape in a query: what is stored
# is what the browser asks for.
_CHAR = r"(?:[A-Za-z0-9._~!$&()*+,;=:@-]|%[0-9A-Fa-f]{2})"
PATH_PATTERN = rf"^/(?!/)(?:{_CHAR}|/(?!/))*(?:[?#](?:{_CHAR}|[/?#])*)?(?!\n)$"
_PATH = re.compile(PATH_PATTERN)
# Segments a browser reads as "." and ".." (it decodes %2e in them, in either case).
_DOT = {".", "%2e"}
_DOT_DOT = {"..", ".%2e", "%2e.", "%2e%2e"}


def url_problem(url: str) -> str | None:
    """Why a browser could not use `url` as an http(s) link, in a reporter's words; None
    if it can."""
    if len(url) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if not _SCHEME.match(url):
        return "must start with http:// or https://"
    if _UNSAFE.search(url):
        return "must not contain spaces, control characters or backslashes"
    rest = url[url.index("//") + 2:]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        return "must not contain a user name or password"
    host, port = _split_port(authority)
    if port is not None and (not _PORT.match(port) or (port and int(port) > 65535)):
        return "has a port that is not a number from 0 to 65535"
    if not host:
        return "must have a host name"
    if host.startswith("["):
        return None if _ipv6(host) else "has an IPv6 address that is not valid"
    ascii_host = _ascii_host(host)
    if ascii_host is None:
        return "has a host name a browser cannot use (letters, digits, hyphens and dots)"
    if _NUMERIC.match(ascii_host.rstrip(".").rsplit(".", 1)[-1]) and not _ipv4(ascii_host):
        return "has an IP address that is not four numbers from 0 to 255"
    return None


def image_url_problem(url: str) -> str | None:
    """Like url_problem, for an image: a path on the site's own root is taken too."""
    if url.startswith("/"):
        return path_problem(url)
    problem = url_problem(url)
    if problem == "must start with http:// or https://":
        return "must start with http://, https:// or / (a path on this site)"
    return problem


def path_problem(path: str) -> str | None:
    """Why `path` is not a path on this site that every browser takes as one; None if it is."""
    if len(path) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if not path.startswith("/") or path.startswith(("//", "/\\")):
        return "a path must start with a single / (// or /\\ lead to another site)"
    if _UNSAFE.search(path):
        return "must not contain spaces, control characters or backslashes"
    if "//" in re.split(r"[?#]", path, maxsplit=1)[0]:
        return "a path must not contain //"
    if not _PATH.match(path):
        return ("a path may hold only letters, digits, -._~!$&()*+,;=:@/?# and "
                "%-escapes of two hex digits")
    return None


def normal_path(path: str) -> str:
    """`path` (one path_problem accepts) with its "." and ".." segments resolved, as a
    browser resolves it before it asks for it; the query and fragment as they are."""
    cut = len(re.split(r"[?#]", path, maxsplit=1)[0])
    segments: list[str] = []
    parts = path[1:cut].split("/")
    for n, segment in enumerate(parts):
        last = n == len(parts) - 1
        if segment.lower() in _DOT_DOT:
            if segments:
                segments.pop()
            if last:
                segments.append("")  # "/a/.." is "/", a directory
        elif segment.lower() in _DOT:
            if last:
                segments.append("")
        else:
            segments.append(segment)
    return "/" + "/".join(segments) + path[cut:]


def image_src(url: str) -> str | None:
    """`url` if a page may put it in `<img src>` (a link url_problem takes, or a path on this
    site), else None: an image logged before URLs were checked shows as its alt text."""
    if url.startswith("/"):  # the pattern alone, as static/live.js checks it
        return url if _PATH.match(url) else None
    return url if host_of(url) is not None else None


def absolute(url: str, base: str) -> str:
    """An image URL where a whole URL is wanted (og:image, JSON-LD): a path joined to the
    site's public base URL, any other URL as it is."""
    return base.rstrip("/") + url if url.startswith("/") else url


def host_of(url: str) -> str | None:
    """The host a browser goes to (as `new URL(url).hostname` says it: lowercase, an
    international name in its xn-- form); None for a URL that url_problem refuses."""
    if url_problem(url) is not None:
        return None
    authority = re.split(r"[/?#]", url[url.index("//") + 2:], maxsplit=1)[0]
    host, _ = _split_port(authority)
    if host.startswith("["):  # as browsers write it: "[::ffff:1.2.3.4]" is "[::ffff:102:304]"
        return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
    return _ascii_host(host)


def _split_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            return authority, None
        rest = authority[end + 1:]
        if rest and not rest.startswith(":"):
            return authority, "x"  # junk after the address: refused as a bad port
        return authority[: end + 1], rest[1:] if rest else None
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def _ipv6(host: str) -> bool:
    inner = host[1:-1] if host.endswith("]") else ""
    if not inner or "%" in inner:  # a zone id ("fe80::1%eth0") is not for browsers
        return False
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        return False
    return True


def _ipv4(host: str) -> bool:
    parts = host.rstrip(".").split(".")
    return len(parts) == 4 and all(_QUAD.match(p) for p in parts)


def _ascii_host(host: str) -> str | None:
    """The host in lowercase ASCII, international names through UTS 46 (as browsers do,
    but with IDNA 2008's stricter rules: bidi, joiners); None if it is not a host name."""
    if "%" in host:
        return None  # browsers decode escapes in a host; a link must not rely on that
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return None
    host = host.lower()
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return host
