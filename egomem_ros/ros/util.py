"""Shared rclpy glue: filling messages from field dicts, the node clock, diagnostics."""
from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.node import Node


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


def diagnostics(node: Node, name: str, ok: bool, message: str, values: dict[str, Any]) -> Any:
    """One /diagnostics status (`egomem: <part>`), stamped with the node clock; the analyzer in
    config/diagnostics.yaml groups them under "egomem"."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN, name=f"egomem: {name}",
                              hardware_id="egomem", message=message)
    status.values = [KeyValue(key=k, value=f"{v:.2f}" if isinstance(v, float) else str(v)) for k, v in values.items()]
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


def now_s(node: Node) -> float:
    """The node clock (sim time under `use_sim_time`, so bag replays keep their own timeline)."""
    return node.get_clock().now().nanoseconds * 1e-9


class Outbox:
    """The node's publishers of the pipeline's outputs, by output key (`ros.graph.OUTPUT_TOPICS`): a pipeline
    step's `(key, fields)` messages go out unchanged. Keys this node does not publish are an error."""

    def __init__(self) -> None:
        self._pubs: dict[str, tuple[Any, type, dict[str, type]]] = {}

    def add(self, key: str, publisher: Any, msg_type: type, item_types: dict[str, type] | None = None) -> None:
        self._pubs[key] = (publisher, msg_type, item_types or {})

    def wants(self, key: str) -> bool:
        """Someone listens on `key` (an expensive output, like the debug image, is only made then)."""
        return key in self._pubs and self._pubs[key][0].get_subscription_count() > 0

    def publish(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        for key, fields in messages:
            pub, msg_type, item_types = self._pubs[key]
            pub.publish(fill(msg_type(), fields, item_types))
