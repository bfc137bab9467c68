"""Training data: synthetic adverse weather on clean scenes, and loaders for public datasets."""
from .datasets import (
    PairedFolderDataset,
    SyntheticWeatherDataset,
    balanced_recipes,
    corrupt_description,
    synthetic_test_set,
)
from .sources import Scene, default_scenes, folder_scenes, scenes_in_split, split_of, video_scenes
from .synthesis import Sample, sample_recipe, synthesize

__all__ = [
    "PairedFolderDataset",
    "Sample",
    "Scene",
    "SyntheticWeatherDataset",
    "balanced_recipes",
    "corrupt_description",
    "default_scenes",
    "folder_scenes",
    "sample_recipe",
    "scenes_in_split",
    "split_of",
    "synthesize",
    "synthetic_test_set",
    "video_scenes",
]
