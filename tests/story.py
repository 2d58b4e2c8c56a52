"""Tell the demo story through the API, as the newsroom would."""

from __future__ import annotations

from liveblog.story import STORY
from tests.conftest import Api, Tokens


def tell(api: Api, tokens: Tokens, slug: str = "tartus") -> list[str]:
    """Post the story to an open blog; pin the toll update; return the entry ids."""
    ids = []
    for who, method, path, body in STORY:
        response = api(method, f"/api/blogs/{slug}/{path}", getattr(tokens, who), json=body)
        assert response.status_code in (200, 201), response.text
        if path == "entries":
            ids.append(response.json()["entry"]["id"])
    api("PUT", f"/api/blogs/{slug}/pinned", tokens.editor, json={"entry_id": ids[4]})
    return ids
