"""egomem on a robot: identity, memory and dialog, three lifecycle nodes configured and activated in turn.

ros2 launch egomem_ros robot.launch.py image_topic:=/camera/color/image_raw audio_topic:=/audio/audio \
    db_path:=/var/lib/egomem/memory.db learn_new_users:=true dialog_mode:=external device:=cpu
# full-duplex: dialog_mode:=moshi dialog_checkpoint:=kyutai/moshiko-pytorch-bf16 device:=cuda
The nodes, their parameters and remappings come from egomem_ros/ros/graph.py (the end-to-end test starts
the same graph from there).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from egomem_ros.ros.graph import LAUNCH_ARGS, node_specs

SHIPPED_PARAMS = os.path.join(get_package_share_directory("egomem_ros"), "config", "egomem.yaml")


def _transition(node, transition_id):
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))


def _nodes(context):
    """The nodes, once the arguments are known: an argument left empty sets no parameter, so the params
    file decides (a launch default never overrides the user's file)."""
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    actions = []
    for spec in node_specs(arg):
        node = LifecycleNode(package="egomem_ros", executable=spec.executable, name=spec.name, namespace="",
                             output="screen", parameters=[arg("params_file"), spec.parameters],
                             remappings=spec.remappings)
        # configure at start, activate once configured (models load in configure)
        activate = RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, goal_state="inactive",
            entities=[_transition(node, Transition.TRANSITION_ACTIVATE)]))
        actions += [node, activate, _transition(node, Transition.TRANSITION_CONFIGURE)]
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(n, default_value=(d or SHIPPED_PARAMS) if n == "params_file" else d,
                                      description=h) for n, (d, h) in LAUNCH_ARGS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
