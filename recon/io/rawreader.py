"""Streaming reader of NA64RAW1 files: framing, CRC and resynchronisation.

The reader walks a file through a bounded buffer. A numba kernel scans the
buffer record by record, checking the ``EV64`` magic, the record size against
the minimum, the configured maximum and the end of file, and the CRC-32. A
corrupt record is reported with its file offset and :class:`Reason`, and the
scan resynchronises on the next ``EV64`` magic (a valid 12-bit sample stream
can never contain those bytes, so the search is safe). Records that pass are
handed on, still as bytes, to the block decoder (:mod:`recon.decode`).

Memory stays bounded by the buffer size plus one record, whatever the file
size: the buffer is refilled and compacted as the scan advances.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np

from recon.io.crc32 import CRC32_FUNCTION
from recon.io.rawformat import (
    FILE_HEADER_SIZE,
    MIN_RECORD_SIZE,
    RECORD_HEADER_SIZE,
    FileHeader,
    Reason,
)
from recon.provenance import new_checksum

__all__ = ["RawReader", "ScannedRecords"]

# scan kernel exit states
_FULL, _NEED_MORE, _EOF = 0, 1, 2


@dataclass
class ScannedRecords:
    """Records of a buffer that passed framing and CRC, plus the rejected ones."""

    buffer: np.ndarray  # uint8 view; valid until the next scan
    starts: np.ndarray  # (n,) record start in buffer
    sizes: np.ndarray  # (n,) record size
    file_offsets: np.ndarray  # (n,) record start in the file
    rejected_offsets: np.ndarray
    rejected_reasons: np.ndarray


@nb.njit(cache=True, nogil=True)
def _u32(buf, p):
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


@nb.njit(cache=True, nogil=True)
def _is_magic(buf, p):
    return buf[p] == 69 and buf[p + 1] == 86 and buf[p + 2] == 54 and buf[p + 3] == 52  # "EV64"


@nb.njit(cache=True, nogil=True)
def _find_magic(buf, start, stop):
    for p in range(start, stop - 3):
        if _is_magic(buf, p):
            return p
    return -1


@nb.njit(cache=True, nogil=True)
def _scan(
    buf,
    n_bytes,
    base,
    file_size,
    at_eof,
    resyncing,
    max_record,
    max_good,
    starts,
    sizes,
    bad_off,
    bad_reason,
    crc_function,
):
    """Scan ``buf[:n_bytes]`` (file bytes from ``base``); see module docstring.

    Returns (state, consumed, n_good, n_bad, resyncing).
    """
    pos = 0
    n_good = 0
    n_bad = 0
    max_bad = bad_off.size
    while True:
        if n_good >= max_good or n_bad >= max_bad:
            return _FULL, pos, n_good, n_bad, resyncing
        if resyncing:
            nxt = _find_magic(buf, pos, n_bytes)
            if nxt < 0:
                if at_eof:
                    return _EOF, n_bytes, n_good, n_bad, True
                return _NEED_MORE, max(pos, n_bytes - 3), n_good, n_bad, True
            pos = nxt
            resyncing = False
        remaining = n_bytes - pos
        if remaining == 0:
            return (_EOF if at_eof else _NEED_MORE), pos, n_good, n_bad, False
        if remaining < RECORD_HEADER_SIZE:
            if not at_eof:
                return _NEED_MORE, pos, n_good, n_bad, False
            bad_off[n_bad] = base + pos
            bad_reason[n_bad] = 4 if (remaining >= 4 and _is_magic(buf, pos)) else 1
            n_bad += 1
            return _EOF, n_bytes, n_good, n_bad, False
        if not _is_magic(buf, pos):
            bad_off[n_bad] = base + pos
            bad_reason[n_bad] = 1  # BAD_MAGIC
            n_bad += 1
            resyncing = True
            pos += 1
            continue
        size = _u32(buf, pos + 4)
        if size < MIN_RECORD_SIZE or size > max_record:
            bad_off[n_bad] = base + pos
            bad_reason[n_bad] = 2  # BAD_SIZE
            n_bad += 1
            resyncing = True
            pos += 4
            continue
        if pos + size > n_bytes:
            if base + pos + size <= file_size or not at_eof:
                return _NEED_MORE, pos, n_good, n_bad, False
            nxt = _find_magic(buf, pos + 4, n_bytes)
            bad_off[n_bad] = base + pos
            bad_reason[n_bad] = 3 if nxt >= 0 else 4  # SIZE_PAST_EOF or TRUNCATED
            n_bad += 1
            if nxt < 0:
                return _EOF, n_bytes, n_good, n_bad, False
            pos = nxt
            continue
        stored = _u32(buf, pos + size - 4)
        if crc_function(0, buf.ctypes.data + pos, size - 4) != stored:
            bad_off[n_bad] = base + pos
            bad_reason[n_bad] = 5  # CRC_MISMATCH
            n_bad += 1
            end = pos + size
            if end == n_bytes or (end + 4 <= n_bytes and _is_magic(buf, end)):
                pos = end
            else:
                resyncing = True
                pos += 4
            continue
        starts[n_good] = pos
        sizes[n_good] = size
        n_good += 1
        pos += size


class RawReader:
    """Stream the records of an NA64RAW1 file through a bounded buffer.

    Parameters
    ----------
    path
        The raw file.
    buffer_bytes
        Size of the read buffer (bytes). It grows only to hold one record
        larger than itself, up to ``max_record_bytes``.
    max_record_bytes
        Largest record accepted (``daq.max_record_bytes``); larger sizes are
        rejected as ``bad_size`` so that one corrupt size field cannot claim
        the rest of the file.

    Iterating yields :class:`ScannedRecords` for at most ``max_records``
    good records at a time; the buffer they point into is reused afterwards.
    """

    def __init__(
        self, path: str | Path, *, buffer_bytes: int = 8 << 20, max_record_bytes: int = 16 << 20
    ):
        self.path = Path(path)
        self.file_size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            head = fh.read(FILE_HEADER_SIZE)
        self.header = FileHeader.unpack(head, self.path)
        self._checksum = new_checksum()
        self._checksum.update(head)
        self.buffer_bytes = max(int(buffer_bytes), 1 << 12)
        self.max_record_bytes = int(max_record_bytes)
        self.bytes_read = FILE_HEADER_SIZE

    def scan(self, max_records: int) -> Iterator[ScannedRecords]:
        buf = np.empty(self.buffer_bytes, dtype=np.uint8)
        starts = np.empty(max_records, dtype=np.int64)
        sizes = np.empty(max_records, dtype=np.int64)
        bad_off = np.empty(max_records + 64, dtype=np.int64)
        bad_reason = np.empty(max_records + 64, dtype=np.int64)
        base = FILE_HEADER_SIZE  # file offset of buf[0]
        n_bytes = 0
        resyncing = False
        with open(self.path, "rb") as fh:
            fh.seek(base)
            while True:
                if base + n_bytes < self.file_size and n_bytes < buf.size:
                    got = fh.readinto(memoryview(buf)[n_bytes:])
                    self._checksum.update(memoryview(buf)[n_bytes : n_bytes + got])
                    if got == 0:  # the file shrank while being read: treat as its end
                        self.file_size = base + n_bytes
                    n_bytes += got
                    self.bytes_read += got
                at_eof = base + n_bytes >= self.file_size
                state, consumed, n_good, n_bad, resyncing = _scan(
                    buf,
                    n_bytes,
                    base,
                    self.file_size,
                    at_eof,
                    resyncing,
                    self.max_record_bytes,
                    max_records,
                    starts,
                    sizes,
                    bad_off,
                    bad_reason,
                    CRC32_FUNCTION,
                )
                if n_good or n_bad:
                    yield ScannedRecords(
                        buffer=buf,
                        starts=starts[:n_good],
                        sizes=sizes[:n_good],
                        file_offsets=starts[:n_good] + base,
                        rejected_offsets=bad_off[:n_bad].copy(),
                        rejected_reasons=bad_reason[:n_bad].copy(),
                    )
                if state == _EOF:
                    return
                if state == _NEED_MORE and consumed == 0 and n_bytes == buf.size:
                    buf = self._grown(buf, n_bytes)
                    continue
                # compact: keep the unconsumed tail at the front of the buffer
                tail = n_bytes - consumed
                buf[:tail] = buf[consumed:n_bytes]
                base += consumed
                n_bytes = tail

    @property
    def checksum(self) -> str:
        """XXH3-128 of the bytes read so far (of the whole file once a scan has ended)."""
        return self._checksum.hexdigest()

    def _grown(self, buf: np.ndarray, n_bytes: int) -> np.ndarray:
        """A larger buffer holding the current bytes (one record exceeds the buffer)."""
        size = min(2 * buf.size, self.max_record_bytes + RECORD_HEADER_SIZE)
        if size <= buf.size:  # pragma: no cover - the kernel rejects larger records first
            raise RuntimeError("raw reader buffer cannot grow further")
        grown = np.empty(size, dtype=np.uint8)
        grown[:n_bytes] = buf[:n_bytes]
        return grown


REASON_LABELS = {int(r): r.label for r in Reason}
