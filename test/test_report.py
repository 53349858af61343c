"""`egomem report`: the HTML a user opens to see what the robot remembered, checked in a real browser."""
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from egomem_ros.tools.datagen.report_data import synthetic_day
from egomem_ros.report.render import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TESSERACT = shutil.which("tesseract")


def test_report_holds_timeline_sessions_writes_and_graph():
    page = render_html(synthetic_day(0.02, 3))
    assert page.count('<tr id="s') == 2 and "loves chess" in page and "Person0" in page and "Person1" in page
    assert "&lt;b&gt;chess&lt;/b&gt; &amp; tea" in page and "<b>chess</b>" not in page   # user text stays text
    assert re.search(r"<g id=\"span-s1\"><title>Person1, 61\.0-98\.0 s", page)               # the transcript on hover
    assert 'href="#s1"' in page                              # a click goes to its row
    assert "stranger tmp-00000" in page and "is Person0's" in page
    assert not re.search(r'(src|href)="(https?:)?//|url\((https?:)?//|@import|<link', page)  # nothing to fetch


def test_a_two_hour_report_stays_small():
    page = render_html(synthetic_day(2.0, 6))
    assert len(page.encode()) < 5_000_000, len(page)


def test_report_cli_refuses_missing_inputs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "report", "--bag", str(tmp_path / "nope"),
                          "--db", str(tmp_path / "m.db"), "--out", str(tmp_path / "r.html")], capture_output=True, text=True)
    assert out.returncode == 2 and "bag not found" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "m.db").exists()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (the demo speaks with it)")
    work = tmp_path_factory.mktemp("demo")
    out = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "demo", "--workdir", str(work)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (work / "report.html").is_file() and "report.html" in out.stdout.replace("\n", "")
    return work


def test_demo_report_from_the_output_bag_and_memory(demo_dir, tmp_path):
    """The same report renders from a recording (here the demo's output bag) plus the memory db."""
    out = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "report", "--bag", str(demo_dir / "out_bag"),
                          "--db", str(demo_dir / "memory.db"), "--out", str(tmp_path / "again.html")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "again.html").read_text()
    assert "Emily" in page and "Sarah" in page and "nurse" in page and "tennis" in page
    assert page.count('<tr id="s') == 3


@pytest.mark.skipif(CHROMIUM is None or TESSERACT is None,
                    reason="needs Debian's chromium and tesseract-ocr (scripts/test.sh installs them as root)")
def test_demo_report_in_a_real_browser(demo_dir, tmp_path):
    """Headless Chromium renders the demo's report; its screenshot shows the timeline's rows (polls in the
    known, unknown and nobody colours), the session spans, and the names of the demo's two people."""
    from PIL import Image

    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1500,1100", f"--screenshot={shot}", (demo_dir / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)

    def has(colour: str, min_pixels: int = 200) -> bool:
        c = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(rgb - c).sum(axis=2) < 40).sum()) >= min_pixels

    from egomem_ros.report.render import COLOURS, SESSION_COLOURS

    assert has(COLOURS["known"]) and has(COLOURS["nobody"])            # polls, fully confident
    assert has(SESSION_COLOURS[0]) and has(SESSION_COLOURS[1])          # two people's session spans
    big = Image.open(shot).convert("L").resize((rgb.shape[1] * 2, rgb.shape[0] * 2))
    big.save(tmp_path / "big.png")
    text = subprocess.run([TESSERACT, str(tmp_path / "big.png"), "-"], capture_output=True, text=True).stdout
    assert "Emily" in text and "Sarah" in text, text
