"""Camera bags (rosbag2, sqlite3 or mcap) read and written with `rosbags`, without a ROS install.

Bags come from the field: a recorder killed mid-write leaves a truncated file, a copied folder
lacks its metadata.yaml, a topic is misnamed. Reading is therefore layered: the rosbags reader
on the folder, then on its storage files (no metadata.yaml needed), then a salvage scan that
keeps every complete message before the damage. What was done is kept in `BagReader.notes` and
an error that ends reading half-way in `BagReader.stopped`, so a caller reports partial results
instead of losing them. A frame that cannot be decoded is yielded with its `error` set.
"""
from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import decompress
from rosbags.typesys import Stores, get_typestore

from ..frames import ImageConversionError, compressed_to_rgb, image_to_rgb, quantize

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"
CAMERA_TYPES = (IMAGE, COMPRESSED)
STORAGES = ("sqlite3", "mcap")
STORAGE_SUFFIXES = (".db3", ".mcap")
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
"""Image, CompressedImage, Header and String are the same in every ROS 2 distribution."""

_MCAP_MAGIC = b"\x89MCAP0\r\n"


class BagError(RuntimeError):
    """A bag that cannot be read or written as asked; the text says why and what there is."""


@dataclass(frozen=True)
class TopicInfo:
    name: str
    msgtype: str
    count: int | None  # None when a salvaged file has no index to count from


@dataclass
class Frame:
    """One camera message of a topic, decoded or with the reason it could not be."""

    index: int  # position among the topic's messages
    bag_ns: int  # when the recorder received it
    stamp_ns: int  # its header stamp (bag_ns when the header is unreadable)
    header: object | None  # rosbags std_msgs/msg/Header
    msgtype: str
    raw: bytes  # the CDR as recorded, replayed byte for byte in live mode
    rgb: np.ndarray | None  # float32 (H, W, 3) in [0, 1]; None when `error` is set
    error: str | None = None


def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def make_header(ns: int, frame_id: str):
    time = TYPESTORE.types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
    return TYPESTORE.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def decode_frame(index: int, msgtype: str, bag_ns: int, raw: bytes) -> Frame:
    """The frame in one recorded message, read by the node's own conversions (same encodings,
    same checks), so the evaluation sees a frame exactly as the node would."""
    try:
        msg = TYPESTORE.deserialize_cdr(raw, msgtype)
    except Exception as exc:  # rosbags raises assorted errors on garbage CDR
        return Frame(index, bag_ns, bag_ns, None, msgtype, raw, None,
                     f"corrupt message ({type(exc).__name__}: {exc})")
    stamp = stamp_ns(msg.header)
    try:
        rgb = compressed_to_rgb(msg) if msgtype == COMPRESSED else image_to_rgb(msg)
    except ImageConversionError as exc:
        return Frame(index, bag_ns, stamp, msg.header, msgtype, raw, None, str(exc))
    return Frame(index, bag_ns, stamp, msg.header, msgtype, raw, rgb)


# ------------------------------------------------------------------------------ reading


class _RosbagsSource:
    """A bag folder or one storage file, through rosbags' own reader."""

    def __init__(self, path: Path):
        self.name = path.name
        self._reader = Reader(path)
        self._reader.open()
        self.topics = {name: TopicInfo(name, info.msgtype, info.msgcount)
                       for name, info in self._reader.topics.items()}

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        connections = [c for c in self._reader.connections if c.topic in topics]
        for connection, bag_ns, raw in self._reader.messages(connections):
            yield connection.topic, connection.msgtype, bag_ns, raw

    def close(self) -> None:
        self._reader.close()


class _SqliteSalvage:
    """The readable rows of a damaged .db3.

    SQLite refuses a file shorter than its header's page count outright, so a copy is padded
    back to that size: the pages that were lost read as corrupt, the ones before them still read.
    """

    def __init__(self, path: Path):
        self.name = path.name
        self._tmp = tempfile.TemporaryDirectory(prefix="allweather_salvage_")
        copy = Path(self._tmp.name) / path.name
        shutil.copyfile(path, copy)
        header = copy.read_bytes()[:100] if copy.stat().st_size >= 100 else b""
        if not header.startswith(b"SQLite format 3\0"):
            self.close()
            raise BagError(f"{path} is not an SQLite database (header {header[:16]!r})")
        page_size = int.from_bytes(header[16:18], "big") or 65536  # 1 stands for 65536
        pages = int.from_bytes(header[28:32], "big")
        with copy.open("r+b") as file:
            file.truncate(max(page_size * pages, copy.stat().st_size))
        self._db = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            rows = self._db.execute("SELECT id, name, type FROM topics").fetchall()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise BagError(f"{path}: even its topic table is unreadable ({exc})") from None
        self._by_id = {row[0]: (row[1], row[2]) for row in rows}
        self.topics = {name: TopicInfo(name, msgtype, None)
                       for name, msgtype in self._by_id.values()}

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        wanted = [i for i, (name, _) in self._by_id.items() if name in topics]
        query = (f"SELECT topic_id, timestamp, data FROM messages "  # rowid order: as recorded
                 f"WHERE topic_id IN ({','.join('?' * len(wanted))})")
        for topic_id, bag_ns, data in self._db.execute(query, wanted):
            yield (*self._by_id[topic_id], bag_ns, data)

    def close(self) -> None:
        if hasattr(self, "_db"):
            self._db.close()
        self._tmp.cleanup()


def _mcap_string(body: memoryview, at: int) -> tuple[str, int]:
    size = int.from_bytes(body[at:at + 4], "little")
    return bytes(body[at + 4:at + 4 + size]).decode(), at + 4 + size


def _mcap_records(buf: memoryview, what: str) -> Iterator[tuple[int, memoryview, bool]]:
    """(opcode, body, complete) of each MCAP record; a record cut short is yielded with what is
    there (an uncompressed chunk's first records are still good), then BagError."""
    at = 0
    while at < len(buf):
        if at + 9 > len(buf):
            raise BagError(f"{what} is truncated at byte {at} of {len(buf)}")
        end = at + 9 + int.from_bytes(buf[at + 1:at + 9], "little")
        yield buf[at], buf[at + 9:end], end <= len(buf)
        if end > len(buf):
            raise BagError(f"{what} is truncated: a record runs past its end at byte {len(buf)}")
        at = end


class _McapSalvage:
    """The complete messages of an .mcap without its summary and footer (a killed recorder).

    rosbags needs the footer; the records before it are a plain sequence, chunks included.
    """

    def __init__(self, path: Path):
        self.name = path.name
        self._data = memoryview(path.read_bytes())
        if bytes(self._data[:8]) != _MCAP_MAGIC:
            raise BagError(f"{path} is not an MCAP file (starts with {bytes(self._data[:8])!r})")
        self._schemas: dict[int, str] = {}
        self._channels: dict[int, tuple[str, str]] = {}
        try:
            for _ in self._scan(set(), self._data[8:], self.name):
                pass
        except BagError:
            pass  # the damage is reported by `messages`, which meets it again
        self.topics = {topic: TopicInfo(topic, msgtype, None)
                       for topic, msgtype in self._channels.values()}

    def _scan(self, topics: set[str], buf: memoryview, what: str):
        for op, body, complete in _mcap_records(buf, what):
            if op == 0x06:  # chunk: times, sizes, crc, compression, records
                yield from self._chunk(topics, body, complete)
            elif not complete:
                continue  # _mcap_records raises next
            elif op == 0x03:  # schema: id, name, ...
                self._schemas[int.from_bytes(body[:2], "little")] = _mcap_string(body, 2)[0]
            elif op == 0x04:  # channel: id, schema id, topic, ...
                schema = int.from_bytes(body[2:4], "little")
                self._channels[int.from_bytes(body[:2], "little")] = (
                    _mcap_string(body, 4)[0], self._schemas.get(schema, ""))
            elif op == 0x05:  # message: channel, sequence, log time, publish time, data
                topic, msgtype = self._channels.get(int.from_bytes(body[:2], "little"), ("", ""))
                if topic in topics:
                    yield topic, msgtype, int.from_bytes(body[6:14], "little"), bytes(body[22:])
            elif op == 0x02:  # footer: nothing after it
                return

    def _chunk(self, topics: set[str], body: memoryview, complete: bool):
        size = int.from_bytes(body[16:24], "little")
        crc = int.from_bytes(body[24:28], "little")
        compression, at = _mcap_string(body, 28)
        records = body[at + 8:]
        what = f"a chunk of {self.name}"
        if not complete and not compression:  # its complete records are still good
            yield from self._scan(topics, records, what)
            return
        if not complete:
            return  # a cut compressed chunk cannot be decoded; _mcap_records raises next
        try:
            inner = decompress(bytes(records), compression, size, crc)
        except ReaderError as exc:
            raise BagError(f"{what} is damaged ({exc})") from None
        yield from self._scan(topics, memoryview(inner), what)

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        return self._scan(topics, self._data[8:], self.name)

    def close(self) -> None:
        self._data.release()


_SALVAGE = {".db3": _SqliteSalvage, ".mcap": _McapSalvage}


class BagReader:
    """A rosbag2 folder, or one .db3/.mcap file, opened for reading camera topics."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.notes: list[str] = []
        self.stopped: str | None = None
        self._sources = self._open()
        self.topics: dict[str, TopicInfo] = {}
        for source in self._sources:
            for name, info in source.topics.items():
                known = self.topics.get(name)
                count = None if info.count is None or (known and known.count is None) else (
                    info.count + (known.count if known else 0))
                self.topics[name] = TopicInfo(name, info.msgtype, count)

    def _open(self) -> list:
        path = self.path
        if not path.exists():
            raise BagError(f"no bag at {path}")
        if path.is_file():
            return [self._open_file(path)]
        if (path / "metadata.yaml").is_file():
            try:
                return [_RosbagsSource(path)]
            except (ReaderError, OSError, ValueError) as exc:
                self.notes.append(f"rosbags could not open the bag ({exc}); "
                                  "reading its storage files one by one")
        else:
            self.notes.append(f"{path} has no metadata.yaml; reading its storage files directly")
        files = sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
        if not files:
            found = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
            raise BagError(f"{path} holds no .db3 or .mcap storage file (found: {found})")
        return [self._open_file(file) for file in files]

    def _open_file(self, file: Path):
        if file.suffix not in STORAGE_SUFFIXES:
            raise BagError(f"{file} is neither a rosbag2 folder nor a .db3 or .mcap file")
        try:
            return _RosbagsSource(file)
        except (ReaderError, OSError, ValueError) as exc:
            self.notes.append(f"{file.name}: {exc}; salvaging the complete messages in it")
        return _SALVAGE[file.suffix](file)

    def topic(self, name: str) -> TopicInfo:
        """The camera topic `name`; a BagError lists the bag's topics when it is not one."""
        info = self.topics.get(name)
        if info is None:
            raise BagError(f"topic {name!r} is not in {self.path}; it has: {self.describe()}")
        if info.msgtype not in CAMERA_TYPES:
            raise BagError(f"topic {name!r} carries {info.msgtype}, not one of {CAMERA_TYPES}; "
                           f"camera topics here: {self.describe(CAMERA_TYPES) or 'none'}")
        return info

    def describe(self, msgtypes: Iterable[str] | None = None) -> str:
        """The topics as 'name (type, N messages)', for error messages and reports."""
        shown = [i for i in self.topics.values() if msgtypes is None or i.msgtype in msgtypes]
        return ", ".join(f"{i.name} ({i.msgtype}, "
                         f"{'?' if i.count is None else i.count} messages)" for i in shown)

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, msgtype, bag time, CDR) in recorded order, up to any damage."""
        for source in self._sources:
            try:
                yield from source.messages(topics)
            except Exception as exc:  # a damaged source ends reading; what came before stays
                self.stopped = f"{source.name}: reading stopped early: {exc}"
                return

    def frames(self, topic: str) -> Iterator[Frame]:
        """Every message of a camera topic as a Frame, in recorded order."""
        self.topic(topic)
        for index, (_, msgtype, bag_ns, raw) in enumerate(self.messages({topic})):
            yield decode_frame(index, msgtype, bag_ns, raw)

    def close(self) -> None:
        for source in self._sources:
            source.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------ writing


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """A float [0, 1] frame rounded to 8 bits (uint8 frames pass through)."""
    if rgb.dtype == np.uint8:
        return rgb
    return quantize(rgb, np.dtype(np.uint8))


def image_message(rgb: np.ndarray, header):
    """An rgb8 Image of a float [0, 1] or uint8 RGB frame."""
    pixels = np.ascontiguousarray(to_uint8(rgb))
    height, width = pixels.shape[:2]
    return TYPESTORE.types[IMAGE](header=header, height=height, width=width, encoding="rgb8",
                                  is_bigendian=0, step=width * 3, data=pixels.reshape(-1))


def compressed_message(rgb: np.ndarray, header, quality: int = 95):
    """A JPEG CompressedImage as image_transport's compressed plugin writes it."""
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(to_uint8(rgb)[..., ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise BagError(f"OpenCV could not encode a {rgb.shape} frame as JPEG")
    return TYPESTORE.types[COMPRESSED](header=header, format="rgb8; jpeg compressed bgr8",
                                       data=encoded.reshape(-1))


def map_message(values: np.ndarray, header):
    """A (H, W) float map as a little-endian 32FC1 Image, values unchanged."""
    values = np.ascontiguousarray(values, "<f4")
    height, width = values.shape
    return TYPESTORE.types[IMAGE](header=header, height=height, width=width, encoding="32FC1",
                                  is_bigendian=0, step=width * 4,
                                  data=values.reshape(-1).view(np.uint8))


def string_message(text: str):
    return TYPESTORE.types[STRING](data=text)


class BagWriter:
    """A new rosbag2 (format version 9) in sqlite3 or mcap storage; topics are added on first
    write. It refuses to overwrite: a bag is evidence, not a cache."""

    def __init__(self, path: str | Path, storage: str = "mcap"):
        if storage not in STORAGES:
            raise ValueError(f"unknown storage {storage!r}; expected one of {STORAGES}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; remove it or choose another path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin[storage.upper()])
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    def write_raw(self, topic: str, msgtype: str, bag_ns: int, raw: bytes) -> None:
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            self._connections[topic] = connection
        self._writer.write(connection, bag_ns, raw)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write(self, topic: str, msg, bag_ns: int) -> None:
        msgtype = msg.__msgtype__
        self.write_raw(topic, msgtype, bag_ns, TYPESTORE.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
