# Copyright 2026 eigen_depth_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Read a ROS 2 bag as it is found, damaged or not: one interface over ``rosbags`` and ``mcap``.

- A complete bag (folder with ``metadata.yaml``, or a bare ``.mcap``/``.db3``/ROS 1 ``.bag``)
  is read with ``rosbags``' ``AnyReader``.
- A folder without ``metadata.yaml`` (rosbag2 writes it last, so a robot that lost power
  leaves none) is read from its storage files alone, with a note.
- An MCAP without its footer and summary (cut off mid-write) is streamed record by record
  with the ``mcap`` library, up to the last complete chunk or message; the note says how
  many messages were recovered.

Messages are ``(topic, msgtype, log time ns, raw CDR)``; :meth:`BagReader.deserialize`
turns the raw bytes into a message.
"""
from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.typesys import get_typestore, Stores

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
STORAGE_SUFFIXES = ('.mcap', '.db3')


class BagReadError(ValueError):
    """The bag cannot be read at all; the message names it and says why on one line."""


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's text (``'no detail'`` when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else 'no detail'


@dataclass(frozen=True)
class TopicInfo:
    """Type and message count of one topic (as far as the bag could be read)."""

    msgtype: str
    msgcount: int


class BagReader:
    """
    A readable bag: ``topics``, ``messages(topics)``, ``deserialize``, ``notes``.

    :attr notes: one line per thing the user should know (no metadata.yaml, truncated).
    :attr truncated: True when the bag was cut off and only a part could be read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.notes: list[str] = []
        self.truncated = False
        self.topics: dict[str, TopicInfo] = {}

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """``(topic, msgtype, log time ns, raw)`` of the given topics, in storage order."""
        raise NotImplementedError

    def deserialize(self, raw: bytes, msgtype: str):
        """Deserialise one raw message of a ROS 2 bag (CDR) with the standard typestore."""
        return TYPESTORE.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        """Release the files."""


class _RosbagsReader(BagReader):
    """A bag ``rosbags`` can open: complete rosbag2 folders, bare storage files, ROS 1."""

    def __init__(self, path: Path, files: list[Path]) -> None:
        super().__init__(path)
        self._reader = AnyReader(files, default_typestore=TYPESTORE)
        self._reader.open()
        self.topics = {name: TopicInfo(info.msgtype, info.msgcount)
                       for name, info in self._reader.topics.items()}

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        connections = [c for c in self._reader.connections if c.topic in topics]
        if not connections:
            return
        for conn, log_time, raw in self._reader.messages(connections=connections):
            yield conn.topic, conn.msgtype, log_time, raw

    def deserialize(self, raw: bytes, msgtype: str):
        return self._reader.deserialize(raw, msgtype)

    def close(self) -> None:
        self._reader.close()


class _McapStreamReader(BagReader):
    """
    MCAP files read front to back without their summary (``mcap.stream_reader``).

    Reading stops at the first incomplete or unreadable record; everything before it is
    kept. One pass at open counts the messages per topic.
    """

    def __init__(self, path: Path, files: list[Path]) -> None:
        super().__init__(path)
        self._files = files
        counts: dict[str, int] = {}
        types: dict[str, str] = {}
        for topic, msgtype, _, _ in self._stream(None):
            counts[topic] = counts.get(topic, 0) + 1
            types[topic] = msgtype
        for topic, msgtype in self._channels.items():
            types.setdefault(topic, msgtype)
        self.topics = {name: TopicInfo(types[name], counts.get(name, 0)) for name in types}
        self.recovered = sum(counts.values())

    def _stream(self, topics: Collection[str] | None
                ) -> Iterator[tuple[str, str, int, bytes]]:
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader
        self._channels: dict[str, str] = {}
        self.stopped: list[str] = []
        for file in self._files:
            schemas: dict[int, str] = {}
            channels: dict[int, tuple[str, str]] = {}
            with file.open('rb') as stream:
                records = StreamReader(stream, record_size_limit=file.stat().st_size).records
                while True:
                    try:
                        record = next(records)
                    except StopIteration:
                        break
                    except Exception as exc:  # noqa: B902  mcap raises many kinds at a cut
                        self.stopped.append(f'{file.name}: {type(exc).__name__} '
                                            f'at byte {stream.tell()}')
                        break
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                    elif isinstance(record, Channel):
                        channels[record.id] = (record.topic, schemas.get(record.schema_id, ''))
                        self._channels[record.topic] = channels[record.id][1]
                    elif isinstance(record, Message) and record.channel_id in channels:
                        topic, msgtype = channels[record.channel_id]
                        if topics is None or topic in topics:
                            yield topic, msgtype, record.log_time, record.data

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        yield from self._stream(set(topics))


def _storage_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in STORAGE_SUFFIXES)


def open_bag(path: Path) -> BagReader:
    """
    Open a bag folder or file, recovering what a damaged one still holds.

    :raises BagReadError: when nothing can be read (not found, not a bag, no complete
        message), naming the path.
    """
    path = Path(path)
    if not path.exists():
        raise BagReadError(f'{path}: bag not found')
    files, notes = [path], []
    if path.is_dir() and not (path / 'metadata.yaml').exists():
        files = _storage_files(path)
        if not files:
            raise BagReadError(f'{path}: no metadata.yaml and no .mcap or .db3 file: not a '
                               'rosbag2 folder')
        notes.append(f'{path}: no metadata.yaml; read from {", ".join(f.name for f in files)} '
                     'alone')
    try:
        reader: BagReader = _RosbagsReader(path, files)
    except Exception as exc:  # noqa: B902  a damaged file fails in reader-specific ways
        mcaps = [f for f in (_storage_files(path) if path.is_dir() else files)
                 if f.suffix == '.mcap']
        reason = f'{type(exc).__name__}: {first_line(exc)}'
        if not mcaps:
            raise BagReadError(f'{path}: cannot read bag ({reason})') from None
        try:
            reader = _McapStreamReader(path, mcaps)
        except ImportError:
            raise BagReadError(f'{path}: cannot read bag ({reason}); reading what a truncated '
                               'MCAP holds needs the mcap package: pip install mcap') from None
        except Exception:  # noqa: B902  not an MCAP at all (bad magic, ...)
            raise BagReadError(f'{path}: cannot read bag ({reason})') from None
        if reader.recovered == 0:
            raise BagReadError(f'{path}: cannot read bag ({reason}); no complete message '
                               'in it') from None
        reader.truncated = True
        notes.append(f'{path}: bag truncated ({reason}); recovered {reader.recovered} '
                     'complete messages' + (f', stopped at {"; ".join(reader.stopped)}'
                                            if reader.stopped else ''))
    reader.notes = notes
    return reader
