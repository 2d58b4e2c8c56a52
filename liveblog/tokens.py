"""API tokens as they are handed out: one way to mint a secret, for `liveblog serve`'s
first editor, `liveblog token create` and `rotate`, and the demo's newsroom alike."""

from __future__ import annotations

import secrets

# Says what a pasted string is (in a log, a shell history, a secret scanner's rules).
PREFIX = "lb_"


def new_token() -> str:
    """A fresh secret: 32 random bytes (the store keeps only its hash)."""
    return PREFIX + secrets.token_urlsafe(32)
