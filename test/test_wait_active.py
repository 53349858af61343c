"""`wait_active`, which replay.launch.py runs before `ros2 bag play`: it returns only once every node is
active (real rclpy lifecycle nodes over Fast DDS, in a private domain)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rclpy.lifecycle import LifecycleNode
from ros_harness import Ros


def wait_active(domain_id: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.run([sys.executable, "-m", "egomem_ros.ros.wait_active", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_it_waits_until_every_node_is_active_and_names_the_ones_that_are_not():
    ros = Ros()
    try:
        ros.add(LifecycleNode("fake_memory"))
        ros.add(LifecycleNode("fake_identity"))
        ros.transition("fake_memory", "configure")
        ros.transition("fake_identity", "configure", "activate")
        out = wait_active(ros.domain_id, "fake_memory", "fake_identity", "--timeout", "3")
        assert out.returncode == 1 and "not active after 3 s: fake_memory" in out.stderr, out.stderr
        ros.transition("fake_memory", "activate")
        out = wait_active(ros.domain_id, "fake_memory", "fake_identity", "--timeout", "20")
        assert out.returncode == 0 and "active after" in out.stdout, out.stdout + out.stderr
    finally:
        ros.close()


@pytest.mark.parametrize("args", [[], ["a", "--timeout", "0"], ["a", "--timeout", "soon"]])
def test_bad_arguments_exit_2_without_a_traceback(args):
    out = wait_active(200, *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "usage: wait_active" in out.stderr
