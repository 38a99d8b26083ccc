"""An independent NA64RAW1 writer for tests: plain ``struct`` and ``zlib``.

It shares no code with :mod:`recon.io.rawwriter`, so that the decoder is
checked against the specification, not against the project's own writer.
Records are built from explicit Python structures, one event at a time (fine
for the few hundred events of a test).
"""

from __future__ import annotations

import struct
import zlib


def file_header(
    run: int, run_type: int = 0, setup: bytes = b"invis2016", n_events: int = 0
) -> bytes:
    return (
        b"NA64RAW1"
        + struct.pack("<HHIHHQ", 1, 64, run, run_type, 0, 1_700_000_000_000_000_000)
        + setup.ljust(16, b"\0")
        + struct.pack("<I", n_events)
        + bytes(16)
    )


def block(source: int, btype: int, channels: list[tuple[int, list[int]]], n_samples: int) -> bytes:
    payload = struct.pack("<HH", len(channels), n_samples)
    for channel, samples in channels:
        payload += struct.pack(f"<H{n_samples}H", channel, *samples)
    return struct.pack("<HBBI", source, btype, 0, len(payload)) + payload


def record(spill: int, event: int, time_ns: int, mask: int, blocks: list[bytes]) -> bytes:
    body = b"".join(blocks)
    size = 32 + len(body) + 4
    head = b"EV64" + struct.pack("<IIIQIHH", size, spill, event, time_ns, mask, len(blocks), 0)
    data = head + body
    return data + struct.pack("<I", zlib.crc32(data))
