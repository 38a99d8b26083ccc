"""Every corruption kind of spec section 7: its reason, its offset, the good events around it."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from recon.decode import decode_file
from recon.io.rawformat import RawFormatError
from tests.io import reference_writer as ref

N_EVENTS = 12
BAD = 5  # index of the corrupted record


def _records(rng) -> list[bytes]:
    records = []
    for i in range(N_EVENTS):
        ecal = [(int(c), rng.integers(100, 300, 32).tolist()) for c in range(72)]
        mm = [(int(s), rng.integers(200, 700, 3).tolist()) for s in (10, 11, 600)]
        records.append(
            ref.record(1, i, 100 * i, 1, [ref.block(16, 1, ecal, 32), ref.block(32, 2, mm, 3)])
        )
    return records


def _with_crc(record: bytes) -> bytes:
    body = record[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def _patch(record: bytes, offset: int, fmt: str, value: int, *, fix_crc: bool = True) -> bytes:
    patched = bytearray(record)
    struct.pack_into(fmt, patched, offset, value)
    return _with_crc(bytes(patched)) if fix_crc else bytes(patched)


# offsets inside a record: header 32 bytes, first block header (source u16, type u8, flags u8,
# payload size u32), payload (n_channels u16, n_samples u16, then channel u16 + 32 samples)
FIRST_BLOCK = 32
FIRST_CHANNEL = FIRST_BLOCK + 8 + 4
FIRST_SAMPLE = FIRST_CHANNEL + 2

CORRUPTIONS = {
    "bad_magic": lambda r: b"XV64" + r[4:],
    "crc_mismatch": lambda r: _patch(r, FIRST_SAMPLE, "<H", 1234, fix_crc=False),
    "payload_size_mismatch": lambda r: _patch(r, FIRST_BLOCK + 4, "<I", 4 + 71 * 66),
    "sample_overflow": lambda r: _patch(r, FIRST_SAMPLE + 6, "<H", 4096),
    "unknown_source": lambda r: _patch(r, FIRST_BLOCK, "<H", 99),
    "unknown_channel": lambda r: _patch(r, FIRST_CHANNEL, "<H", 72),
    "bad_block_type": lambda r: _patch(r, FIRST_BLOCK + 2, "<B", 2),
    "bad_n_samples": lambda r: _patch(r, FIRST_BLOCK + 10, "<H", 31),
    "bad_size": lambda r: _patch(r, 4, "<I", 12, fix_crc=False),
    "size_past_eof": lambda r: _patch(r, 4, "<I", 1 << 20, fix_crc=False),
}


def _file(tmp_path, records: list[bytes]):
    path = tmp_path / "corrupt.na64raw"
    path.write_bytes(ref.file_header(run=9) + b"".join(records))
    return path


@pytest.mark.parametrize("reason", sorted(CORRUPTIONS))
def test_corrupt_record_is_reported_and_neighbours_survive(tmp_path, db, reason):
    records = _records(np.random.default_rng(0))
    offset = 64 + sum(len(r) for r in records[:BAD])
    records[BAD] = CORRUPTIONS[reason](records[BAD])
    digits, report = decode_file(_file(tmp_path, records), db, chunk_events=4)
    assert report.rejected == [{"offset": offset, "reason": reason}]
    assert report.rejected_by_reason == {reason: 1}
    assert report.events_read == N_EVENTS == report.events_decoded + report.events_rejected
    assert digits.event.to_list() == [i for i in range(N_EVENTS) if i != BAD]
    assert np.all(digits.ecal.samples[:, :, :] < 300)


def test_truncated_last_record(tmp_path, db):
    records = _records(np.random.default_rng(1))
    offset = 64 + sum(len(r) for r in records[:-1])
    records[-1] = records[-1][: len(records[-1]) // 2]
    digits, report = decode_file(_file(tmp_path, records), db)
    assert report.rejected == [{"offset": offset, "reason": "truncated"}]
    assert len(digits) == N_EVENTS - 1


def test_truncated_record_header(tmp_path, db):
    records = _records(np.random.default_rng(1))
    offset = 64 + sum(len(r) for r in records[:-1])
    records[-1] = records[-1][:20]
    _, report = decode_file(_file(tmp_path, records), db)
    assert report.rejected == [{"offset": offset, "reason": "truncated"}]


def test_garbage_between_records_is_one_rejection(tmp_path, db):
    records = _records(np.random.default_rng(2))
    offset = 64 + sum(len(r) for r in records[:BAD])
    records.insert(BAD, b"\x00garbage" * 300)
    digits, report = decode_file(_file(tmp_path, records), db, buffer_bytes=4096)
    assert report.rejected == [{"offset": offset, "reason": "bad_magic"}]
    assert len(digits) == N_EVENTS


def test_records_after_odd_garbage_decode_the_same_samples(tmp_path, db):
    """An odd-length stretch of garbage puts the later records at odd offsets (the samples
    are then copied byte by byte, not as aligned words): same digits as without it."""
    records = _records(np.random.default_rng(4))
    clean, _ = decode_file(_file(tmp_path, records), db)
    records.insert(BAD, b"\x00garbage" * 30 + b"!")
    digits, report = decode_file(_file(tmp_path, records), db)
    assert report.rejected_by_reason == {"bad_magic": 1}
    assert digits.ecal.samples.to_list() == clean.ecal.samples.to_list()
    assert digits.strips.samples.to_list() == clean.strips.samples.to_list()


def test_fail_policy_stops_at_the_first_corrupt_record(tmp_path, db):
    records = _records(np.random.default_rng(3))
    offset = 64 + sum(len(r) for r in records[:BAD])
    records[BAD] = CORRUPTIONS["crc_mismatch"](records[BAD])
    path = _file(tmp_path, records)
    with pytest.raises(RawFormatError, match=f"offset {offset}: crc_mismatch") as info:
        decode_file(path, db, policy="fail")
    assert info.value.offset == offset and info.value.path == str(path)
