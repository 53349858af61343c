"""Real ROS 2 (rclpy over Fast DDS) for the node tests: isolation, node processes, lifecycle and
service calls, and a bag player that publishes a recording in bag time with /clock.

Every `Ros` (one per test) gets a DDS domain of its own, derived from this pytest process's
ROS_DOMAIN_ID (set in conftest.py) and a counter, and only talks over localhost; node processes it starts
use the same domain. (A destroyed rclpy context's participant can outlive it in this process and keep
announcing its nodes; a fresh domain per test keeps them out of the next test's graph.) Node processes
start in their own process group and are waited for until they have left the graph.
"""
from __future__ import annotations

import importlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
TRANSITIONS = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP,
               "shutdown": Transition.TRANSITION_ACTIVE_SHUTDOWN}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def ros_args(params: dict[str, Any]) -> list[str]:
    from egomem_ros.ros.graph import _ros_value

    args = ["--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={_ros_value(value)}"]
    return args


_domains = iter(range(10_000))


def next_domain() -> int:
    """0-232 are valid; 101-232 are used here, away from the default 0 and the per-process base."""
    return 101 + (int(os.environ.get("ROS_DOMAIN_ID", "0")) + next(_domains)) % 132


class Ros:
    """rclpy in this process: nodes under test plus a probe node, spun by one executor thread."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.domain_id = next_domain()
        rclpy.init(args=ros_args(params or {}), domain_id=self.domain_id,
                   signal_handler_options=rclpy.SignalHandlerOptions.NO)
        self.executor = MultiThreadedExecutor(num_threads=4)
        self.probe = rclpy.create_node(f"probe_{os.getpid()}")
        self.executor.add_node(self.probe)
        self.nodes: list[Node] = []
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def call(self, srv_type, name: str, request, timeout: float = 60.0):
        client = self.probe.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=min(timeout, 20.0)):
                raise TimeoutError(f"service {name} not available")
            future = client.call_async(request)
            wait_until(future.done, timeout, f"the answer of {name}")
            return future.result()
        finally:
            self.probe.destroy_client(client)

    def transition(self, node_name: str, *names: str) -> None:
        for name in names:
            res = self.call(ChangeState, f"/{node_name}/change_state",
                            ChangeState.Request(transition=Transition(id=TRANSITIONS[name])))
            assert res.success, f"{node_name}: {name} failed"

    def state(self, node_name: str) -> str:
        return self.call(GetState, f"/{node_name}/get_state", GetState.Request()).current_state.label

    def collect(self, msg_type, topic: str, qos=10) -> list:
        got: list = []
        self.probe.create_subscription(msg_type, topic, got.append, qos)
        return got

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        for node in self.nodes:
            node.destroy_node()
        self.probe.destroy_node()
        self.nodes.clear()
        end_context()


def end_context() -> None:
    """Shut rclpy's default context down and destroy its DDS participant now: one left to the garbage
    collector keeps announcing its nodes to the next test in this process."""
    context = rclpy.get_default_context()
    rclpy.try_shutdown()
    context.destroy()


class NodeProcess:
    """A node executable in its own process group, with its output kept for the assertion messages."""

    def __init__(self, argv: list[str], log: Path, domain_id: int) -> None:
        self.name = argv[0]
        self.log = log
        self._out = open(log, "wb")
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
        self.proc = subprocess.Popen([str(VENV_BIN / argv[0]), *argv[1:]], stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=REPO, env=env)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int = signal.SIGINT) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGINT, then SIGKILL to the whole process group (the node's workers too)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._out.close()

    def left_graph(self, probe: Node) -> None:
        """Wait until the node has left the graph: a node that exits cleanly leaves at once, a killed one
        when its DDS lease runs out."""
        self.stop()
        wait_until(lambda: self.name not in probe.get_node_names(), 30, f"{self.name} to leave the graph")


def message_class(msgtype: str):
    """`sensor_msgs/msg/Image` -> the rclpy message class."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class BagPlayer:
    """Plays a bag into the graph in bag time: /clock first, then each message's serialized bytes as
    recorded. `play(until, wait_at)` stops at `until` (bag seconds) and, at every time in `wait_at`,
    holds the clock until `ready(t)` is true, so that nodes doing work on a sim-time timer (the identity
    poll) see the same stream as `egomem replay` however slow this machine is."""

    def __init__(self, node: Node, bag: Path, gap_s: float = 0.02, settle_s: float = 0.5) -> None:
        from rosbags.highlevel import AnyReader
        from rosgraph_msgs.msg import Clock

        self.node, self.gap_s, self.settle_s = node, gap_s, settle_s
        self.reader = AnyReader([Path(bag)])
        self.reader.open()
        self.clock = node.create_publisher(Clock, "/clock", 10)
        self.pubs = {c.topic: node.create_publisher(message_class(c.msgtype), c.topic, 200)  # reliable, deep
                     for c in self.reader.connections}
        self._messages = iter(self.reader.messages())
        self._pending = None
        self.t = 0.0

    def subscribers(self, topic: str) -> int:
        return self.pubs[topic].get_subscription_count()

    def tick(self, t: float) -> None:
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock

        sec = int(t)
        self.clock.publish(Clock(clock=Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)))
        self.t = t

    def play(self, until: float = float("inf"), wait_at: list[float] = (), ready: Callable[[float], bool] | None = None,
             timeout: float = 60.0) -> bool:
        """Returns False when the bag is over."""
        waits = sorted(w for w in wait_at if w > self.t)
        while True:
            if self._pending is None:
                self._pending = next(self._messages, None)
            if self._pending is None:  # the bag is over: the clock still runs to `until`
                conn, t, raw = None, until if until != float("inf") else self.t, None
            else:
                conn, stamp_ns, raw = self._pending
                t = stamp_ns * 1e-9
            while waits and waits[0] <= min(t, until):
                time.sleep(self.settle_s)  # what was sent before this time is in the nodes' buffers first
                self.tick(waits[0])
                if ready is not None:
                    wait_until(lambda w=waits[0]: ready(w), timeout, f"the graph to catch up at t={waits[0]:.1f} s")
                waits.pop(0)
            if conn is None:
                if t > self.t:
                    self.tick(t)
                return False
            if t > until:
                return True
            if t > self.t:
                self.tick(t)
            self.pubs[conn.topic].publish(bytes(raw))
            self._pending = None
            time.sleep(self.gap_s)

    def close(self) -> None:
        self.reader.close()
