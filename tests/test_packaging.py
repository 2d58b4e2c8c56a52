"""What `pip install .` brings must be enough to run liveblog: every third-party module the
package imports is a runtime dependency, not only a test one."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx

from tests.processes import Processes, first_editor_token, liveblog_env
from tests.support import free_port

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



def test_a_wheel_installed_outside_the_checkout_serves_every_page(
        tmp_path: Path, processes: Processes) -> None:
    """Issue 9: a non-editable install looked for static/ beside site-packages and could
    not even print --help. Build the wheel, install it (not editable) into a directory of
    its own, and run its `liveblog` from there: nothing may come from the checkout."""
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--wheel-dir", str(wheels), str(ROOT)], check=True, timeout=300)
    [wheel] = wheels.glob("liveblog-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--target", str(site), str(wheel)], check=True, timeout=300)
    # The dependencies are this venv's; liveblog itself is the wheel's copy, first on the path.
    env = liveblog_env(tmp_path / "var", free_port(), PYTHONPATH=str(site))
    where = subprocess.run(
        [sys.executable, "-c", "import liveblog.resources as r; print(r.STATIC, r.TEMPLATES)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(site) and Path(p).is_dir() for p in where), where
    assert not (site / "liveblog" / "static").is_symlink()

    spawned = processes.spawn([str(site / "bin" / "liveblog"), "serve"], env=env,
                              log=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{env['LIVEBLOG_PORT']}"
    token = first_editor_token(spawned, base, timeout=60)
    opened = httpx.post(f"{base}/api/blogs", json={"slug": "tartus", "title": "Tartus"},
                        headers={"Authorization": f"Bearer {token}"})
    assert opened.status_code == 201, opened.text
    for path, expect in [("/", "Tartus"), ("/blogs/tartus", "live.js"),
                         ("/static/live.js", "EventSource"), ("/static/style.css", "{"),
                         ("/static/console/api.js", "export async function api"),
                         ("/newsroom/tartus", "newsroom.js"),
                         ("/blogs/tartus/replay", "replay.js")]:
        response = httpx.get(base + path)
        assert response.status_code == 200 and expect in response.text, (path, response.text)
