"""restore_node's configuration without DDS: parameter validation, topic naming, the YAML and
the launch file agreeing with the node, and `allweather launch`'s command line."""
from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import yaml

from allweather_ros.options import BY_NAME, DEFAULTS, OPTIONS, problems
from allweather_ros.ros import launcher
from allweather_ros.topics import camera_topics

ROOT = Path(__file__).resolve().parent.parent


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_yaml_lists_every_parameter_with_the_node_defaults():
    document = yaml.safe_load((ROOT / "config" / "restore.yaml").read_text())
    values = flatten(document["/**/restore_node"]["ros__parameters"])
    assert set(values) == set(BY_NAME)
    for name, value in values.items():
        if name != "cache_dir":  # the YAML says ~, the node's default is the expanded path
            assert value == DEFAULTS[name], name
    assert not problems({**values, "prior.provider": "none"})


def test_defaults_are_valid_and_described():
    assert DEFAULTS["prior.provider"] == "builtin" and DEFAULTS["autostart"] is True
    assert not problems(DEFAULTS)
    assert all(o.description and o.allowed for o in OPTIONS)


@pytest.mark.parametrize("name, value, allowed", [
    ("input_topics", [], "non-empty"),
    ("input_topics", ["/a/image_raw", "/a/image_raw"], "distinct"),
    ("input_topics", ["not a topic"], "valid topic"),
    ("input_transport", "ffmpeg", "auto | raw | compressed"),
    ("output_namespace", "re/stored", "one name token"),
    ("backend", "onnxruntime:fp8", ":PRECISION"),
    ("backend", "torch:int8", "torch: fp32, fp16, bf16"),
    ("backend", "onnxruntime:fp16", "onnxruntime: fp32, int8;"),
    ("backend", "onnxruntime-gpu:int8", "onnxruntime-gpu: fp32;"),
    ("backend", "tensorrt:int8", "tensorrt: fp32, fp16;"),
    ("weights", "/nonexistent/model.safetensors", "existing .safetensors"),
    ("weights", str(ROOT / "setup.py"), "existing .safetensors"),
    ("threads", -1, ">= 0"),
    ("device", "gpu", "cuda:N"),
    ("jpeg_quality", 0, "1..100"),
    ("png_level", 10, "0..9"),
    ("diagnostics_period_s", math.inf, "0.01..3600"),
    ("prior.provider", "oracle", "builtin | vlm | fixed | none"),
    ("prior.period_s", 0.0, "> 0"),
    ("prior.min_confidence", 1.5, "[0, 1]"),
])
def test_bad_values_are_named_with_what_is_allowed(name, value, allowed):
    found = problems({**DEFAULTS, name: value}, [name])
    assert len(found) == 1
    assert f"'{name}'" in found[0] and repr(value) in found[0] and allowed in found[0]


def test_providers_that_need_an_option_say_so():
    assert "prior.fixed_text" in problems({**DEFAULTS, "prior.provider": "fixed"})[0]
    assert "prior.vlm_model" in problems({**DEFAULTS, "prior.provider": "vlm"})[0]
    assert not problems({**DEFAULTS, "prior.provider": "fixed", "prior.fixed_text": "fog"})


def test_backend_precisions_come_from_the_registry():
    """torch:bf16 (which the CLI offers) is accepted; int8 only where its calibration data is
    supplied: onnxruntime (and auto, which tries it), no other backend."""
    for spec in ("torch:bf16", "auto:bf16", "tensorrt:fp16", "torch_tensorrt:fp16", "torch",
                 "onnxruntime:int8", "auto:int8"):
        assert not problems({**DEFAULTS, "backend": spec}, ["backend"]), spec
    for spec in ("torch:int8", "tensorrt:int8", "torch_tensorrt:int8", "torch-cuda:int8",
                 "onnxruntime-gpu:int8"):
        assert problems({**DEFAULTS, "backend": spec}, ["backend"]), spec
    assert "onnxruntime: fp32, int8;" in BY_NAME["backend"].allowed


@pytest.mark.parametrize("topic, transport, expected", [
    ("/camera/image_raw", "auto", ("/camera/image_raw", "/camera/restored/image_raw")),
    ("/car/front/image_raw/compressed", "auto",
     ("/car/front/image_raw/compressed", "/car/front/restored/image_raw")),
    ("/car/front/image_raw", "compressed",
     ("/car/front/image_raw/compressed", "/car/front/restored/image_raw")),
    ("/image_raw", "raw", ("/image_raw", "/restored/image_raw")),
    ("image_raw", "auto", ("image_raw", "restored/image_raw")),
    ("/cam/image_color", "auto", ("/cam/image_color", "/cam/restored/image_color")),
])
def test_camera_topics_follow_image_transport_naming(topic, transport, expected):
    topics = camera_topics(topic, transport)
    assert (topics.input, topics.restored) == expected
    base = expected[1].rpartition("/")[0]
    assert topics.restored_compressed == expected[1] + "/compressed"
    assert topics.restored_camera_info == f"{base}/camera_info"
    assert topics.camera_info == "/".join(
        [*expected[0].removesuffix("/compressed").split("/")[:-1], "camera_info"])
    assert (topics.degradation_map, topics.prior) == (f"{base}/degradation_map",
                                                      f"{base}/prior")


def load_launch_file(monkeypatch):
    """launch/restore.launch.py with the launch packages replaced by recorders (ROS launch is
    not on PyPI), so its declared arguments and the node action it makes can be read."""
    def recorder(name):
        return type(name, (), {"__init__": lambda self, *a, **k: setattr(self, "args", (a, k))})

    fakes = {"launch": [], "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction",
                                              "SetEnvironmentVariable"],
             "launch.launch_description": ["LaunchDescription"],
             "launch.substitutions": ["LaunchConfiguration"],
             "launch_ros": [], "launch_ros.actions": ["Node"]}
    for module, names in fakes.items():
        fake = ModuleType(module)
        for name in names:
            setattr(fake, name, recorder(name))
        monkeypatch.setitem(sys.modules, module, fake)
    ament = ModuleType("ament_index_python.packages")
    ament.get_package_share_directory = lambda package: str(ROOT)
    monkeypatch.setitem(sys.modules, "ament_index_python.packages", ament)
    spec = importlib.util.spec_from_file_location("restore_launch",
                                                  ROOT / "launch" / "restore.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_arguments_are_the_options_and_override_the_config(monkeypatch):
    module = load_launch_file(monkeypatch)
    description = module.generate_launch_description()
    declared = {a.args[0][0]: a.args[1] for a in description.args[0][0][:-1]}
    assert set(declared) == set(BY_NAME) | {"config", "namespace", "use_sim_time",
                                            "fastdds_profile"}
    assert all(len(d["description"]) > 20 for d in declared.values())
    given = {name: d["default_value"] for name, d in declared.items()}
    given.update({"input_topics": "/front/image_raw, /rear/image_raw", "backend": "torch:bf16",
                  "prior.period_s": "2.5", "enabled": "false", "fastdds_profile": "none"})
    monkeypatch.setattr(module, "LaunchConfiguration", lambda name: SimpleNamespace(
        perform=lambda context: given[name]))
    (node,) = module._actions(None)
    overrides = node.args[1]["parameters"][1]
    assert overrides == {"use_sim_time": False, "input_topics": ["/front/image_raw",
                                                                 "/rear/image_raw"],
                         "backend": "torch:bf16", "prior.period_s": 2.5, "enabled": False}
    assert not problems({**DEFAULTS, **overrides}, list(overrides.keys() - {"use_sim_time"}))


def test_launch_command_uses_the_packaged_config_and_profile(monkeypatch):
    monkeypatch.delenv(launcher.PROFILE_VARIABLE, raising=False)
    command, env = launcher.launch_command(["-p", "backend:=torch", "-r", "__ns:=/front"])
    assert command[1:5] == ["-m", "allweather_ros.ros.restore_node", "--ros-args",
                            "--params-file"]
    assert Path(command[5]) == (ROOT / "config" / "restore.yaml").resolve()
    assert command[6:] == ["-p", "backend:=torch", "-r", "__ns:=/front"]
    assert Path(env[launcher.PROFILE_VARIABLE]) == (ROOT / "config" / "fastdds_shm.xml")


def test_launch_command_respects_the_users_profile(monkeypatch, tmp_path):
    monkeypatch.setenv(launcher.PROFILE_VARIABLE, "/etc/mine.xml")
    assert launcher.launch_command([])[1][launcher.PROFILE_VARIABLE] == "/etc/mine.xml"
    assert launcher.launch_command(["--fastdds-profile", "none"])[1][
        launcher.PROFILE_VARIABLE] == "/etc/mine.xml"
    config = tmp_path / "mine.yaml"
    config.write_text("{}")
    profile = tmp_path / "p.xml"
    profile.write_text("<dds/>")
    command, env = launcher.launch_command(["--config", str(config), "--fastdds-profile",
                                            str(profile), "--ros-args", "-p", "threads:=2"])
    assert command[5:] == [str(config.resolve()), "-p", "threads:=2"]
    assert env[launcher.PROFILE_VARIABLE] == str(profile.resolve())


def test_launch_main_refuses_a_missing_file(tmp_path, capsys):
    assert launcher.launch_main(["--config", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("separator", [[], ["--"]], ids=["as-readme", "after-dashdash"])
def test_allweather_launch_command_line_reads_the_config_and_the_overrides(separator, tmp_path,
                                                                          request):
    """The README's `allweather launch --config FILE -p name:=value`, through the command line
    itself: the file's bad prior.period_s and the -p's bad backend are both refused, so both
    reached the node."""
    from test_ros_node_integration import claimed_domain, ros_env

    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump({"/**/restore_node": {"ros__parameters": {
        "prior": {"period_s": -1.0}}}}))
    with claimed_domain(request.node.name) as domain:
        done = subprocess.run(
            [sys.executable, "-m", "allweather_ros.cli", "launch", *separator,
             "--config", str(config), "-p", "backend:=tensorrtx"],
            env={**ros_env(domain), "PYTHONPATH": str(ROOT)}, cwd=tmp_path,
            capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # the node's "not started", not argparse's 2
    assert "'prior.period_s' = -1.0" in output and "'backend' = 'tensorrtx'" in output
    assert "unrecognized arguments" not in output and "Traceback" not in output
