"""Every topic of one camera, named in one place for the node and both bag evaluations (no ROS).

image_transport's naming: a camera publishes raw frames on <ns>/image_raw, JPEG or PNG ones on
<ns>/image_raw/compressed and its calibration on <ns>/camera_info. The node's outputs sit in
<ns>/<output_namespace>/: the restored frame under the input's own name (raw, and compressed
beside it while someone subscribes), the degradation map and its colour picture, the prior and
the camera_info relay.
"""
from __future__ import annotations

from dataclasses import dataclass

TRANSPORTS = ("auto", "raw", "compressed")
"""auto: compressed for topics ending in /compressed, raw otherwise."""
OUTPUT_NAMESPACE = "restored"
_COMPRESSED = "/compressed"


def _beside(topic: str, name: str) -> str:
    """The topic `name` in `topic`'s namespace: /ns/image_raw, camera_info -> /ns/camera_info."""
    return "/".join([*topic.split("/")[:-1], name])


@dataclass(frozen=True)
class CameraTopics:
    """The topics of one camera, input and outputs."""

    input: str  # the topic subscribed to
    compressed: bool  # whether it carries sensor_msgs/CompressedImage
    camera_info: str
    restored: str  # sensor_msgs/Image
    restored_compressed: str  # sensor_msgs/CompressedImage, only while subscribed
    degradation_map: str
    colour_map: str
    prior: str
    restored_camera_info: str


def camera_topics(topic: str, transport: str = "auto",
                  output_namespace: str = OUTPUT_NAMESPACE) -> CameraTopics:
    """The camera's topics for an input topic given as the node's `input_topics` say it.

    /ns/image_raw -> /ns/restored/image_raw (+ /compressed), /ns/restored/degradation_map ...;
    a compressed input is taken on <base>/compressed (image_transport's naming), whether the
    topic is given as /ns/image_raw with transport compressed or as /ns/image_raw/compressed.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"transport {transport!r} is not one of {TRANSPORTS}")
    topic = topic.rstrip("/")
    suffixed = topic.endswith(_COMPRESSED) and len(topic.split("/")) > 2
    compressed = transport == "compressed" or (transport == "auto" and suffixed)
    base = topic.removesuffix(_COMPRESSED) if compressed and suffixed else topic
    outputs = _beside(base, output_namespace)
    restored = f"{outputs}/{base.split('/')[-1]}"
    return CameraTopics(
        input=base + _COMPRESSED if compressed else base, compressed=compressed,
        camera_info=_beside(base, "camera_info"), restored=restored,
        restored_compressed=restored + _COMPRESSED,
        degradation_map=f"{outputs}/degradation_map",
        colour_map=f"{outputs}/degradation_map/colour", prior=f"{outputs}/prior",
        restored_camera_info=f"{outputs}/camera_info")
