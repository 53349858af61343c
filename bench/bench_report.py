"""The replay report at scale: a 2-hour recording's report, its size and how long a browser takes to open it.

Run: .venv/bin/python bench/bench_report.py [--hours 2] [--people 6]
The recording is synthetic report data shaped like a household day (a poll every 2 s, a ~40 s session per
minute, a stranger every fifth visit). Opening is timed as headless Chromium's screenshot of the report
minus its screenshot of an empty page, side by side in one run (targets: < 5 MB, < 2 s).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from egomem_ros.tools.datagen.report_data import synthetic_day
from egomem_ros.report.render import render_html


def open_s(chromium: str, page: Path, tmp: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1500,1100",
                    f"--screenshot={tmp / 'shot.png'}", page.as_uri()], capture_output=True, check=True, timeout=120)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--people", type=int, default=6)
    args = ap.parse_args()
    data = synthetic_day(args.hours, args.people)
    t0 = time.perf_counter()
    page = render_html(data)
    render_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        report, blank = tmp / "report.html", tmp / "blank.html"
        report.write_text(page, encoding="utf-8")
        blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        opened = "chromium not installed"
        if chromium:
            open_s(chromium, blank, tmp)  # warm the disk cache
            b, r = open_s(chromium, blank, tmp), open_s(chromium, report, tmp)
            opened = f"{r - b:.2f} s (report {r:.2f} s, empty page {b:.2f} s)"
    print("| hours | polls | sessions | render s | size MB | browser open (minus an empty page) |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.hours:g} | {len(data.polls)} | {len(data.sessions)} | {render_s:.1f} | "
          f"{len(page.encode()) / 1e6:.2f} | {opened} |")


if __name__ == "__main__":
    main()
