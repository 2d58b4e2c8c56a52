"""Tell the demo story through the API, as the newsroom would."""

from __future__ import annotations

from liveblog.story import STORY, resolve
from tests.conftest import Api, Tokens


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
