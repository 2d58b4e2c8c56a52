"""Publishing scheduled entries at their time (issue 10).

Each server process runs one Scheduler. Every POLL_SECONDS it asks the store's index of
scheduled entries (Store.due) which are due, and publishes each with a normal command
(commands.publish_due) appended with the log's version check: however many processes find
the same entry due at once, one appends entry-published and the others, deciding again on
the newer state, find it published and append nothing. An entry is published within
POLL_SECONDS (and a write's round trip) of its time.

The index is derived from the logs: the service writes it after the append that schedules
an entry, and each Scheduler rebuilds it from every blog's state when it starts, so an
entry whose index write was lost (a crash between the two) is published once a server
starts again. What the index says is checked against the blog before anything is
appended; a stale member (an entry rescheduled, published by hand, rejected) is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from liveblog.domain import commands
from liveblog.errors import NotFound, Problem, StoreUnavailable
from liveblog.service import Service

logger = logging.getLogger("liveblog.scheduler")

POLL_SECONDS = 0.2
# How often a scheduler that cannot reach Redis says so in the log.
COMPLAINT_SECONDS = 30.0
CLOSE_SECONDS = 2.0


class Scheduler:
    def __init__(self, service: Service, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self.reconciled = False
        self.published = 0
        self._task: asyncio.Task[None] | None = None
        self._complained = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="liveblog-scheduler")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Bounded: a shutdown must not wait on a round stuck in a dead connection.
            await asyncio.wait({task}, timeout=CLOSE_SECONDS)

    async def _run(self) -> None:
        while True:
            try:
                if not self.reconciled:
                    await self.reconcile()
                    self.reconciled = True
                await self.tick()
            except StoreUnavailable:
                if self._may_complain():
                    logger.warning("scheduler: the event store cannot be reached; "
                                   "scheduled entries wait")
            except Exception:
                # Every POLL_SECONDS, the same trouble would fill the log.
                if self._may_complain():
                    logger.exception("scheduler: a round failed; trying again")
            await asyncio.sleep(self.poll_seconds)

    def _may_complain(self) -> bool:
        now = time.monotonic()
        if now - self._complained < COMPLAINT_SECONDS:
            return False
        self._complained = now
        return True

    async def reconcile(self) -> int:
        """Index every scheduled entry of every blog (at startup); how many there are."""
        store, total, after = self.service.store, 0, None
        while True:
            slugs = await store.slugs(after=after)
            for slug in slugs:
                try:
                    blog = await self.service.blog(slug)
                except NotFound:
                    continue  # registered, but its blog-opened never landed
                total += await self.service.index_schedule(blog)
            if len(slugs) < 500:
                return total
            after = slugs[-1]

    async def tick(self) -> int:
        """Publish every entry due now; how many this process published."""
        published = 0
        for slug, entry_id, indexed in await self.service.store.due(self.service.clock()):
            try:
                published += await self.publish(slug, entry_id, indexed)
            except (Problem, StoreUnavailable) as exc:
                # One blog's trouble must not hold up the others' entries.
                logger.warning("scheduler: entry %s of %s: %s", entry_id, slug, exc)
        return published

    async def publish(self, slug: str, entry_id: str, indexed: float) -> int:
        """Publish one due entry if it is still due; 1 if this process did."""
        service, store = self.service, self.service.store
        try:
            blog = await service.blog(slug)
        except NotFound:
            await store.unschedule(slug, entry_id, indexed)
            return 0
        entry = blog.unpublished.get(entry_id)
        if (entry is None or entry.state != "scheduled" or entry.publish_at is None
                or entry.scheduled_by is None or blog.status == "ended"):
            # Published, rejected, gone; or the blog ended (reopening it indexes it again).
            await store.unschedule(slug, entry_id, indexed)
            return 0
        if entry.publish_at.timestamp() != indexed:
            await store.schedule(slug, entry_id, entry.publish_at)  # moved meanwhile
            return 0
        actor = entry.scheduled_by
        now: datetime = service.clock()
        outcome = await service.execute(
            slug, actor,
            lambda b: None if b is None else commands.publish_due(b, actor, entry_id, now=now))
        if outcome.recorded is not None:
            self.published += 1
            logger.info("scheduler: published entry %s of %s (due %s)", entry_id, slug,
                        entry.publish_at.isoformat())
        after = outcome.blog.unpublished.get(entry_id)
        if after is None or after.state != "scheduled":
            await store.unschedule(slug, entry_id, indexed)
        return 0 if outcome.recorded is None else 1
