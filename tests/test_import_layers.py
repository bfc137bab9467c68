"""The layering DESIGN.md asks for: the core (model, prior, data, runtime, training, pipeline,
options, topics, frames) and the direct bag evaluation never import ROS, and no module of the
package imports, directly or through others, itself."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "allweather_ros"
ROS = ("rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "rcl_interfaces",
       "builtin_interfaces", "rosgraph_msgs", "launch", "launch_ros", "ament_index_python")
HIDE_ROS = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in ROS)
CORE = ("model", "prior", "data", "runtime", "training", "pipeline", "options", "topics",
        "network_io", "frames", "description", "media", "evaluation.eval_bag", "evaluation.bags",
        "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its code (lazy imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def test_no_module_imports_itself_through_others():
    known = modules()
    graph = {name: imports(name, path, set(known)) for name, path in known.items()}
    cycles, state = [], {}

    def visit(name, trail):
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_core_and_the_direct_bag_evaluation_never_import_ros():
    core = [m for m in modules() if m.removeprefix("allweather_ros.").startswith(CORE)]
    assert "allweather_ros.evaluation.eval_bag" in core and "allweather_ros.pipeline" in core
    script = HIDE_ROS + "import importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in core)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]


def test_direct_bag_evaluation_runs_with_ros_hidden(tmp_path, pipeline_config):
    """`allweather eval-bag` (direct mode) from end to end in a process where importing any ROS
    package fails."""
    from test_eval_bags import TOPIC, small_bag

    bag = small_bag(tmp_path / "bag", frames=3)["bag"]
    out = tmp_path / "out"
    script = HIDE_ROS + (
        "from allweather_ros.cli import main\n"
        f"sys.exit(main(['eval-bag', {str(bag)!r}, '--topic', {TOPIC!r}, '--out', "
        f"{str(out)!r}, '--weights', {pipeline_config.weights!r}, '--backend', 'torch', "
        "'--provider', 'none']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "3/3 frames restored" in done.stdout
    assert (out / "report.json").is_file()


def test_the_guard_catches_a_module_that_imports_ros():
    """The guard above can fail: the node, which does import ROS, is caught by it."""
    done = subprocess.run(
        [sys.executable, "-c", HIDE_ROS + "import allweather_ros.ros.restore_node"], cwd=ROOT,
        capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "import of rclpy halted" in done.stderr
