"""Clean scenes to put weather on: the user's folders and videos, Debian's wallpaper photos and
scikit-image's sample photos.

A handful of images cannot teach a model to generalise, and no photo collection may be
downloaded here, but Debian's wallpaper, educational-game and documentation packages hold freely
licensed photographs (wallpapers, GCompris' monuments and animals, KPhotoAlbum's demo album, Tux
Paint's templates, OpenCV's samples ...). `DEBIAN_PHOTOS` lists the photographs (checked by eye
in Debian 12 "bookworm"), `DEBIAN_LICENCES` each package's licence for them;
`tools/data_fetch_debian_photos.sh` extracts them into `DEFAULT_SCENE_DIR`. Splits are decided by
a hash of each scene's name, so they are disjoint and stay the same on every machine and every
run.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_SCENE_DIR = Path(
    os.environ.get("ALLWEATHER_SCENES", Path.home() / ".cache" / "allweather_ros" / "scenes")
)

# (package, path inside the package) of the photographs among Debian's wallpapers. Left out on
# purpose: abstract and rendered art, near-duplicates in other resolutions, and scenes already
# in fog or covered in water drops (they would be "clean" targets that are not clean).
_PLASMA = "usr/share/wallpapers/{}/contents/images/{}"
# GCompris packs each activity's pictures into one Qt resource file (.rcc); the fetch script
# takes the listed member out of it (allweather_ros.data.qt_rcc) to DEST/<package>/<rcc>/<member>.
_GCOMPRIS = "usr/share/gcompris-qt/rcc"
_GCOMPRIS_SRC = "gcompris/src/activities"
DEBIAN_PHOTOS = (
    *(
        ("lomiri-wallpapers-16.04", f"usr/share/backgrounds/{name}.jpg")
        for name in (
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        )
    ),
    ("lomiri-wallpapers-20.04", "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"),
    *(
        ("mate-backgrounds", f"usr/share/backgrounds/mate/nature/{name}.jpg")
        for name in (
            "Aqua",
            "Blinds",
            "Dune",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    ),
    *(
        ("plasma-workspace-wallpapers", _PLASMA.format(name, "2560x1600.jpg"))
        for name in (
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        )
    ),
    # Added for issue 17 (from here on): more scenes, and more of the built world and people.
    *(
        ("gcompris-qt-data", f"{_GCOMPRIS}/explore_monuments.rcc/{_GCOMPRIS_SRC}"
         f"/explore_monuments/resource/{name}.webp")
        for name in (
            "egypt/greatPyramidOfGiza",
            "france/arlesAmphitheater",
            "france/chateaudeChambord",
            "france/chateaudeChenonceau",
            "france/citedeCarcassonne",
            "france/eiffelTower",
            "france/palaisdesPapes",
            "france/pontduGard",
            "france/reimsCathedral",
            "france/rocamadour",
            "germany/aulaPalatina",
            "germany/berlinCathedral",
            "germany/brandenburgGate",
            "germany/neuschwansteinCastle",
            "germany/schwerinPalace",
            "germany/trierImperialBaths",
            "germany/wormsCathedral",
            "india/ajantaCave",
            "india/charminar",
            "india/gatewayofIndia",
            "india/greatStupa",
            "india/hawaMahal",
            "india/konarkSunTemple",
            "india/mysorePalace",
            "india/qutubMinar",
            "india/rangGhar",
            "india/victoriaMemorial",
            "usa/canyondeChelly",
            "usa/castillodeSanMarcos",
            "usa/fortSumter",
            "usa/georgeWashingtonBirthplace",
            "usa/lincolnMemorial",
            "usa/mountRushmore",
            "usa/navajo",
            "usa/statueofLiberty",
            "wonders/chichenItza",
            "wonders/colosseum",
            "wonders/greatWallofChina",
            "wonders/petra",
            "wonders/tajMahal",
        )
    ),
    *(
        ("gcompris-qt-data", f"{_GCOMPRIS}/{activity}.rcc/{_GCOMPRIS_SRC}"
         f"/{activity}/resource/animals/{name}.webp")
        for activity, names in (
            ("explore_farm_animals", ("cat", "chicken", "cow", "dog", "horse", "pig", "sheep")),
            (
                "explore_world_animals",
                (
                    "bison", "chameleon", "crocodile", "dragon", "giraffe", "hedgehog", "jaguar",
                    "kangaroo", "koala", "lemur", "moose", "narwhal", "panda", "polar_bear",
                    "scarlet_macaw",
                ),
            ),
        )
        for name in names
    ),
    *(
        ("gcompris-qt-data", f"{_GCOMPRIS}/categorization.rcc/{_GCOMPRIS_SRC}"
         f"/categorization/resource/images/{name}.webp")
        for name in (
            # 320-pixel photos; monuments that explore_monuments already shows are left out,
            # and so are dam5 and dam1 (spray like mist) and solar3 (indoors)
            "monuments/IndiaGate",
            "monuments/arcDeTriomphe",
            "monuments/bayterek",
            "monuments/burj",
            "monuments/cathedral",
            "monuments/empireState",
            "monuments/leMusee",
            "monuments/leaningTowerOfPisa",
            "monuments/monument1",
            "monuments/monument2",
            "monuments/monument3",
            "monuments/operaHouse",
            "monuments/parthenon",
            "monuments/usCapitol",
            "monuments/zimniPalace",
            "renewable/dam2",
            "renewable/dam3",
            "renewable/dam4",
            "renewable/solar1",
            "renewable/solar2",
            "renewable/solar4",
            "renewable/solar5",
            "renewable/solar6",
            "renewable/solar7",
            "renewable/solar8",
            "renewable/windmill",
            "renewable/windmill1",
            "renewable/windmill11",
            "renewable/windmill12",
            "renewable/windmill13",
            "renewable/windmill15",
            "renewable/windmill2",
            "renewable/windmill3",
            "renewable/windmill4",
            "renewable/windmill5",
            "renewable/windmill7",
            "renewable/windmill8",
            "renewable/windmill9",
        )
    ),
    *(
        ("gcompris-qt-data", f"{_GCOMPRIS}/erase.rcc/{_GCOMPRIS_SRC}/erase/resource/{name}.webp")
        for name in (
            # 1920x1080 animal photos; left out: dolphin and sea1-6 (under water)
            "alpaca", "bee", "butterfly", "calf", "camels", "caterpillar", "chamaeleon", "cheetah",
            "crab", "flying_fox", "gibbon", "giraffe", "goat", "gorilla", "gosling", "heron",
            "horse", "kingfisher", "kitten", "long_nosed_monkey", "macaque", "meerkats",
            "northern_harrier", "nubian_ibex", "penguin", "pika", "red_panda", "rhinoceros",
            "spoonbills", "squirrel", "swans", "toucan",
        )
    ),
    *(
        ("gcompris-qt-data", f"{_GCOMPRIS}/explore_world_music.rcc/{_GCOMPRIS_SRC}"
         f"/explore_world_music/resource/music/{name}.webp")
        for name in ("australia", "japan", "mexico", "orchestra")  # people; japan at night
    ),
    *(
        ("kphotoalbum", f"usr/share/kphotoalbum/demo/{name}.jpg")
        for name in (
            # left out: the three stored sideways (their rotation lives in the demo's index),
            # bar55 (another frame of bar55_2), an aquarium, a hazy aerial view, snow.jpg
            "anne_helene",
            "bar55_2",
            "cold_water",
            "donna",
            "donna_2",
            "grand_canyon_2",
            "grand_canyon_3",
            "jesper",
            "jesper_2",
            "new_wave_2",
            "pool",
            "pool_2",
            "qt-logo",
            "skagen",
            "spiff",
            "spiff_2",
            "sunset",
        )
    ),
    *(
        ("tuxpaint-data", f"usr/share/tuxpaint/templates/{name}.jpg")
        for name in (
            "cliff",
            "corn_maze",
            "jellyfish",
            "lighthouse",
            "mossy_log",
            "ocean_waves",
            "redwoods_above",
            "sheep",
            "sun_behind_clouds",
            "sun_behind_leaves",
            "trees_above",
            "trees_at_dusk",
            "wool_mill_machine",
        )
    ),
    *(
        ("opencv-doc", f"usr/share/doc/opencv-doc/examples/{name}")
        for name in (
            "alphamat/input_images/plant.jpg",
            "data/aero1.jpg",
            "data/aloeL.jpg",
            "data/basketball1.png",
            "data/building.jpg",
            "data/butterfly.jpg",
            "data/chicky_512.png",
            "data/fruits.jpg",
            "data/graf1.png",
            "data/home.jpg",
            "data/leuvenA.jpg",
            "data/squirrel_cls.jpg",
            "hfs/data/000.jpg",
            "hfs/data/002.jpg",
        )
    ),
    *(
        ("lxqt-themes", f"usr/share/lxqt/wallpapers/{name}")
        for name in (
            "Butterfly-Kenneth-Wimer.jpg",
            "after-the-rain.jpg",  # a clear sunset sky, despite the name
            "appleflower.png",
            "butterfly.png",
            "cloud.png",
            "flowers.png",
            "this-is-not-windows.jpg",
        )
    ),
    *(
        ("palapeli-data", f"usr/share/palapeli/collection/{name}.jpg")
        for name in (
            "castle-maintenon",
            "cincinnati-bridge",
            "citrus-fruits",
            "european-honey-bee",
            "panther-chameleon-female",
        )
    ),
    *(
        ("python3-sklearn", f"usr/lib/python3/dist-packages/sklearn/datasets/images/{name}.jpg")
        for name in ("flower",)  # china.jpg left out: its far shore is hazy
    ),
)

# Each source package's licence for the photos listed above, from its
# /usr/share/doc/<package>/copyright (and the per-image notes it points to). Every one allows
# training on the photos and shipping what is learnt; attribution licences (CC-BY, CC-BY-SA)
# ask that the authors be credited, which the model card does by naming the package, where the
# per-image credits are.
DEBIAN_LICENCES = {
    "lomiri-wallpapers-16.04": "CC-BY-4.0 or CC-BY-SA-4.0 per image (author in the file name; "
    "debian/copyright lists each photo)",
    "lomiri-wallpapers-20.04": "CC-BY-4.0 or CC-BY-SA-4.0 per image (author in the file name; "
    "debian/copyright lists each photo)",
    "mate-backgrounds": "GPL-2+ (debian/copyright lists each photo and its author)",
    "plasma-workspace-wallpapers": "GPL-2+ (Files: *, KDE Visual Design Group)",
    "gcompris-qt-data": "per image: public domain, CC0-1.0, CC-BY-1.0/2.0/3.0 or "
    "CC-BY-SA-2.0/3.0/4.0, from Wikimedia Commons; authors and sources in debian/copyright "
    "(categorization images) and in each activity's resource README inside the .rcc "
    "(explore_monuments, explore_*_animals, erase, explore_world_music)",
    "kphotoalbum": "GPL-2+ (the demo album's photos by the KPhotoAlbum authors, "
    "Jesper K. Pedersen et al.)",
    "tuxpaint-data": "GPL-2+ (Files: *, Bill Kendrick and the Tux Paint authors)",
    "opencv-doc": "Apache-2.0 AND BSD-3-Clause (Files: *; Debian removed the Lena images; "
    "the classic sample photos carry no separate notice)",
    "lxqt-themes": "LGPL-2.1+ (Files: *, the LXQt team)",
    "palapeli-data": "public domain (castle-maintenon, citrus-fruits, european-honey-bee) or "
    "GFDL (cincinnati-bridge, panther-chameleon-female), per the puzzles' .desktop files",
    "python3-sklearn": "CC-BY-2.0 (flower.jpg, Flickr user vultilion; "
    "sklearn/datasets/images/README.txt)",
}
SKIMAGE_LICENCE = (
    "public domain or CC0 per image (each skimage.data function's docstring: astronaut and "
    "rocket public domain, camera/chelsea/coffee CC0 by their photographers, brick/grass/gravel "
    "CC0 Textures, coins no known copyright restrictions)"
)

# scikit-image's bundled real photographs (no microscopy, text, renders or duplicates).
SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "rocket",
)


@dataclass(frozen=True)
class Scene:
    """One clean scene: an image file, a frame of a video, or a scikit-image sample.

    `name` is unique and stable across machines; scenes that share a `group` (the frames of one
    stretch of video) always land in the same split, so near-duplicates never straddle two.
    """

    name: str
    path: str
    frame: int | None = None
    group: str | None = None

    def load(self, max_side: int | None = None) -> np.ndarray:
        """The scene as uint8 RGB (H, W, 3), shrunk so its longer side is at most `max_side`."""
        if self.path.startswith("skimage:"):
            image = _skimage_photo(self.path.removeprefix("skimage:"))
        elif self.frame is not None:
            image = _video_frame(self.path, self.frame)
        else:
            image = _read_image(self.path)
        if max_side and max(image.shape[:2]) > max_side:
            f = max_side / max(image.shape[:2])
            size = (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return image


def split_of(scene: Scene) -> str:
    """train, val or test, from a hash of the scene's group (or name): stable and disjoint."""
    key = (scene.group or scene.name).encode()
    u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2.0**64
    edges = np.cumsum(SPLIT_FRACTIONS)
    return SPLITS[int(np.searchsorted(edges, u, side="right"))]


def scenes_in_split(scenes: list[Scene], split: str) -> list[Scene]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return [s for s in scenes if split_of(s) == split]


def folder_scenes(root: str | Path) -> list[Scene]:
    """Every image file under `root`, named by its path relative to `root`'s parent."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder of scenes: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [Scene(p.relative_to(root.parent).as_posix(), str(p)) for p in files]


def video_scenes(path: str | Path, every: int = 15, stretch: int = 300) -> list[Scene]:
    """Every `every`-th frame of a video; each `stretch` frames form one group for splitting."""
    path = Path(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return [
        Scene(f"{path.name}@{i}", str(path), frame=i, group=f"{path.name}#{i // stretch}")
        for i in range(0, count, every)
    ]


def skimage_scenes() -> list[Scene]:
    return [Scene(f"skimage/{name}", f"skimage:{name}") for name in SKIMAGE_PHOTOS]


def debian_scenes(root: str | Path | None = None) -> list[Scene]:
    """The Debian wallpaper photos found under `root` (default `DEFAULT_SCENE_DIR`), as laid
    out by the fetch script; a warning when only some of the listed ones are there."""
    root = Path(root or DEFAULT_SCENE_DIR)
    found = [(pkg, rel) for pkg, rel in DEBIAN_PHOTOS if (root / pkg / rel).is_file()]
    if 0 < len(found) < len(DEBIAN_PHOTOS):  # none: a machine that never fetched them
        warnings.warn(
            f"{len(found)} of the {len(DEBIAN_PHOTOS)} Debian photos listed in "
            f"allweather_ros/data/sources.py are under {root}, the others missing (a fetch "
            "interrupted or made from an older list): training and evaluation draw from the "
            "scenes found, so their figures differ; run tools/data_fetch_debian_photos.sh",
            stacklevel=2)
    return [Scene(f"{pkg}/{rel}", str(root / pkg / rel)) for pkg, rel in found]


def default_scenes(*extra: str | Path) -> list[Scene]:
    """scikit-image's photos, the fetched Debian photos, and any extra folders or videos."""
    scenes = skimage_scenes() + debian_scenes()
    for item in extra:
        is_image_dir = Path(item).is_dir()
        scenes += folder_scenes(item) if is_image_dir else video_scenes(item)
    return scenes


def _read_image(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return np.ascontiguousarray(image[:, :, ::-1])


def _video_frame(path: str, frame: int) -> np.ndarray:
    capture = cv2.VideoCapture(path)
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, image = capture.read()
    finally:
        capture.release()
    if not ok:
        raise OSError(f"cannot read frame {frame} of {path}")
    return np.ascontiguousarray(image[:, :, ::-1])


def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


if __name__ == "__main__":  # the fetch script reads the photo list from here
    for package, relative in DEBIAN_PHOTOS:
        print(package, relative)
