#!/usr/bin/env bash
# Sets up .venv with allweather_ros, its ROS 2 wheels from PyPI and the test tools.
#
# torch is chosen per machine and never replaced:
#   - a torch the venv can already import (e.g. a Jetson's JetPack wheel, seen through
#     --system-site-packages) is kept as it is;
#   - with an NVIDIA GPU, torch==2.13.0 from PyPI (CUDA build);
#   - without one, the CPU build (PyTorch's CPU index; a local wheel where pip is configured
#     with one), so a CPU machine never downloads a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
venv_flags=()
if [ -f /etc/nv_tegra_release ]; then
  venv_flags+=(--system-site-packages)  # see JetPack's torch, TensorRT and OpenCV
fi
python3 -m venv "${venv_flags[@]}" .venv
.venv/bin/python -m pip install --quiet --upgrade pip

if .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "keeping the installed torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION}"
else
  # --retries 0: where that index is unreachable, fall through to the configured ones at once
  .venv/bin/python -m pip install --quiet --retries 0 "torch==${TORCH_VERSION}" \
    --extra-index-url https://download.pytorch.org/whl/cpu
fi

.venv/bin/python -m pip install --quiet -e ".[ros,dev,train]"
echo "ready: .venv/bin/allweather --help"
