"""The model card's summary names each shipped weights file as it is: a user checks a file
against its digest there, and the node's diagnostics give the digest's first 16 hex digits."""
import re
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

import allweather_ros
from allweather_ros.network_io import file_sha256

WEIGHTS = Path(allweather_ros.__file__).parent / "weights"
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def glance_rows() -> dict[str, str]:
    """The rows of the "At a glance" table, by the file each names."""
    card = (WEIGHTS / "README.md").read_text()
    section = card.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): line for line in section.splitlines()
            if (m := re.match(r"\| `([\w.]+\.safetensors)` \|", line))}


def parameters(path: Path) -> int:
    with safe_open(str(path), "np") as tensors:
        return sum(int(np.prod(tensors.get_slice(k).get_shape())) for k in tensors.keys()
                   if not k.endswith(BUFFERS))


def test_the_summary_lists_every_shipped_file():
    assert set(glance_rows()) == {p.name for p in WEIGHTS.glob("*.safetensors")}


@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.safetensors")), ids=lambda p: p.name)
def test_the_summary_gives_each_files_digest_and_size(path):
    row = glance_rows()[path.name]
    assert f"`{file_sha256(path)}`" in row
    assert f"| {parameters(path):,};" in row
