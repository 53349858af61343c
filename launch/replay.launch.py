"""Bag testing: the robot launch with use_sim_time, plus `ros2 bag play --clock` of BAG once every node
is active (`wait_active`: the nodes load their models in configure, and the start of the bag must not
play into inactive nodes).

ros2 launch egomem_ros replay.launch.py bag:=/path/to/bag [rate:=1.0] [db_path:=/tmp/replay.db] [wait_s:=120]
(Without ROS, `egomem replay BAG --out OUT_BAG` runs the same pipeline with rosbags.)
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, RegisterEventHandler, Shutdown
from launch.event_handlers import OnProcessExit
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from egomem_ros.ros.graph import node_specs, plain_args


def generate_launch_description():
    robot = os.path.join(get_package_share_directory("egomem_ros"), "launch", "robot.launch.py")
    names = [spec.name for spec in node_specs(plain_args())]
    waiter = Node(package="egomem_ros", executable="wait_active", output="screen",
                  arguments=[*names, "--timeout", LaunchConfiguration("wait_s")])
    play = ExecuteProcess(cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock", "--rate",
                               LaunchConfiguration("rate")], output="screen")
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="ROS 2 bag to play"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("db_path", default_value="/tmp/egomem_replay.db", description="memory for this replay"),
        DeclareLaunchArgument("wait_s", default_value="120", description="seconds to wait for the nodes to be active"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(robot),
                                 launch_arguments={"use_sim_time": "true", "db_path": LaunchConfiguration("db_path")}.items()),
        waiter,
        RegisterEventHandler(OnProcessExit(target_action=waiter, on_exit=lambda event, _: (
            [play] if event.returncode == 0 else [Shutdown(reason="the egomem nodes did not become active")]))),
    ])
