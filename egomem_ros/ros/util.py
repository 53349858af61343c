"""Shared rclpy glue: parameters from the config schema, QoS, and filling messages from field dicts."""
from __future__ import annotations

from typing import Any

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from ..config import ConfigError, EgomemConfig, flatten, unflatten

SENSOR_QOS = qos_profile_sensor_data
# "Latched": a late joiner (the dialog node, rviz) gets the current MemChunk at once.
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENTS_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


def declare_config(node: Node, prefixes: tuple[str, ...]) -> EgomemConfig:
    """Declare every schema parameter under `prefixes` (with its default and a descriptor), read them
    back, and validate with the same schema as the CLI. A bad value raises ConfigError."""
    defaults = flatten(EgomemConfig())
    values = {}
    for name, default in defaults.items():
        if not name.startswith(prefixes):
            continue
        desc = ParameterDescriptor(description=f"egomem config `{name}` (see config/egomem.yaml)")
        values[name] = node.declare_parameter(name, default, desc).value
    try:
        return unflatten(values)
    except ConfigError as err:
        node.get_logger().fatal(str(err))
        raise


def fill(msg: Any, fields: dict[str, Any], item_types: dict[str, type] | None = None) -> Any:
    """Set `fields` (nested dicts, numpy arrays) on a generated rclpy message, in place."""
    for key, value in fields.items():
        if isinstance(value, dict):
            fill(getattr(msg, key), value, item_types)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            cls = (item_types or {})[key]
            setattr(msg, key, [fill(cls(), v, item_types) for v in value])
        elif isinstance(value, np.ndarray):
            setattr(msg, key, value.tobytes() if value.dtype == np.uint8 else value.tolist())
        else:
            setattr(msg, key, value)
    return msg


def now_s(node: Node) -> float:
    """The node clock (sim time under `use_sim_time`, so bag replays keep their own timeline)."""
    return node.get_clock().now().nanoseconds * 1e-9


def spin(node: Node, threads: int = 4) -> None:
    """Spin `node` on a MultiThreadedExecutor until Ctrl-C, then tear it down cleanly."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
