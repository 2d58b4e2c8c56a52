"""bench/spike.py end to end at a small size: every system, every scenario, the storm.

The issue's targets are figures of the full-size run, not timed tests: nothing here asserts a
latency. What could break is asserted: every reader connected, every update reached every
reader exactly once and in order, the reconnect storm caught everyone up exactly, the doc
section was written (to a temporary file, never docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NCHAN = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")


def load_spike():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("spike", ROOT / "bench" / "spike.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["spike"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(400)
def test_spike_runs_every_system_and_delivers_everything(tmp_path: Path) -> None:
    assert NCHAN.exists() and (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()), \
        "needs nginx-light and libnginx-mod-nchan (scripts/test installs them)"
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nBefore.\n\n<!-- spike:begin -->\nold\n<!-- spike:end -->\n"
                   "\nAfter.\n")
    spike = load_spike()
    runs = spike.main(["--quick", "--readers", "30", "--posts", "3", "--out", str(doc),
                       "--repeat", "2",
                       "--json", str(tmp_path / "spike.json")])

    assert set(runs) == {"main", "baseline", "workers2", "burst"}
    seen = {(scenario, r.system) for scenario, results in runs.items() for r in results}
    assert seen == {("main", "liveblog"), ("main", "nchan"), ("main", "limit"),
                    ("baseline", "liveblog"), ("baseline", "naive"),
                    ("workers2", "liveblog w2"), ("workers2", "nchan w2"),
                    ("burst", "liveblog"), ("burst", "nchan")}
    for scenario, results in runs.items():
        for r in results:
            where = f"{scenario}/{r.system}"
            assert r.error == "", where
            assert r.connected == r.readers, where
            assert r.expected == r.readers * (20 if scenario == "burst" else 3), where
            assert r.delivered == r.expected, where
            assert (r.missing, r.gaps, r.duplicates) == (0, 0, 0), where
            assert r.p99 >= r.p50 > 0, where
            assert r.cpu_us >= 0 and r.generator_cpu >= 0, where

    storms = {r.system: r.storm for r in runs["main"] if r.storm}
    assert set(storms) == {"liveblog", "nchan"}
    for system, storm in storms.items():
        assert storm["reconnected"] == 30, system
        assert storm["caught_up"] == 30, system
        assert (storm["gaps"], storm["duplicates"]) == (0, 0), system
        assert storm["exact"] == 1.0, system

    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nBefore.\n")
    assert text.rstrip().endswith("After.")
    assert "old" not in text
    section = text.split("<!-- spike:begin -->")[1].split("<!-- spike:end -->")[0]
    assert ".venv/bin/python bench/spike.py --quick" in section
    assert "liveblog at " in section
    assert "| liveblog | 30 | 30 | 100.00% | 0 | 0 |" in section
    for name in ("nchan", "limit", "naive", "liveblog w2", "nchan w2"):
        assert f"| {name} |" in section
    assert "#### Targets" in section and "PASS" in section
    assert section.count("median round of 2 by p99") == 4  # one per scenario
    assert "liveblog: p99 by round " in section
    for figure in ("30 readers, one process", "p99 vs Nchan", "p99 vs the reference limit",
                   "server CPU per delivered message", "RSS per connected reader",
                   "time to connect 30 readers", "POST p99 with 30 readers",
                   "reconnect storm: 30 readers", "reconnect storm time",
                   "naive p99 ÷ liveblog p99", "--workers 2, 60 readers: delivered",
                   "--workers 2, 60 readers: p99 vs Nchan", "burst, 30 readers: delivered",
                   "burst p99 vs Nchan", "burst: updates accepted per second"):
        assert figure in section, figure
    assert json.loads((tmp_path / "spike.json").read_text())["runs"]["main"][0]["readers"] == 30


def load_capacity():  # type: ignore[no-untyped-def]
    load_spike()  # capacity.py imports it by name
    spec = importlib.util.spec_from_file_location("capacity", ROOT / "bench" / "capacity.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
def test_capacity_measures_each_size_and_writes_its_table(tmp_path: Path) -> None:
    doc = tmp_path / "deploy.md"
    doc.write_text("# Deploying\n\n<!-- capacity:begin -->\nold\n<!-- capacity:end -->\n")
    capacity = load_capacity()
    sizes = capacity.main(["--readers", "10,20", "--posts", "2", "--interval", "0.2",
                           "--settle", "5", "--pause", "0.1", "--out", str(doc)])
    assert [(n, [r.system for r in results]) for n, results in sizes] == \
        [(10, ["liveblog", "nchan"]), (20, ["liveblog", "nchan", "liveblog w2"])]
    for n, results in sizes:
        for r in results:
            assert r.complete and r.error == "", (n, r.system)
    text = doc.read_text()
    assert "old" not in text and "| liveblog w2 | 20 | 20 | 100.00% | 0 | 0 |" in text
    assert "| liveblog | 20 (the largest size run) |" in text
