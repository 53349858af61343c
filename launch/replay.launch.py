"""Bag testing: the robot launch with use_sim_time, plus `ros2 bag play --clock` of BAG.

ros2 launch egomem_ros replay.launch.py bag:=/path/to/bag [rate:=1.0] [db_path:=/tmp/replay.db]
(Without ROS, `egomem replay BAG --out OUT_BAG` runs the same pipeline with rosbags.)
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    robot = os.path.join(get_package_share_directory("egomem_ros"), "launch", "robot.launch.py")
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="ROS 2 bag to play"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("db_path", default_value="/tmp/egomem_replay.db", description="memory for this replay"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(robot),
                                 launch_arguments={"use_sim_time": "true", "db_path": LaunchConfiguration("db_path")}.items()),
        ExecuteProcess(cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock", "--rate",
                            LaunchConfiguration("rate")], output="screen"),
    ])
