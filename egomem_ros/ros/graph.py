"""The egomem ROS graph in one place: launch arguments, and each node's parameters and remappings.

`launch/robot.launch.py` turns this into launch actions (once the launch arguments are resolved); the
end-to-end test turns it into command lines (`command_line`). Neither keeps its own copy. ROS-free:
plain data and small functions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# name -> (default, description). `params_file` defaults to the installed config/egomem.yaml. An empty
# value of an argument in OVERRIDES leaves the parameter to the params file: a launch default never
# overrides what the user's file says.
LAUNCH_ARGS: dict[str, tuple[str, str]] = {
    "params_file": ("", "egomem parameters (ROS layout, validated by the egomem schema); empty: the shipped one"),
    "db_path": ("", "memory database; empty: the params file's store.db_path ($XDG_DATA_HOME/egomem/memory.db)"),
    "learn_new_users": ("", "true | false: enrol people the robot does not know; empty: the params file's"),
    "dialog_mode": ("", "external (your dialog stack) | cascaded (chat LLM) | moshi (full-duplex model); "
                        "empty: the params file's (external)"),
    "dialog_checkpoint": ("", "moshi mode: HF repo id (kyutai/moshiko-pytorch-bf16) or a local checkpoint dir"),
    "device": ("", "cpu | cuda for the dialog model; empty: the params file's (cpu)"),
    "use_sim_time": ("false", "true when playing bags with --clock"),
    "image_topic": ("/camera/image_raw", "sensor_msgs/Image camera topic"),
    "compressed_image_topic": ("/camera/image_raw/compressed", "sensor_msgs/CompressedImage camera topic"),
    "audio_topic": ("/audio", "audio_common_msgs/AudioDataStamped microphone topic"),
    "audio_info_topic": ("/audio_info", "audio_common_msgs/AudioInfo of the microphone"),
    "transcript_topic": ("/asr/transcript", "std_msgs/String transcripts from an ASR node (optional)"),
    "dialog_text_topic": ("/dialog/text", "std_msgs/String text of the dialog model (its <retr> queries)"),
}


# What the nodes publish that replay writes too, under the same names and types, so that one rviz config
# (config/egomem.rviz) and one Foxglove layout serve a live robot and a replayed bag. The node names are
# relative (`identity`, `markers`, `~/debug_image`); in the default namespace they resolve to these.
OUTPUT_TOPICS: dict[str, tuple[str, str]] = {
    "identity": ("/identity", "egomem_msgs/msg/Identity"),
    "l1": ("/memchunk/level1", "egomem_msgs/msg/MemChunk"),
    "l2": ("/memchunk/level2", "egomem_msgs/msg/MemChunk"),
    "events": ("/memory_events", "egomem_msgs/msg/MemoryEvent"),
    "debug": ("/identity_node/debug_image", "sensor_msgs/msg/Image"),
    "markers": ("/markers", "visualization_msgs/msg/MarkerArray"),
    "matches": ("/humans/candidate_matches", "hri_msgs/msg/IdsMatch"),
}


@dataclass
class NodeSpec:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)   # on top of the params file
    remappings: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def executable(self) -> str:
        return self.name


# launch argument -> the parameter it sets, when it is given (not empty)
OVERRIDES = {"db_path": "store.db_path", "learn_new_users": "identity.learn_new_users", "dialog_mode": "dialog.mode",
             "device": "dialog.device", "dialog_checkpoint": "dialog.checkpoint"}
FLAGS = {"learn_new_users", "use_sim_time"}


def node_specs(arg: Callable[[str], str]) -> list[NodeSpec]:
    """The three lifecycle nodes. `arg(name)` gives a launch argument's value as text (what the user
    gave, or the default)."""
    def given(*names: str) -> dict[str, Any]:
        return {OVERRIDES[n]: (arg(n).lower() == "true" if n in FLAGS else arg(n)) for n in names if arg(n) != ""}

    sensors = [("image", arg("image_topic")), ("image/compressed", arg("compressed_image_topic")),
               ("audio", arg("audio_topic")), ("audio_info", arg("audio_info_topic"))]
    sim_time = {"use_sim_time": arg("use_sim_time").lower() == "true"}
    common = given("db_path", "learn_new_users") | sim_time
    dialog_text = ("dialog/text", arg("dialog_text_topic"))
    return [
        NodeSpec("identity_node", dict(common), list(sensors)),
        NodeSpec("memory_node", dict(common), sensors + [("transcript", arg("transcript_topic")), dialog_text]),
        NodeSpec("dialog_node", given("dialog_mode", "device", "dialog_checkpoint") | sim_time,
                 [("audio", arg("audio_topic")), ("audio_info", arg("audio_info_topic")), dialog_text]),
    ]


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'" if value == "" else str(value)


def command_line(spec: NodeSpec, params_file: str, extra: dict[str, Any] | None = None) -> list[str]:
    """`<executable> --ros-args ...` as `ros2 launch` would start the node, without launch."""
    argv = [spec.executable, "--ros-args", "-r", f"__node:={spec.name}", "--params-file", params_file]
    for key, value in {**spec.parameters, **(extra or {})}.items():
        argv += ["-p", f"{key}:={_ros_value(value)}"]
    for src, dst in spec.remappings:
        argv += ["-r", f"{src}:={dst}"]
    return argv


def plain_args(**overrides: str) -> Callable[[str], str]:
    """`arg` for `node_specs`: the launch defaults with `overrides`, as a launch file would resolve them."""
    values = {name: default for name, (default, _) in LAUNCH_ARGS.items()} | overrides
    return values.__getitem__
