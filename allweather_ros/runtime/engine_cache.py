"""On-disk cache of serialized TensorRT engines, keyed by everything an engine depends on.

A serialized engine only loads on the GPU model and TensorRT version that built it, and only
fits the ONNX file, precision and shape ranges it was built for. Other ROS nodes key by a
subset (Isaac ROS by nothing: a TensorRT upgrade gives "Serialization assertion" until the
file is deleted by hand), so here the key holds all of them: GPU name, compute capability,
SM count, TensorRT version, ONNX sha256, precision and the shape profile.

Each entry is `<stem>.engine` plus `<stem>.json`, the sidecar with the full key, the engine's
size and sha256 and when and how long it took to build. The sidecar is written last and is
the commit mark: an entry counts only when its sidecar matches the key exactly and the bytes
match their recorded hash. Writes go to a temporary file renamed into place, and a lock file
per key makes a second process wait for the first one's build instead of building twice.
Pure Python: no TensorRT needed, so every rule here is tested on any machine.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .registry import BACKENDS

log = logging.getLogger(__name__)

PRECISIONS = BACKENDS["tensorrt"]
STEM_PREFIX = "ldr"
SIDECAR_FORMAT = 1
STALE_TMP_S = 3600.0
"""A temporary file younger than this may be another process's write in flight: prune keeps it."""
DEFAULT_PRIOR_LENGTH = (1, 16, 64)
"""min/opt/max prior tokens; 64 is prior.text_encoder.MAX_TOKENS, 16 a typical description."""
MIN_FRAME_SIDE = 64
"""Pixels: the shortest frame side an engine for a working resolution takes."""

T = TypeVar("T")


def _triple(name: str, values: Sequence[int]) -> tuple[int, int, int]:
    lo, opt, hi = (int(v) for v in values)
    if not 1 <= lo <= opt <= hi:
        raise ValueError(f"{name} needs 1 <= min <= opt <= max, got {tuple(values)}")
    return lo, opt, hi


@dataclass(frozen=True)
class ShapeProfile:
    """min/opt/max of frame height, width and prior length: the inputs an engine accepts.

    TensorRT tunes its kernels for `opt` and rejects anything outside [min, max], and a
    narrow range builds a faster engine, so the profile comes from the cameras actually used.
    """

    height: tuple[int, int, int]
    width: tuple[int, int, int]
    prior_length: tuple[int, int, int] = DEFAULT_PRIOR_LENGTH

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _triple(field.name, getattr(self, field.name)))

    @classmethod
    def from_sizes(cls, sizes: Sequence[tuple[int, int]],
                   prior_length: Sequence[int] = DEFAULT_PRIOR_LENGTH) -> ShapeProfile:
        """Camera sizes as (width, height); the first is the one TensorRT optimises for.

        One size gives a static engine (min = opt = max), the fastest kind.
        """
        if not sizes:
            raise ValueError("a shape profile needs at least one camera size")
        widths, heights = zip(*sizes, strict=True)
        return cls((min(heights), heights[0], max(heights)),
                   (min(widths), widths[0], max(widths)), tuple(prior_length))

    @classmethod
    def for_working_side(cls, max_side: int,
                         prior_length: Sequence[int] = DEFAULT_PRIOR_LENGTH) -> ShapeProfile:
        """The frames a pipeline restoring at a longer side of `max_side` (processing_max_side)
        hands the network: a camera of any aspect shrunk to that side, or a smaller one at its
        own size, so anything from MIN_FRAME_SIDE up to a square of `max_side`; TensorRT
        optimises for a 4:3 frame of that side."""
        low = min(MIN_FRAME_SIDE, max_side)
        return cls((low, max(low, round(max_side * 3 / 4)), max_side),
                   (low, max_side, max_side), tuple(prior_length))

    def accepts(self, height: int, width: int, prior_length: int | None = None) -> bool:
        inside = (self.height[0] <= height <= self.height[2]
                  and self.width[0] <= width <= self.width[2])
        if prior_length is None:
            return inside
        return inside and self.prior_length[0] <= prior_length <= self.prior_length[2]

    def working_side_problem(self, max_side: int) -> str:
        """Why frames restored at a longer side of `max_side` (processing_max_side; 0: whole
        camera frames) may fall outside this profile, or "" when the sides it spans take them."""
        low, high = max(self.height[0], self.width[0]), min(self.height[2], self.width[2])
        if low <= max_side <= high:
            return ""
        return (f"the TensorRT engine was built for working sides {low} to {high} "
                f"(processing_max_side at start-up), not "
                f"{max_side or 'whole camera frames (0)'}; restart the node to change it")

    def slug(self) -> str:
        def part(tag, values):
            return tag + "-".join(str(v) for v in values)

        return "_".join((part("h", self.height), part("w", self.width),
                         part("l", self.prior_length)))


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on; two keys equal means one engine serves both."""

    gpu_name: str
    compute_capability: str  # "8.7"
    sm_count: int
    trt_version: str
    onnx_sha256: str
    precision: str
    profile: ShapeProfile

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def to_dict(self) -> dict:
        """JSON-shaped (lists, not tuples), so it compares equal to a sidecar's copy."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> EngineKey:
        return cls(**{**data, "profile": ShapeProfile(**data["profile"])})

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def stem(self) -> str:
        """A readable, filesystem-safe file name; the trailing digest keeps it unique."""
        gpu = re.sub(r"[^a-z0-9]+", "-", self.gpu_name.lower()).strip("-")[:32] or "gpu"
        cc = re.sub(r"[^0-9]", "", self.compute_capability)
        trt = re.sub(r"[^0-9A-Za-z.]+", "-", self.trt_version)
        return (f"{STEM_PREFIX}_{self.onnx_sha256[:12]}_{self.precision}"
                f"_{gpu}-sm{cc}x{self.sm_count}_trt{trt}_{self.profile.slug()}_{self.digest()[:8]}")


class EngineCache:
    """A folder of engines: look up, load with integrity check, store atomically, lock, prune."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def engine_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem()}.engine"

    def sidecar_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem()}.json"

    def _sidecar(self, path: Path) -> dict | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def lookup(self, key: EngineKey) -> Path | None:
        """The engine's path if its sidecar matches `key` exactly and the size is as recorded."""
        meta = self._sidecar(self.sidecar_path(key))
        path = self.engine_path(key)
        if meta is None:
            return None
        if meta.get("format") != SIDECAR_FORMAT or meta.get("key") != key.to_dict():
            theirs = meta.get("key") if isinstance(meta.get("key"), dict) else {}
            differ = {k: (theirs.get(k), v) for k, v in key.to_dict().items()
                      if theirs.get(k) != v}
            log.warning("engine %s was built for another setup (cached vs needed: %s); "
                        "rebuilding", path.name, differ or "sidecar format")
            return None
        try:
            size = path.stat().st_size
        except OSError:
            return None
        return path if size == meta.get("engine", {}).get("bytes") else None

    def load(self, key: EngineKey) -> bytes | None:
        """The engine's bytes, or None when missing, foreign or corrupt (the caller rebuilds)."""
        path = self.lookup(key)
        if path is None:
            return None
        data = path.read_bytes()
        expected = self._sidecar(self.sidecar_path(key))["engine"]["sha256"]
        if hashlib.sha256(data).hexdigest() != expected:
            log.warning("engine %s does not match its recorded sha256; rebuilding", path.name)
            return None
        os.utime(path)  # mtime marks the last use, for prune(older_than_s=...)
        return data

    def store(self, key: EngineKey, data: bytes, build_seconds: float) -> Path:
        """Write engine then sidecar, each atomically, so a crash never leaves a valid-looking
        half entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.engine_path(key)
        self._write_atomic(path, data)
        meta = {"format": SIDECAR_FORMAT, "key": key.to_dict(),
                "engine": {"file": path.name, "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()},
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(build_seconds, 3)}
        self._write_atomic(self.sidecar_path(key), json.dumps(meta, indent=2).encode())
        return path

    def _write_atomic(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def invalidate(self, key: EngineKey) -> None:
        """Drop an entry that failed to deserialize: sidecar first, so it is never half valid."""
        for path in (self.sidecar_path(key), self.engine_path(key)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @contextlib.contextmanager
    def lock(self, key: EngineKey, timeout: float | None = None,
             poll: float = 0.1) -> Iterator[None]:
        """Hold the key's build lock (an flock, so a crashed holder releases it at exit)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{key.stem()}.lock"
        with open(path, "a+b") as f:
            deadline = None if timeout is None else time.monotonic() + timeout
            waiting = False
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"{path.name} is still held after {timeout} s") from None
                    if not waiting:
                        log.info("another process is building %s; waiting for it", key.stem())
                        waiting = True
                    time.sleep(poll)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def get_or_build(self, key: EngineKey, build: Callable[[], bytes],
                     deserialize: Callable[[bytes], T | None],
                     lock_timeout: float | None = None) -> T:
        """The cached engine if it deserializes, else one built (once, under the lock) and stored.

        `deserialize` may raise or return None (TensorRT's way of refusing a foreign or
        corrupt plan); either drops the entry and triggers a rebuild, never a crash.
        """
        engine = self._try_cached(key, deserialize)
        if engine is not None:
            return engine
        with self.lock(key, timeout=lock_timeout):
            engine = self._try_cached(key, deserialize)  # built by another process meanwhile
            if engine is not None:
                return engine
            start = time.monotonic()
            data = build()
            seconds = time.monotonic() - start
            self.store(key, data, seconds)
            log.info("built %s in %.1f s", key.stem(), seconds)
        engine = deserialize(data)
        if engine is None:
            self.invalidate(key)
            raise RuntimeError(f"a freshly built engine {key.stem()} did not deserialize")
        return engine

    def _try_cached(self, key: EngineKey, deserialize: Callable[[bytes], T | None]) -> T | None:
        data = self.load(key)
        if data is None:
            return None
        try:
            engine = deserialize(data)
        except Exception as exc:  # any refusal means rebuild
            log.warning("cached engine %s failed to load (%s); rebuilding", key.stem(), exc)
            engine = None
        if engine is None:
            self.invalidate(key)
        return engine

    def entries(self) -> list[EngineKey]:
        """Keys of the complete entries here."""
        keys = []
        for sidecar in sorted(self.root.glob("*.json")):
            meta = self._sidecar(sidecar)
            try:
                key = EngineKey.from_dict(meta["key"])
            except (TypeError, KeyError, ValueError):
                continue
            if self.lookup(key) is not None:
                keys.append(key)
        return keys

    def prune(self, keep: Callable[[EngineKey], bool] = lambda key: True,
              older_than_s: float | None = None) -> list[Path]:
        """Remove broken files, entries `keep` rejects and entries unused for `older_than_s`.

        Only this cache's own files are touched (the folder may hold the ONNX files too).
        Lock files stay: removing one that another process holds would let a third one in.
        """
        if not self.root.is_dir():
            return []
        now = time.time()
        kept = set()
        for key in self.entries():
            age = now - self.engine_path(key).stat().st_mtime
            if keep(key) and (older_than_s is None or age <= older_than_s):
                kept.update((self.engine_path(key), self.sidecar_path(key)))
        removed = []
        for path in sorted(self.root.iterdir()):
            ours = (path.name.startswith(f"{STEM_PREFIX}_") and path.suffix in (".engine", ".json")
                    or path.name.startswith(f".{STEM_PREFIX}_") and path.suffix == ".tmp")
            if path in kept or not ours or not path.is_file():
                continue
            if path.suffix == ".tmp" and now - path.stat().st_mtime < STALE_TMP_S:
                continue
            path.unlink()
            removed.append(path)
        return removed
