"""The tests' own layout: shared helpers live in tests/support.py (and the helper modules
beside it: processes, sse, cluster, ...), so no test module imports another, and nothing
imports conftest.py, which pytest alone loads (bench/ once imported it for two constants)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_test_module_imports_another_and_nothing_imports_conftest() -> None:
    files = sorted([*ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py")])
    assert len(files) > 40
    wrong = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files for module in imported_modules(path)
        if module == "tests.conftest" or module.startswith("tests.test_")
        or module == "conftest" or module.startswith("test_")
    }
    assert wrong == set()
