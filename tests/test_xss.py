"""XSS in a real browser (issue 8): a corpus of hostile payloads in every field a reporter or
editor controls, rendered in Chromium on every surface: the reader page (server-rendered, live
over the stream, and rebuilt from a snapshot: the same bytes each time, the stream carrying the
server's markup), the newsroom console (its list, its entries, its preview, the reader page in
its frame), the preview's whole article, the replay (timeline, frame, an entry's history) and
the home page's list of blogs.

Each payload goes straight into the log, as an event from before any input check would (the
API's own answer to each payload in each field is checked separately: accepted verbatim, or
422; never a 500). On every surface:
- nothing executes: a payload sets window.__xss or calls alert(); no frame has __xss, and no
  dialog opens (a dialog handler records any);
- nothing needed the Content-Security-Policy to stop it: no securitypolicyviolation event and
  no CSP console error, so escaping and sanitising did the whole job;
- no hostile markup got in: no on* attribute, no javascript:/data: URL, no script but ours,
  no iframe/object/embed/base/meta refresh/form/style from content, one JSON-LD block that
  parses;
- nothing breaks the page: the entries before and after the payload's entry are there, and
  every text field shows the payload's exact characters (neither run nor mangled).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, Route, expect

from liveblog.domain.events import (
    Actor,
    BlogOpened,
    BlogUpdated,
    BylineChanged,
    Embed,
    EntryEdited,
    EntryPosted,
    EntryRetracted,
    Event,
    FactUpdated,
    Image,
    PinChanged,
)
from liveblog.service import Service
from liveblog.store import Store
from tests.support import Api, Tokens, UvicornThread, run_async, wait_for_frame

X = "window.__xss=1"
PAYLOADS: list[tuple[str, str]] = [
    ("script", f"<script>{X}</script>"),
    ("script-case", f"<ScRiPt>{X}</sCrIpT>"),
    ("img-onerror", f"<img src=x onerror=\"{X}\">"),
    ("svg-onload", f"<svg onload=\"{X}\"><circle r=9></svg>"),
    ("svg-script", f"<svg><script>{X}</script></svg>"),
    ("svg-xlink", f"<svg><a xlink:href=\"javascript:{X}\"><text y=9>x</text></a></svg>"),
    ("math-mxss", f"<math><mtext><table><mglyph><style><img src=x onerror={X}>"),
    ("details", f"<details open ontoggle=\"{X}\">x</details>"),
    ("iframe-srcdoc", f"<iframe srcdoc=\"<script>top.{X}</script>\"></iframe>"),
    ("iframe-js", "<iframe src=\"javascript:top.__xss=1\"></iframe>"),
    ("object", f"<object data=\"javascript:{X}\"></object><embed src=\"javascript:{X}\">"),
    ("form", f"<form><button formaction=\"javascript:{X}\">go</button></form>"),
    ("base-meta", "<base href=\"//evil.example/\"><meta http-equiv=\"refresh\" "
                  "content=\"0;url=javascript:alert(1)\">"),
    ("style", "<style>body{display:none}</style><link rel=stylesheet href=//evil.example/a.css>"),
    ("comment", f"<!--<img src=\"--><img src=x onerror={X}//\">"),
    ("noscript", f"<noscript><p title=\"</noscript><img src=x onerror={X}>\">"),
    ("template", f"<template><script>{X}</script></template>"),
    ("attr-double", f"\"><script>{X}</script><p x=\""),
    ("attr-single", f"' autofocus onfocus='{X}' x='"),
    ("attr-backtick", f"` onmouseover=`{X}`"),
    ("json-ld", f"</script><script>{X}</script><!--"),
    ("javascript-url", "javascript:alert(1)"),
    ("javascript-obfuscated", f"JaVa\tScRiPt:{X}"),
    ("javascript-entity",
     f"<a href=\"jav&#x09;ascript:{X}\">x</a><a href=\"&#106;avascript:{X}\">y</a>"),
    ("data-url", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
    ("md-link", f"[click](javascript:{X})"),
    ("md-link-entity", f"[click](javascript&#58;{X}) [b](<javascript:{X}>)"),
    ("md-image", f"![x](https://example.com/a.png\"onerror=\"{X})"),
    ("md-reference", f"[x]\n\n[x]: javascript:{X}"),
    ("md-data", "[a](data:text/html,<script>alert(1)</script>) <javascript:alert(1)>"),
    ("md-html-mix", f"**bold** <b onclick=\"{X}\">b</b> `<script>{X}</script>`"),
    ("url-breakout", f"https://example.com/\"><script>{X}</script>"),
    ("url-quote", f"https://example.com/'onerror='{X}'"),
    ("url-userinfo", "https://example.com@evil.example/"),
    ("url-bad-port", "https://example.com:99999/"),  # item 5: new URL() throws on these
    ("url-bad-host", "https://%zz/"),
    ("template-jinja", "{{ 7*7 }} {% if 1 %}T{% endif %} {{ config }}"),
    ("template-js", f"${{{X}}} {{{{constructor.constructor('{X}')()}}}}"),
    ("rtl", "\u202egnp.exe \u2066isolate\u2069 \u200bzero\u200dwidth \ufeffbom"),
    ("homoglyph", f"\uff4aavascript:{X} \u0430lert(1)"),
]

# What shows where (for the count in docs/reliability.md and the commit).
READER_FIELDS = ["body", "title", "image.url", "image.alt", "image.caption", "image.credit",
                 "embed.url", "correction", "fact.label", "fact.value", "fact.source", "blog.title",
                 "blog.description", "byline"]
SURFACES = {
    "home page": ["blog.title"],
    "reader, server-rendered": READER_FIELDS,
    "reader, live over the stream": READER_FIELDS,
    "reader, rebuilt from a snapshot": READER_FIELDS,
    "newsroom (list, entries, preview, the reader in its frame)": READER_FIELDS,
    "replay (timeline, frame, history)": [*READER_FIELDS, "note", "reason"],
}
RENDERINGS = len(PAYLOADS) * sum(len(fields) for fields in SURFACES.values())

AUDIT = r"""
([console]) => {
  const bad = [];
  const doc = document;
  const URLISH = /^(href|src|action|formaction|xlink:href|data|background|poster|srcset|ping)$/;
  const HOSTILE = /^(javascript|vbscript|livescript):/;
  const OURS = new Set(["signin", "create-blog", "compose", "fact-form", "blog-form",
                        "webhook-form"]);
  const FOREIGN = "iframe, frame, frameset, object, embed, applet, base, meta[http-equiv], "
    + "template, link:not([rel=canonical]):not([rel=icon])";
  doc.querySelectorAll("*").forEach((el) => {
    for (const a of Array.from(el.attributes)) {
      const name = a.name.toLowerCase();
      if (name.startsWith("on")) bad.push(el.tagName + " " + name);
      if (name === "style") bad.push(el.tagName + " style=");
      if (name === "srcdoc" && el.id !== "frame") bad.push(el.tagName + " srcdoc");
      if (URLISH.test(name)) {
        const v = a.value.replace(/[\u0000-\u0020\u007f-\u00a0]/g, "").toLowerCase();
        if (HOSTILE.test(v) || (v.startsWith("data:") && v !== "data:,"))
          bad.push(el.tagName + " " + name + "=" + v.slice(0, 40));
      }
    }
  });
  const ld = doc.querySelectorAll('script[type="application/ld+json"]');
  if (ld.length > 1) bad.push(ld.length + " JSON-LD blocks");
  ld.forEach((s) => {
    try { JSON.parse(s.textContent); } catch (e) { bad.push("JSON-LD: " + e); }
  });
  doc.querySelectorAll("script:not([type='application/ld+json'])").forEach((s) => {
    if (!/^\/static\/[a-z]+\.js$/.test(s.getAttribute("src") || ""))
      bad.push("script " + s.outerHTML.slice(0, 60));
  });
  doc.querySelectorAll(FOREIGN).forEach((el) => {
    if (!(el.tagName === "IFRAME" && (el.id === "reader" || el.id === "frame"))
        && !(el.tagName === "BASE" && el.parentNode === doc.head && el.attributes.length === 1
             && el.getAttribute("target") === "_top" && doc.body.className === "embed")
        // The head's own feeds and oEmbed (templates/_alternates.html), and nothing else.
        && !(el.tagName === "LINK" && el.parentNode === doc.head && el.rel === "alternate"
             && /^https?:$/.test(new URL(el.href).protocol)
             && /^\/(blogs\/[a-z0-9-]+\/feed\.(atom|json)|oembed)$/
                  .test(new URL(el.href).pathname)))
      bad.push("element " + el.tagName);
  });
  doc.querySelectorAll("form").forEach((f) => {
    const ours = console && (OURS.has(f.id)
      || f.closest("#desk-entries li, #queue li, #people-list li"));
    if (!ours || f.closest(".body, #compose-preview")) bad.push("form");
  });
  const styles = doc.querySelectorAll("style").length;
  if (styles !== 1) bad.push(styles + " style elements");
  return bad;
}
"""

# The same audit, for a document that is not the page's own (the replay's srcdoc frame, read
# through DOMParser: the frame itself runs no script, not even ours).
AUDIT_DOC = AUDIT.replace("([console]) => {\n  const bad = [];\n  const doc = document;",
                          "function ([console], doc) {\n  const bad = [];")
assert AUDIT_DOC != AUDIT

WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI + " " + e.sample);
});
"""


def same(text: str) -> str:
    """A string as a page shows it: HTML drops NUL and folds CR LF."""
    return text.replace("\r\n", "\n").replace("\x00", "")


# -- writing a story straight into the log ---------------------------------------------------

EDITOR = Actor("ed", "editor")
# With an identity, so an editor can rename her: her byline becomes the payload.
REPORTER = Actor("rania", "reporter", "rania-identity", "Rania")


def append(redis_url: str, slug: str, events: list[tuple[Actor, Event]]) -> None:
    async def write() -> None:
        store = Store.from_url(redis_url)
        service = Service(store)
        try:
            for actor, event in events:
                await service.execute(slug, actor, lambda blog, e=event: e)  # type: ignore[misc]
        finally:
            await store.close()

    run_async(write())


@dataclass
class Story:
    slug: str
    payload: str
    entry: str = "xssentry"
    before: str = "before"
    after: str = "after"
    victim: str = "victim"
    ids: list[str] = field(default_factory=list)

    def opening(self) -> list[tuple[Actor, Event]]:
        return [(EDITOR, BlogOpened(slug=self.slug, title="Opening headline"))]

    def rest(self) -> list[tuple[Actor, Event]]:
        p = self.payload
        content = {"title": p, "key_event": True,
                   "image": Image(url=p, alt=p, caption=p, credit=p), "embed": Embed(url=p)}
        return [
            (EDITOR, BlogUpdated(title=p, description=p)),
            (REPORTER, FactUpdated(key="figure", label=p, value=p, numeric=1.0, source=p)),
            (REPORTER, EntryPosted(entry_id=self.before, body="Before the payload")),
            (REPORTER, EntryPosted(entry_id=self.entry, body=p, **content)),  # type: ignore[arg-type]
            (REPORTER, EntryEdited(entry_id=self.entry, body=p + "\n\n" + p, note=p,
                                   correction=p, **content)),  # type: ignore[arg-type]
            (REPORTER, EntryPosted(entry_id=self.victim, body="To be retracted")),
            (EDITOR, EntryRetracted(entry_id=self.victim, reason=p)),
            (EDITOR, PinChanged(entry_id=self.entry)),
            (REPORTER, EntryPosted(entry_id=self.after, body="After the payload")),
            # Her byline, on every entry of hers: live by the stream's byline-changed.
            (EDITOR, BylineChanged(author_id=REPORTER.id, name=p)),
        ]


# -- checking a page --------------------------------------------------------------------------

@dataclass
class Watch:
    dialogs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Page:
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        # CSP refusals are console errors too, also in the replay's frame, where no script
        # of ours runs. Pictures on hosts this machine cannot reach are not problems.
        page.on("console", lambda m: self.problems.append(f"console: {m.text}")
                if m.type == "error" and "net::ERR_" not in m.text else None)
        return page


def audit(page: Page, where: str, watch: Watch, *, console: bool = False) -> None:
    """Nothing ran, nothing needed the CSP, no hostile markup, in every frame we can enter."""
    found: list[str] = []
    for frame in page.frames:
        if not frame.url.startswith("http"):
            continue  # the replay's sandboxed srcdoc frame: audited from its source below
        found += [f"{frame.url}: {p}" for p in frame.evaluate(AUDIT, [console])]
        if frame.evaluate("window.__xss") is not None:
            found.append(f"{frame.url}: window.__xss is set")
        found += [f"{frame.url}: CSP {v}" for v in frame.evaluate("window.__violations || []")]
    found += watch.problems
    watch.problems.clear()
    assert (found, watch.dialogs) == ([], []), where


def expect_text(frame: Page | Frame, selector: str, text: str, where: str) -> None:
    shown = frame.locator(selector).first.evaluate("e => e.textContent")
    assert same(shown) == same(text), (where, selector)


def check_reader(page: Page, story: Story, where: str, watch: Watch) -> None:
    p = story.payload
    ids = page.locator("#entries article").evaluate_all("els => els.map(e => e.dataset.id)")
    assert ids == [story.after, story.entry, story.before], where
    expect_text(page, "#headline", p, where)
    expect_text(page, "#description", p, where)
    expect_text(page, "#fact-figure dt", p, where)
    expect_text(page, "#fact-figure .fact-value", p, where)
    source = page.locator("#fact-figure .fact-source").evaluate("e => e.firstChild.textContent")
    assert same(source) == same(f"Source: {p}, "), where
    entry = f"#entry-{story.entry}"
    expect_text(page, f"{entry} .entry-title", p, where)
    for shown in (entry, f"#pinned-{story.entry}", f"#entry-{story.after}"):
        expect_text(page, f"{shown} .author", p, where)
    assert same(p) in same(page.locator(f"{entry} figcaption").evaluate("e => e.textContent"))
    credit = page.locator(f"{entry} .credit").evaluate("e => e.textContent")
    assert same(credit).lstrip(" ") == same(f"Photo: {p}"), where
    image = page.locator(f"{entry} > figure img")
    if image.count():
        assert same(image.get_attribute("alt") or "") == same(p), where
        assert image.get_attribute("src") == p, where
    else:
        expect_text(page, f"{entry} .image-unusable", p, where)
    card = page.locator(f"{entry} a.embed-card")
    if card.count():
        assert card.get_attribute("href") == p, where
    else:
        expect_text(page, f"{entry} .embed-url", p, where)
    correction = page.locator(f"{entry} .correction").evaluate("e => e.textContent")
    assert same(correction).startswith("Correction, ") and \
        same(correction).endswith(same(f": {p}")), where
    expect(page.locator(f"#pinned-{story.entry}")).to_have_count(1)
    if where == "server-rendered":  # a live page keeps the JSON-LD it was served with
        data = page.locator('script[type="application/ld+json"]').evaluate(
            "s => JSON.parse(s.textContent)")
        assert same(data["headline"]) == same(p)
        assert [u["headline"] for u in data["liveBlogUpdate"]][1] == p
        assert data["liveBlogUpdate"][1]["correction"][0]["text"] == p
        assert data["liveBlogUpdate"][1]["author"] == {"@type": "Person", "name": p}
    audit(page, where, watch)


# The elements the stream brings rendered by the server (an entry's article, the pinned copy,
# a figure's row), relative times emptied (told from each copy's own clock).
MARKUP = """(selectors) => selectors.map((selector) => {
  const found = document.querySelector(selector);
  if (!found) return null;
  const copy = found.cloneNode(true);
  copy.querySelectorAll("[data-rel]").forEach((e) => { e.textContent = ""; });
  return copy.outerHTML;
})"""


def server_markup(page: Page, story: Story) -> list[str | None]:
    """What the stream carried, as the page shows it: the same bytes live, reloaded and
    rebuilt from a snapshot (one renderer, liveblog/markup.py)."""
    expect(page.locator("#entries .arrived")).to_have_count(0, timeout=3000)
    shown: list[str | None] = page.evaluate(
        MARKUP, [f"#entry-{story.entry}", f"#pinned-{story.entry}", "#fact-figure"])
    assert None not in shown
    return shown


def check_preview(context: BrowserContext, page: Page, server: UvicornThread, story: Story,
                  watch: Watch) -> None:
    """The preview's article, with the payload in every field it shows (the URLs are ones a
    preview accepts), inserted in the reader page as the stream's are."""
    p = story.payload
    fields = {"body": p, "title": p, "key_event": True, "slug": story.slug,
              "image": {"url": "/static/demo/tartus.svg", "alt": p, "caption": p, "credit": p},
              "embed": {"url": "https://example.com/post"}}
    response = context.request.post(f"{server.base_url}/api/preview", data=fields,
                                    headers={"Origin": server.base_url})
    assert response.status == 200, response.text()
    page.evaluate("""(html) => {
      const holder = document.createElement("template");
      holder.innerHTML = html;
      document.getElementById("entries").prepend(holder.content.firstElementChild);
    }""", response.json()["article"])
    expect_text(page, "#entry-preview .entry-title", p, "preview")
    expect_text(page, "#entry-preview .author", "ed", "preview")
    assert same(page.locator("#entry-preview > figure img").get_attribute("alt") or "") == same(p)
    credit = page.locator("#entry-preview .credit").evaluate("e => e.textContent")
    assert same(credit).lstrip(" ") == same(f"Photo: {p}"), "preview"
    audit(page, "preview", watch)


def subscribed(server: UvicornThread, slug: str) -> Callable[[], bool]:
    def check() -> bool:
        tailer = server.hub().tailers.get(slug)
        return bool(tailer and tailer.subscribers)
    return check


def wait_for(condition: Callable[[], bool], page: Page, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        page.wait_for_timeout(10)
    raise AssertionError(f"timed out waiting for {what}")


# -- the tests ------------------------------------------------------------------------------------

@pytest.fixture
def context(browser: Browser, server: UvicornThread, tokens: Tokens) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(WATCH)
    # Signed in as an editor, as the console does it (the reader pages do not care).
    signed = context.request.post(f"{server.base_url}/api/session",
                                  data={"token": tokens.editor},
                                  headers={"Origin": server.base_url})
    assert signed.status == 204
    yield context
    context.close()


@pytest.mark.parametrize("payload", [p for _, p in PAYLOADS], ids=[n for n, _ in PAYLOADS])
def test_a_payload_runs_nowhere_and_breaks_nothing(
        context: BrowserContext, server: UvicornThread, redis_url: str, payload: str) -> None:
    story = Story("xss", payload)
    watch = Watch()
    append(redis_url, story.slug, story.opening())
    base = f"{server.base_url}/blogs/{story.slug}"

    # The reader page, open while everything arrives over the stream.
    reader = watch.attach(context.new_page())
    reader.goto(base)
    wait_for(subscribed(server, story.slug), reader, "the stream")
    append(redis_url, story.slug, story.rest())
    expect(reader.locator(f"#entry-{story.after}")).to_be_attached()
    byline = reader.locator(f"#entry-{story.after} .author")
    wait_for(lambda: same(byline.evaluate("e => e.textContent")) == same(payload), reader,
             "the rename")  # the story's last event
    check_reader(reader, story, "live", watch)
    live = server_markup(reader, story)

    # The same page rendered by the server.
    reader.reload()
    check_reader(reader, story, "server-rendered", watch)
    assert server_markup(reader, story) == live, "the stream's markup is the page's"

    # A stale page whose stream opens with a snapshot that rebuilds it.
    def stale(route: Route) -> None:
        # No entries, an old headline, and an event id the server cannot place: only the
        # snapshot the stream starts with can make it right.
        html = re.sub(r'data-last-event-id="[^"]*"', 'data-last-event-id="1-0"',
                      route.fetch().text())
        html = re.sub(r'(<div id="entries" class="entries">).*?(</div>\s*<p)', r"\1\2", html,
                      flags=re.S)
        html = re.sub(r'(<h1 id="headline">).*?(</h1>)', r"\1Stale\2", html, flags=re.S)
        route.fulfill(body=html, content_type="text/html; charset=utf-8")

    reader.route(base, stale)
    reader.reload()
    expect(reader.locator(f"#entry-{story.after}")).to_be_attached()
    check_reader(reader, story, "snapshot", watch)
    assert server_markup(reader, story) == live, "the snapshot's markup is the page's"
    check_preview(context, reader, server, story, watch)
    reader.close()

    # The embed page (issue 11): the same fields, compact, for other sites' frames.
    embed = watch.attach(context.new_page())
    embed.goto(f"{base}/embed")
    check_reader(embed, story, "embed", watch)
    embed.close()

    # The home page's list of blogs.
    home = watch.attach(context.new_page())
    home.goto(f"{server.base_url}/")
    expect_text(home, ".blogs a", payload, "home")
    audit(home, "home", watch)
    home.close()

    # The newsroom: the list of blogs, the blog's entries, the preview, the reader in a frame.
    desk = watch.attach(context.new_page())
    desk.goto(f"{server.base_url}/newsroom")
    expect(desk.locator("#blog-list li")).to_have_count(1)
    expect_text(desk, "#blog-list a", payload, "newsroom list")
    audit(desk, "newsroom list", watch, console=True)
    desk.goto(f"{server.base_url}/newsroom/{story.slug}")
    expect(desk.locator("#desk-entries li")).to_have_count(3)
    expect_text(desk, "#blog-title", payload, "newsroom")
    expect_text(desk, f"#desk-{story.entry} .entry-title", payload, "newsroom")
    desk.locator(".deskbar .tool", has_text="Reader view").click()  # the frame loads now
    expect(desk.locator("#reader")).to_have_attribute("src", f"/blogs/{story.slug}")
    expect(desk.frame_locator("#reader").locator(f"#entry-{story.after}")).to_be_attached()
    reader_frame = desk.frame(url=base)
    assert reader_frame is not None
    with desk.expect_response(f"{server.base_url}/api/preview"):
        desk.fill("#compose-body", payload)
    wait_for(lambda: desk.locator("#compose-preview article").count() == 1, desk, "the preview")
    audit(desk, "newsroom", watch, console=True)
    desk.close()

    # The replay: the timeline, the frame at the last event, the entry's history.
    replay = watch.attach(context.new_page())
    replay.goto(f"{base}/replay")
    rows = replay.locator("#timeline li")
    expect(rows).to_have_count(len(story.opening()) + len(story.rest()))
    last = rows.last.get_attribute("id") or ""
    wait_for_frame(replay, last.removeprefix("event-"))
    assert "allow-scripts" not in (replay.locator("#frame").get_attribute("sandbox") or "")
    timeline = same(replay.locator("#timeline").evaluate("e => e.textContent"))
    assert same(f"{payload}: {payload} ({payload})") in timeline  # the figure's row
    assert same(f": {payload}") in timeline  # the note, and the reason
    frame_problems = replay.evaluate(
        "(() => { const doc = new DOMParser().parseFromString("
        f"document.getElementById('frame').srcdoc, 'text/html'); return ({AUDIT_DOC})"
        "([false], doc); })()")
    assert frame_problems == [], "replay frame"
    frame = replay.frame_locator("#frame")
    assert frame.locator("#entries article").evaluate_all(
        "els => els.map(e => e.dataset.id)") == [story.after, story.entry, story.before]
    assert same(frame.locator("#headline").evaluate("e => e.textContent")) == same(payload)
    replay.locator('#timeline li[data-type="entry-edited"] .history-link').click()
    expect(replay.locator("#history .revision")).to_have_count(2)
    assert same(f"note: {payload}") in same(replay.locator("#history").evaluate(
        "e => e.textContent"))
    replay.locator('#timeline li[data-type="entry-retracted"] .history-link').click()
    expect(replay.locator("#history .retraction")).to_have_count(1)
    assert same(payload) in same(replay.locator("#history .retraction").evaluate(
        "e => e.textContent"))
    audit(replay, "replay", watch, console=True)
    replay.close()



@pytest.mark.parametrize("payload", [p for _, p in PAYLOADS], ids=[n for n, _ in PAYLOADS])
def test_the_api_takes_a_payload_verbatim_or_refuses_it(
        api: Api, tokens: Tokens, blog: str, payload: str) -> None:
    """Every field, through the API: stored exactly as sent, or a 422 naming the field."""
    path = "/api/blogs/tartus/entries"
    url_ok = {"url": "https://example.com/a.jpg", "alt": "a"}
    def refused_fairly(response: httpx.Response, name: str, limit: int | None) -> bool:
        """A 422 naming only this field, for a URL browsers cannot use or a value too long."""
        errors = response.json()["errors"]
        return [e["field"] for e in errors] == [name] and (
            name.endswith("url") or (limit is not None and len(payload) > limit))

    for name, limit, body in [
        ("body", 20000, {"body": payload}),
        ("title", 120, {"body": "x", "title": payload}),
        ("image.url", None, {"body": "x", "image": {**url_ok, "url": payload}}),
        ("image.alt", 500, {"body": "x", "image": {**url_ok, "alt": payload}}),
        ("image.caption", 500, {"body": "x", "image": {**url_ok, "caption": payload}}),
        ("image.credit", 500, {"body": "x", "image": {**url_ok, "credit": payload}}),
        ("embed.url", None, {"body": "x", "embed": {"url": payload}}),
    ]:
        response = api("POST", path, tokens.reporter, json=body)
        assert response.status_code in (201, 422), (name, response.text)
        if response.status_code == 422:
            assert refused_fairly(response, name, limit), (name, response.text)
        else:
            entry = response.json()["entry"]
            stored = entry[name] if "." not in name else \
                entry[name.split(".")[0]][name.split(".")[1]]
            assert stored == (payload.strip() if name == "title" else payload), name
    for name, limit, fact in [("label", 80, {"label": payload, "value": "v"}),
                              ("value", 200, {"label": "l", "value": payload}),
                              ("source", 200, {"label": "l", "value": "v", "source": payload})]:
        response = api("PUT", "/api/blogs/tartus/facts/figure", tokens.reporter, json=fact)
        assert response.status_code in (200, 422), (name, response.text)
        if response.status_code == 422:
            assert refused_fairly(response, name, limit), (name, response.text)
        else:
            assert response.json()["fact"][name] == payload.strip()
    entry_id = api("POST", path, tokens.reporter, json={"body": "x"}).json()["entry"]["id"]
    response = api("PATCH", f"{path}/{entry_id}", tokens.reporter, json={"correction": payload})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert refused_fairly(response, "correction", 1000), response.text
    else:
        assert response.json()["entry"]["corrections"][0]["text"] == payload.strip()
    response = api("PATCH", "/api/blogs/tartus", tokens.editor,
                   json={"title": payload, "description": payload})
    assert response.status_code == 200, response.text
    assert (response.json()["title"], response.json()["description"]) == (
        payload.strip(), payload)
    rania = api("GET", "/api/me", tokens.reporter).json()["id"]
    response = api("PATCH", f"/api/people/{rania}", tokens.editor,
                   json={"display_name": payload})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        # One line of plain text: no control characters, no bidirectional overrides.
        assert [e["field"] for e in response.json()["errors"]] == ["display_name"]
        assert len(payload) > 80 or re.search("[\x00-\x1f\u202a-\u202e\u2066-\u2069]",
                                              payload), payload
    else:
        assert response.json()["person"]["display_name"] == payload.strip()
        shown = api("GET", "/api/blogs/tartus").json()["entries"][0]["author_name"]
        assert shown == payload.strip()


def test_the_count() -> None:
    assert len(PAYLOADS) == 40 and RENDERINGS == 40 * 73 == 2920
