"""Clean scene sources: folders, videos, bundled photos, and a split that never moves."""
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from allweather_ros.data.qt_rcc import rcc_members, rcc_read
from allweather_ros.data.sources import (
    DEBIAN_LICENCES,
    DEBIAN_PHOTOS,
    IMAGE_SUFFIXES,
    SKIMAGE_LICENCE,
    SPLITS,
    Scene,
    debian_scenes,
    default_scenes,
    folder_scenes,
    scenes_in_split,
    skimage_scenes,
    split_of,
    video_scenes,
)


def write_images(folder: Path, count: int, size=(40, 60)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f"scene_{i:03d}.png"), rng.integers(0, 255, (*size, 3), np.uint8))


def test_split_is_pinned_by_name_hash():
    # Pinned: a change here would silently move scenes between training and test.
    assert split_of(Scene("skimage/astronaut", "skimage:astronaut")) == "train"
    dune = "mate-backgrounds/usr/share/backgrounds/mate/nature/Dune.jpg"
    assert split_of(Scene(dune, "")) == "val"
    bridge = "lomiri-wallpapers-16.04/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg"
    assert split_of(Scene(bridge, "")) == "test"
    rcc = "gcompris-qt-data/usr/share/gcompris-qt/rcc/explore_monuments.rcc"
    eiffel = f"{rcc}/gcompris/src/activities/explore_monuments/resource/france/eiffelTower.webp"
    assert split_of(Scene(eiffel, "")) == "train"
    anne = "kphotoalbum/usr/share/kphotoalbum/demo/anne_helene.jpg"
    assert split_of(Scene(anne, "")) == "test"


def test_listed_photos_are_unique_licensed_and_split_like_the_training_set():
    assert len(set(DEBIAN_PHOTOS)) == len(DEBIAN_PHOTOS) >= 220
    names = [f"{package}/{relative}" for package, relative in DEBIAN_PHOTOS]
    assert len(set(names)) == len(names)
    assert all(Path(relative).suffix.lower() in IMAGE_SUFFIXES for _, relative in DEBIAN_PHOTOS)
    packages = {package for package, _ in DEBIAN_PHOTOS}
    assert packages == set(DEBIAN_LICENCES) and len(packages) >= 10
    assert all(len(licence) > 10 for licence in DEBIAN_LICENCES.values()) and SKIMAGE_LICENCE
    # nothing that forbids commercial use or derivatives
    for licence in [*DEBIAN_LICENCES.values(), SKIMAGE_LICENCE]:
        assert "-NC" not in licence and "-ND" not in licence
    # the full list, skimage's included, keeps roughly 70/15/15 and every split gets scenes
    scenes = [Scene(name, "") for name in names] + skimage_scenes()
    counts = {split: len(scenes_in_split(scenes, split)) for split in SPLITS}
    assert counts["train"] > 0.6 * len(scenes) and min(counts.values()) >= 20


def test_splits_are_disjoint_cover_everything_and_roughly_sized(tmp_path):
    write_images(tmp_path / "photos", 200, size=(4, 4))
    scenes = folder_scenes(tmp_path / "photos")
    parts = {s: {x.name for x in scenes_in_split(scenes, s)} for s in SPLITS}
    assert sum(len(p) for p in parts.values()) == len(scenes) == 200
    assert not (parts["train"] & parts["val"]) and not (parts["train"] & parts["test"])
    assert not (parts["val"] & parts["test"])
    assert 110 < len(parts["train"]) < 170 and len(parts["val"]) > 15 and len(parts["test"]) > 15
    again = folder_scenes(tmp_path / "photos")
    assert [split_of(s) for s in again] == [split_of(s) for s in scenes]
    with pytest.raises(ValueError):
        scenes_in_split(scenes, "holdout")


def test_folder_scenes_load_rgb_and_shrink(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    image = np.zeros((50, 100, 3), np.uint8)
    image[..., 2] = 255  # red in OpenCV's BGR
    cv2.imwrite(str(folder / "red.png"), image)
    (folder / "notes.txt").write_text("not an image")
    [scene] = folder_scenes(folder)
    assert scene.name == "mine/red.png"
    full = scene.load()
    assert full.shape == (50, 100, 3) and full.dtype == np.uint8
    assert full[..., 0].min() == 255 and full[..., 2].max() == 0
    assert scene.load(max_side=40).shape == (20, 40, 3)
    with pytest.raises(FileNotFoundError):
        folder_scenes(tmp_path / "missing")


def test_video_frames_share_a_split_within_a_stretch(tmp_path):
    path = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(20):
        writer.write(np.full((24, 32, 3), i * 10, np.uint8))
    writer.release()
    scenes = video_scenes(path, every=5, stretch=10)
    assert [s.frame for s in scenes] == [0, 5, 10, 15]
    assert split_of(scenes[0]) == split_of(scenes[1]) and scenes[0].group != scenes[2].group
    frame = scenes[3].load()
    assert frame.shape == (24, 32, 3) and abs(int(frame.mean()) - 150) < 10
    with pytest.raises(FileNotFoundError):
        video_scenes(tmp_path / "none.avi")


def test_skimage_photos_are_rgb():
    scenes = skimage_scenes()
    assert len(scenes) >= 8
    for scene in scenes[:3]:
        image = scene.load(max_side=64)
        assert image.ndim == 3 and image.shape[2] == 3 and max(image.shape[:2]) == 64


def test_debian_photos_are_found_where_the_fetch_script_puts_them(tmp_path, monkeypatch):
    package, relative = DEBIAN_PHOTOS[0]
    target = tmp_path / package / relative
    target.parent.mkdir(parents=True)
    cv2.imwrite(str(target), np.zeros((8, 8, 3), np.uint8))
    with pytest.warns(UserWarning, match=f"1 of the {len(DEBIAN_PHOTOS)} Debian photos"):
        [scene] = debian_scenes(tmp_path)
    assert scene.name == f"{package}/{relative}" and scene.load().shape == (8, 8, 3)
    write_images(tmp_path / "extra", 2)
    monkeypatch.setattr("allweather_ros.data.sources.DEFAULT_SCENE_DIR", tmp_path)
    with pytest.warns(UserWarning, match="run tools/data_fetch_debian_photos.sh"):
        names = {s.name for s in default_scenes(tmp_path / "extra")}
    assert {"skimage/astronaut", scene.name, "extra/scene_000.png"} <= names


def test_only_a_partly_fetched_set_of_debian_photos_is_warned_of(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert debian_scenes(tmp_path) == []  # never fetched: the scikit-image photos serve
        for package, relative in DEBIAN_PHOTOS:
            (tmp_path / package / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / package / relative).touch()
        assert len(debian_scenes(tmp_path)) == len(DEBIAN_PHOTOS)  # all there
    (tmp_path / DEBIAN_PHOTOS[-1][0] / DEBIAN_PHOTOS[-1][1]).unlink()
    with pytest.warns(UserWarning, match=f"{len(DEBIAN_PHOTOS) - 1} of the "):
        debian_scenes(tmp_path)


def _write_rcc(path: Path, files: dict[str, bytes]) -> None:
    """A minimal Qt resource file (format version 1, one folder level, zlib for the first)."""
    import struct
    import zlib

    folder, members = "res", sorted(files)
    names, name_offset = b"", {}
    for name in [folder, *members]:
        name_offset[name] = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
    blobs, blob_offset, compressed = b"", {}, {}
    for i, name in enumerate(members):
        raw = files[name]
        compressed[name] = i == 0
        body = struct.pack(">I", len(raw)) + zlib.compress(raw) if i == 0 else raw
        blob_offset[name] = len(blobs)
        blobs += struct.pack(">I", len(body)) + body
    tree = struct.pack(">IHII", 0, 2, 1, 1)  # root: one child, node 1
    tree += struct.pack(">IHII", name_offset[folder], 2, len(members), 2)
    for name in members:
        tree += struct.pack(">IHHHI", name_offset[name], int(compressed[name]), 0, 0,
                            blob_offset[name])
    header_size = 20
    tree_at, data_at = header_size, header_size + len(tree)
    names_at = data_at + len(blobs)
    header = b"qres" + struct.pack(">IIII", 1, tree_at, data_at, names_at)
    path.write_bytes(header + tree + blobs + names)


def test_pictures_come_out_of_qt_resource_files(tmp_path):
    png = cv2.imencode(".png", np.full((6, 9, 3), 200, np.uint8))[1].tobytes()
    _write_rcc(tmp_path / "a.rcc", {"photo.png": png, "readme.txt": b"credits"})
    data = (tmp_path / "a.rcc").read_bytes()
    assert set(rcc_members(data)) == {"res/photo.png", "res/readme.txt"}
    assert rcc_read(data, "res/photo.png") == png  # zlib-compressed member
    assert rcc_read(data, "res/readme.txt") == b"credits"  # stored member
    with pytest.raises(KeyError):
        rcc_read(data, "res/missing.png")
    with pytest.raises(ValueError):
        rcc_members(b"not a resource file")
