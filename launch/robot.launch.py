"""egomem on a robot: identity + memory (lifecycle, configured and activated automatically) + dialog.

ros2 launch egomem_ros robot.launch.py image_topic:=/camera/color/image_raw audio_topic:=/audio/audio \
    db_path:=/var/lib/egomem/memory.db learn_new_users:=true dialog_mode:=external device:=cpu
# full-duplex: dialog_mode:=moshi dialog_checkpoint:=kyutai/moshiko-pytorch-bf16 device:=cuda
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from lifecycle_msgs.msg import Transition

ARGS = {
    "params_file": (os.path.join(get_package_share_directory("egomem_ros"), "config", "egomem.yaml"),
                    "egomem parameters (ROS layout, validated by the egomem schema)"),
    "db_path": ("", "memory database; empty: $XDG_DATA_HOME/egomem/memory.db"),
    "learn_new_users": ("true", "enrol people the robot does not know"),
    "dialog_mode": ("external", "external (your dialog stack) | cascaded (chat LLM) | moshi (full-duplex model)"),
    "dialog_checkpoint": ("", "moshi mode: HF repo id (kyutai/moshiko-pytorch-bf16) or a local checkpoint dir"),
    "device": ("cpu", "cpu | cuda for the dialog model"),
    "use_sim_time": ("false", "true when playing bags with --clock"),
    "image_topic": ("/camera/image_raw", "sensor_msgs/Image camera topic"),
    "compressed_image_topic": ("/camera/image_raw/compressed", "sensor_msgs/CompressedImage camera topic"),
    "audio_topic": ("/audio", "audio_common_msgs/AudioDataStamped microphone topic"),
    "audio_info_topic": ("/audio_info", "audio_common_msgs/AudioInfo of the microphone"),
    "transcript_topic": ("/asr/transcript", "std_msgs/String transcripts from an ASR node (optional)"),
}


def generate_launch_description():
    cfg = {name: LaunchConfiguration(name) for name in ARGS}
    common = [cfg["params_file"], {
        "store.db_path": cfg["db_path"],
        "identity.learn_new_users": ParameterValue(cfg["learn_new_users"], value_type=bool),
        "use_sim_time": ParameterValue(cfg["use_sim_time"], value_type=bool),
    }]
    sensors = [("image", cfg["image_topic"]), ("image/compressed", cfg["compressed_image_topic"]),
               ("audio", cfg["audio_topic"]), ("audio_info", cfg["audio_info_topic"])]
    identity = Node(package="egomem_ros", executable="identity_node", name="identity_node", output="screen",
                    parameters=common, remappings=sensors)
    memory = LifecycleNode(package="egomem_ros", executable="memory_node", name="memory_node", namespace="",
                           output="screen", parameters=common,
                           remappings=sensors + [("transcript", cfg["transcript_topic"])])
    dialog = Node(package="egomem_ros", executable="dialog_node", name="dialog_node", output="screen",
                  parameters=[cfg["params_file"], {"dialog.mode": cfg["dialog_mode"], "dialog.device": cfg["device"],
                                                   "dialog.checkpoint": cfg["dialog_checkpoint"],
                                                   "use_sim_time": ParameterValue(cfg["use_sim_time"], value_type=bool)}],
                  remappings=[("audio", cfg["audio_topic"]), ("audio_info", cfg["audio_info_topic"])])
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(memory),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=memory, goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(memory),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription([DeclareLaunchArgument(n, default_value=d, description=h) for n, (d, h) in ARGS.items()]
                             + [identity, memory, activate, configure, dialog])
