"""What `pip install .` brings must be enough to run liveblog: every third-party module the
package imports is a runtime dependency, not only a test one."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parent.parent


def imported_modules() -> set[str]:
    names = set()
    for path in (ROOT / "liveblog").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"liveblog", "__future__"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_a_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {normalize(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0])
                for dep in project["dependencies"]}
    # markupsafe comes with jinja2, which needs it; it is not ours to pin.
    declared.add("markupsafe")
    owners = packages_distributions()
    missing = {module for module in imported_modules()
               if not {normalize(d) for d in owners.get(module, [module])} & declared}
    assert missing == set()


def test_the_check_above_can_fail() -> None:
    owners = packages_distributions()
    assert "playwright" in {normalize(d) for d in owners["playwright"]}
    assert "playwright" not in {
        normalize(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0])
        for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
