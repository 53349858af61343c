"""A minimal stand-in for the part of rclpy the egomem nodes use, for machines without ROS 2.

Built from rclpy's documented API (Node.create_subscription/publisher/service/client/timer,
declare_parameter, get_clock, rclpy.lifecycle's LifecycleNode/State/TransitionCallbackReturn, QoS
profiles, callback groups, executors). Messages are rosbags' classes for the same definitions, with
ROS defaults, so field names and types match real ROS 2. Lives under test/ and is never shipped.
"""
from __future__ import annotations

import enum
import sys
import types
from dataclasses import fields as dc_fields

from egomem_ros.ros_types import make, typestore


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def now(self):
        clock = self

        class _Now:
            nanoseconds = int(clock.t * 1e9)

            def to_msg(self_inner):
                return make("builtin_interfaces/msg/Time", {"sec": int(clock.t), "nanosec": 0})

        return _Now()


class Publisher:
    def __init__(self, msg_type, topic):
        self.msg_type, self.topic, self.sent = msg_type, topic, []

    def publish(self, msg):
        self.sent.append(msg)

    def get_subscription_count(self):
        return 1


class _Param:
    def __init__(self, value):
        self.value = value


class _Logger:
    def __init__(self):
        self.lines = []

    def _log(self, level, msg, **_):
        self.lines.append((level, msg))

    def info(self, msg, **kw):
        self._log("info", msg, **kw)

    def warning(self, msg, **kw):
        self._log("warning", msg, **kw)

    def error(self, msg, **kw):
        self._log("error", msg, **kw)

    def fatal(self, msg, **kw):
        self._log("fatal", msg, **kw)


class Node:
    overrides: dict = {}  # parameters as a launch file / YAML would set them

    def __init__(self, name, **_):
        self.name = name
        self.subscriptions, self.publishers, self.services, self.clients, self.timers = {}, {}, {}, {}, []
        self.parameters = {}
        self.clock = FakeClock()
        self.logger = _Logger()

    def declare_parameter(self, name, value=None, descriptor=None):
        self.parameters[name] = _Param(self.overrides.get(name, value))
        return self.parameters[name]

    def get_parameter(self, name):
        return self.parameters[name]

    def create_subscription(self, msg_type, topic, callback, qos, callback_group=None):
        self.subscriptions[topic] = (msg_type, callback)
        return ("sub", topic)

    def create_publisher(self, msg_type, topic, qos, callback_group=None):
        self.publishers[topic] = Publisher(msg_type, topic)
        return self.publishers[topic]

    create_lifecycle_publisher = create_publisher

    def create_service(self, srv_type, name, callback, callback_group=None):
        self.services[name] = (srv_type, callback)
        return ("srv", name)

    def create_client(self, srv_type, name, callback_group=None):
        self.clients[name] = srv_type
        return types.SimpleNamespace(service_is_ready=lambda: False)

    def create_timer(self, period, callback, callback_group=None):
        self.timers.append((period, callback))
        return ("timer", len(self.timers))

    def destroy_timer(self, t):
        pass

    def destroy_service(self, s):
        self.services.pop(s[1], None)

    def destroy_subscription(self, s):
        self.subscriptions.pop(s[1], None)

    def get_clock(self):
        return self.clock

    def get_logger(self):
        return self.logger

    def get_name(self):
        return self.name

    def destroy_node(self):
        pass


class TransitionCallbackReturn(enum.Enum):
    SUCCESS = 0
    FAILURE = 1
    ERROR = 2


class LifecycleNode(Node):
    def on_activate(self, state):
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state):
        return TransitionCallbackReturn.SUCCESS


def _msg_class(typename: str):
    """A message class with ROS's default constructor (keyword fields, defaults for the rest)."""
    store = typestore()
    real = store.types[typename]

    def __new__(cls, **kw):
        return make(typename, kw)

    attrs = {"__new__": __new__}
    for key, value in vars(real).items():  # constants such as Identity.KNOWN
        if key.isupper():
            attrs[key] = value
    return type(typename.rsplit("/", 1)[-1], (), attrs)


def _srv_class(package: str, name: str):
    base = f"{package}/srv/msg/{name}"
    return type(name, (), {"Request": _msg_class(base + "_Request"), "Response": _msg_class(base + "_Response")})


def install(overrides: dict | None = None) -> None:
    """Put fake rclpy and message packages into sys.modules."""
    Node.overrides = dict(overrides or {})
    mods = {}

    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        mods[name] = m
        return m

    qos = types.SimpleNamespace
    module("rclpy", init=lambda args=None: None, try_shutdown=lambda: None, spin=lambda n: None)
    module("rclpy.node", Node=Node)
    module("rclpy.lifecycle", LifecycleNode=LifecycleNode, Node=LifecycleNode, State=object,
           TransitionCallbackReturn=TransitionCallbackReturn)
    module("rclpy.qos", QoSProfile=lambda **kw: qos(**kw), qos_profile_sensor_data=qos(name="sensor_data"),
           DurabilityPolicy=qos(TRANSIENT_LOCAL="transient_local", VOLATILE="volatile"),
           HistoryPolicy=qos(KEEP_LAST="keep_last"), ReliabilityPolicy=qos(RELIABLE="reliable", BEST_EFFORT="be"))
    module("rclpy.callback_groups", MutuallyExclusiveCallbackGroup=object, ReentrantCallbackGroup=object)
    module("rclpy.executors", MultiThreadedExecutor=lambda num_threads=None: types.SimpleNamespace(
        add_node=lambda n: None, spin=lambda: None))
    module("rcl_interfaces")
    module("rcl_interfaces.msg", ParameterDescriptor=lambda **kw: qos(**kw))
    ts = typestore()
    for typename in ts.fielddefs:
        package, kind, *rest = typename.split("/")
        if kind != "msg" or rest[0] == "msg":
            continue
        mod = mods.get(f"{package}.msg") or module(f"{package}.msg")
        mods.setdefault(package, types.ModuleType(package))
        setattr(mod, rest[0], _msg_class(typename))
    srv = module("egomem_msgs.srv")
    for name in ("RetrieveText", "GetProfile", "ListUsers", "EnrollUser", "ForgetUser", "MergeUsers"):
        setattr(srv, name, _srv_class("egomem_msgs", name))
    sys.modules.update(mods)


def uninstall() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in ("rclpy", "rcl_interfaces", "egomem_msgs", "sensor_msgs", "std_msgs", "hri_msgs",
                                  "audio_common_msgs", "visualization_msgs", "diagnostic_msgs", "builtin_interfaces",
                                  "geometry_msgs") or name.startswith("egomem_ros.ros."):
            del sys.modules[name]


__all__ = ["FakeClock", "Node", "Publisher", "dc_fields", "install", "uninstall"]
