"""Lighthouse on the reader page of a blog with 100 entries, in its default mobile emulation.

    .venv/bin/python bench/lighthouse.py

Installs the pinned npm `lighthouse` (bench/lighthouse/package.json) into
bench/lighthouse/node_modules with `npm install` if it is not there yet (no clone carries
it). Starts its own redis-server and server (real uvicorn), opens a blog with the demo story
and enough further updates to make 100 entries, and runs `lighthouse` against Debian's
Chromium (CHROME_PATH). Prints each category's score and the cumulative layout shift;
writes the full report to bench/lighthouse/report.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from liveblog.story import SLUG
from tests.story import story_server

HERE = Path(__file__).parent / "lighthouse"
LIGHTHOUSE = HERE / "node_modules" / ".bin" / "lighthouse"
FLAGS = ("--headless=new --no-sandbox --disable-gpu --disable-background-networking "
         "--disable-component-update --disable-sync --no-first-run")


def install_lighthouse() -> None:
    """npm install beside package.json, once: node_modules is each clone's own."""
    if LIGHTHOUSE.exists():
        return
    if shutil.which("npm") is None:
        sys.exit("bench/lighthouse.py needs npm (Debian: apt-get install npm)")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=HERE, check=True)


def main() -> None:
    install_lighthouse()
    report = HERE / "report.json"
    with story_server() as (server, api, tokens, ids, _redis_url):
        for n in range(100 - len(ids)):
            api("POST", f"/api/blogs/{SLUG}/entries", tokens.reporter, json={
                "body": f"Update {n + 1}: rescue teams are still working at the scene; "
                        "hospitals in both cities have appealed for blood donors."})
        assert api("GET", f"/api/blogs/{SLUG}").json()["total_entries"] == 100
        subprocess.run(
            [str(LIGHTHOUSE),
             f"{server.base_url}/blogs/{SLUG}", "--quiet", "--output=json",
             f"--output-path={report}", f"--chrome-flags={FLAGS}"],
            check=True, env={**os.environ, "CHROME_PATH": "/usr/bin/chromium"},
        )
    result = json.loads(report.read_text())
    for category in result["categories"].values():
        print(f"{category['title']:>16}: {round(category['score'] * 100)}")
    audits = result["audits"]
    print(f"{'CLS':>16}: {audits['cumulative-layout-shift']['numericValue']}")
    for name in ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time"):
        print(f"{name:>24}: {audits[name]['displayValue']}")
    failing = [a["id"] for a in audits.values()
               if a.get("score") is not None and a["score"] < 1
               and a.get("scoreDisplayMode") in ("binary", "numeric")]
    print("audits below full marks:", ", ".join(failing) or "none")


if __name__ == "__main__":
    main()
