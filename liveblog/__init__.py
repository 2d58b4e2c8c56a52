"""liveblog: an event-sourced live blog for breaking news."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version


def version() -> str:
    try:
        return _package_version("liveblog")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
