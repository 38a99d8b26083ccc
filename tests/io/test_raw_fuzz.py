"""Property tests: random and mutated bytes never crash the reader and never hang it."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.decode import decode_file
from recon.io.rawformat import RawFormatError
from tests.io import reference_writer as ref

_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _valid_body(n_events: int = 6) -> bytes:
    rng = np.random.default_rng(11)
    body = b""
    for i in range(n_events):
        ecal = [(int(c), rng.integers(0, 4096, 32).tolist()) for c in rng.permutation(72)[:5]]
        mm = [(int(s), rng.integers(0, 4096, 3).tolist()) for s in rng.integers(0, 320, 4)]
        body += ref.record(2, i, i, 1, [ref.block(16, 1, ecal, 32), ref.block(33, 2, mm, 3)])
    return body


VALID = _valid_body()


def _check(path, db):
    try:
        digits, report = decode_file(path, db, chunk_events=3, buffer_bytes=4096)
    except RawFormatError:
        return None  # the documented error (only for a bad file header here)
    assert report.events_read == report.events_decoded + report.events_rejected
    assert len(digits) == report.events_decoded
    offsets = [r["offset"] for r in report.rejected]
    assert len(set(offsets)) == len(offsets)
    assert all(64 <= o < path.stat().st_size for o in offsets)
    return digits


@_SETTINGS
@given(body=st.binary(max_size=3000))
def test_random_bytes_after_a_valid_header(tmp_path, db, body):
    path = tmp_path / "random.na64raw"
    path.write_bytes(ref.file_header(run=1) + body)
    _check(path, db)


@_SETTINGS
@given(
    mutations=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, len(VALID)),
)
def test_mutated_valid_file(tmp_path, db, mutations, cut):
    body = bytearray(VALID)
    for position, value in mutations:
        body[position] = value
    path = tmp_path / "mutated.na64raw"
    path.write_bytes(ref.file_header(run=1) + bytes(body[:cut]))
    digits = _check(path, db)
    if digits is not None:
        # whatever survives is one of the original events, never an invented one
        assert set(digits.event.to_list()) <= set(range(6))


@_SETTINGS
@given(header=st.binary(min_size=0, max_size=80))
def test_random_file_header_is_rejected_cleanly(tmp_path, db, header):
    path = tmp_path / "header.na64raw"
    path.write_bytes(header)
    _check(path, db)
