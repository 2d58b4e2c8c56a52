"""The cache of rendered answers: bounded, least recently used out first, and a time to
live for pages whose text ages."""

from __future__ import annotations

from liveblog.web.viewcache import ViewCache


def test_keeps_the_most_recently_used_and_forgets_after_the_time_to_live() -> None:
    now = [0.0]
    cache = ViewCache(2, ttl=5, clock=lambda: now[0])
    cache.put(("tartus", "1-0"), b"one")
    cache.put(("tartus", "2-0"), b"two")
    assert cache.get(("tartus", "1-0")) == b"one"  # now the most recently used
    cache.put(("tartus", "3-0"), b"three")
    assert cache.get(("tartus", "2-0")) is None
    assert cache.get(("tartus", "1-0")) == b"one"
    now[0] = 5.0
    assert cache.get(("tartus", "1-0")) is None and cache.get(("tartus", "3-0")) is None


def test_without_a_time_to_live_entries_stay_until_pushed_out() -> None:
    cache = ViewCache(1)
    cache.put("a", b"a")
    assert cache.get("a") == b"a"
    cache.put("b", b"b")
    assert cache.get("a") is None and cache.get("b") == b"b"
