"""`allweather info` reports the configuration, parameters and GFLOP from the real graph."""
import json
import subprocess
import sys
import time
from pathlib import Path

from allweather_ros.cli import main


def test_info_json_for_rt_at_vga(capsys):
    assert main(["info", "--config", "rt", "--size", "640x480", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"] == "rt"
    assert report["params"] > 100_000
    assert 1.0 < report["gflops"] <= 5.0
    assert report["model"]["top_k"] <= report["model"]["num_experts"]


def test_gflops_grow_with_the_pixel_count(capsys):
    results = []
    for size in ("640x480", "1280x960"):
        main(["info", "--size", size, "--json"])
        results.append(json.loads(capsys.readouterr().out)["gflops"])
    assert 3.8 < results[1] / results[0] <= 4.01


def test_info_takes_a_yaml_model_file(tmp_path, capsys):
    config = tmp_path / "wide.yaml"
    config.write_text("variant: rt\nwidth: 24\nnum_experts: 12\n")
    assert main(["info", "--config", str(config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["width"] == 24 and report["model"]["num_experts"] == 12
    main(["info", "--json"])
    assert json.loads(capsys.readouterr().out)["params"] < report["params"]


def test_bad_arguments_get_a_clear_error(tmp_path, capsys):
    assert main(["info", "--size", "640by480"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("widht: 24\n")
    assert main(["info", "--config", str(bad)]) == 2
    assert "widht" in capsys.readouterr().err
    assert main(["info", "--config", "nonexistent"]) == 2


def test_help_is_quick_and_imports_no_torch():
    """`allweather --help` through the console script's entry point: torch (seconds to import)
    stays out, and the whole process ends within a generous bound."""
    script = ("import sys\n"
              "from importlib.metadata import entry_points\n"
              "(entry,) = entry_points(group='console_scripts', name='allweather')\n"
              "sys.argv = ['allweather', '--help']\n"
              "try:\n"
              "    entry.load()()\n"
              "except SystemExit:\n"
              "    pass\n"
              "print('imported torch:', 'torch' in sys.modules)\n")
    root = Path(__file__).resolve().parent.parent
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=60)
    seconds = time.perf_counter() - started
    print(f"allweather --help took {seconds:.2f} s")
    assert "eval-bag" in done.stdout and "launch" in done.stdout, done.stderr
    assert "imported torch: False" in done.stdout
    assert seconds < 3.0
