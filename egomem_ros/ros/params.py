"""ROS 2 parameters from the egomem config schema: one validator for files, `-p`, and `ros2 param set`.

Every schema key under a node's prefixes is declared with its type, its range and a description. The
values a node starts with are validated by the schema first (so `-p identity.poll_period_s:=2`, an
integer, is a valid 2.0 and `null`-free), a key in the parameter file that the schema does not know is
an error, and a run-time change is validated by the same schema and either applied or refused with the
reason. Which keys apply while the node runs is the node's choice (`live`); the others take effect at the
next configure and are refused while the node is configured.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import annotated_types as at
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..config import ConfigError, EgomemConfig, flatten, unflatten

# Parameters every ROS 2 node may carry that are not egomem's (rclpy's, launch's, ours).
ROS_PARAMETERS = ("use_sim_time", "start_type_description_service", "autostart")
ROS_PARAMETER_PREFIXES = ("qos_overrides.",)
INT64_MAX = 2**63 - 1


def field_info(dotted: str):
    """The pydantic FieldInfo of a dotted schema key (`identity.face.upsample`)."""
    *parents, leaf = dotted.split(".")
    model: Any = EgomemConfig
    for part in parents:
        model = model.model_fields[part].annotation
    return model.model_fields[leaf]


def _bounds(dotted: str) -> tuple[float | None, float | None]:
    low = high = None
    for m in field_info(dotted).metadata:
        if isinstance(m, (at.Ge, at.Gt)):
            low = m.ge if isinstance(m, at.Ge) else m.gt
        elif isinstance(m, (at.Le, at.Lt)):
            high = m.le if isinstance(m, at.Le) else m.lt
    return low, high


def descriptor(dotted: str, default: Any, live: bool) -> ParameterDescriptor:
    """Type, range and description, so `ros2 param describe` and rqt show what the schema allows."""
    when = "applied at once" if live else "applied at the next configure"
    desc = ParameterDescriptor(description=f"egomem `{dotted}` ({when}; see config/egomem.yaml)")
    low, high = _bounds(dotted)
    if low is None and high is None or isinstance(default, bool):
        return desc
    if isinstance(default, int):
        desc.integer_range = [IntegerRange(from_value=int(low if low is not None else -INT64_MAX),
                                           to_value=int(high if high is not None else INT64_MAX), step=0)]
    elif isinstance(default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(low if low is not None else -math.inf),
                                                        to_value=float(high if high is not None else math.inf),
                                                        step=0.0)]
    # the schema's exclusive bounds (gt/lt) are stricter than a ROS range; the schema decides
    return desc


def unknown_overrides(node: Node) -> list[str]:
    """Parameter overrides (file, `-p`) that are neither a schema key nor a ROS-level parameter."""
    known = set(flatten(EgomemConfig()))
    return sorted(name for name in node._parameter_overrides  # noqa: SLF001 - rclpy keeps them only here
                  if name not in known and name not in ROS_PARAMETERS and not name.startswith(ROS_PARAMETER_PREFIXES))


def check_command_line(argv: Sequence[str]) -> None:
    """Validate the `-p key:=value` of the command line against the schema. With `--params-file`, rcl
    silently drops a `-p` value whose type differs from the file's (`-p identity.poll_period_s:=abc`
    runs with the file's 2.0): raises ConfigError naming the key instead."""
    import yaml

    known = flatten(EgomemConfig())
    ros = list(argv)[list(argv).index("--ros-args") + 1:] if "--ros-args" in argv else []
    given = {}
    for flag, arg in zip(ros, ros[1:]):
        if flag in ("-p", "--param") and ":=" in arg:
            name, text = arg.split(":=", 1)
            if name in known:
                try:
                    given[name] = _coerce(yaml.safe_load(text), known[name])
                except yaml.YAMLError:
                    given[name] = text
    if given:
        unflatten(known | given)   # ConfigError names the key and what is wrong


def _coerce(value: Any, default: Any) -> Any:
    """A ROS integer where the schema wants a float (`-p x:=2`) is that float."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class SchemaParameters:
    """Declares a node's schema keys, validates them, and applies or refuses run-time changes."""

    def __init__(self, node: Node, prefixes: tuple[str, ...], live: Iterable[str] = (),
                 on_live_change: Callable[[dict[str, Any]], None] | None = None,
                 can_reconfigure: Callable[[], bool] = lambda: True) -> None:
        self.node, self.live = node, frozenset(live)
        self.on_live_change = on_live_change
        self.can_reconfigure = can_reconfigure
        self.defaults = {k: v for k, v in flatten(EgomemConfig()).items() if k.startswith(prefixes)}
        unknown = unknown_overrides(node)
        if unknown:
            raise ConfigError("unknown egomem parameters (misspelt? see config/egomem.yaml): " + ", ".join(unknown))
        overrides = node._parameter_overrides  # noqa: SLF001
        values = {k: _coerce(overrides[k].value, d) if k in overrides else d for k, d in self.defaults.items()}
        self.config = unflatten(values)  # ConfigError names the key and what is wrong
        validated = flatten(self.config)
        for name, default in self.defaults.items():
            node.declare_parameter(name, validated[name], descriptor(name, default, name in self.live),
                                   ignore_override=True)
        node.add_pre_set_parameters_callback(self._coerce_types)
        node.add_on_set_parameters_callback(self._validate)

    def current(self) -> EgomemConfig:
        """The configuration as the parameters hold it now (read again at configure)."""
        self.config = unflatten({k: self.node.get_parameter(k).value for k in self.defaults})
        return self.config

    def _coerce_types(self, params: list[Parameter]) -> list[Parameter]:
        return [Parameter(p.name, value=_coerce(p.value, self.defaults[p.name])) if p.name in self.defaults else p
                for p in params]

    def _validate(self, params: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in self.defaults}
        if not changes:
            return SetParametersResult(successful=True)
        later = sorted(set(changes) - self.live)
        if later and not self.can_reconfigure():
            return SetParametersResult(successful=False, reason=(
                f"{', '.join(later)} take effect at configure: deactivate and clean up the node first "
                f"(applied while running: {', '.join(sorted(self.live)) or 'none'})"))
        values = {k: self.node.get_parameter(k).value for k in self.defaults} | changes
        try:
            new = unflatten(values)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        live = {k: v for k, v in flatten(new).items() if k in changes and k in self.live}
        for name, value in live.items():  # the same config objects the core holds: it sees the change
            *parents, leaf = name.split(".")
            section: Any = self.config
            for part in parents:
                section = getattr(section, part)
            setattr(section, leaf, value)
        if live and self.on_live_change is not None:
            self.on_live_change(live)
        return SetParametersResult(successful=True)
