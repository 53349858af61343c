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
        when its DDS lease runs out. On a loaded machine the goodbye of a clean exit can be lost on the
        loopback too (a full suite beside a replay loop: still listed after 30 s), and then the lease
        decides: the bound is the lease with a margin load cannot break, not a speed."""
        self.stop()
        wait_until(lambda: self.name not in probe.get_node_names(), 90, f"{self.name} to leave the graph")


def message_class(msgtype: str):
    """`sensor_msgs/msg/Image` -> the rclpy message class."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def _qos(msgtype: str):
    """Reliable and deep; a stream-info topic latched, as audio drivers publish it: its one message of
    the recording must reach a node whose subscription matched a moment after it was sent."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    if msgtype.endswith("/AudioInfo"):
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return 200


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
        self.pubs = {c.topic: node.create_publisher(message_class(c.msgtype), c.topic, _qos(c.msgtype))
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


class LivePlayer:
    """Plays a bag in real time as a robot's drivers publish it: header stamps restamped to wall time with
    jitter, sensor-data QoS (best effort), camera frames and audio chunks lost at random and in bursts, and
    the microphone in `audio_chunk_s` chunks (audio_capture sends 20-100 ms). Other topics (AudioInfo, text)
    go out reliable, as their drivers send them. `lost` counts what was dropped, per topic. With `record`,
    what was sent is also written to that bag (log time: when it was sent), as `ros2 bag record` on the
    robot would keep it: the recording `egomem replay` must remember the same from."""

    def __init__(self, node: Node, bag: Path, rng, *, jitter_s: float = 0.01, frame_loss: float = 0.05,
                 audio_loss: float = 0.01, burst: int = 3, audio_chunk_s: float = 0.1,
                 camera_topics: tuple[str, ...] = ("/camera/image_raw", "/camera/image_raw/compressed"),
                 audio_topic: str = "/audio", record: Path | None = None) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from rosbags.highlevel import AnyReader

        self.node, self.rng, self.jitter_s, self.burst, self.chunk_s = node, rng, jitter_s, burst, audio_chunk_s
        self.loss = {t: frame_loss for t in camera_topics} | {audio_topic: audio_loss}
        self.audio_topic = audio_topic
        self.reader = AnyReader([Path(bag)])
        self.reader.open()
        self.types = {c.topic: c.msgtype for c in self.reader.connections}
        # sensor-data QoS (best effort); the microphone's writer keeps more than 5 chunks, as the nodes' reader
        # does, so that chunks sent in a burst (a driver that fell behind) are not overwritten on the way
        audio_qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.pubs = {t: node.create_publisher(message_class(m), t, (audio_qos if t == audio_topic else qos_profile_sensor_data)
                                              if t in self.loss else 200)
                     for t, m in self.types.items()}
        self.lost: dict[str, int] = {t: 0 for t in self.loss}
        self.sent: dict[str, int] = {t: 0 for t in self.types}
        self._burst_left: dict[str, int] = {t: 0 for t in self.loss}
        self.writer = None
        if record is not None:
            from rosbags.rosbag2 import StoragePlugin, Writer

            self.writer = Writer(Path(record), version=8, storage_plugin=StoragePlugin.MCAP)
            self.writer.open()
            self.recorded = {c.topic: self.writer.add_connection(c.topic, c.msgtype, typestore=self.reader.typestore)
                             for c in self.reader.connections}

    def subscribers(self, topic: str) -> int:
        return self.pubs[topic].get_subscription_count()

    def _drop(self, topic: str) -> bool:
        """Half of the loss as single messages, half as bursts of `burst` messages."""
        p = self.loss.get(topic, 0.0)
        if self._burst_left.get(topic, 0) > 0:
            self._burst_left[topic] -= 1
            return True
        u = self.rng.random()
        if u < p / 2:
            return True
        if u < p / 2 + p / (2 * self.burst):
            self._burst_left[topic] = self.burst - 1
            return True
        return False

    def play(self, until: float = float("inf")) -> float:
        """Publish every message at its bag time from now on; returns the wall time of bag time 0."""
        from builtin_interfaces.msg import Time
        from rclpy.serialization import deserialize_message, serialize_message

        events = []   # (bag time, topic, message): the recording's chunks cut as a microphone driver sends them
        for conn, stamp_ns, raw in self.reader.messages():
            t = stamp_ns * 1e-9
            if t > until:
                break
            cls = message_class(conn.msgtype)
            msg = deserialize_message(bytes(raw), cls)
            if conn.topic != self.audio_topic:
                events.append((t, conn.topic, msg))
                continue
            data, step = bytes(msg.audio.data), int(self.chunk_s * 16_000) * 2
            for i in range(0, len(data), step):
                part = cls()
                part.header.frame_id = msg.header.frame_id
                part.audio.data = data[i:i + step]
                events.append((t + i / 2 / 16_000, conn.topic, part))
        events.sort(key=lambda e: e[0])
        start = time.time() + 0.2
        for at, topic, m in events:
            delay = start + at - time.time()
            if delay > 0:
                time.sleep(delay)
            if self._drop(topic):
                self.lost[topic] += 1
                continue
            if hasattr(m, "header"):
                wall = start + at + float(self.rng.normal(0.0, self.jitter_s))
                sec = int(wall)
                m.header.stamp = Time(sec=sec, nanosec=int((wall - sec) * 1e9))
            self.pubs[topic].publish(m)
            if self.writer is not None:
                self.writer.write(self.recorded[topic], time.time_ns(), serialize_message(m))
            self.sent[topic] += 1
        return start

    def close(self) -> None:
        for pub in self.pubs.values():
            self.node.destroy_publisher(pub)
        self.reader.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
