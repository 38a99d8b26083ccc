"""Writer -> reader round trips and decoding of files written by another program."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from recon.decode import decode_file
from recon.io.rawformat import FileHeader, RawFormatError, RunType
from tests.conftest import random_batch, write_raw
from tests.io import reference_writer as ref


def _expected_rows(batch, source):
    block = next(b for b in batch.blocks if b.source == source)
    return block.channel, block.samples


def test_roundtrip_keeps_every_value(tmp_path, db):
    batch = random_batch(np.random.default_rng(1), 200)
    digits, report = decode_file(write_raw(tmp_path / "r.na64raw", batch), db, chunk_events=37)
    assert report.events_read == report.events_decoded == 200 and report.events_rejected == 0
    assert np.array_equal(digits.spill, batch.spill)
    assert np.array_equal(digits.event, batch.event)
    assert np.array_equal(digits.trigger_time_ns, batch.trigger_time_ns)
    assert set(np.unique(digits.run)) == {1234}
    channel, samples = _expected_rows(batch, 16)
    assert np.array_equal(ak.to_numpy(ak.flatten(digits.ecal.samples)), samples)
    k = channel % 36  # spec section 8: section = c // 36, ix = 5 - k // 6, iy = k % 6
    assert np.array_equal(ak.to_numpy(ak.flatten(digits.ecal.section)), channel // 36)
    assert np.array_equal(ak.to_numpy(ak.flatten(digits.ecal.ix)), 5 - k // 6)
    assert np.array_equal(ak.to_numpy(ak.flatten(digits.ecal.iy)), k % 6)
    channel, samples = _expected_rows(batch, 17)
    assert np.array_equal(ak.to_numpy(ak.flatten(digits.hcal.module)), channel // 9)
    assert np.array_equal(ak.to_numpy(ak.flatten(digits.hcal.ix)), (channel % 9) % 3)
    assert np.array_equal(ak.to_numpy(ak.flatten(digits.hcal.iy)), (channel % 9) // 3)
    assert np.array_equal(
        ak.to_numpy(ak.flatten(digits.counters.counter)), _expected_rows(batch, 18)[0]
    )


def test_strips_keep_event_and_detector(tmp_path, db):
    batch = random_batch(np.random.default_rng(2), 60)
    digits, _ = decode_file(write_raw(tmp_path / "r.na64raw", batch), db)
    for detector, source in enumerate((32, 33, 34, 35)):
        block = next(b for b in batch.blocks if b.source == source)
        mine = digits.strips[digits.strips.detector == detector]
        assert np.array_equal(ak.num(mine), np.bincount(block.event_index, minlength=60))
        assert np.array_equal(ak.to_numpy(ak.flatten(mine.plane)), block.channel // 512)
        assert np.array_equal(ak.to_numpy(ak.flatten(mine.strip)), block.channel % 512)
        assert np.array_equal(ak.to_numpy(ak.flatten(mine.samples)), block.samples)


@pytest.mark.parametrize("buffer_bytes", [4096, 100_000])
def test_result_does_not_depend_on_buffer_or_chunking(tmp_path, db, buffer_bytes):
    batch = random_batch(np.random.default_rng(3), 120)
    path = write_raw(tmp_path / "r.na64raw", batch)
    whole, _ = decode_file(path, db)
    pieces, report = decode_file(path, db, chunk_events=11, buffer_bytes=buffer_bytes)
    assert report.events_decoded == 120
    assert ak.array_equal(whole, pieces)


def test_empty_file_decodes_to_no_events(tmp_path, db):
    path = tmp_path / "empty.na64raw"
    path.write_bytes(FileHeader(run=5, run_type=RunType.PEDESTAL, setup="invis2016").pack())
    digits, report = decode_file(path, db)
    assert len(digits) == 0 and report.events_read == 0


def test_bad_file_header_is_a_clear_error(tmp_path, db):
    path = tmp_path / "bad.na64raw"
    path.write_bytes(b"NOTNA64!" + bytes(100))
    with pytest.raises(RawFormatError, match="offset 0: bad_file_magic"):
        decode_file(path, db)


def test_file_from_another_writer_decodes_exactly(tmp_path, db):
    """A conforming file written with struct/zlib only decodes to the values it holds."""
    rng = np.random.default_rng(4)
    events = []
    data = ref.file_header(run=77)
    for i in range(40):
        ecal = [(int(c), rng.integers(0, 4096, 32).tolist()) for c in rng.permutation(72)[:10]]
        gem = [(int(s), rng.integers(0, 4096, 3).tolist()) for s in rng.integers(0, 256, 3)]
        counters = [(2, rng.integers(0, 4096, 32).tolist())]
        blocks = [
            ref.block(34, 2, gem, 3),
            ref.block(16, 1, ecal, 32),
            ref.block(18, 1, counters, 32),
        ]
        data += ref.record(spill=3, event=i, time_ns=1000 * i, mask=1, blocks=blocks)
        events.append((ecal, gem))
    path = tmp_path / "foreign.na64raw"
    path.write_bytes(data)
    digits, report = decode_file(path, db)
    assert report.events_decoded == 40 and report.events_rejected == 0
    assert np.all(digits.run == 77)
    for i, (ecal, gem) in enumerate(events):
        channels = np.array([c for c, _ in ecal])
        k = channels % 36
        assert digits.ecal.section[i].to_list() == (channels // 36).tolist()
        assert digits.ecal.ix[i].to_list() == (5 - k // 6).tolist()
        assert digits.ecal.samples[i].to_list() == [s for _, s in ecal]
        assert digits.strips.samples[i].to_list() == [s for _, s in gem]
        assert set(digits.strips.detector[i].to_list()) <= {2}
    assert np.all(digits.trigger_time_ns == 1000 * np.arange(40))


def test_without_system_zlib_the_same_bytes_are_written_and_read(monkeypatch, tmp_path):
    """The slicing-by-8 fallback and the system zlib give byte-identical records."""
    from recon.io import crc32, rawreader, rawwriter

    assert crc32.system_crc32_function() is not None, "this machine has libz.so.1"
    batch = random_batch(np.random.default_rng(11), 20)
    with_libz = rawwriter.encode_events(batch)
    fallback = crc32.slicing_by_8_function()
    monkeypatch.setattr(rawwriter, "CRC32_FUNCTION", fallback)
    monkeypatch.setattr(rawreader, "CRC32_FUNCTION", fallback)
    assert np.array_equal(rawwriter.encode_events(batch), with_libz)
    path = tmp_path / "fallback.na64raw"
    write_raw(path, batch)
    records = list(rawreader.RawReader(path).scan(max_records=64))
    assert sum(r.starts.size for r in records) == 20
    assert sum(r.rejected_offsets.size for r in records) == 0
