"""Tell the demo story through the API, as the newsroom would."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from liveblog.story import DESCRIPTION, SLUG, STORY, TITLE, resolve
from tests.support import (
    Api,
    Tokens,
    UvicornThread,
    app_config,
    create_tokens,
    start_redis,
    stop_redis,
)


def tell(api: Api, tokens: Tokens, slug: str = "tartus") -> list[str]:
    """Tell the whole story on an open blog; return the posted entry ids."""
    ids: list[str] = []
    for step in STORY:
        who, method = step[0], step[1]
        path, body = resolve(step, ids)
        response = api(method, f"/api/blogs/{slug}/{path}", getattr(tokens, who), json=body)
        assert response.status_code in (200, 201), response.text
        if path == "entries":
            ids.append(response.json()["entry"]["id"])
    return ids


@contextlib.contextmanager
def story_server() -> Iterator[tuple[UvicornThread, Api, Tokens, list[str], str]]:
    """A private redis-server and server with the demo blog told on it (for bench/); the
    last is the Redis's URL (for tokens the four do not cover)."""
    redis = start_redis(Path(tempfile.mkdtemp()))
    tokens = create_tokens(redis.url)
    try:
        with UvicornThread(app_config(redis.url)) as server:
            api = Api(server.base_url)
            api("POST", "/api/blogs", tokens.editor,
                json={"slug": SLUG, "title": TITLE, "description": DESCRIPTION})
            yield server, api, tokens, tell(api, tokens, SLUG), redis.url
            api.http.close()
    finally:
        stop_redis(redis)
