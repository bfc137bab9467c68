"""`allweather launch`: what launch/restore.launch.py does, for machines without ROS launch.

It starts the same node with the same parameters file and the same Fast DDS environment (the
shared-memory profile, without which 640x480 frames are silently lost on best-effort QoS), by
replacing this process with the node, so signals and the exit status are the node's own.

Packaged files are found where an install puts them: the ament index (colcon, or a ROS
install), then <prefix>/share/allweather_ros (pip installs setup.py's data_files there), then
the source tree (a checkout or an editable install).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PACKAGE = "allweather_ros"
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"


def share_dir() -> Path:
    """The package's share directory, holding config/ and launch/."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError, OSError):  # no ament index, or the package is not in it
        pass
    installed = Path(sys.prefix) / "share" / PACKAGE
    if (installed / "config").is_dir():
        return installed
    return Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allweather launch",
        description="Start restore_node with a parameters file and the Fast DDS shared-memory "
                    "profile; arguments it does not know are passed on as ROS arguments "
                    "(e.g. -p backend:=onnxruntime -r __ns:=/front).")
    parser.add_argument("--config", type=Path, default=None,
                        help="parameters file (default: the packaged config/restore.yaml)")
    parser.add_argument("--fastdds-profile", default=None, metavar="FILE|none",
                        help=f"Fast DDS profile put in {PROFILE_VARIABLE} (default: the "
                             f"packaged config/fastdds_shm.xml, unless {PROFILE_VARIABLE} is "
                             "already set); none leaves the environment as it is")
    return parser


def launch_command(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The node's command line and environment for `allweather launch ARGV`.

    Raises FileNotFoundError naming a missing config or profile file.
    """
    if argv[:1] == ["--"]:  # `allweather launch -- --config X`: the separator is not an argument
        argv = argv[1:]
    args, ros_args = _parser().parse_known_args(argv)
    share = share_dir()
    config = args.config or share / "config" / "restore.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"parameters file {config} does not exist")
    env = dict(os.environ)
    profile = args.fastdds_profile
    if profile is None and PROFILE_VARIABLE not in env:
        profile = str(share / "config" / "fastdds_shm.xml")
    if profile is not None and profile != "none":
        if not Path(profile).is_file():
            raise FileNotFoundError(f"Fast DDS profile {profile} does not exist")
        env[PROFILE_VARIABLE] = str(Path(profile).resolve())
    if ros_args[:1] == ["--ros-args"]:
        ros_args = ros_args[1:]
    command = [sys.executable, "-m", f"{PACKAGE}.ros.restore_node", "--ros-args",
               "--params-file", str(config.resolve()), *ros_args]
    return command, env


def launch_main(argv: list[str]) -> int:
    """Replace this process with the node; returns only to report a bad argument (2)."""
    try:
        command, env = launch_command(argv)
    except FileNotFoundError as error:
        print(f"allweather launch: {error}", file=sys.stderr)
        return 2
    os.execve(command[0], command, env)
