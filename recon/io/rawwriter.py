"""Writing NA64RAW1 files from event batches (used by the simulation and tests).

Records are assembled by numba kernels over flat arrays: sizes and offsets
from the channel counts, a fill pass per block source, then the CRC of every
record by :data:`recon.io.crc32.CRC32_FUNCTION` (the system zlib's, else a
slicing-by-8 kernel), called from the kernel. The
file is written under a temporary name and renamed when closed, so a killed job
never leaves a file that looks complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import numba as nb
import numpy as np

from recon.io.crc32 import CRC32_FUNCTION
from recon.io.rawformat import (
    BLOCK_HEADER_SIZE,
    CRC_SIZE,
    EVENT_MAGIC,
    RECORD_HEADER_SIZE,
    EventBatch,
    FileHeader,
)

__all__ = ["RawWriter", "encode_events"]

_EV = np.frombuffer(EVENT_MAGIC, dtype=np.uint8)
_LE_U16 = np.dtype("<u2")


@nb.njit(cache=True, nogil=True)
def _put(out, pos, value, nbytes):
    for k in range(nbytes):
        out[pos + k] = (value >> (8 * k)) & 0xFF


@nb.njit(cache=True, nogil=True, inline="always")
def _put16(out, pos, value):
    out[pos] = value & 0xFF
    out[pos + 1] = (value >> 8) & 0xFF


@nb.njit(cache=True, nogil=True)
def _write_record_headers(out, rec_off, rec_size, spill, event, time_ns, mask, n_blocks, magic):
    for i in range(rec_off.size):
        p = rec_off[i]
        for k in range(4):
            out[p + k] = magic[k]
        _put(out, p + 4, rec_size[i], 4)
        _put(out, p + 8, spill[i], 4)
        _put(out, p + 12, event[i], 4)
        _put(out, p + 16, time_ns[i], 8)
        _put(out, p + 24, mask[i], 4)
        _put(out, p + 28, n_blocks, 2)
        _put(out, p + 30, 0, 2)


@nb.njit(cache=True, nogil=True)
def _write_block(out, out16, block_off, source, btype, hit_start, hit_count, channel, samples):
    """Block headers byte by byte; channel ids and samples as 16-bit words through ``out16``.

    ``out16`` is ``out`` viewed as little-endian uint16: every block starts at an even
    offset (record header 32 bytes, block header 12, 2-byte words), so word k of a block's
    payload is ``out16[(p + 12) // 2 + k]``.
    """
    n_samples = samples.shape[1]
    per_channel = 2 + 2 * n_samples
    for i in range(block_off.size):
        p = block_off[i]
        n = hit_count[i]
        _put(out, p, source, 2)
        out[p + 2] = btype
        out[p + 3] = 0
        _put(out, p + 4, 4 + n * per_channel, 4)
        _put(out, p + 8, n, 2)
        _put(out, p + 10, n_samples, 2)
        w = (p + 12) >> 1
        for h in range(hit_start[i], hit_start[i] + n):
            out16[w] = channel[h]
            w += 1
            for s in range(n_samples):
                out16[w + s] = samples[h, s]
            w += n_samples


@nb.njit(cache=True, nogil=True)
def _write_crcs(out, rec_off, rec_size, crc_function):
    base = out.ctypes.data
    for i in range(rec_off.size):
        end = rec_off[i] + rec_size[i] - 4
        _put(out, end, crc_function(0, base + rec_off[i], end - rec_off[i]), 4)


def _as_u16(values, what: str) -> np.ndarray:
    """``values`` as a contiguous uint16 array (no copy if it is one); out of range is an error."""
    values = np.asarray(values)
    if values.dtype != np.uint16 and values.size and (values.min() < 0 or values.max() > 0xFFFF):
        raise ValueError(f"{what} do not fit in 16 bits")
    return np.ascontiguousarray(values, dtype=np.uint16)


def encode_events(batch: EventBatch) -> np.ndarray:
    """The event records of ``batch`` as one uint8 array, ready to append to a file."""
    n = len(batch)
    counts = []
    rec_size = np.full(n, RECORD_HEADER_SIZE + CRC_SIZE, dtype=np.int64)
    for block in batch.blocks:
        idx = np.asarray(block.event_index, dtype=np.int64)
        if idx.size and np.any(np.diff(idx) < 0):
            raise ValueError(f"block of source {block.source}: event_index must be sorted")
        count = np.bincount(idx, minlength=n).astype(np.int64)
        counts.append(count)
        per_channel = 2 + 2 * block.samples.shape[1]
        rec_size += BLOCK_HEADER_SIZE + 4 + count * per_channel
    rec_off = np.zeros(n, dtype=np.int64)
    np.cumsum(rec_size[:-1], out=rec_off[1:])
    out = np.empty(int(rec_size.sum()), dtype=np.uint8)
    _write_record_headers(
        out,
        rec_off,
        rec_size,
        np.asarray(batch.spill, dtype=np.int64),
        np.asarray(batch.event, dtype=np.int64),
        np.asarray(batch.trigger_time_ns, dtype=np.int64),
        np.asarray(batch.trigger_mask, dtype=np.int64),
        len(batch.blocks),
        _EV,
    )
    out16 = out.view(_LE_U16)  # records have even sizes (headers, 2-byte words, CRC)
    block_off = rec_off + RECORD_HEADER_SIZE
    for block, count in zip(batch.blocks, counts, strict=True):
        hit_start = np.zeros(n, dtype=np.int64)
        np.cumsum(count[:-1], out=hit_start[1:])
        samples = _as_u16(block.samples, f"samples of source {block.source}")
        _write_block(
            out,
            out16,
            block_off,
            int(block.source),
            int(block.type),
            hit_start,
            count,
            _as_u16(block.channel, f"channels of source {block.source}"),
            samples,
        )
        block_off = block_off + BLOCK_HEADER_SIZE + 4 + count * (2 + 2 * samples.shape[1])
    _write_crcs(out, rec_off, rec_size, CRC32_FUNCTION)
    return out


class RawWriter:
    """Write an NA64RAW1 file atomically.

    >>> from recon.io.rawformat import FileHeader, RunType
    >>> with RawWriter("run.na64raw", FileHeader(run=1, run_type=RunType.PHYSICS,
    ...                setup="invis2016")) as w:                # doctest: +SKIP
    ...     w.write(batch)
    """

    def __init__(self, path: str | Path, header: FileHeader):
        self.path = Path(path)
        self.header = header
        self.n_events = 0
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
        self._fh.write(header.pack())

    def write(self, batch: EventBatch) -> None:
        if len(batch):
            self._fh.write(memoryview(encode_events(batch)))
            self.n_events += len(batch)

    def close(self) -> None:
        if self._fh.closed:
            return
        self._fh.seek(0)
        header = FileHeader(**{**self.header.__dict__, "n_events": self.n_events})
        self._fh.write(header.pack())
        self._fh.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
