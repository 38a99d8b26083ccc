"""Decode NA64RAW1 records into per-event digits with the channel map applied.

Core: :func:`decode_records` turns the framed, CRC-checked records of a
buffer (from :class:`recon.io.rawreader.RawReader`) into flat arrays in two
numba passes: a count pass that validates the block structure (sizes that
add up, known source and channel, block type, number of samples) and counts
channels per record and detector group, then a fill pass that copies every
channel into preallocated arrays and rejects records with a sample above the
12-bit range. :func:`iter_digits` streams a file as awkward arrays in chunks
of at most ``chunk_events`` events; :func:`decode_file` collects them.

The digits of one event (one row)::

    run, spill, event: uint32; trigger_time_ns: uint64; trigger_mask: uint32
    ecal:     var * {section, ix, iy: uint8, samples: 32 * uint16}
    hcal:     var * {module, ix, iy: uint8, samples: 32 * uint16}
    counters: var * {counter: uint8, samples: 32 * uint16}
    strips:   var * {detector, plane: uint8, strip: uint16, samples: 3 * uint16}

(SADC groups and their fields come from the channel map.) Samples are kept as
recorded: no pedestal subtraction here.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import awkward as ak
import numba as nb
import numpy as np

from recon.conditions import ChannelMap, ConditionsDB
from recon.io.rawformat import RECORD_HEADER_SIZE, RawFormatError, Reason
from recon.io.rawreader import RawReader, ScannedRecords, _u32
from recon.provenance import CHECKSUM_ALGORITHM

__all__ = [
    "DecodeConfig",
    "DecodeReport",
    "DecoderTables",
    "decode_file",
    "decode_records",
    "iter_digits",
]

_SADC, _APV = 1, 2


@dataclass(frozen=True)
class DecodeConfig:
    """Options of the decode stage.

    ``policy``: ``skip`` counts, reports and skips corrupt records
    (resynchronising on the next record); ``fail`` stops at the first one
    with a :class:`~recon.io.rawformat.RawFormatError`.
    """

    chunk_events: int = 10_000
    policy: Literal["skip", "fail"] = "skip"
    buffer_bytes: int = 16 << 20


@dataclass
class DecodeReport:
    """What happened to every record: events_read = events_decoded + events_rejected."""

    path: str
    run: int = 0
    events_decoded: int = 0
    bytes_read: int = 0
    checksum: str = ""
    rejected: list[dict] = field(default_factory=list)

    @property
    def events_rejected(self) -> int:
        return len(self.rejected)

    @property
    def events_read(self) -> int:
        return self.events_decoded + self.events_rejected

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(r["reason"] for r in self.rejected).items()))

    def reject(self, offsets: np.ndarray, reasons: np.ndarray) -> None:
        self.rejected.extend(
            {"offset": int(o), "reason": Reason(int(r)).label}
            for o, r in zip(offsets, reasons, strict=True)
        )

    def to_dict(self) -> dict:
        return {
            "file": self.path,
            "run": self.run,
            "events_read": self.events_read,
            "events_decoded": self.events_decoded,
            "events_rejected": self.events_rejected,
            "rejected_by_reason": self.rejected_by_reason,
            "rejected": sorted(self.rejected, key=lambda r: r["offset"]),
            "bytes_read": self.bytes_read,
            CHECKSUM_ALGORITHM: self.checksum,
        }


@dataclass(frozen=True)
class DecoderTables:
    """The channel map and digitiser settings as dense arrays for the kernels."""

    source_kind: np.ndarray  # (n_src,) 0 unknown, 1 SADC, 2 APV
    sadc_group: np.ndarray  # (n_src,) group index or -1
    sadc_lut: np.ndarray  # (n_src, n_ch, 3) field values, -1 unmapped
    apv_lut: np.ndarray  # (n_src, n_ch, 2) plane, strip; -1 unmapped
    apv_detector: np.ndarray  # (n_src,) detector id
    group_names: tuple[str, ...]
    group_fields: tuple[tuple[str, ...], ...]
    sadc_samples: int
    apv_samples: int
    adc_max: int

    @classmethod
    def build(cls, channel_map: ChannelMap, daq: dict) -> DecoderTables:
        sadc_lut, apv_lut = channel_map.dense_tables()
        n_src = sadc_lut.shape[0]
        return cls(
            source_kind=channel_map.source_kind[:n_src].astype(np.int64),
            sadc_group=channel_map.sadc_group[:n_src].astype(np.int64),
            sadc_lut=sadc_lut,
            apv_lut=apv_lut,
            apv_detector=channel_map.apv_detector[:n_src].astype(np.int64),
            group_names=tuple(g.name for g in channel_map.groups),
            group_fields=tuple(g.fields for g in channel_map.groups),
            sadc_samples=int(daq["sadc"]["n_samples"]),
            apv_samples=int(daq["apv"]["n_samples"]),
            adc_max=int(max(daq["sadc"]["adc_max"], daq["apv"]["adc_max"])),
        )

    @classmethod
    def for_run(cls, db: ConditionsDB, setup: str, run: int) -> DecoderTables:
        daq, _ = db.data("daq", setup, run)
        return cls.build(db.channel_map(setup, run), daq)


@nb.njit(cache=True, nogil=True)
def _u16(buf, p):
    return np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)


@nb.njit(cache=True, nogil=True)
def _check_record(buf, s, size, kind, group, sadc_lut, apv_lut, sadc_ns, apv_ns, counts):
    """Validate the block structure of one record; add its channels to ``counts``.

    Returns a Reason. Sample values are checked while they are copied (fill pass).
    """
    n_src = kind.size
    p = s + RECORD_HEADER_SIZE
    end = s + size - 4
    n_blocks = _u16(buf, s + 28)
    for _ in range(n_blocks):
        if p + 8 > end:
            return 6  # PAYLOAD_SIZE_MISMATCH
        src = _u16(buf, p)
        btype = np.int64(buf[p + 2])
        psize = _u32(buf, p + 4)
        q = p + 8
        if q + psize > end or psize < 4:
            return 6
        if src >= n_src or kind[src] == 0:
            return 10  # UNKNOWN_SOURCE
        if btype != kind[src]:
            return 7  # BAD_BLOCK_TYPE
        n_ch = _u16(buf, q)
        ns = _u16(buf, q + 2)
        if ns != (sadc_ns if btype == _SADC else apv_ns):
            return 8  # BAD_N_SAMPLES
        if psize != 4 + n_ch * (2 + 2 * ns):
            return 6
        r = q + 4
        for _c in range(n_ch):
            ch = _u16(buf, r)
            if btype == _SADC:
                if ch >= sadc_lut.shape[1] or sadc_lut[src, ch, 0] < 0:
                    return 11  # UNKNOWN_CHANNEL
            elif ch >= apv_lut.shape[1] or apv_lut[src, ch, 0] < 0:
                return 11
            r += 2 + 2 * ns
        counts[group[src] if btype == _SADC else counts.size - 1] += n_ch
        p = q + psize
    if p != end:
        return 6
    return 0


@nb.njit(cache=True, nogil=True)
def _count_pass(
    buf,
    starts,
    sizes,
    kind,
    group,
    sadc_lut,
    apv_lut,
    sadc_ns,
    apv_ns,
    status,
    counts,
    spill,
    event,
    time_ns,
    mask,
):
    for i in range(starts.size):
        s = starts[i]
        spill[i] = _u32(buf, s + 8)
        event[i] = _u32(buf, s + 12)
        time_ns[i] = _u32(buf, s + 16) | (_u32(buf, s + 20) << 32)
        mask[i] = _u32(buf, s + 24)
        status[i] = _check_record(
            buf, s, sizes[i], kind, group, sadc_lut, apv_lut, sadc_ns, apv_ns, counts[i]
        )
        if status[i] != 0:
            counts[i, :] = 0


@nb.njit(cache=True, nogil=True)
def _copy_samples(buf, buf16, r, ns, out, row):
    """Copy ``ns`` little-endian u16 samples from ``buf[r:]`` into ``out[row]``; return the max.

    ``buf16`` is ``buf`` seen as little-endian u16 words (empty on a big-endian
    host): samples at an even offset (all of them in a conforming file) are
    copied word by word, others byte by byte.
    """
    high = 0
    if (r & 1) == 0 and buf16.size > 0:
        w = r >> 1
        for k in range(ns):
            v = buf16[w + k]
            out[row, k] = v
            high = max(high, v)
        return high
    for k in range(ns):
        v = np.uint16(buf[r + 2 * k]) | (np.uint16(buf[r + 2 * k + 1]) << 8)
        out[row, k] = v
        high = max(high, v)
    return high


@nb.njit(cache=True, nogil=True)
def _fill_pass(
    buf,
    buf16,
    starts,
    status,
    row_start,
    group,
    sadc_lut,
    apv_lut,
    apv_det,
    adc_max,
    sadc_fields,
    sadc_samples,
    apv_det_out,
    apv_plane,
    apv_strip,
    apv_samples,
):
    """Copy every channel of the valid records; mark records with a sample above ``adc_max``."""
    n_groups = row_start.shape[1] - 1
    n_fields = sadc_fields.shape[1]
    for i in range(starts.size):
        if status[i] != 0:
            continue
        s = starts[i]
        p = s + RECORD_HEADER_SIZE
        cursor = row_start[i].copy()
        high = 0
        for _ in range(_u16(buf, s + 28)):
            src = _u16(buf, p)
            sadc = buf[p + 2] == _SADC
            q = p + 8
            n_ch = _u16(buf, q)
            ns = _u16(buf, q + 2)
            r = q + 4
            g = group[src] if sadc else n_groups
            for _c in range(n_ch):
                ch = _u16(buf, r)
                row = cursor[g]
                cursor[g] += 1
                if sadc:
                    for f in range(n_fields):
                        sadc_fields[row, f] = sadc_lut[src, ch, f]
                    high = max(high, _copy_samples(buf, buf16, r + 2, ns, sadc_samples, row))
                else:
                    apv_det_out[row] = apv_det[src]
                    apv_plane[row] = apv_lut[src, ch, 0]
                    apv_strip[row] = apv_lut[src, ch, 1]
                    high = max(high, _copy_samples(buf, buf16, r + 2, ns, apv_samples, row))
                r += 2 + 2 * ns
            p = q + _u32(buf, p + 4)
        if high > adc_max:
            status[i] = 9  # SAMPLE_OVERFLOW


@dataclass
class _FlatDigits:
    """Flat decoded arrays of some records (one scan), before awkward assembly."""

    spill: np.ndarray
    event: np.ndarray
    trigger_time_ns: np.ndarray
    trigger_mask: np.ndarray
    counts: np.ndarray  # (n_events, n_groups + 1); last column = APV strips
    sadc_fields: list[np.ndarray]  # per group, (n, n_fields)
    sadc_samples: list[np.ndarray]  # per group, (n, n_samples)
    apv: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # detector, plane, strip, samples


def _words(buffer: np.ndarray) -> np.ndarray:
    """``buffer`` (uint8) as native u16 words where they are little-endian, else empty."""
    if sys.byteorder != "little":
        return np.empty(0, np.uint16)
    return buffer[: buffer.size & ~1].view(np.uint16)


def decode_records(
    scanned: ScannedRecords, tables: DecoderTables
) -> tuple[_FlatDigits, np.ndarray]:
    """Decode the records of one scan; return the good events and every record's Reason."""
    n = scanned.starts.size
    n_groups = len(tables.group_names)
    status = np.zeros(n, dtype=np.int64)
    counts = np.zeros((n, n_groups + 1), dtype=np.int64)
    spill, event = np.empty(n, np.uint32), np.empty(n, np.uint32)
    time_ns, mask = np.empty(n, np.uint64), np.empty(n, np.uint32)
    _count_pass(
        scanned.buffer, scanned.starts, scanned.sizes, tables.source_kind, tables.sadc_group,
        tables.sadc_lut, tables.apv_lut, tables.sadc_samples, tables.apv_samples,
        status, counts, spill, event, time_ns, mask,
    )  # fmt: skip
    totals = counts.sum(axis=0)
    group_base = np.concatenate([[0], np.cumsum(totals[:n_groups])])
    row_start = np.zeros((n, n_groups + 1), dtype=np.int64)
    np.cumsum(counts[:-1], axis=0, out=row_start[1:])
    row_start[:, :n_groups] += group_base[:n_groups]
    n_sadc, n_apv = int(group_base[-1]), int(totals[n_groups])
    sadc_fields = np.empty((n_sadc, tables.sadc_lut.shape[2]), dtype=np.int16)
    sadc_samples = np.empty((n_sadc, tables.sadc_samples), dtype=np.uint16)
    apv = (
        np.empty(n_apv, np.uint8),
        np.empty(n_apv, np.uint8),
        np.empty(n_apv, np.uint16),
        np.empty((n_apv, tables.apv_samples), np.uint16),
    )
    _fill_pass(
        scanned.buffer, _words(scanned.buffer), scanned.starts, status, row_start,
        tables.sadc_group, tables.sadc_lut, tables.apv_lut, tables.apv_detector, tables.adc_max,
        sadc_fields, sadc_samples, *apv,
    )  # fmt: skip
    good = status == 0
    sadc_fields = [sadc_fields[group_base[g] : group_base[g + 1]] for g in range(n_groups)]
    sadc_samples = [sadc_samples[group_base[g] : group_base[g + 1]] for g in range(n_groups)]
    if not good.all():  # drop the rows of records found bad while copying
        keep = [np.repeat(good, counts[:, g]) for g in range(n_groups + 1)]
        sadc_fields = [f[k] for f, k in zip(sadc_fields, keep, strict=False)]
        sadc_samples = [f[k] for f, k in zip(sadc_samples, keep, strict=False)]
        apv = tuple(a[keep[-1]] for a in apv)
    flat = _FlatDigits(
        spill=spill[good],
        event=event[good],
        trigger_time_ns=time_ns[good],
        trigger_mask=mask[good],
        counts=counts[good],
        sadc_fields=[f[:, : len(n)] for f, n in zip(sadc_fields, tables.group_fields, strict=True)],
        sadc_samples=sadc_samples,
        apv=apv,
    )
    return flat, status


def _jagged(counts: np.ndarray, columns: dict[str, np.ndarray]) -> ak.contents.Content:
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    contents = []
    for values in columns.values():
        if values.ndim == 2:
            inner = ak.contents.NumpyArray(np.ascontiguousarray(values).reshape(-1))
            contents.append(
                ak.contents.RegularArray(inner, values.shape[1], zeros_length=values.shape[0])
            )
        else:
            contents.append(ak.contents.NumpyArray(values))
    record = ak.contents.RecordArray(contents, list(columns), length=int(offsets[-1]))
    return ak.contents.ListOffsetArray(ak.index.Index64(offsets), record)


def _to_awkward(flat: _FlatDigits, run: int, tables: DecoderTables) -> ak.Array:
    n = flat.spill.size
    fields: dict[str, ak.contents.Content] = {
        "run": ak.contents.NumpyArray(np.full(n, run, dtype=np.uint32)),
        "spill": ak.contents.NumpyArray(flat.spill),
        "event": ak.contents.NumpyArray(flat.event),
        "trigger_time_ns": ak.contents.NumpyArray(flat.trigger_time_ns),
        "trigger_mask": ak.contents.NumpyArray(flat.trigger_mask),
    }
    for g, name in enumerate(tables.group_names):
        columns = {
            f: flat.sadc_fields[g][:, k].astype(np.uint8)
            for k, f in enumerate(tables.group_fields[g])
        }
        columns["samples"] = flat.sadc_samples[g]
        fields[name] = _jagged(flat.counts[:, g], columns)
    det, plane, strip, samples = flat.apv
    fields["strips"] = _jagged(
        flat.counts[:, -1], {"detector": det, "plane": plane, "strip": strip, "samples": samples}
    )
    return ak.Array(ak.contents.RecordArray(list(fields.values()), list(fields), length=n))


def iter_digits(
    path: str | Path,
    tables: DecoderTables,
    config: DecodeConfig = DecodeConfig(),
    report: DecodeReport | None = None,
) -> Iterator[ak.Array]:
    """Stream a raw file as awkward digits, one chunk per buffer scan.

    A chunk holds at most ``config.chunk_events`` events and about
    ``config.buffer_bytes`` of raw data, so memory stays bounded whatever the
    file size. Rejected records go to ``report`` (or raise under ``fail``).
    """
    reader = RawReader(path, buffer_bytes=config.buffer_bytes)
    report = report if report is not None else DecodeReport(path=str(path))
    report.run = reader.header.run
    for scanned in reader.scan(max_records=config.chunk_events):
        flat, status = decode_records(scanned, tables)
        bad = status != 0
        offsets = np.concatenate([scanned.rejected_offsets, scanned.file_offsets[bad]])
        reasons = np.concatenate([scanned.rejected_reasons, status[bad]])
        if offsets.size and config.policy == "fail":
            first = np.argmin(offsets)
            raise RawFormatError(path, int(offsets[first]), Reason(int(reasons[first])).label)
        report.reject(offsets, reasons)
        report.bytes_read = reader.bytes_read
        if flat.spill.size:
            report.events_decoded += flat.spill.size
            yield _to_awkward(flat, reader.header.run, tables)
    report.bytes_read = reader.bytes_read
    report.checksum = reader.checksum


def decode_file(
    path: str | Path,
    db: ConditionsDB,
    *,
    chunk_events: int = 10_000,
    policy: Literal["skip", "fail"] = "skip",
    buffer_bytes: int = DecodeConfig.buffer_bytes,
) -> tuple[ak.Array, DecodeReport]:
    """Decode a whole raw file into one awkward array (for tests and small files)."""
    reader_header = RawReader(path).header
    tables = DecoderTables.for_run(db, reader_header.setup, reader_header.run)
    report = DecodeReport(path=str(path))
    config = DecodeConfig(chunk_events=chunk_events, policy=policy, buffer_bytes=buffer_bytes)
    chunks = list(iter_digits(path, tables, config, report))
    digits = (
        ak.concatenate(chunks)
        if chunks
        else _to_awkward(_empty_flat(tables), reader_header.run, tables)
    )
    return digits, report


def _empty_flat(tables: DecoderTables) -> _FlatDigits:
    n_groups = len(tables.group_names)
    e = np.empty
    return _FlatDigits(
        e(0, np.uint32),
        e(0, np.uint32),
        e(0, np.uint64),
        e(0, np.uint32),
        e((0, n_groups + 1), np.int64),
        [e((0, len(f)), np.int16) for f in tables.group_fields],
        [e((0, tables.sadc_samples), np.uint16) for _ in range(n_groups)],
        (e(0, np.uint8), e(0, np.uint8), e(0, np.uint16), e((0, tables.apv_samples), np.uint16)),
    )
