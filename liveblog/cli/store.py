"""Running one piece of async store work from a CLI command, against the configured Redis
or the embedded one (started for the length of the command if none runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from liveblog.config import Config, redacted
from liveblog.embedded import redis_url_for
from liveblog.errors import StoreUnavailable
from liveblog.store import Store

T = TypeVar("T")


def with_store(config: Config, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run `work` against the configured Redis (or the embedded one, started if need be)."""
    with redis_url_for(config.redis_url, config.data_dir) as url:

        async def run() -> T:
            store = Store.from_config(config, url)
            try:
                return await work(store)
            except StoreUnavailable as exc:
                where = "LIVEBLOG_REDIS_URL" if config.redis_url else "the embedded Redis"
                cause = exc.__cause__ or exc.detail
                raise StoreUnavailable(
                    f"cannot reach {where} ({redacted(url)}): {cause}") from exc
            finally:
                await store.close()

        return asyncio.run(run())
