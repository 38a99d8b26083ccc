"""Fixtures for the digitiser and run tests: a small stub event generator.

The stub stands in for ``sim.generator.generate`` (same call signature): it
produces plausible deposits quickly (Gaussian lateral shower profile, MIPs in
the HCAL, counter signals, straight tracks) so that digitisation and run
assembly can be tested on their own. It is no physics model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import ndtr

from recon.conditions import ConditionsDB, Geometry
from sim.deposits import APRIME_HISTOGRAM_EDGES_GeV, Deposits, Process, TrueEvents
from sim.digitize import Digitizer
from sim.run import load_digitization_params
from sim.true_constants import TrueConstants, draw_true_constants

REPO = Path(__file__).resolve().parents[2]
RUN = 1000
STUB_TRIGGER_FRACTION = {"physics": 0.25, "signal": 0.9}
SHOWER_SIGMA_MM = 12.0


def _cell_fractions(centre_mm: np.ndarray, first_centre_mm: float, cell_mm: float, n: int,
                    sigma_mm: float) -> np.ndarray:
    edges = first_centre_mm + (np.arange(n + 1) - 0.5) * cell_mm
    cdf = ndtr((edges[None, :] - centre_mm[:, None]) / sigma_mm)
    return np.diff(cdf, axis=1)


def _shower(dep: Deposits, index: np.ndarray, e_GeV: np.ndarray, x_mm: np.ndarray,
            y_mm: np.ndarray, geometry: Geometry) -> None:
    ecal = geometry.ecal
    fx = _cell_fractions(x_mm, ecal.cell_x(0), ecal.cell_size, ecal.n_x, SHOWER_SIGMA_MM)
    fy = _cell_fractions(y_mm, ecal.cell_y(0), ecal.cell_size, ecal.n_y, SHOWER_SIGMA_MM)
    lateral = fx[:, :, None] * fy[:, None, :]
    dep.ecal_GeV[index, 0] = (0.03 * e_GeV)[:, None, None] * lateral
    dep.ecal_GeV[index, 1] = (0.97 * e_GeV)[:, None, None] * lateral


def _tracks(dep: Deposits, index: np.ndarray, rng: np.random.Generator, geometry: Geometry) -> None:
    for station in geometry.trackers.values():
        dep.track_x_mm[index, station.id] = station.x + 3.0 * rng.standard_normal(index.size)
        dep.track_y_mm[index, station.id] = station.y + 3.0 * rng.standard_normal(index.size)


def _beam_electrons(dep: Deposits, index: np.ndarray, e_GeV: np.ndarray, xy_mm: np.ndarray,
                    rng: np.random.Generator, geometry: Geometry) -> None:
    _shower(dep, index, e_GeV, xy_mm[:, 0], xy_mm[:, 1], geometry)
    _tracks(dep, index, rng, geometry)
    dep.counters_GeV[index, 0] = 0.0015
    dep.counters_GeV[index, 2] = 0.0015
    dep.counters_GeV[index, 4:7] = 0.02


def stub_generate(kind: str, n_beam: int, rng: np.random.Generator, *, geometry: Geometry,
                  field_data: dict | None = None, params=None, mass_GeV: float | None = None,
                  beam_target_xy_mm: np.ndarray | None = None,
                  pileup: bool = True,
                  beam_momentum_GeV: float | None = None) -> tuple[TrueEvents, int]:
    """Triggered stub events among ``n_beam`` beam particles, and the electrons on target
    (``ecal_scan`` electrons at ``beam_momentum_GeV``, default 100 GeV)."""
    n = int(np.count_nonzero(rng.random(n_beam) < STUB_TRIGGER_FRACTION.get(kind, 1.0)))
    intime, pu = Deposits.zeros(n), Deposits.zeros(n)
    every = np.arange(n)
    centre = np.tile([geometry.ecal.x_centre, geometry.ecal.y_centre], (n, 1))
    pdg = np.full(n, 11, dtype=np.int32)
    process = np.full(n, Process.EM_SHOWER, dtype=np.int8)
    e_aprime = np.zeros(n)
    p_true = np.full(n, 100.0)
    if kind == "physics":
        spot = centre + 3.0 * rng.standard_normal((n, 2))
        _beam_electrons(intime, every, rng.uniform(10.0, 80.0, n), spot, rng, geometry)
    elif kind == "signal":
        e_aprime = rng.uniform(50.0, 100.0, n)
        process[:] = Process.APRIME
        _beam_electrons(intime, every, 100.0 - e_aprime, centre, rng, geometry)
    elif kind == "ecal_scan":
        target = np.asarray(beam_target_xy_mm)[:n]
        spot = target + rng.standard_normal((n, 2))
        p_true[:] = 100.0 if beam_momentum_GeV is None else beam_momentum_GeV
        _beam_electrons(intime, every, p_true, spot, rng, geometry)
    elif kind == "hcal_muons":
        pdg[:] = 13
        process[:] = Process.MUON_PASSING
        _tracks(intime, every, rng, geometry)
        intime.ecal_GeV[:, 1, 3, 3] = 0.3
        intime.hcal_GeV[:, :, 1, 1] = 2.5
        intime.counters_GeV[:, [0, 2, 3, 7, 8, 9, 10]] = 0.0015
    elif kind == "random":
        pdg[:] = 0
        process[:] = Process.NO_PARTICLE
    else:
        raise ValueError(kind)
    dt = np.full(n, np.nan)
    pileup_pdg = np.zeros(n, dtype=np.int32)
    if pileup and kind != "random":
        has = np.flatnonzero(rng.random(n) < 0.1)
        dt[has] = rng.uniform(-100.0, 100.0, has.size)
        pileup_pdg[has] = 11
        _beam_electrons(pu, has, np.full(has.size, 100.0), centre[has], rng, geometry)
    events = TrueEvents(pdg=pdg, process=process, p_true_GeV=p_true,
                        e_aprime_GeV=e_aprime, weight=np.ones(n), intime=intime, pileup=pu,
                        pileup_dt_ns=dt, pileup_pdg=pileup_pdg)
    eot = 0 if kind in ("hcal_muons", "random") else n_beam
    return events, eot


def stub_source(geometry: Geometry):
    """The stub bound to a geometry, in the ``sim.run.EventSource`` form."""

    def source(kind, n_beam, rng, *, mass_GeV=None, beam_target_xy_mm=None, aprime_counts=None,
               beam_momentum_GeV=None):
        events, eot = stub_generate(kind, n_beam, rng, geometry=geometry, mass_GeV=mass_GeV,
                                    beam_target_xy_mm=beam_target_xy_mm,
                                    beam_momentum_GeV=beam_momentum_GeV)
        if aprime_counts is not None:  # the stub triggers every particle
            aprime_counts += np.histogram(events.e_aprime_GeV, APRIME_HISTOGRAM_EDGES_GeV)[0]
        return events, eot

    return source


@pytest.fixture(scope="session")
def geometry(db: ConditionsDB) -> Geometry:
    return db.geometry("invis2016", RUN)


@pytest.fixture(scope="session")
def params() -> dict:
    return load_digitization_params()


@pytest.fixture(scope="session")
def digitizer(db: ConditionsDB, params: dict) -> Digitizer:
    return Digitizer.from_conditions(db, "invis2016", RUN, params)


@pytest.fixture(scope="session")
def constants(db: ConditionsDB, geometry: Geometry, params: dict) -> TrueConstants:
    return draw_true_constants(11, "invis2016", db.channel_map("invis2016", RUN), geometry, params)


@pytest.fixture
def small_params_file(tmp_path: Path, params: dict) -> Path:
    """The digitisation parameters with small blocks and spills, for quick runs."""
    small = yaml.safe_load(yaml.safe_dump(params))
    small["run"]["beam_per_block"] = dict.fromkeys(small["run"]["beam_per_block"], 40)
    small["run"]["triggers_per_spill"] = dict.fromkeys(small["run"]["triggers_per_spill"], 25)
    path = tmp_path / "digitization-small.yaml"
    path.write_text(yaml.safe_dump(small))
    return path
