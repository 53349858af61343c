"""The README's robot quick start, run as written on the route CI can take: no ROS install, ROS 2 Kilted
from PyPI wheels in the clone's .venv as the underlay. A fresh colcon workspace in a clean shell (no venv
on PATH, no ROS variables), the clone, `colcon build` of both packages, `source install/setup.bash`, and
the installed `memory_node` through configure and activate on a fresh robot's default paths.

The one step not run as written: `scripts/bootstrap.sh` in the clone finds the suite's own venv linked in
place (a fresh one takes about 5 minutes), so it checks and builds nothing new."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ros_harness import next_domain

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
# what scripts/bootstrap.sh and bootstrap_ros.sh hash to decide whether to reinstall
BOOTSTRAP_INPUTS = ["setup.py", "requirements", "scripts/bootstrap.sh", "scripts/bootstrap_ros.sh", "egomem_msgs",
                    "egomem_ros/data/msgs"]

pytestmark = pytest.mark.skipif(not (VENV / "local_setup.sh").is_file(),
                                reason="the venv has no ROS 2 underlay (scripts/bootstrap.sh with EGOMEM_ROS=1 writes it)")


def _robot_quick_start() -> list[str]:
    """The shell lines of the README's robot quick start section, continuation lines joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start on a robot", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for block in section.split("```bash\n")[1:]:
        for raw in block.split("```", 1)[0].splitlines():
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1].rstrip() + " " + raw.strip()
            elif raw.strip() and not raw.lstrip().startswith("#"):
                lines.append(raw.strip())
    return lines


def _line(lines: list[str], start: str) -> str:
    found = [x for x in lines if x.startswith(start)]
    assert found, f"the README's robot quick start has no line starting {start!r}: {lines}"
    return found[0]


def test_readme_quick_start_builds_and_starts_the_installed_memory_node(tmp_path):
    changed = subprocess.run(["git", "status", "--porcelain", "--", *BOOTSTRAP_INPUTS], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    assert not changed, ("the quick start clones HEAD, whose bootstrap would then reinstall the suite's venv: "
                         f"commit these first:\n{changed}")
    lines = _robot_quick_start()
    home = tmp_path / "home"
    home.mkdir()
    script = "\n".join([
        "set -eo pipefail",   # not -u: ROS setup scripts, colcon's included, read unset variables
        _line(lines, "mkdir -p ~/egomem_ws/src").replace("<this repository>", str(REPO)),
        f"ln -s {VENV} src/egomem_ros/.venv",
        _line(lines, "bash src/egomem_ros/scripts/bootstrap.sh"),
        _line(lines, "colcon build"),
        "echo \"IMPORTS $(python -c 'import egomem_ros; print(egomem_ros.__file__)')\"",
        "echo \"SHEBANG $(head -1 install/egomem_ros/lib/egomem_ros/memory_node)\"",
        "exec " + _line(lines, "install/egomem_ros/lib/egomem_ros/memory_node"),
    ])
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "ROS_DOMAIN_ID": str(next_domain()), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    log = tmp_path / "quickstart.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", "-c", script], cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 420
            while "memory active" not in log.read_text(errors="replace"):
                assert proc.poll() is None, f"the quick start stopped (exit {proc.returncode}):\n{log.read_text()[-6000:]}"
                assert time.monotonic() < deadline, f"memory_node not active in time:\n{log.read_text()[-6000:]}"
                time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGINT)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    ws = home / "egomem_ws"
    assert rc == 0, output[-6000:]
    assert f"IMPORTS {ws}/install/egomem_ros/" in output, output[-6000:]   # the workspace's build, not the venv's
    assert f"SHEBANG #!{VENV.resolve()}/bin/python" in output, output[-6000:]
    assert "Finished <<< egomem_msgs" in output and "Finished <<< egomem_ros" in output
    assert f"memory at {home}/.local/share/egomem/memory.db" in output, output[-6000:]   # a fresh robot's defaults
