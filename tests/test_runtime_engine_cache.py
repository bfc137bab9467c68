"""TensorRT engine cache: keys, file names, sidecars, integrity, rebuilds, locking, pruning."""
import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from allweather_ros.runtime.engine_cache import EngineCache, EngineKey, ShapeProfile

PROFILE = ShapeProfile.from_sizes([(640, 480), (1280, 720)])
KEY = EngineKey(gpu_name="NVIDIA Jetson AGX Orin / 64GB", compute_capability="8.7", sm_count=16,
                trt_version="10.3.0", onnx_sha256="ab" * 32, precision="fp16", profile=PROFILE)
CHANGES = {
    "gpu_name": "NVIDIA GeForce RTX 4090",
    "compute_capability": "8.9",
    "sm_count": 8,
    "trt_version": "10.7.0",
    "onnx_sha256": "cd" * 32,
    "precision": "fp32",
    "profile": ShapeProfile.from_sizes([(640, 480), (1920, 1080)]),
}


def _cache(tmp_path):
    return EngineCache(tmp_path / "engines")


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_every_key_field_gives_its_own_file(field, tmp_path):
    other = dataclasses.replace(KEY, **{field: CHANGES[field]})
    cache = _cache(tmp_path)
    assert cache.engine_path(other) != cache.engine_path(KEY)
    cache.store(KEY, b"engine-a", 1.0)
    assert cache.lookup(other) is None
    cache.store(other, b"engine-b", 1.0)
    assert cache.load(KEY) == b"engine-a" and cache.load(other) == b"engine-b"


def test_prior_length_range_is_part_of_the_key(tmp_path):
    longer = dataclasses.replace(
        KEY, profile=dataclasses.replace(PROFILE, prior_length=(1, 16, 128)))
    assert _cache(tmp_path).engine_path(longer) != _cache(tmp_path).engine_path(KEY)


def test_file_name_is_readable_and_filesystem_safe():
    stem = KEY.stem()
    assert re.fullmatch(r"[A-Za-z0-9._-]+", stem), stem
    for part in ("nvidia-jetson-agx-orin-64gb", "sm87x16", "trt10.3.0", "fp16",
                 "h480-480-720_w640-640-1280_l1-16-64", "abababababab"):
        assert part in stem
    assert len(stem) < 200


def test_store_writes_engine_and_sidecar_with_full_key(tmp_path):
    cache = _cache(tmp_path)
    path = cache.store(KEY, b"\x00plan", 12.345)
    assert cache.lookup(KEY) == path and path.read_bytes() == b"\x00plan"
    meta = json.loads(cache.sidecar_path(KEY).read_text())
    assert EngineKey.from_dict(meta["key"]) == KEY
    assert meta["engine"]["bytes"] == 5 and meta["build_seconds"] == 12.345
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["built_at"])
    assert not list(cache.root.glob("*.tmp"))  # atomic writes leave no temporaries


def test_mismatched_or_corrupt_sidecar_is_a_miss(tmp_path):
    cache = _cache(tmp_path)
    cache.store(KEY, b"plan", 1.0)
    sidecar = cache.sidecar_path(KEY)
    meta = json.loads(sidecar.read_text())
    meta["key"]["trt_version"] = "10.0.1"  # e.g. copied over from another machine by hand
    sidecar.write_text(json.dumps(meta))
    assert cache.lookup(KEY) is None and cache.load(KEY) is None
    sidecar.write_text("{not json")
    assert cache.lookup(KEY) is None
    sidecar.unlink()
    assert cache.lookup(KEY) is None


def test_engine_with_wrong_bytes_is_not_loaded(tmp_path):
    cache = _cache(tmp_path)
    path = cache.store(KEY, b"good plan", 1.0)
    path.write_bytes(b"bad  plan")  # same size, different content
    assert cache.lookup(KEY) == path and cache.load(KEY) is None
    path.write_bytes(b"tru")
    assert cache.lookup(KEY) is None


class Builds:
    """Counts builds and deserializations; an engine here is just its bytes decoded."""

    def __init__(self, plan=b"plan-1", delay=0.0):
        self.plan, self.delay, self.built, self.loaded = plan, delay, 0, 0
        self.active = 0
        self.overlap = False
        self._lock = threading.Lock()

    def build(self):
        with self._lock:
            self.active += 1
            self.overlap |= self.active > 1
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
            self.built += 1
        return self.plan

    def deserialize(self, data):
        self.loaded += 1
        return data.decode()


def test_get_or_build_builds_once_then_reuses(tmp_path):
    cache, builds = _cache(tmp_path), Builds()
    assert cache.get_or_build(KEY, builds.build, builds.deserialize) == "plan-1"
    assert cache.get_or_build(KEY, builds.build, builds.deserialize) == "plan-1"
    assert builds.built == 1 and builds.loaded == 2


@pytest.mark.parametrize("refusal", ["raises", "returns_none"])
def test_engine_that_fails_to_deserialize_is_rebuilt(refusal, tmp_path):
    cache = _cache(tmp_path)
    cache.store(KEY, b"foreign", 1.0)  # e.g. a plan from another TensorRT build

    def deserialize(data):
        if data == b"foreign":
            if refusal == "raises":
                raise RuntimeError("Serialization assertion failed")
            return None
        return data.decode()

    builds = Builds(plan=b"fresh")
    assert cache.get_or_build(KEY, builds.build, deserialize) == "fresh"
    assert builds.built == 1 and cache.load(KEY) == b"fresh"


def test_failed_build_leaves_no_entry(tmp_path):
    cache = _cache(tmp_path)

    def build():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cache.get_or_build(KEY, build, bytes.decode)
    assert cache.lookup(KEY) is None and cache.entries() == []


def test_concurrent_builders_serialize_on_the_lock(tmp_path):
    builds = Builds(delay=0.2)
    results = []

    def worker():  # each thread its own EngineCache, as separate processes would have
        results.append(_cache(tmp_path).get_or_build(KEY, builds.build, builds.deserialize))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["plan-1"] * 4
    assert builds.built == 1 and not builds.overlap


def test_lock_held_by_another_process_blocks_until_released(tmp_path):
    cache = _cache(tmp_path)
    script = ("import json, sys\n"
              "from allweather_ros.runtime.engine_cache import EngineCache, EngineKey\n"
              "key = EngineKey.from_dict(json.loads(sys.argv[2]))\n"
              "with EngineCache(sys.argv[1]).lock(key):\n"
              "    print('locked', flush=True)\n"
              "    sys.stdin.read()\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(cache.root), json.dumps(KEY.to_dict())],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TimeoutError), cache.lock(KEY, timeout=0.3, poll=0.05):
            pass
        holder.stdin.close()  # the holder leaves its `with` and exits
        with cache.lock(KEY, timeout=10, poll=0.05):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_prune_removes_broken_rejected_and_unused_entries(tmp_path):
    cache = _cache(tmp_path)
    old_trt = dataclasses.replace(KEY, trt_version="8.6.1")
    cache.store(KEY, b"current", 1.0)
    cache.store(old_trt, b"old", 1.0)
    stale = dataclasses.replace(KEY, precision="fp32")
    cache.store(stale, b"unused", 1.0)
    past = time.time() - 30 * 86400
    os.utime(cache.engine_path(stale), (past, past))
    orphan = cache.root / "ldr_orphan.engine"
    orphan.write_bytes(b"no sidecar")
    old_tmp = cache.root / ".ldr_x.engine.abc.tmp"
    old_tmp.write_bytes(b"left by a crash")
    os.utime(old_tmp, (past, past))
    fresh_tmp = cache.root / ".ldr_y.engine.def.tmp"
    fresh_tmp.write_bytes(b"another process writing right now")
    onnx = cache.root / "ldr-0123456789abcdef.onnx"  # select.py keeps ONNX files here too
    onnx.write_bytes(b"graph")
    os.utime(onnx, (past, past))
    with cache.lock(KEY):
        pass

    removed = cache.prune(keep=lambda k: k.trt_version.startswith("10."),
                          older_than_s=7 * 86400)
    assert set(removed) == {orphan, old_tmp, cache.engine_path(old_trt),
                            cache.sidecar_path(old_trt), cache.engine_path(stale),
                            cache.sidecar_path(stale)}
    assert cache.entries() == [KEY] and fresh_tmp.exists() and onnx.exists()
    assert list(cache.root.glob("*.lock"))


def test_load_marks_last_use_so_prune_keeps_used_engines(tmp_path):
    cache = _cache(tmp_path)
    cache.store(KEY, b"plan", 1.0)
    past = time.time() - 30 * 86400
    os.utime(cache.engine_path(KEY), (past, past))
    assert cache.load(KEY) == b"plan"
    assert cache.prune(older_than_s=86400) == []


def test_shape_profile_validation():
    with pytest.raises(ValueError, match="min <= opt <= max"):
        ShapeProfile(height=(480, 240, 720), width=(640, 640, 640))
    with pytest.raises(ValueError, match="precision"):
        dataclasses.replace(KEY, precision="bf16")
