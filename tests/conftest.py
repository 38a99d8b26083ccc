"""Shared fixtures: the shipped conditions and random conforming raw events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon.conditions import ConditionsDB
from recon.io.rawformat import Block, BlockType, EventBatch, FileHeader, RunType
from recon.io.rawwriter import RawWriter

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = REPO / "conditions"

# (source, channels) of the invis2016 channel map (spec section 8)
SADC_SOURCES = ((16, 72), (17, 36), (18, 11))
APV_SOURCES = ((32, 320), (33, 320), (34, 256), (35, 256))


@pytest.fixture(scope="session")
def db() -> ConditionsDB:
    return ConditionsDB([CONDITIONS])


def random_batch(rng: np.random.Generator, n: int, *, max_strips: int = 12) -> EventBatch:
    """``n`` conforming events: every SADC channel, a random subset of APV strips."""
    event = np.arange(n)
    blocks = []
    for source, n_ch in SADC_SOURCES:
        idx = np.repeat(event, n_ch)
        channel = np.tile(np.arange(n_ch), n)
        samples = rng.integers(0, 4096, size=(idx.size, 32), dtype=np.uint16)
        blocks.append(Block(source, BlockType.SADC, idx, channel, samples))
    for source, n_strips in APV_SOURCES:
        per_event = rng.integers(0, max_strips + 1, size=n)
        idx = np.repeat(event, per_event)
        plane = rng.integers(0, 2, size=idx.size)
        channel = plane * 512 + rng.integers(0, n_strips, size=idx.size)
        samples = rng.integers(0, 4096, size=(idx.size, 3), dtype=np.uint16)
        blocks.append(Block(source, BlockType.APV, idx, channel, samples))
    return EventBatch(
        spill=rng.integers(1, 100, size=n).astype(np.uint32),
        event=event.astype(np.uint32),
        trigger_time_ns=np.sort(rng.integers(0, 2**40, size=n)).astype(np.uint64),
        trigger_mask=np.ones(n, dtype=np.uint32),
        blocks=blocks,
    )


def write_raw(path: Path, batch: EventBatch, *, run: int = 1234) -> Path:
    header = FileHeader(run=run, run_type=RunType.PHYSICS, setup="invis2016", simulated=True)
    with RawWriter(path, header) as writer:
        writer.write(batch)
    return path


@pytest.fixture
def raw_file(tmp_path) -> tuple[Path, EventBatch]:
    batch = random_batch(np.random.default_rng(7), 50)
    return write_raw(tmp_path / "run1234-0000.na64raw", batch), batch
