"""The NA64RAW1 raw data format: constants, file header, rejection reasons.

Layout (little-endian, no padding; ``docs/raw-format.md`` has the full tables):
a 64-byte file header, then event records back to back. A record is a 32-byte
header (magic ``EV64``, size, spill, event, trigger time, trigger mask, number
of blocks, flags), the blocks, and a CRC-32 of everything before it. A block is
an 8-byte header (source id, type 1 SADC / 2 APV, flags, payload size) and a
payload ``u16 n_channels, u16 n_samples`` followed by ``u16 channel,
u16 samples[n_samples]`` per channel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = [
    "EVENT_MAGIC",
    "FILE_HEADER_SIZE",
    "FILE_MAGIC",
    "MIN_RECORD_SIZE",
    "RECORD_HEADER_SIZE",
    "Block",
    "BlockType",
    "EventBatch",
    "FileHeader",
    "RawFormatError",
    "Reason",
    "RunType",
]

FILE_MAGIC = b"NA64RAW1"
EVENT_MAGIC = b"EV64"
FORMAT_VERSION = 1
FILE_HEADER_SIZE = 64
RECORD_HEADER_SIZE = 32
BLOCK_HEADER_SIZE = 8
CRC_SIZE = 4
MIN_RECORD_SIZE = RECORD_HEADER_SIZE + CRC_SIZE
_HEADER = struct.Struct("<8sHHIHHQ16sI16s")
assert _HEADER.size == FILE_HEADER_SIZE


class RunType(IntEnum):
    PHYSICS = 0
    CALIBRATION = 1
    PEDESTAL = 2


class BlockType(IntEnum):
    SADC = 1
    APV = 2


class TriggerBit(IntEnum):
    PHYSICS = 1
    CALIBRATION = 2
    RANDOM = 4


class Reason(IntEnum):
    """Why a record was rejected. The names are the strings of the decode report."""

    OK = 0
    BAD_MAGIC = 1  # the record does not start with EV64
    BAD_SIZE = 2  # size below the minimum record or above daq.max_record_bytes
    SIZE_PAST_EOF = 3  # size runs past the end of file, and later records exist
    TRUNCATED = 4  # the last record of the file is cut short
    CRC_MISMATCH = 5
    PAYLOAD_SIZE_MISMATCH = 6  # block and payload sizes do not add up to the record size
    BAD_BLOCK_TYPE = 7  # block type is not the one the channel map gives the source
    BAD_N_SAMPLES = 8  # n_samples differs from the digitiser's (daq condition)
    SAMPLE_OVERFLOW = 9  # a sample above the 12-bit range
    UNKNOWN_SOURCE = 10
    UNKNOWN_CHANNEL = 11

    @property
    def label(self) -> str:
        return self.name.lower()


class RawFormatError(ValueError):
    """A raw file that cannot be read, or a corrupt record under the ``fail`` policy."""

    def __init__(self, path, offset: int, reason: str, detail: str = ""):
        self.path, self.offset, self.reason = str(path), int(offset), reason
        message = f"{path}: offset {offset}: {reason}"
        super().__init__(f"{message} ({detail})" if detail else message)


@dataclass(frozen=True)
class FileHeader:
    run: int
    run_type: RunType
    setup: str
    simulated: bool = False
    run_start_ns: int = 0
    n_events: int = 0
    version: int = FORMAT_VERSION

    def pack(self) -> bytes:
        return _HEADER.pack(
            FILE_MAGIC,
            self.version,
            FILE_HEADER_SIZE,
            self.run,
            int(self.run_type),
            1 if self.simulated else 0,
            self.run_start_ns,
            self.setup.encode("ascii").ljust(16, b"\0"),
            self.n_events,
            bytes(16),
        )

    @classmethod
    def unpack(cls, data: bytes, path="<bytes>") -> FileHeader:
        if len(data) < FILE_HEADER_SIZE:
            raise RawFormatError(path, 0, "truncated_file_header", f"{len(data)} bytes")
        magic, version, size, run, run_type, flags, start, setup, n_events, _ = _HEADER.unpack(
            data[:FILE_HEADER_SIZE]
        )
        if magic != FILE_MAGIC:
            raise RawFormatError(path, 0, "bad_file_magic", f"found {magic!r}")
        if version != FORMAT_VERSION or size != FILE_HEADER_SIZE:
            raise RawFormatError(
                path, 8, "unsupported_format", f"version {version}, header size {size}"
            )
        try:
            run_type = RunType(run_type)
        except ValueError:
            raise RawFormatError(path, 16, "bad_run_type", f"{run_type}") from None
        return cls(
            run=run,
            run_type=run_type,
            setup=setup.rstrip(b"\0").decode("ascii", errors="replace"),
            simulated=bool(flags & 1),
            run_start_ns=start,
            n_events=n_events,
            version=version,
        )


@dataclass
class Block:
    """The hits of one source over a batch of events, sorted by event."""

    source: int
    type: BlockType
    event_index: np.ndarray  # (m,) index of the event in the batch, non-decreasing
    channel: np.ndarray  # (m,) u16
    samples: np.ndarray  # (m, n_samples) u16


@dataclass
class EventBatch:
    """Events to write: per-event header fields and the blocks of every event.

    Every event carries one block per entry of ``blocks`` (possibly with no
    channels), in that order.
    """

    spill: np.ndarray
    event: np.ndarray
    trigger_time_ns: np.ndarray
    trigger_mask: np.ndarray
    blocks: list[Block] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.spill)
