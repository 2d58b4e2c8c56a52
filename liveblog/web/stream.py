"""GET /blogs/{slug}/stream: the reader's server-sent events.

The first message is a snapshot, unless the reader names (Last-Event-ID, or last_event_id
for a page's first connection) an event this process can place, in which case it gets
exactly the changes after it. Then every change, as the blog's tailer publishes it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from liveblog.live import Hub, Tailer
from liveblog.web.api import slug_from

# How long a browser waits before reconnecting: 1 to 4 s, different for every reader, so a
# restart does not bring every reader back in the same instant.
RETRY_MS = (1000, 4000)


async def stream(request: Request) -> Response:
    slug = slug_from(request)
    hub: Hub = request.state.hub
    tailer = await hub.tailer(slug)
    reconnecting_from = request.headers.get("last-event-id")
    last_id = reconnecting_from or request.query_params.get("last_event_id")
    if tailer.is_ahead(last_id):
        # The reader saw events (through another process) that we have not read yet.
        await tailer.catch_up()
    if tailer.is_over(reconnecting_from):
        # 204 is how a server tells EventSource to stop reconnecting: the blog has ended
        # and this reader has everything. A page's first connection (last_event_id in the
        # query) is still served, so a page opened after the end hears a late retraction.
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    return EventSourceResponse(
        _messages(tailer, last_id),
        ping=request.state.config.heartbeat_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # A reader that cannot take a message for this long is gone; free its slot.
        send_timeout=30,
    )


async def _messages(tailer: Tailer, last_id: str | None) -> AsyncIterator[bytes]:
    # Subscribe here, not in the handler: a body that is never iterated (a HEAD request)
    # must not leave a subscription behind. subscribe() is synchronous, so nothing can be
    # published between the first messages and the queue.
    sub, first = tailer.subscribe(last_id)
    # On an ended blog, a stream that is open stays open: an editor may still retract or
    # correct there, and open pages must see it. Only a reader who reconnects with
    # everything already gets told to stop (204, above).
    try:
        yield b"retry: %d\n\n" % random.randint(*RETRY_MS)
        for message in first:
            yield message
        while (change := await sub.queue.get()) is not None:
            yield change
    finally:
        tailer.unsubscribe(sub)
