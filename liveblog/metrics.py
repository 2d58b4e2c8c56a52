"""What a process counts for Prometheus (GET /metrics), with prometheus-client.

One Metrics object per app (and its own registry), so that two apps in one process (the
tests run many) never add up each other's figures. Names are prefixed `liveblog_`.

With `liveblog serve --workers N`, each worker is a process of its own and a scrape reaches
one of them: prometheus-client's multiprocess mode makes every worker write its figures to
files in PROMETHEUS_MULTIPROC_DIR (serve sets up a private one, see `multiprocess_dir`), and
the worker that answers the scrape adds up everyone's. Gauges are `livesum`: the sum over
the workers alive, so a worker that died stops counting its readers (its files are
removed when a scrape finds its process gone, and by the worker itself when it stops).

Label values are bounded: blogs by MAX_BLOG_LABELS (a newsroom has tens or hundreds; every
blog label comes from a blog that exists, which only editors can open), HTTP routes by the
route table (never the raw path), methods by the ones HTTP defines.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Past this many blogs with a label of their own in one process, the rest count as "other".
MAX_BLOG_LABELS = 1000
OTHER = "other"
# Delivery is meant to take well under a second: fine buckets below it, a few above to
# show how bad it gets.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PID_FILE = re.compile(r"_(\d+)\.db$")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Where this process's figures go when several processes serve (None: in memory).
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        r = self.registry
        self.readers = Gauge(
            "liveblog_readers_connected", "Reader streams open now, by blog.", ["blog"],
            registry=r, multiprocess_mode="livesum")
        self.tailers = Gauge(
            "liveblog_tailers_running", "Blogs this server tails now (one XREAD loop each).",
            registry=r, multiprocess_mode="livesum")
        self.appended = Counter(
            "liveblog_events_appended", "Events appended to blogs' logs by this server.",
            ["blog"], registry=r)
        self.delivered = Counter(
            "liveblog_messages_delivered",
            "Stream messages written to readers (one per event per reader, snapshots and "
            "resumed messages included; heartbeats not).", ["blog"], registry=r)
        self.lag = Histogram(
            "liveblog_delivery_lag_seconds",
            "From an event's append (its stream id's time) to its write to a reader, for "
            "every reader it was broadcast to.", buckets=LAG_BUCKETS, registry=r)
        self.cut_off = Counter(
            "liveblog_slow_readers_cut_off",
            "Readers cut off for falling too far behind (they resume from their last id).",
            registry=r)
        self.redis_errors = Counter(
            "liveblog_redis_errors", "Redis commands that failed for want of Redis "
            "(unreachable, timed out, loading), by store operation.", ["operation"],
            registry=r)
        self.redis_reconnects = Counter(
            "liveblog_redis_reconnects",
            "Tailers that got an answer from Redis again after it had failed them.",
            registry=r)
        self.http_requests = Counter(
            "liveblog_http_requests", "HTTP requests answered, by route template and "
            "status (reader streams are counted by the readers_connected and delivery "
            "figures instead).", ["method", "route", "status"], registry=r)
        self.http_duration = Histogram(
            "liveblog_http_request_duration_seconds",
            "Time to answer an HTTP request (reader streams excluded), by route template.",
            ["method", "route"], buckets=HTTP_BUCKETS, registry=r)
        self._blog_labels: set[str] = set()

    def blog(self, slug: str) -> str:
        """The label value for `slug`: itself, unless MAX_BLOG_LABELS blogs have one."""
        labels = self._blog_labels
        if slug in labels:
            return slug
        if len(labels) < MAX_BLOG_LABELS:
            labels.add(slug)
            return slug
        return OTHER

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else OTHER
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def observe_lag(self, seconds: float, readers: int) -> None:
        """`readers` observations of `seconds` at once (the readers of one broadcast
        slice were written within microseconds of each other): one update of the bucket,
        not one per reader, in the pass that writes to ten thousand of them."""
        observe_many(self.lag, seconds, readers)

    def exposition(self) -> bytes:
        """The text a scrape gets: this process's figures, or with several processes
        the sum of all of theirs."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        forget_dead_processes(self.multiprocess_dir)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            registry, path=self.multiprocess_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """This process stops serving: its gauges stop counting (its counters stay, so
        that totals never go down)."""
        if self.multiprocess_dir is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def observe_many(histogram: Histogram, seconds: float, count: int) -> None:
    """histogram.observe(seconds), `count` times over, in one update of its bucket and
    sum. prometheus-client has no weighted observe; this is its own observe with the
    count in place of 1 (tests/test_metrics.py checks it against `count` observes)."""
    if count <= 0:
        return
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    histogram._sum.inc(seconds * count)
    for i, bound in enumerate(histogram._upper_bounds):
        if seconds <= bound:
            histogram._buckets[i].inc(count)
            break


def forget_dead_processes(path: str) -> None:
    """Remove the live-gauge files of processes that no longer exist (a worker killed
    without its shutdown), so readers it held stop counting."""
    for name in glob.glob(os.path.join(path, "gauge_live*.db")):
        match = _PID_FILE.search(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and not _alive(pid):
            prometheus_multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: alive
    return True


@contextlib.contextmanager
def multiprocess_dir(workers: int) -> Iterator[None]:
    """For `serve --workers N` (N > 1): a private directory for the workers' figures, unless
    PROMETHEUS_MULTIPROC_DIR names one already; removed on exit. Entered before the
    workers start: they read it from the environment when prometheus-client loads."""
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="liveblog-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
