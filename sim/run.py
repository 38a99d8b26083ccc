"""Run assembly: generate, digitise, number and write a simulated run.

A run of ``n_events`` triggered events is made of segments (one for physics, signal,
HCAL-calibration and pedestal runs; one per ECAL cell for the ECAL calibration scan,
with an equal share of the events, 100 GeV electrons steered onto the cell centre).
A calibration run may instead aim at one ``target_cell`` and scan beam energies
(``beam_energies_GeV``: one segment per energy and cell, the ECAL energy scan of the
resolution and linearity); without these options the segments, seeds and outputs are
those of the cell scan. A muon run (``hcal_calibration``) with ``scan_cells`` aims the
muons at every ECAL cell centre in turn, one segment per cell (the MIP intercalibration
of the preshower cells); without it, one segment of the undeflected beam as before.
A segment is filled block by block: block ``b`` generates a fixed number of beam
particles (``run.beam_per_block`` of the parameter file) with a generator seeded by
``SeedSequence([seed, run, STREAM_EVENTS, segment, b, 0])`` and digitises its triggered
events in chunks of ``run.digitize_chunk_events`` (chunk ``c`` with stream
``[..., b, 1 + c]``, which bounds memory), until the segment has
its events; the last block's surplus triggers are dropped (their share of the
electrons on target with them). No random number depends on the write batch size, so
the output is the same for any ``batch_size``.

Events are numbered in spills of ``triggers_per_spill`` events (spill and
event-in-spill from 1); trigger times are sorted uniform times within the
4.8 s spill (stream ``[seed, run, STREAM_TIMING, spill]``) plus the spill's
start, one spill per ``spill_period_s``. Outputs: the NA64RAW1 file (run type
0 physics/signal, 1 calibration, 2 pedestal; flags bit 0 simulated), the
truth table (:mod:`sim.truth`), the true constants (:mod:`sim.true_constants`)
and a run summary JSON (electrons on target, beam particles, triggers, counts
and weight sums per process, seed, versions). Every file is written under a
temporary name and renamed when complete.
"""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import awkward as ak
import numpy as np
import yaml

import recon
import sim
from recon.conditions import ConditionsDB, Geometry
from recon.io.rawformat import EventBatch, FileHeader, RunType, TriggerBit
from recon.io.rawwriter import RawWriter
from recon.io.tables import write_events, write_json
from recon.progress import Progress
from recon.provenance import code_hash, make_provenance
from sim.deposits import APRIME_HISTOGRAM_EDGES_GeV, TrueEvents
from sim.digitize import DigitizedEvents, Digitizer
from sim.true_constants import TrueConstants, draw_true_constants, write_true_constants
from sim.truth import process_tally, truth_columns, zip_truth

__all__ = [
    "DEFAULT_PARAMS_PATH",
    "RUN_KINDS",
    "EventSource",
    "RunKind",
    "Segment",
    "SpillClock",
    "generator_event_source",
    "load_digitization_params",
    "run_segments",
    "simulate_run",
]

log = logging.getLogger("na64.simulate")

DEFAULT_PARAMS_PATH = Path(__file__).parent / "params" / "digitization.yaml"
STREAM_EVENTS = 2
STREAM_TIMING = 3
MAX_EMPTY_BLOCKS = 1000   # consecutive blocks without a trigger before giving up


@dataclass(frozen=True)
class RunKind:
    """How a run kind is generated and recorded."""

    run_type: RunType
    trigger_mask: int
    generator_kind: str
    zero_suppression: bool = True


RUN_KINDS: dict[str, RunKind] = {
    "physics": RunKind(RunType.PHYSICS, TriggerBit.PHYSICS, "physics"),
    "signal": RunKind(RunType.PHYSICS, TriggerBit.PHYSICS, "signal"),
    "calibration": RunKind(RunType.CALIBRATION, TriggerBit.CALIBRATION, "ecal_scan"),
    "hcal_calibration": RunKind(RunType.CALIBRATION, TriggerBit.CALIBRATION, "hcal_muons"),
    "pedestal": RunKind(RunType.PEDESTAL, TriggerBit.RANDOM, "random", zero_suppression=False),
}


class EventSource(Protocol):
    """The event generator as the run sees it (``sim.generator.generate`` bound to a setup)."""

    def __call__(self, kind: str, n_beam: int, rng: np.random.Generator, *,
                 mass_GeV: float | None = None,
                 beam_target_xy_mm: np.ndarray | None = None,
                 aprime_counts: np.ndarray | None = None,
                 beam_momentum_GeV: float | None = None) -> tuple[TrueEvents, int]: ...


def generator_event_source(geometry: Geometry, field_data: dict[str, Any],
                           physics_params_path: str | Path | None = None) -> EventSource:
    """``sim.generator.generate`` bound to a geometry, field and physics parameters."""
    from sim import generator  # imported on use: it compiles its kernels when loaded

    params = generator.load_physics_params(physics_params_path)

    def source(kind, n_beam, rng, *, mass_GeV=None, beam_target_xy_mm=None, aprime_counts=None,
               beam_momentum_GeV=None):
        return generator.generate(kind, n_beam, rng, geometry=geometry, field_data=field_data,
                                  params=params, mass_GeV=mass_GeV,
                                  beam_target_xy_mm=beam_target_xy_mm,
                                  aprime_counts=aprime_counts,
                                  beam_momentum_GeV=beam_momentum_GeV)

    return source


def load_digitization_params(path: str | Path | None = None) -> dict[str, Any]:
    with open(path or DEFAULT_PARAMS_PATH) as fh:
        return yaml.safe_load(fh)


@dataclass(frozen=True)
class Segment:
    index: int
    n_events: int
    beam_target_xy_mm: tuple[float, float] | None = None
    beam_energy_GeV: float | None = None   # None: the beam's nominal momentum


def run_segments(kind: str, n_events: int, geometry: Geometry, *,
                 beam_energies_GeV: Sequence[float] | None = None,
                 target_cell: tuple[int, int] | None = None,
                 scan_cells: bool = False) -> list[Segment]:
    """The segments of a run: one, or one per (cell, beam energy) of a scan.

    Calibration runs aim at every ECAL cell centre (the cell scan) or at ``target_cell``
    (ix, iy) only, with the nominal beam momentum or each of ``beam_energies_GeV`` (GeV) in
    turn (cell-major order); muon runs (``hcal_calibration``) with ``scan_cells`` aim at
    every ECAL cell centre in turn (the muon cell scan). The events are shared equally, the
    first segments taking one more when ``n_events`` does not divide. Other kinds take none
    of these options.
    """
    if scan_cells and kind != "hcal_calibration":
        raise ValueError("scan_cells applies to muon (hcal_calibration) runs only")
    if kind != "calibration":
        if beam_energies_GeV is not None or target_cell is not None:
            raise ValueError("beam energies and a target cell apply to calibration runs only")
        if not scan_cells:
            return [Segment(0, n_events)]
    ecal = geometry.ecal
    if target_cell is None:
        cells = [(ix, iy) for ix in range(ecal.n_x) for iy in range(ecal.n_y)]
    elif not (0 <= target_cell[0] < ecal.n_x and 0 <= target_cell[1] < ecal.n_y):
        raise ValueError(f"target cell {tuple(target_cell)} outside the {ecal.n_x}x{ecal.n_y} ECAL")
    else:
        cells = [(int(target_cell[0]), int(target_cell[1]))]
    if beam_energies_GeV is not None and (len(beam_energies_GeV) == 0
                                          or min(beam_energies_GeV) <= 0):
        raise ValueError("beam energies must be a non-empty list of positive values (GeV)")
    energies = [None] if beam_energies_GeV is None else [float(e) for e in beam_energies_GeV]
    points = [(cell, energy) for cell in cells for energy in energies]
    share, extra = divmod(n_events, len(points))
    return [
        Segment(k, share + (k < extra), (float(ecal.cell_x(ix)), float(ecal.cell_y(iy))), energy)
        for k, ((ix, iy), energy) in enumerate(points)
    ]


@dataclass(frozen=True)
class SpillClock:
    """Event numbering: spills of a fixed number of triggers, times uniform within a spill."""

    triggers_per_spill: int
    spill_length_s: float
    spill_period_s: float

    def ids(self, first: int, n: int, seed: int, run: int) -> dict[str, np.ndarray]:
        """Spill, event-in-spill (both from 1) and trigger time of events first..first+n-1."""
        index = np.arange(first, first + n, dtype=np.int64)
        spill0, event0 = np.divmod(index, self.triggers_per_spill)
        t_ns = np.empty(n, dtype=np.uint64)
        for s in np.unique(spill0):
            rng = np.random.default_rng(np.random.SeedSequence([seed, run, STREAM_TIMING, int(s)]))
            offsets = np.sort(rng.random(self.triggers_per_spill)) * self.spill_length_s * 1e9
            start_ns = int(s) * round(self.spill_period_s * 1e9)
            here = spill0 == s
            t_ns[here] = start_ns + offsets[event0[here]].astype(np.uint64)
        return {"spill": spill0 + 1, "event": event0 + 1, "trigger_time_ns": t_ns}


@dataclass
class _Piece:
    """The written events of one generator block."""

    events: TrueEvents
    digitized: DigitizedEvents
    segment: Segment
    n_beam: int
    eot: float
    eot_generated: int
    n_triggered: int
    aprime_counts: np.ndarray | float  # generated A' per energy bin, times the written share


@dataclass(frozen=True, eq=False)
class _RunPlan:
    kind: str
    spec: RunKind
    run: int
    seed: int
    mass_GeV: float | None
    segments: tuple[Segment, ...]
    beam_per_block: int
    chunk_events: int
    digitizer: Digitizer
    constants: TrueConstants
    source: EventSource


def _block_key(plan: _RunPlan, segment: Segment, block: int, stream: int) -> np.random.Generator:
    """Stream 0: the block's generator; stream 1 + c: digitisation of its chunk c."""
    return np.random.default_rng(
        np.random.SeedSequence([plan.seed, plan.run, STREAM_EVENTS, segment.index, block, stream]))


def _pieces(plan: _RunPlan) -> Iterator[_Piece]:
    for segment in plan.segments:
        collected, block, empty = 0, 0, 0
        while collected < segment.n_events:
            target = None
            if segment.beam_target_xy_mm is not None:
                target = np.tile(np.asarray(segment.beam_target_xy_mm), (plan.beam_per_block, 1))
            signal = plan.mass_GeV is not None
            aprime = np.zeros(APRIME_HISTOGRAM_EDGES_GeV.size - 1) if signal else None
            # the beam momentum goes to the source only when a segment sets it (energy scan)
            momentum = ({} if segment.beam_energy_GeV is None
                        else {"beam_momentum_GeV": segment.beam_energy_GeV})
            events, eot = plan.source(plan.spec.generator_kind, plan.beam_per_block,
                                      _block_key(plan, segment, block, 0), mass_GeV=plan.mass_GeV,
                                      beam_target_xy_mm=target, aprime_counts=aprime, **momentum)
            n_triggered = len(events)
            take = min(n_triggered, segment.n_events - collected)
            share = take / n_triggered if n_triggered else 1.0
            counts = {"n_beam": plan.beam_per_block, "eot": eot * share, "eot_generated": int(eot),
                      "n_triggered": n_triggered,
                      "aprime_counts": 0.0 if aprime is None else aprime * share}
            for c, first in enumerate(range(0, max(take, 1), plan.chunk_events)):
                chunk = events.take(np.arange(first, min(first + plan.chunk_events, take)))
                digitized = plan.digitizer.digitize(chunk, plan.constants,
                                                    _block_key(plan, segment, block, 1 + c),
                                                    zero_suppression=plan.spec.zero_suppression)
                yield _Piece(chunk, digitized, segment, **counts)
                counts = dict.fromkeys(counts, 0)
            collected += take
            block += 1
            empty = empty + 1 if n_triggered == 0 else 0
            if empty >= MAX_EMPTY_BLOCKS:
                raise RuntimeError(f"segment {segment.index}: {empty} blocks of "
                                   f"{plan.beam_per_block} beam particles gave no trigger")


class _Tally:
    def __init__(self) -> None:
        self.n_written = self.n_beam = self.n_triggered = self.eot_generated = 0
        self.eot = 0.0
        self.aprime_counts: np.ndarray | float = 0.0
        self.blocks = 0
        self.process: list[np.ndarray] = []
        self.weight: list[np.ndarray] = []

    def add(self, piece: _Piece) -> None:
        self.n_written += len(piece.events)
        self.n_beam += piece.n_beam
        self.n_triggered += piece.n_triggered
        self.eot += piece.eot
        self.eot_generated += piece.eot_generated
        self.aprime_counts = self.aprime_counts + piece.aprime_counts
        self.blocks += int(piece.n_beam > 0)
        self.process.append(piece.events.process)
        self.weight.append(piece.events.weight)

    def processes(self) -> dict[str, dict[str, float]]:
        return process_tally(np.concatenate(self.process), np.concatenate(self.weight))


def _zip_pending(pending: list[dict[str, np.ndarray]]) -> ak.Array:
    """One awkward truth chunk from the pieces' numpy columns (one zip per batch)."""
    return zip_truth({k: np.concatenate([p[k] for p in pending]) for k in pending[0]})


def _written_chunks(plan: _RunPlan, clock: SpillClock, writer: RawWriter, batch_size: int,
                    tally: _Tally, progress: Progress) -> Iterator[ak.Array]:
    """Write each piece's raw records; yield truth chunks of at least ``batch_size`` rows."""
    pending: list[dict[str, np.ndarray]] = []
    n_pending = 0
    for piece in _pieces(plan):
        n = len(piece.events)
        ids = clock.ids(tally.n_written, n, plan.seed, plan.run)
        ids["run"] = np.full(n, plan.run)
        writer.write(EventBatch(spill=ids["spill"], event=ids["event"],
                                trigger_time_ns=ids["trigger_time_ns"],
                                trigger_mask=np.full(n, int(plan.spec.trigger_mask)),
                                blocks=piece.digitized.blocks))
        target = np.full((n, 2), np.nan)
        if piece.segment.beam_target_xy_mm is not None:
            target[:] = piece.segment.beam_target_xy_mm
        pending.append(truth_columns(piece.events, ids, piece.digitized.t_event_ns,
                                     piece.digitized.n_saturated,
                                     np.full(n, piece.segment.index), target))
        n_pending += n
        tally.add(piece)
        progress.update(n)
        if n_pending >= batch_size:
            yield _zip_pending(pending)
            pending, n_pending = [], 0
    if pending:
        yield _zip_pending(pending)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def simulate_run(kind: str, run: int, n_events: int, seed: int, out_raw: str | Path,
                 out_truth: str | Path, *, mass_GeV: float | None = None, batch_size: int = 10_000,
                 conditions_roots: Sequence[str | Path] = ("conditions",),
                 condition_pins: Mapping[str, str] | None = None,
                 true_constants_path: str | Path | None = None,
                 summary_path: str | Path | None = None, setup: str = "invis2016",
                 params_path: str | Path | None = None,
                 event_source: EventSource | None = None,
                 beam_energies_GeV: Sequence[float] | None = None,
                 target_cell: tuple[int, int] | None = None,
                 scan_cells: bool = False) -> dict[str, Any]:
    """Simulate run ``run`` of ``kind`` with exactly ``n_events`` triggered events.

    Writes the raw file ``out_raw``, the truth table ``out_truth`` (Parquet,
    or ROOT for a ``.root`` name), the true constants (default: beside the
    truth, ``true_constants_<setup>_seed<seed>.json``) and, if given, the
    summary JSON; returns the summary. ``event_source`` replaces the event
    generator (tests); ``batch_size`` is the number of truth rows per write.
    ``beam_energies_GeV`` and ``target_cell`` (calibration runs, :func:`run_segments`)
    make an ECAL energy scan; ``scan_cells`` (muon runs) aims the muons at every ECAL cell
    centre in turn; the summary and provenance record them when given.
    """
    # Long-lived objects (modules, compiled kernels, conditions) are moved out of the
    # cyclic collector's way while the run allocates: full collections otherwise rescan
    # them every few thousand truth rows (about 5 % of the run time). Unfrozen at the end.
    gc.freeze()
    try:
        return _simulate_run(kind, run, n_events, seed, out_raw, out_truth, mass_GeV=mass_GeV,
                             batch_size=batch_size, conditions_roots=conditions_roots,
                             condition_pins=condition_pins,
                             true_constants_path=true_constants_path, summary_path=summary_path,
                             setup=setup, params_path=params_path, event_source=event_source,
                             beam_energies_GeV=beam_energies_GeV, target_cell=target_cell,
                             scan_cells=scan_cells)
    finally:
        gc.unfreeze()


def _simulate_run(kind, run, n_events, seed, out_raw, out_truth, *, mass_GeV, batch_size,
                  conditions_roots, condition_pins, true_constants_path, summary_path, setup,
                  params_path, event_source, beam_energies_GeV, target_cell,
                  scan_cells) -> dict[str, Any]:
    if kind not in RUN_KINDS:
        raise ValueError(f"unknown run kind {kind!r}; expected one of {', '.join(RUN_KINDS)}")
    if kind == "signal" and mass_GeV is None:
        raise ValueError("a signal run needs mass_GeV")
    if n_events < 1 or batch_size < 1:
        raise ValueError("n_events and batch_size must be positive")
    out_raw, out_truth = Path(out_raw), Path(out_truth)
    spec = RUN_KINDS[kind]
    params_file = Path(params_path or DEFAULT_PARAMS_PATH)
    params = load_digitization_params(params_file)
    db = ConditionsDB(conditions_roots, pins=condition_pins)
    geometry = db.geometry(setup, run)
    field_data, field_record = db.data("field", setup, run)
    channel_map = db.channel_map(setup, run)
    constants = draw_true_constants(seed, setup, channel_map, geometry, params)
    constants_file = Path(true_constants_path or out_truth.parent
                          / f"true_constants_{setup}_seed{seed}.json")
    write_true_constants(constants_file, constants)
    run_params = params["run"]
    plan = _RunPlan(
        kind=kind, spec=spec, run=run, seed=seed, mass_GeV=mass_GeV,
        segments=tuple(run_segments(kind, n_events, geometry,
                                    beam_energies_GeV=beam_energies_GeV,
                                    target_cell=target_cell, scan_cells=scan_cells)),
        beam_per_block=int(run_params["beam_per_block"][spec.generator_kind]),
        chunk_events=int(run_params["digitize_chunk_events"]),
        digitizer=Digitizer.from_conditions(db, setup, run, params),
        constants=constants,
        source=event_source or generator_event_source(geometry, field_data),
    )
    clock = SpillClock(int(run_params["triggers_per_spill"][kind]),
                       float(run_params["spill_length_s"]), float(run_params["spill_period_s"]))
    start_s = int(run_params["run_start_unix_s"]) + run * int(run_params["run_spacing_s"])
    header = FileHeader(run=run, run_type=spec.run_type, setup=setup, simulated=True,
                        run_start_ns=start_s * 1_000_000_000)
    log.info("simulate %s run %d (%s): %d events, seed %d, %d segment(s), %d beam/block -> %s",
             kind, run, setup, n_events, seed, len(plan.segments), plan.beam_per_block, out_raw)
    tally = _Tally()
    config = {"kind": kind, "run": run, "n_events": n_events, "seed": seed, "setup": setup,
              "mass_GeV": mass_GeV}
    # recorded only when set: the cell scan's summary and provenance stay as they were
    if beam_energies_GeV is not None:
        config["beam_energies_GeV"] = [float(e) for e in beam_energies_GeV]
    if target_cell is not None:
        config["target_cell"] = [int(i) for i in target_cell]
    if scan_cells:
        config["scan_cells"] = True
    versions = {
        "code_version": recon.__version__,
        "sim_code_hash": code_hash(str(Path(sim.__file__).parent)),
        "digitization_params": {"version": str(params["version"]), "file": params_file.name,
                                "sha256": _sha256(params_file)},
        "conditions": {r.kind: r.provenance() for r in
                       (geometry.record, field_record, channel_map.record) if r is not None},
        "true_constants": {"file": constants_file.name, "sha256": _sha256(constants_file)},
    }
    progress = Progress(f"simulate {kind} run {run}", total=n_events)
    with RawWriter(out_raw, header) as writer:
        write_events(out_truth, _written_chunks(plan, clock, writer, batch_size, tally, progress),
                     lambda: make_provenance(stage="simulate", config=config,
                                             conditions=[geometry.record, channel_map.record],
                                             extra={"versions": versions}))
    summary = {
        **config,
        "run_type": int(spec.run_type),
        "n_triggered": tally.n_written,
        "n_triggered_generated": tally.n_triggered,
        "n_beam": tally.n_beam,
        "eot": tally.eot,
        "eot_generated": tally.eot_generated,
        "n_blocks": tally.blocks,
        "beam_per_block": plan.beam_per_block,
        "processes": tally.processes(),
        "files": {"raw": out_raw.name, "truth": out_truth.name,
                  "true_constants": constants_file.name},
        "versions": versions,
    }
    if plan.mass_GeV is not None:
        summary["aprime_generated"] = {"edges_GeV": APRIME_HISTOGRAM_EDGES_GeV.tolist(),
                                       "counts": np.asarray(tally.aprime_counts).tolist()}
    if summary_path is not None:
        write_json(summary_path, summary)
    progress.done()
    log.info("run %d done: %d events, %d beam particles, %.4g electrons on target",
             run, tally.n_written, tally.n_beam, tally.eot)
    return summary
