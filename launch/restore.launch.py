"""Launch restore_node: ros2 launch allweather_ros restore.launch.py [name:=value ...]

Example:
  ros2 launch allweather_ros restore.launch.py input_topics:=/front/image_raw,/rear/image_raw \
      backend:=tensorrt:fp16 namespace:=weather

Every node parameter is also a launch argument of the same name (lists comma separated); one
given overrides the config file, one left empty keeps the file's value. The arguments come from
the same table as the node's parameters (allweather_ros/options.py).

Every camera driver and viewer that exchanges large frames with the node needs the same Fast
DDS profile (the launch file sets it only for what it starts): export
FASTDDS_DEFAULT_PROFILES_FILE=$(ros2 pkg prefix allweather_ros)/share/allweather_ros/config/
fastdds_shm.xml in their shells too, or pass fastdds_profile:=none to leave it alone.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from allweather_ros.options import OPTIONS

SHARE = get_package_share_directory("allweather_ros")
ARGUMENTS = {
    "config": (os.path.join(SHARE, "config", "restore.yaml"),
               "parameters file of restore_node (see its comments for every parameter)"),
    "namespace": ("", "namespace of the node; relative input topics resolve inside it"),
    "use_sim_time": ("false", "use /clock (bag replay) instead of the system clock"),
    "fastdds_profile": (os.path.join(SHARE, "config", "fastdds_shm.xml"),
                        "Fast DDS profile put in FASTDDS_DEFAULT_PROFILES_FILE (large frames "
                        "over shared memory); none leaves the environment as it is"),
    **{option.name: ("", f"{option.description} ({option.allowed}); empty: the config's")
       for option in OPTIONS},
}


def _actions(context):
    """Resolve the arguments: only those given override the config file."""
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    overrides = {"use_sim_time": value["use_sim_time"].lower() in ("true", "1", "yes")}
    for option in OPTIONS:
        if value[option.name]:
            overrides[option.name] = option.parse(value[option.name])
    actions = []
    if value["fastdds_profile"] != "none":
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                              value["fastdds_profile"]))
    actions.append(Node(package="allweather_ros", executable="restore_node",
                        name="restore_node", namespace=value["namespace"],
                        parameters=[value["config"], overrides], output="screen",
                        emulate_tty=True))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, (default, description) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_actions)])
