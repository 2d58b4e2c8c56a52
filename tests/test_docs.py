"""The README is part of the product: its settings and its walkthrough are checked."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from liveblog.config import SETTINGS
from tests.processes import Processes, Served

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_the_settings_table_is_the_settings_data() -> None:
    """Every setting is in the README's table with its type, bounds and default as
    liveblog/config.py declares them, and the table names no other."""
    rows = re.findall(r"^\| `(LIVEBLOG_\w+)` \| ([^|]*) \| ([^|]*) \|", section("Settings"),
                      re.M)
    assert [name for name, _, _ in rows] == [s.env for s in SETTINGS]
    for (name, kind, default), setting in zip(rows, SETTINGS, strict=True):
        assert kind == setting.describe(), name
        if setting.default is None:
            assert default.startswith("unset"), name
        else:
            assert default == f"`{setting.default}`", name


def test_the_readme_commands_are_the_scripts_and_ci_runs_the_test_one() -> None:
    assert "```sh\n./scripts/serve\n```" in section("Run it")
    assert "```sh\n./scripts/test\n```" in section("Test it")
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_walkthrough_works_as_written(tmp_path: Path, processes: Processes) -> None:
    blocks = re.findall(r"```bash\n(.*?)```", section("Walkthrough"), re.S)
    assert blocks[0].startswith("export LIVEBLOG_TOKEN=")  # the token the user pastes
    served = Served(processes, tmp_path / "var")
    token = re.search(r"export LIVEBLOG_TOKEN=(\S+)", served.output())
    assert token is not None
    env = {**served.env, "LIVEBLOG_TOKEN": token.group(1), "LB": served.url}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(blocks[1:])],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "posted entry " in result.stdout

    auth = {"Authorization": f"Bearer {token.group(1)}"}
    blog = httpx.get(f"{served.url}/api/blogs/tartus-jableh").json()
    assert blog["entries"] == [] and blog["facts"][0]["value"] == "at least 80"
    events = httpx.get(f"{served.url}/api/blogs/tartus-jableh/events", headers=auth).json()
    assert [(e["type"], e["actor"]) for e in events["events"]] == [
        ("blog-opened", "admin"), ("entry-posted", "rania"), ("entry-edited", "rania"),
        ("fact-updated", "rania"), ("entry-retracted", "admin"),
    ]
    at_3 = httpx.get(f"{served.url}/api/blogs/tartus-jableh/state?at=3", headers=auth).json()
    assert "car bomb" in at_3["entries"][0]["body"] and at_3["entries"][0]["revision"] == 2
    served.stop()
