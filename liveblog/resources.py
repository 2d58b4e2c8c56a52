"""Where the files liveblog serves live: its templates and the reader's static files.

Both are package data, found with importlib.resources, so a wheel installed anywhere serves
them. In a checkout, liveblog/static is a link to the top-level static/ (the layout keeps
the browser's files at the top); a wheel carries a copy. liveblog is installed as files,
never zipped, so each is a directory on disk that Jinja2 and StaticFiles can read.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_PACKAGE = files("liveblog")
TEMPLATES = Path(str(_PACKAGE / "templates"))
STATIC = Path(str(_PACKAGE / "static"))
