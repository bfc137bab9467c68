"""restore_node's configuration without DDS: parameter validation, topic naming, the YAML and
the launch file agreeing with the node, and `allweather launch`'s command line."""
from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")
from allweather_ros.ros import launcher  # noqa: E402
from allweather_ros.ros.restore_node import SETTINGS, SETTINGS_BY_NAME, output_base, problems  # noqa: E402,E501

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {s.name: s.default for s in SETTINGS}


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
    assert set(values) == set(SETTINGS_BY_NAME)
    for name, value in values.items():
        if name != "cache_dir":  # the YAML says ~, the node's default is the expanded path
            assert value == DEFAULTS[name], name
    assert not problems({**values, "prior.provider": "none"})


def test_defaults_are_valid_and_described():
    assert DEFAULTS["prior.provider"] == "builtin" and DEFAULTS["autostart"] is True
    assert not problems(DEFAULTS)
    assert all(s.description and s.allowed for s in SETTINGS)


@pytest.mark.parametrize("name, value, allowed", [
    ("input_topics", [], "non-empty"),
    ("input_topics", ["/a/image_raw", "/a/image_raw"], "distinct"),
    ("input_topics", ["not a topic"], "valid topic"),
    ("input_transport", "ffmpeg", "auto | raw | compressed"),
    ("output_namespace", "re/stored", "one name token"),
    ("backend", "onnxruntime:fp8", ":PRECISION"),
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


@pytest.mark.parametrize("topic, compressed, expected", [
    ("/camera/image_raw", False, ("/camera/restored", "/camera/restored/image_raw")),
    ("/car/front/image_raw/compressed", True,
     ("/car/front/restored", "/car/front/restored/image_raw/compressed")),
    ("/image_raw", False, ("/restored", "/restored/image_raw")),
    ("image_raw", False, ("restored", "restored/image_raw")),
    ("/cam/compressed", False, ("/cam/restored", "/cam/restored/compressed")),
])
def test_output_topics_follow_the_input(topic, compressed, expected):
    assert output_base(topic, "restored", compressed) == expected


def test_launch_file_declares_and_describes_every_argument():
    source = (ROOT / "launch" / "restore.launch.py").read_text()
    tree = ast.parse(source)
    table = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", "") == "ARGUMENTS")
    arguments = {}
    for key, value in zip(table.keys, table.values, strict=True):
        description = value.elts[1]
        assert isinstance(description, ast.Constant) and len(description.value) > 20, key.value
        arguments[key.value] = description.value
    assert {"config", "input_topics", "namespace", "use_sim_time", "backend",
            "fastdds_profile"} <= set(arguments)
    assert "DeclareLaunchArgument(name, default_value=default, description=description)" \
        in source
    assert 'SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE"' in source
    overridden = {node.slice.value for node in ast.walk(tree) if isinstance(node, ast.Subscript)
                  and getattr(node.value, "id", "") == "overrides"}
    assert overridden and overridden <= set(SETTINGS_BY_NAME)


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
