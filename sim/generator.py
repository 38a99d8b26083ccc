"""Event generator of the fast simulation: beam -> transport -> processes -> trigger -> deposits.

Units: GeV, mm, ns. Public entry point :func:`generate`; parameters from the
versioned ``sim/params/physics.yaml`` (:func:`load_physics_params`), geometry and
field from the conditions.

Two stages per chunk of beam particles (columnar throughout):

1. *Cheap stage*, for every beam particle (and the pile-up particle of every
   event whose in-time particle passes the trigger alone): sample the beam,
   choose processes (with bias weights), sample process kinematics, transport
   through field and material and reduce the calorimeter response to a few
   components per particle: up to two EM showers (charged electron or pi0 from
   charge exchange; neutral brems photon or decay pi0), up to two MIP tracks
   (muons, passing hadrons, dimuon pairs) and one hadronic system. The ECAL
   visible total is drawn here (Gamma sampling fluctuations, see
   :mod:`sim.showers`) together with the S1/V1/S2 hits. Showering beam
   electrons (98 % of a physics beam) go through the fused numba kernel of
   :mod:`sim.cheap`; the others through the vectorised numpy path below
   (:func:`_stage1_numpy`), with the same distributions.
2. The trigger (:mod:`sim.trigger`) keeps typically 1 % of a physics beam; only
   for those events (and their pile-up particle, both in one pass) the full
   per-cell deposits, HCAL, counters, SRD (synchrotron photons,
   :mod:`sim.synchrotron`) and tracker crossings are built, the cell energies
   adding up exactly to the drawn totals. The ECAL thresholds are drawn before
   the cheap stage, so that the electron kernel can stop early for particles
   that cannot pass theirs (:mod:`sim.cheap`); pile-up is drawn for the events
   whose in-time particle passes alone.

Kinds: ``physics`` (beam mix, all processes, physics trigger), ``signal`` (every
beam electron emits an A' of mass ``mass_GeV``; physics trigger), ``ecal_scan``
(100 GeV electrons aimed at ``beam_target_xy_mm`` at the ECAL face; calibration
trigger), ``hcal_muons`` (mu- beam, optionally aimed the same way; calibration
trigger), ``random`` (no particle; all events kept). An ``ecal_scan`` at another beam
momentum (``beam_momentum_GeV``, the ECAL energy scan) scales the spectrometer dipoles
with it, as the beam line and magnets are set to the beam momentum: the electrons follow
the nominal trajectory and hit the aimed cell.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from recon.conditions.geometry import Geometry
from sim.beam import (
    PDG_ELECTRON,
    PDG_KAON,
    PDG_MUON,
    PDG_PION,
    BeamParams,
    BeamParticles,
    sample_beam,
    sample_pileup,
)
from sim.cheap import FLAG_FAST, ElectronTables, electron_stage1_kernel, inc_gamma_table
from sim.deposits import (
    N_COUNTERS,
    N_STATIONS,
    APRIME_HISTOGRAM_EDGES_GeV,
    Deposits,
    Process,
    TrueEvents,
)
from sim.processes import (
    AprimeSpectrum,
    ProcessParams,
    biased_choice,
    brems_photons_per_X0,
    decay_probability,
    fixed_biased_choice,
    mass_GeV,
    sample_brems_fraction,
    sample_decay_products,
    sample_decay_z,
    sample_pair_sharing,
)
from sim.showers import (
    CaloLayout,
    EcalParams,
    HadronParams,
    HcalParams,
    LateralProfile,
    add_cell_deposits,
    containment_table,
    dirichlet_split,
    em_section_fractions,
    gamma_profile_cdf,
    hadron_section_fractions,
    lateral_fraction,
    moyal,
    sample_em_longitudinal,
    sample_visible_total,
)
from sim.synchrotron import (
    M_E_GEV,
    SrdModules,
    SrdParams,
    knockon_deposits,
    mean_energy_loss_GeV,
    sr_photons,
    srd_absorbed_GeV,
    srd_visible_GeV,
)
from sim.transport import TransportInput, TransportSetup, aim_slopes, transport
from sim.trigger import (
    TriggerInputs,
    TriggerParams,
    ecal_thresholds,
    trigger_config,
    trigger_decision,
)

__all__ = [
    "DEFAULT_PARAMS_PATH",
    "CounterParams",
    "PhysicsParams",
    "generate",
    "load_physics_params",
    "simulate_beam",
]

DEFAULT_PARAMS_PATH = Path(__file__).resolve().parent / "params" / "physics.yaml"
KINDS = ("physics", "signal", "ecal_scan", "hcal_muons", "random")
_HADRONS = (PDG_PION, PDG_KAON)
_COUNTER = {"S1": 0, "V1": 1, "S2": 2, "V2": 3, "SRD": 4, "MU": 7}
_TRACKERS = ("MM1", "MM2", "GEM3", "GEM4")


@dataclass(frozen=True)
class CounterParams:
    mip_mpv_GeV: float
    mip_width_rel: float


@dataclass(frozen=True)
class PhysicsParams:
    """All generator parameters (one versioned YAML file)."""

    version: str
    chunk_size: int
    beam: BeamParams
    material: dict[str, float]
    processes: ProcessParams
    ecal: EcalParams
    hadron: HadronParams
    hcal: HcalParams
    counters: CounterParams
    srd: SrdParams
    trigger: TriggerParams

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> PhysicsParams:
        d = doc["data"]
        return cls(
            version=str(doc["version"]),
            chunk_size=int(d["chunk_size"]),
            beam=BeamParams.from_dict(d["beam"]),
            material={k: float(v) for k, v in d["material"].items()},
            processes=ProcessParams.from_dict(d["processes"], d["upstream_brems"], d["aprime"]),
            ecal=EcalParams.from_dict(d["ecal"]),
            hadron=HadronParams.from_dict(d["hadron"]),
            hcal=HcalParams.from_dict(d["hcal"]),
            counters=CounterParams(**{k: float(v) for k, v in d["counters"].items()}),
            srd=SrdParams.from_dict(d["srd"]),
            trigger=TriggerParams.from_dict(d["trigger"]),
        )


def load_physics_params(path: str | Path | None = None) -> PhysicsParams:
    """Read the physics parameters (default ``sim/params/physics.yaml``)."""
    with open(path or DEFAULT_PARAMS_PATH) as stream:
        doc = yaml.safe_load(stream)
    if doc.get("kind") != "sim_physics":
        raise ValueError(f"{path}: not a sim_physics parameter file")
    return PhysicsParams.from_document(doc)


# ------------------------------------------------------------------------------ context

_LAST_CONTEXT: dict[str, Any] = {}  # the last built context and its (geometry, field, params)


@dataclass(frozen=True)
class _Context:
    geometry: Geometry
    params: PhysicsParams
    setup: TransportSetup
    ecal: CaloLayout
    hcal: CaloLayout
    srd: SrdModules
    ecal_profiles: tuple[LateralProfile, ...]
    ecal_hadron_profiles: tuple[LateralProfile, ...]
    hcal_profiles: tuple[LateralProfile, ...]
    ecal_lambda_mm: float
    brems_prob: np.ndarray  # per transport plane
    electron_tables: dict[bool, ElectronTables] = None  # by `unbiased`, set by build()
    empty_outcomes: dict[float, Any] = None  # numpy-path outcome of no particle, by start z

    @classmethod
    def build(cls, geometry: Geometry, field_data: dict, params: PhysicsParams) -> _Context:
        """The context of (geometry, field, params), reused while they are the same objects."""
        last = _LAST_CONTEXT.get("key")
        if last is not None and all(
            a is b for a, b in zip(last, (geometry, field_data, params), strict=True)
        ):
            return _LAST_CONTEXT["context"]
        ctx = cls._build(geometry, field_data, params)
        _LAST_CONTEXT.update(key=(geometry, field_data, params), context=ctx)
        return ctx

    @classmethod
    def _build(cls, geometry: Geometry, field_data: dict, params: PhysicsParams) -> _Context:
        setup = TransportSetup.build(geometry, field_data, params.material)
        ecal = CaloLayout.ecal(geometry)
        hcal = CaloLayout.hcal(geometry)
        moliere = float(geometry.ecal.extra["moliere_radius"])
        hadron = LateralProfile(params.ecal.hadron_radius_mm, params.ecal.hadron_radius_mm, 1.0)
        depth_mm = ecal.layer_bounds[-1] * ecal.depth_unit_mm
        brems = setup.x_X0 * brems_photons_per_X0(params.processes.brems_y_min)
        if brems.sum() >= 1.0:
            raise ValueError("upstream material too thick for the one-photon brems model")
        ctx = cls(
            geometry=geometry,
            params=params,
            setup=setup,
            ecal=ecal,
            hcal=hcal,
            srd=SrdModules.from_geometry(geometry),
            ecal_profiles=params.ecal.profiles_mm(ecal.layer_names, moliere),
            ecal_hadron_profiles=(hadron,) * ecal.n_layers,
            hcal_profiles=(params.hcal.lateral,) * hcal.n_layers,
            ecal_lambda_mm=depth_mm / params.ecal.depth_lambda,
            brems_prob=brems,
            electron_tables={},
            empty_outcomes={},
        )
        for unbiased in (False, True):
            ctx.electron_tables[unbiased] = _electron_tables(ctx, unbiased)
        return ctx

    @property
    def z_ecal(self) -> float:
        return float(self.geometry.ecal.z_front)


# ------------------------------------------------------------------------------ outcome

_STAGE1_PLANES = ("S1", "V1", "MM1", "S2", "ECAL")


@dataclass
class _Outcome:
    """Stage-1 result per particle (arrays of length n)."""

    pdg: np.ndarray
    process: np.ndarray
    weight: np.ndarray
    e_aprime: np.ndarray
    p_true: np.ndarray  # momentum at T1 (MM1)
    face: np.ndarray  # (n, 5) charged particle at the ECAL face, without multiple scattering
    decay_z: np.ndarray
    daughter_pdg: np.ndarray
    s1: np.ndarray
    v1: np.ndarray
    s2: np.ndarray
    em: np.ndarray  # (n, 2, 8): E, x, y, tx, ty (ECAL face), t0 (X0), a, b
    em_in_hcal: np.ndarray  # (n, 2) shower misses the ECAL but hits the HCAL
    em_visible: np.ndarray  # (n,)
    tracks: np.ndarray  # (n, 2, 7): E, x, y, tx, ty (ECAL face), t0 (X0), is_muon
    mip_visible: np.ndarray  # (n, 2, n_sections)
    hadron: np.ndarray  # (n, 9): E, a, start_ecal, start_hcal, x, y, tx, ty, charged
    hadron_visible: np.ndarray  # (n,) ECAL visible hadronic energy
    e_ecal: np.ndarray  # (n,) ECAL visible total
    transport_input: TransportInput

    def take(self, index) -> _Outcome:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return _Outcome(
            **{
                k: (v.take(index) if isinstance(v, TransportInput) else v[index])
                for k, v in values.items()
            }
        )

    def __len__(self) -> int:
        return self.pdg.shape[0]


_EM, _TRK, _HAD = 8, 7, 9


# ------------------------------------------------------------------------------ stage 1


def _choose_processes(
    beam: BeamParticles,
    rng,
    ctx: _Context,
    signal: AprimeSpectrum | None,
    unbiased: bool,
    preset: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Process per particle, weight, and the hadron interaction class (0 pass, 1 shower, 2 cex).

    ``preset`` (process, weight) per particle: the electrons' choice, already drawn by the
    electron kernel (:mod:`sim.cheap`).
    """
    pp, hp = ctx.params.processes, ctx.params.hadron
    n = len(beam)
    process = np.full(n, Process.EM_SHOWER, dtype=np.int8)
    weight = np.ones(n)
    h_class = np.zeros(n, dtype=np.int8)
    flight = ctx.z_ecal - beam.z_mm

    def bias(*values):
        return np.ones(len(values)) if unbiased else np.array(values, dtype=float)

    e = np.flatnonzero(beam.pdg == PDG_ELECTRON)
    if signal is not None:
        process[e] = Process.APRIME
    elif preset is not None:
        process[e] = preset[0][e]
        weight[e] = preset[1][e]
    elif e.size:
        p_h, p_d = pp.electronuclear_probability, pp.dimuon_probability
        prob = np.array([1.0 - p_h - p_d, p_h, p_d])
        choice, w = fixed_biased_choice(
            prob, bias(1.0, pp.electronuclear_bias, pp.dimuon_bias), e.size, rng
        )
        process[e] = np.array([Process.EM_SHOWER, Process.HADRONIC, Process.DIMUON])[choice]
        weight[e] *= w
    mu = np.flatnonzero(beam.pdg == PDG_MUON)
    if mu.size:
        p_dec = decay_probability(beam.p_GeV[mu], PDG_MUON, flight)
        choice, w = biased_choice(np.stack([p_dec, 1 - p_dec], 1), bias(pp.decay_bias, 1.0), rng)
        process[mu] = np.array([Process.DECAY_IN_FLIGHT, Process.MUON_PASSING])[choice]
        weight[mu] *= w
    p_int = -np.expm1(-ctx.params.ecal.depth_lambda)
    f_cex = hp.charge_exchange_fraction
    for pdg in _HADRONS:
        h = np.flatnonzero(beam.pdg == pdg)
        if not h.size:
            continue
        p_dec = decay_probability(beam.p_GeV[h], pdg, flight)
        stay = 1.0 - p_dec
        prob = np.stack(
            [p_dec, stay * p_int * f_cex, stay * p_int * (1 - f_cex), stay * (1 - p_int)], 1
        )
        choice, w = biased_choice(prob, bias(pp.decay_bias, hp.charge_exchange_bias, 1, 1), rng)
        codes = [
            Process.DECAY_IN_FLIGHT,
            Process.HADRON_CHARGE_EX,
            Process.HADRON_SHOWER,
            Process.HADRON_PASSING,
        ]
        process[h] = np.array(codes)[choice]
        h_class[h] = np.array([0, 2, 1, 0])[choice]
        weight[h] *= w
    return process, weight, h_class


def _masses(pdg: np.ndarray) -> np.ndarray:
    codes, inverse = np.unique(pdg, return_inverse=True)
    return np.array([mass_GeV(int(c)) for c in codes])[inverse] if codes.size else np.zeros(0)


def _transport_input(beam: BeamParticles, process, rng, ctx: _Context, unbiased: bool):
    """Upstream brems (electrons) and decays (pi, K, mu) folded into the transport input."""
    n = len(beam)
    charge = np.full(n, -1.0)  # every beam species is negative
    inp = TransportInput.simple(
        beam.z_mm, beam.x_mm, beam.y_mm, beam.tx, beam.ty, beam.p_GeV, charge, _masses(beam.pdg)
    )
    weight = np.ones(n)
    e = np.flatnonzero(beam.pdg == PDG_ELECTRON)
    if e.size and ctx.brems_prob.sum() > 0:
        planes = np.flatnonzero(ctx.brems_prob > 0)
        prob = np.concatenate([[1.0 - ctx.brems_prob.sum()], ctx.brems_prob[planes]])
        b = 1.0 if unbiased else ctx.params.processes.brems_bias
        choice, w = fixed_biased_choice(prob, np.r_[1.0, np.full(planes.size, b)], e.size, rng)
        weight[e] = w
        hit = e[choice > 0]
        inp.brems_plane[hit] = planes[choice[choice > 0] - 1]
        inp.brems_y[hit] = sample_brems_fraction(hit.size, rng, ctx.params.processes.brems_y_min)
        process[hit] = np.where(
            process[hit] == Process.EM_SHOWER, Process.UPSTREAM_BREMS, process[hit]
        )
    daughter_pdg = beam.pdg.copy()
    for pdg in (PDG_PION, PDG_KAON, PDG_MUON):
        d = np.flatnonzero((beam.pdg == pdg) & (process == Process.DECAY_IN_FLIGHT))
        if not d.size:
            continue
        inp.decay_z_mm[d] = sample_decay_z(beam.p_GeV[d], pdg, beam.z_mm, ctx.z_ecal, rng)
        prod = sample_decay_products(pdg, beam.p_GeV[d], ctx.params.processes, rng)
        daughter_pdg[d] = prod.pdg
        inp.daughter_p_GeV[d] = prod.p_GeV
        inp.daughter_charge[d] = -1.0
        inp.daughter_mass_GeV[d] = _masses(prod.pdg)
        inp.daughter_dtx[d], inp.daughter_dty[d] = prod.dtx, prod.dty
        inp.neutral_E_GeV[d] = prod.neutral_E_GeV
        inp.neutral_dtx[d], inp.neutral_dty[d] = prod.neutral_dtx, prod.neutral_dty
    return inp, weight, daughter_pdg


def _counter_hits(states, ctx: _Context):
    g = ctx.geometry.counters

    def idx(name):
        return _STAGE1_PLANES.index(name)

    def inside(name, hole=0.0):
        c = g[name]
        x, y = states[:, idx(name), 0] - c.x, states[:, idx(name), 1] - c.y
        box = (np.abs(x) <= c.size_x / 2) & (np.abs(y) <= c.size_y / 2)
        return box & (np.hypot(x, y) >= hole)

    return inside("S1"), inside("V1", g["V1"].hole_radius), inside("S2")


def _ecal_contains(x, y, layout: CaloLayout):
    return (
        (x >= layout.x_edges[0])
        & (x <= layout.x_edges[-1])
        & (y >= layout.y_edges[0])
        & (y <= layout.y_edges[-1])
    )


def _set_em(em, rows, slot, E, x, y, tx, ty, t0):
    em[rows, slot, 0], em[rows, slot, 1], em[rows, slot, 2] = E, x, y
    em[rows, slot, 3], em[rows, slot, 4], em[rows, slot, 5] = tx, ty, t0


def _set_track(tracks, rows, slot, E, x, y, tx, ty, t0, is_muon):
    for c, v in enumerate((E, x, y, tx, ty, t0, is_muon)):
        tracks[rows, slot, c] = v


def _set_hadron(hadron, rows, E, a, start_ecal, start_hcal, face, charged):
    hadron[rows, 0], hadron[rows, 1] = E, a
    hadron[rows, 2], hadron[rows, 3] = start_ecal, start_hcal
    hadron[rows, 4:8] = face
    hadron[rows, 8] = charged


def _electron_final_states(out, rows, E, face, process, rng, ctx, signal):
    """EM shower, A', electronuclear or dimuon for electrons reaching the ECAL face."""
    pp, hp = ctx.params.processes, ctx.params.hadron
    em_E = E.copy()
    proc = process[rows]
    if signal is not None:
        x = signal.sample(rows.size, rng)
        out.e_aprime[rows] = np.where(proc == Process.APRIME, x * E, 0.0)
        em_E = np.where(proc == Process.APRIME, (1 - x) * E, E)
    for code, x_min in (
        (Process.HADRONIC, pp.electronuclear_x_min),
        (Process.DIMUON, pp.dimuon_x_min),
    ):
        sel = np.flatnonzero(proc == code)
        if not sel.size:
            continue
        k = sample_brems_fraction(sel.size, rng, x_min) * E[sel]
        em_E[sel] -= k
        depth_X0 = rng.gamma(2.0, 1.0, sel.size)
        r, f = rows[sel], face[sel]
        if code == Process.HADRONIC:
            e_had = k * (1.0 - rng.uniform(0, hp.invisible_fraction_max, sel.size))
            start = depth_X0 * ctx.ecal.depth_unit_mm / ctx.ecal_lambda_mm
            a = hp.profile_a * np.exp(hp.sigma_ln_a * rng.standard_normal(sel.size))
            _set_hadron(out.hadron, r, e_had, a, start, np.nan, f, 1.0)
        else:
            m_mu = mass_GeV(PDG_MUON)
            u = sample_pair_sharing(k, m_mu, rng)
            for slot, e_mu in enumerate((u * k, (1 - u) * k)):
                angle = m_mu / np.maximum(e_mu, m_mu) * rng.standard_normal((2, sel.size))
                _set_track(
                    out.tracks,
                    r,
                    slot,
                    e_mu,
                    f[:, 0],
                    f[:, 1],
                    f[:, 2] + angle[0],
                    f[:, 3] + angle[1],
                    depth_X0,
                    1.0,
                )
    _set_em(out.em, rows, 0, em_E, face[:, 0], face[:, 1], face[:, 2], face[:, 3], 0.0)


def _hadron_final_states(out, rows, p, face, h_class, rng, ctx):
    """Passing, showering or charge-exchanging pi/K at the ECAL face."""
    hp = ctx.params.hadron
    depth = ctx.params.ecal.depth_lambda
    a = hp.profile_a * np.exp(hp.sigma_ln_a * rng.standard_normal(rows.size))
    d = -np.log1p(-rng.random(rows.size) * -np.expm1(-depth))  # first interaction in the ECAL
    e_had = p * (1.0 - rng.uniform(0, hp.invisible_fraction_max, rows.size))
    passing = h_class == 0
    shower = h_class == 1
    cex = h_class == 2
    d_hcal = rng.exponential(1.0, rows.size)
    _set_track(out.tracks, rows[passing], 0, p[passing], *face[passing].T, 0.0, 0.0)
    _set_hadron(
        out.hadron,
        rows[passing],
        e_had[passing],
        a[passing],
        np.nan,
        d_hcal[passing],
        face[passing],
        1.0,
    )
    _set_hadron(
        out.hadron, rows[shower], e_had[shower], a[shower], d[shower], np.nan, face[shower], 1.0
    )
    c = np.flatnonzero(cex)
    if c.size:
        lo, hi = hp.charge_exchange_pi0_fraction
        z = rng.uniform(lo, hi, c.size)
        t0 = d[c] * ctx.ecal_lambda_mm / ctx.ecal.depth_unit_mm
        _set_em(out.em, rows[c], 0, z * p[c], *face[c].T, t0)
        neutron = rng.random(c.size) >= hp.neutron_escape_probability
        keep = c[neutron]
        _set_hadron(
            out.hadron,
            rows[keep],
            ((1 - z) * e_had[c])[neutron],
            a[keep],
            np.nan,
            d_hcal[keep],
            face[keep],
            0.0,
        )


def _final_states(out: _Outcome, process, h_class, neutral, rng, ctx: _Context, signal):
    """Fill the calorimeter components of ``out`` from the state at the ECAL face."""
    face = out.face[:, :4]
    p = out.face[:, 4]
    species = np.where(out.decay_z <= ctx.z_ecal, out.daughter_pdg, out.pdg)
    alive = np.isfinite(face[:, 0])
    e = np.flatnonzero(alive & (species == PDG_ELECTRON))
    from_beam = out.pdg[e] == PDG_ELECTRON
    sr_loss = np.where(from_beam, mean_energy_loss_GeV(p[e], ctx.setup.dipoles), 0.0)
    _electron_final_states(out, e, p[e] - sr_loss, face[e], process, rng, ctx, signal)
    mu = np.flatnonzero(alive & (species == PDG_MUON))
    _set_track(out.tracks, mu, 0, p[mu], *face[mu].T, 0.0, 1.0)
    h = np.flatnonzero(alive & np.isin(species, _HADRONS))
    cls = h_class[h].copy()
    daughters = out.pdg[h] != species[h]
    if daughters.any():  # hadrons from decays: unbiased interaction draw
        p_int = -np.expm1(-ctx.params.ecal.depth_lambda)
        u = rng.random(int(daughters.sum()))
        f_cex = ctx.params.hadron.charge_exchange_fraction
        cls[daughters] = np.where(u < p_int * f_cex, 2, np.where(u < p_int, 1, 0))
    _hadron_final_states(out, h, p[h], face[h], cls, rng, ctx)
    n_rows = np.flatnonzero(neutral.E_GeV > 0)
    nx, ny = neutral.at(ctx.z_ecal)
    _set_em(
        out.em,
        n_rows,
        1,
        neutral.E_GeV[n_rows],
        nx[n_rows],
        ny[n_rows],
        neutral.tx[n_rows],
        neutral.ty[n_rows],
        0.0,
    )


def _stray_em_to_hcal(out: _Outcome, ctx: _Context) -> None:
    """EM showers whose axis misses the ECAL front but hits the HCAL front go to the HCAL."""
    dz = ctx.hcal.layer_z_mm[0] - ctx.z_ecal
    for slot in range(2):
        em = out.em[:, slot]
        on = em[:, 0] > 0
        miss = on & ~_ecal_contains(em[:, 1], em[:, 2], ctx.ecal)
        hx, hy = em[:, 1] + em[:, 3] * dz, em[:, 2] + em[:, 4] * dz
        out.em_in_hcal[:, slot] = miss & _ecal_contains(hx, hy, ctx.hcal)


def _em_axis(em: np.ndarray, depth_X0: np.ndarray, ctx: _Context):
    """Shower axis (x, y) per section at the representative depth; em (m, 8)."""
    depth_mm = depth_X0 * ctx.ecal.depth_unit_mm
    return em[:, 1, None] + em[:, 3, None] * depth_mm, em[:, 2, None] + em[:, 4, None] * depth_mm


def _em_section_depths(a, b, t0, bounds):
    """Representative depth (X0) per section: the profile mean t0 + a/b clipped into the
    part of the section behind the shower start (the axis moves by tx * depth: 0.36 mm
    per X0 at 21 mrad)."""
    mean = (t0 + a / b)[:, None]
    lo = np.maximum(bounds[None, :-1], t0[:, None])
    return np.clip(mean, lo, np.maximum(lo, bounds[None, 1:]))


def _ecal_em_expected(out: _Outcome, ctx: _Context) -> np.ndarray:
    """(n,) contained EM energy in the ECAL (tabulated lateral containment)."""
    lay = ctx.ecal
    mu = np.zeros(len(out))
    rect = (lay.x_edges[0], lay.x_edges[-1], lay.y_edges[0], lay.y_edges[-1])
    for slot in range(2):
        rows = np.flatnonzero((out.em[:, slot, 0] > 0) & ~out.em_in_hcal[:, slot])
        em = out.em[rows, slot]
        frac = em_section_fractions(em[:, 6], em[:, 7], em[:, 5], lay.layer_bounds)
        x, y = _em_axis(em, _em_section_depths(em[:, 6], em[:, 7], em[:, 5], lay.layer_bounds), ctx)
        for k, profile in enumerate(ctx.ecal_profiles):
            table = containment_table(rect, profile)
            mu[rows] += em[:, 0] * frac[:, k] * table(x[:, k], y[:, k])
    return mu


def _mip_visible(out: _Outcome, rng, ctx: _Context) -> None:
    """Visible MIP energy of each track in each ECAL section (cell containing the track)."""
    lay, ep = ctx.ecal, ctx.params.ecal
    bounds = lay.layer_bounds
    for slot in range(2):
        t = out.tracks[:, slot]
        rows = np.flatnonzero(np.isfinite(t[:, 1]) & (np.nan_to_num(t[:, 0]) > 0))
        rows = rows[_ecal_contains(t[rows, 1], t[rows, 2], lay)]
        for k, name in enumerate(lay.layer_names):
            crossed = np.clip((bounds[k + 1] - t[rows, 5]) / (bounds[k + 1] - bounds[k]), 0, 1)
            landau = 1 + ep.mip_width_rel * moyal(rng, rows.size)
            out.mip_visible[rows, slot, k] = ep.mip_mpv_GeV[name] * landau * crossed


def _hadron_ecal(out: _Outcome, rng, ctx: _Context) -> None:
    """Visible hadronic energy in the ECAL for showers starting there."""
    lay, hp = ctx.ecal, ctx.params.hadron
    rows = np.flatnonzero(np.isfinite(out.hadron[:, 2]) & (out.hadron[:, 0] > 0))
    h = out.hadron[rows]
    bounds_lambda = lay.layer_bounds / lay.layer_bounds[-1] * ctx.params.ecal.depth_lambda
    frac = hadron_section_fractions(
        h[:, 1], np.full(rows.size, hp.profile_b), h[:, 2], bounds_lambda
    )
    lat = lateral_fraction(
        h[:, 4],
        h[:, 5],
        lay.x_edges[0],
        lay.x_edges[-1],
        lay.y_edges[0],
        lay.y_edges[-1],
        ctx.ecal_hadron_profiles[0],
    )
    mu = h[:, 0] * frac.sum(axis=1) * lat
    out.hadron_visible[rows] = sample_visible_total(mu, rng, hp.ecal_sampling_GeV_sqrt)


def _stage1_numpy(
    beam: BeamParticles, rng, ctx: _Context, signal, unbiased: bool, preset=None
) -> _Outcome:
    """Processes, transport without multiple scattering, counter hits and ECAL totals.

    The vectorised path, for every particle the electron kernel does not handle.
    """
    n = len(beam)
    process, weight, h_class = _choose_processes(beam, rng, ctx, signal, unbiased, preset)
    inp, w_brems, daughter_pdg = _transport_input(beam, process, rng, ctx, unbiased)
    states, neutral = transport(inp, ctx.setup, None, record=_STAGE1_PLANES)
    s1, v1, s2 = _counter_hits(states, ctx)
    out = _Outcome(
        pdg=beam.pdg,
        process=process,
        weight=weight * w_brems,
        e_aprime=np.zeros(n),
        p_true=states[:, _STAGE1_PLANES.index("MM1"), 4],
        face=states[:, _STAGE1_PLANES.index("ECAL")],
        decay_z=inp.decay_z_mm,
        daughter_pdg=daughter_pdg,
        s1=s1,
        v1=v1,
        s2=s2,
        em=np.zeros((n, 2, _EM)),
        em_in_hcal=np.zeros((n, 2), dtype=bool),
        em_visible=np.zeros(n),
        tracks=np.full((n, 2, _TRK), np.nan),
        mip_visible=np.zeros((n, 2, ctx.ecal.n_layers)),
        hadron=np.zeros((n, _HAD)),
        hadron_visible=np.zeros(n),
        e_ecal=np.zeros(n),
        transport_input=inp,
    )
    out.hadron[:, 1] = 1.0  # profile shape where there is no hadronic system
    out.hadron[:, 2:4] = np.nan
    _final_states(out, process, h_class, neutral, rng, ctx, signal)
    for slot in range(2):
        on = out.em[:, slot, 0] > 0
        a, b = sample_em_longitudinal(out.em[on, slot, 0], rng, ctx.params.ecal.longitudinal)
        out.em[:, slot, 6], out.em[:, slot, 7] = 2.0, 0.5
        out.em[on, slot, 6], out.em[on, slot, 7] = a, b
    _stray_em_to_hcal(out, ctx)
    ep = ctx.params.ecal
    mu_em = _ecal_em_expected(out, ctx)
    out.em_visible[:] = sample_visible_total(mu_em, rng, ep.sampling_GeV_sqrt, ep.constant_term)
    _mip_visible(out, rng, ctx)
    _hadron_ecal(out, rng, ctx)
    out.e_ecal[:] = out.em_visible + out.mip_visible.sum(axis=(1, 2)) + out.hadron_visible
    return out


def _electron_tables(ctx: _Context, unbiased: bool) -> ElectronTables:
    """Constant inputs of the electron kernel (:mod:`sim.cheap`) for this context."""
    pp, setup, ep = ctx.params.processes, ctx.setup, ctx.params.ecal

    def choice(prob, bias):
        q = prob * (np.ones_like(bias) if unbiased else bias)
        q = q / q.sum()
        return np.cumsum(q), prob / q

    p_h, p_d = pp.electronuclear_probability, pp.dimuon_probability
    proc_cum, proc_w = choice(
        np.array([1.0 - p_h - p_d, p_h, p_d]),
        np.array([1.0, pp.electronuclear_bias, pp.dimuon_bias]),
    )
    planes = np.flatnonzero(ctx.brems_prob > 0)
    brems_cum, brems_w = choice(
        np.concatenate([[1.0 - ctx.brems_prob.sum()], ctx.brems_prob[planes]]),
        np.r_[1.0, np.full(planes.size, pp.brems_bias)],
    )
    record = np.full(len(setup.names), -1, dtype=np.int64)
    for slot, name in enumerate(_STAGE1_PLANES):
        record[setup.index(name)] = slot
    if setup.index("ECAL") != len(setup.names) - 1:
        raise ValueError("the ECAL face must be the last transport plane")
    g = ctx.geometry.counters
    counters = np.array(
        [
            [g[name].x, g[name].y, g[name].size_x, g[name].size_y, hole]
            for name, hole in (("S1", 0.0), ("V1", g["V1"].hole_radius), ("S2", 0.0))
        ],
        dtype=float,
    )
    lp = ep.longitudinal
    c0, c1, c2 = lp.alpha_coeffs
    longi = np.array(
        [
            lp.critical_energy_GeV,
            lp.t_offset,
            c0,
            c1 + c2 / lp.z_eff,
            *lp.sigma_ln_t_coeffs,
            *lp.sigma_ln_alpha_coeffs,
            *lp.rho_coeffs,
        ],
        dtype=float,
    )
    lay = ctx.ecal
    rect = (lay.x_edges[0], lay.x_edges[-1], lay.y_edges[0], lay.y_edges[-1])
    tables = [containment_table(rect, profile) for profile in ctx.ecal_profiles]
    origin = {(t.x0_mm, t.y0_mm, t.step_mm) for t in tables}
    if len(origin) != 1:
        raise ValueError("containment tables of the ECAL sections must share their grid")
    p_ref = 100.0
    sr_coeff = float(mean_energy_loss_GeV(np.array([p_ref]), setup.dipoles)[0]) / (
        (p_ref**2 + M_E_GEV**2) ** 2 / p_ref**2
    )
    hcal = ctx.hcal
    return ElectronTables(
        process_cum_q=proc_cum,
        process_weight=proc_w,
        brems_cum_q=brems_cum,
        brems_weight=brems_w,
        brems_planes=planes.astype(np.int64),
        brems_y_min=float(pp.brems_y_min),
        plane_z=setup.z_mm.astype(float),
        record_slot=record,
        dip_z0=setup.dipoles.z_start_mm,
        dip_z1=setup.dipoles.z_end_mm,
        dip_b=setup.dipoles.b_y_T,
        counters=counters,
        longi=longi,
        ecal_rect=np.array(rect, dtype=float),
        hcal_rect=np.array(
            [hcal.x_edges[0], hcal.x_edges[-1], hcal.y_edges[0], hcal.y_edges[-1]], dtype=float
        ),
        hcal_dz=float(hcal.layer_z_mm[0] - ctx.z_ecal),
        x0_mm=float(lay.depth_unit_mm),
        bounds=lay.layer_bounds.astype(float),
        contain=np.ascontiguousarray(np.stack([t.values for t in tables])),
        contain_origin=np.array(origin.pop(), dtype=float),
        sampling=float(ep.sampling_GeV_sqrt),
        constant=float(ep.constant_term),
        sr_coeff=sr_coeff,
        m_e2=M_E_GEV**2,
    )


def _beam_take(beam: BeamParticles, index) -> BeamParticles:
    return BeamParticles(
        beam.pdg[index], beam.p_GeV[index], beam.x_mm[index], beam.y_mm[index],
        beam.tx[index], beam.ty[index], beam.z_mm,
    )


def _concat_outcomes(parts: list[_Outcome]) -> _Outcome:
    values = {}
    for f in fields(_Outcome):
        items = [getattr(p, f.name) for p in parts]
        if f.name == "transport_input":
            values[f.name] = TransportInput(
                items[0].z_mm,
                *(np.concatenate([getattr(t, g.name) for t in items])
                  for g in fields(TransportInput) if g.name != "z_mm"),
            )
        else:
            values[f.name] = np.concatenate(items)
    return _Outcome(**values)


@dataclass
class _Stage1:
    """Cheap-stage result of n particles: trigger inputs for all, the outcome on demand.

    Rows simulated by the electron kernel keep its flat arrays (``fast``); the others
    (``slow_rows``) are an :class:`_Outcome` of the numpy path. ``take`` assembles the
    full :class:`_Outcome` of selected rows (the triggered ones).
    """

    beam: BeamParticles
    flag: np.ndarray
    fast: dict[str, np.ndarray]
    slow_rows: np.ndarray
    slow: _Outcome
    s1: np.ndarray
    v1: np.ndarray
    s2: np.ndarray
    e_ecal: np.ndarray
    n_sections: int

    @property
    def pdg(self) -> np.ndarray:
        return self.beam.pdg

    def __len__(self) -> int:
        return self.flag.shape[0]

    def _fast_outcome(self, rows: np.ndarray) -> _Outcome:
        f, beam = self.fast, self.beam
        m = rows.size
        inp = TransportInput.simple(
            beam.z_mm, beam.x_mm[rows], beam.y_mm[rows], beam.tx[rows], beam.ty[rows],
            beam.p_GeV[rows], np.full(m, -1.0), np.full(m, mass_GeV(PDG_ELECTRON)),
        )
        inp.brems_plane[:] = f["brems_plane"][rows]
        inp.brems_y[:] = f["brems_y"][rows]
        hadron = np.zeros((m, _HAD))
        hadron[:, 1] = 1.0
        hadron[:, 2:4] = np.nan
        hits = f["hits"][rows]
        return _Outcome(
            pdg=beam.pdg[rows],
            process=f["process"][rows],
            weight=f["weight"][rows],
            e_aprime=np.zeros(m),
            p_true=f["p_true"][rows],
            face=f["face"][rows],
            decay_z=np.full(m, np.inf),
            daughter_pdg=beam.pdg[rows],
            s1=hits[:, 0],
            v1=hits[:, 1],
            s2=hits[:, 2],
            em=f["em"][rows],
            em_in_hcal=f["em_in_hcal"][rows],
            em_visible=f["em_visible"][rows],
            tracks=np.full((m, 2, _TRK), np.nan),
            mip_visible=np.zeros((m, 2, self.n_sections)),
            hadron=hadron,
            hadron_visible=np.zeros(m),
            e_ecal=f["e_ecal"][rows],
            transport_input=inp,
        )

    def take(self, index) -> _Outcome:
        index = np.asarray(index, dtype=np.int64)
        is_fast = self.flag[index] == FLAG_FAST
        slow_pos = np.full(len(self), -1, dtype=np.int64)
        slow_pos[self.slow_rows] = np.arange(self.slow_rows.size)
        fast_rows = index[is_fast]
        out = _concat_outcomes(
            [self._fast_outcome(fast_rows), self.slow.take(slow_pos[index[~is_fast]])]
        )
        order = np.empty(index.size, dtype=np.int64)
        order[np.flatnonzero(is_fast)] = np.arange(fast_rows.size)
        order[np.flatnonzero(~is_fast)] = fast_rows.size + np.arange(index.size - fast_rows.size)
        return out.take(order)


def _empty_outcome(beam: BeamParticles, ctx: _Context) -> _Outcome:
    """The numpy path's outcome of no particle, built once per start z (no draws)."""
    z = float(beam.z_mm)
    if z not in ctx.empty_outcomes:
        none = np.zeros(0, dtype=np.int64)
        ctx.empty_outcomes[z] = _stage1_numpy(_beam_take(beam, none), np.random.default_rng(0),
                                              ctx, None, True, None)
    return ctx.empty_outcomes[z]


def _stage1(beam: BeamParticles, rng, ctx: _Context, signal, unbiased: bool,
            e_cut: np.ndarray | None = None) -> _Stage1:
    """Cheap stage: the electron kernel for showering electrons, numpy for the rest.

    ``e_cut`` (GeV per particle, None: no cut): the events' ECAL trigger thresholds. A
    kernel particle whose ECAL energy is above its threshold except with a probability
    below :data:`sim.cheap.REJECT_PROBABILITY` gets ``e_ecal`` = inf without its section
    fractions and visible energy being drawn (it cannot trigger: pile-up only adds energy).
    """
    n = len(beam)
    flag = np.empty(n, dtype=np.int8)
    process = np.empty(n, dtype=np.int8)
    weight = np.empty(n)
    fast = {
        "process": process,
        "weight": weight,
        "hits": np.empty((n, 3), dtype=np.bool_),
        "e_ecal": np.empty(n),
        "p_true": np.full(n, np.nan),
        "face": np.empty((n, 5)),
        "em": np.empty((n, 2, _EM)),
        "em_in_hcal": np.empty((n, 2), dtype=np.bool_),
        "em_visible": np.empty(n),
        "brems_plane": np.empty(n, dtype=np.int64),
        "brems_y": np.empty(n),
    }
    if signal is None:
        t = ctx.electron_tables[unbiased]
        g = inc_gamma_table()
        st_z, st_b, st_slot, st_plane = t.program(beam.z_mm)
        electron_stage1_kernel(
            rng, beam.pdg, float(beam.z_mm), beam.x_mm, beam.y_mm, beam.tx, beam.ty, beam.p_GeV,
            t.process_cum_q, t.process_weight, t.brems_cum_q, t.brems_weight, t.brems_planes,
            t.brems_y_min, st_z, st_b, st_slot, st_plane, ctx.z_ecal, t.counters,
            t.longi, t.ecal_rect, t.hcal_rect, t.hcal_dz, t.x0_mm, t.bounds, t.contain,
            t.contain_origin, t.sampling, t.constant, t.sr_coeff, t.m_e2,
            np.full(n, np.inf) if e_cut is None else np.asarray(e_cut, dtype=float),
            g.values, g.a0, g.ha, g.hs, g.a_max, g.x_max,
            flag, process, weight, fast["hits"], fast["e_ecal"], fast["p_true"], fast["face"],
            fast["em"], fast["em_in_hcal"], fast["em_visible"], fast["brems_plane"],
            fast["brems_y"],
        )
        slow_rows = np.flatnonzero(flag != FLAG_FAST)
        preset = (process[slow_rows], weight[slow_rows])
    else:
        flag[:] = 1 - FLAG_FAST
        slow_rows = np.arange(n)
        preset = None
    slow = (_stage1_numpy(_beam_take(beam, slow_rows), rng, ctx, signal, unbiased, preset)
            if slow_rows.size else _empty_outcome(beam, ctx))
    hits, e_ecal = fast["hits"], fast["e_ecal"]
    s1, v1, s2 = hits[:, 0].copy(), hits[:, 1].copy(), hits[:, 2].copy()
    s1[slow_rows], v1[slow_rows], s2[slow_rows] = slow.s1, slow.v1, slow.s2
    e_ecal[slow_rows] = slow.e_ecal
    return _Stage1(beam, flag, fast, slow_rows, slow, s1, v1, s2, e_ecal, ctx.ecal.n_layers)


# ------------------------------------------------------------------------------ stage 2


def _ecal_cells(out: _Outcome, rng, ctx: _Context) -> np.ndarray:
    lay, ep = ctx.ecal, ctx.params.ecal
    m = len(out)
    cells = np.zeros((m, lay.n_layers, lay.x_edges.size - 1, lay.y_edges.size - 1))
    for slot in range(2):
        em = out.em[:, slot]
        on = (em[:, 0] > 0) & ~out.em_in_hcal[:, slot]
        frac = em_section_fractions(em[:, 6], em[:, 7], em[:, 5], lay.layer_bounds)
        x, y = _em_axis(em, _em_section_depths(em[:, 6], em[:, 7], em[:, 5], lay.layer_bounds), ctx)
        add_cell_deposits(
            cells, np.where(on[:, None], em[:, 0, None] * frac, 0.0), x, y, lay, ctx.ecal_profiles
        )
    cells = dirichlet_split(cells, out.em_visible, rng, ep.sampling_GeV_sqrt)
    _add_hadron_ecal_cells(cells, out, ctx)
    _add_mip_cells(cells, out, ctx)
    return cells


def _add_hadron_ecal_cells(cells, out: _Outcome, ctx: _Context) -> None:
    lay, hp = ctx.ecal, ctx.params.hadron
    h = out.hadron
    on = np.isfinite(h[:, 2]) & (out.hadron_visible > 0)
    if not on.any():
        return
    bounds_lambda = lay.layer_bounds / lay.layer_bounds[-1] * ctx.params.ecal.depth_lambda
    frac = hadron_section_fractions(
        h[:, 1], np.full(len(out), hp.profile_b), np.nan_to_num(h[:, 2]), bounds_lambda
    )
    shape = np.zeros_like(cells)
    x = np.repeat(h[:, 4, None], lay.n_layers, axis=1)
    y = np.repeat(h[:, 5, None], lay.n_layers, axis=1)
    add_cell_deposits(shape, np.where(on[:, None], frac, 0.0), x, y, lay, ctx.ecal_hadron_profiles)
    norm = shape.sum(axis=(1, 2, 3))
    scale = np.where(norm > 0, out.hadron_visible / np.where(norm > 0, norm, 1.0), 0.0)
    cells += shape * scale[:, None, None, None]


def _cell_index(x, edges):
    i = np.searchsorted(edges, x) - 1
    return np.where((i >= 0) & (i < edges.size - 1), i, -1)


def _add_mip_cells(cells, out: _Outcome, ctx: _Context) -> None:
    lay = ctx.ecal
    for slot in range(2):
        t = out.tracks[:, slot]
        for k in range(lay.n_layers):
            depth = 0.5 * (lay.layer_bounds[k] + lay.layer_bounds[k + 1]) * lay.depth_unit_mm
            ix = _cell_index(t[:, 1] + t[:, 3] * depth, lay.x_edges)
            iy = _cell_index(t[:, 2] + t[:, 4] * depth, lay.y_edges)
            rows = np.flatnonzero((ix >= 0) & (iy >= 0) & (out.mip_visible[:, slot, k] > 0))
            cells[rows, k, ix[rows], iy[rows]] += out.mip_visible[rows, slot, k]


def _hcal_hadron_entry(out: _Outcome, ctx: _Context):
    """Energy entering the HCAL and the profile offset u0 (lambda) at its front."""
    h = out.hadron
    in_ecal = np.isfinite(h[:, 2])
    rest = ctx.params.ecal.depth_lambda - np.nan_to_num(h[:, 2])
    b = ctx.params.hadron.profile_b
    leak = 1.0 - gamma_profile_cdf(h[:, 1], b, rest)
    energy = np.where(in_ecal, h[:, 0] * leak, h[:, 0])
    u0 = np.where(in_ecal, rest, -np.nan_to_num(h[:, 3]))
    return energy, u0, leak


def _hcal_cells(out: _Outcome, rng, ctx: _Context):
    """HCAL cells (m, modules, 3, 3) and punch-through energy behind each module."""
    lay, hc, hp = ctx.hcal, ctx.params.hcal, ctx.params.hadron
    m = len(out)
    energy, u0, _ = _hcal_hadron_entry(out, ctx)
    bounds = lay.layer_bounds
    norm = 1.0 - gamma_profile_cdf(out.hadron[:, 1], hp.profile_b, u0)
    frac = hadron_section_fractions(out.hadron[:, 1], np.full(m, hp.profile_b), -u0, bounds)
    frac = frac / np.where(norm > 0, norm, 1.0)[:, None]
    e_layers = np.where(energy[:, None] > 0, energy[:, None] * frac, 0.0)
    z_mid = lay.layer_z_mm + 0.5 * (bounds[1] - bounds[0]) * lay.depth_unit_mm - ctx.z_ecal
    x = out.hadron[:, 4, None] + out.hadron[:, 6, None] * z_mid
    y = out.hadron[:, 5, None] + out.hadron[:, 7, None] * z_mid
    expected = np.zeros((m, lay.n_layers, lay.x_edges.size - 1, lay.y_edges.size - 1))
    add_cell_deposits(expected, e_layers, x, y, lay, ctx.hcal_profiles)
    for slot in range(2):
        em = out.em[:, slot]
        e_em = np.zeros((m, lay.n_layers))
        e_em[:, 0] = np.where(out.em_in_hcal[:, slot], em[:, 0], 0.0)
        add_cell_deposits(
            expected,
            e_em,
            em[:, 1, None] + em[:, 3, None] * z_mid,
            em[:, 2, None] + em[:, 4, None] * z_mid,
            lay,
            ctx.hcal_profiles,
        )
    total = sample_visible_total(expected.sum(axis=(1, 2, 3)), rng, hc.sampling_GeV_sqrt)
    cells = dirichlet_split(expected, total, rng, hc.sampling_GeV_sqrt)
    behind = energy[:, None] * np.clip(1.0 - np.cumsum(frac, axis=1), 0.0, None)
    return cells, behind


def _muons_in_hcal(cells, mu_planes_hit, out: _Outcome, rng, ctx: _Context) -> None:
    """MIP deposits of muon tracks per HCAL module (range-limited); MU counters crossed."""
    lay, hc = ctx.hcal, ctx.params.hcal
    loss = hc.muon_energy_loss_per_module_GeV
    mu_geom = [ctx.geometry.counters[f"MU{k + 1}"] for k in range(lay.n_layers)]
    for slot in range(2):
        t = out.tracks[:, slot]
        is_mu = t[:, 6] == 1.0
        e_in = np.where(is_mu, np.nan_to_num(t[:, 0]) - ctx.params.ecal.muon_energy_loss_GeV, 0.0)
        for k in range(lay.n_layers):
            crossed = np.clip((e_in - k * loss) / loss, 0.0, 1.0)
            z_mid = lay.layer_z_mm[k] + 0.5 * lay.layer_bounds[1] * lay.depth_unit_mm - ctx.z_ecal
            ix = _cell_index(t[:, 1] + t[:, 3] * z_mid, lay.x_edges)
            iy = _cell_index(t[:, 2] + t[:, 4] * z_mid, lay.y_edges)
            rows = np.flatnonzero((crossed > 0) & (ix >= 0) & (iy >= 0))
            e = hc.mip_mode_GeV * (1 + hc.mip_width_rel * moyal(rng, rows.size)) * crossed[rows]
            cells[rows, k, ix[rows], iy[rows]] += e
            c = mu_geom[k]
            dz = c.z - ctx.z_ecal
            inside = (np.abs(t[:, 1] + t[:, 3] * dz - c.x) <= c.size_x / 2) & (
                np.abs(t[:, 2] + t[:, 4] * dz - c.y) <= c.size_y / 2
            )
            mu_planes_hit[:, k] += (crossed >= 1.0) & inside


def _v2_tracks(out: _Outcome, rng, ctx: _Context) -> np.ndarray:
    """Number of charged particles crossing V2 per event."""
    c = ctx.geometry.counters["V2"]
    dz = c.z - ctx.z_ecal
    n = np.zeros(len(out), dtype=np.int64)
    loss = ctx.params.ecal.muon_energy_loss_GeV
    for slot in range(2):
        t = out.tracks[:, slot]
        exits = (t[:, 6] == 0.0) | (np.nan_to_num(t[:, 0]) > loss)
        inside = (np.abs(t[:, 1] + t[:, 3] * dz - c.x) <= c.size_x / 2) & (
            np.abs(t[:, 2] + t[:, 4] * dz - c.y) <= c.size_y / 2
        )
        n += np.isfinite(t[:, 1]) & exits & inside
    energy, _, _ = _hcal_hadron_entry(out, ctx)
    from_ecal = np.isfinite(out.hadron[:, 2]) & (out.hadron[:, 8] > 0)
    rate = np.where(from_ecal, energy * ctx.params.hadron.v2_tracks_per_leak_GeV, 0.0)
    return n + rng.poisson(rate)


def _mip_sum(counts: np.ndarray, rng, cp: CounterParams) -> np.ndarray:
    """Sum of ``counts`` Moyal MIP signals per entry."""
    flat = counts.ravel().astype(np.int64)
    owner = np.repeat(np.arange(flat.size), flat)
    e = cp.mip_mpv_GeV * (1 + cp.mip_width_rel * moyal(rng, owner.size))
    return np.bincount(owner, weights=e, minlength=flat.size).reshape(counts.shape)


def _species_at(out: _Outcome, z: float) -> np.ndarray:
    return np.where(out.decay_z <= z, out.daughter_pdg, out.pdg)


def _srd(out: _Outcome, states: np.ndarray, rng, ctx: _Context) -> np.ndarray:
    dip = ctx.setup.dipoles
    planes = [ctx.setup.index(name) for name in dip.names]
    entry = states[:, planes, :]
    is_e = np.stack([_species_at(out, z) == PDG_ELECTRON for z in dip.z_start_mm], axis=1)
    photons = sr_photons(entry, is_e, dip, ctx.srd.z_mm, rng)
    absorbed = srd_absorbed_GeV(photons, len(out), ctx.srd)
    i_exit = ctx.setup.index("vessel_exit")
    z_exit = ctx.setup.z_mm[i_exit]
    crosses = np.isfinite(states[:, i_exit, 0]) & (_species_at(out, z_exit) != PDG_ELECTRON)
    absorbed += knockon_deposits(crosses, rng, ctx.params.srd, len(ctx.srd))
    return srd_visible_GeV(absorbed, rng, ctx.params.srd)


def _trackers(states: np.ndarray, ctx: _Context):
    xs = np.full((states.shape[0], N_STATIONS), np.nan)
    ys = np.full((states.shape[0], N_STATIONS), np.nan)
    for name in _TRACKERS:
        st = ctx.geometry.trackers[name]
        x, y = states[:, ctx.setup.index(name), 0], states[:, ctx.setup.index(name), 1]
        inside = (np.abs(x - st.x) <= st.size / 2) & (np.abs(y - st.y) <= st.size / 2)
        xs[:, st.id] = np.where(inside, x, np.nan)
        ys[:, st.id] = np.where(inside, y, np.nan)
    return xs, ys


def _retransport(out: _Outcome, rng, ctx: _Context) -> np.ndarray:
    """Transport again with multiple scattering; move the charged particle's components.

    Returns the states (m, n_planes, 5) at every plane. The ECAL totals and counter hits
    drawn in stage 1 are kept; at 100 GeV the scattering moves the ECAL impact by ~0.1 mm.
    """
    normals = rng.standard_normal((len(out), ctx.setup.material_planes.size, 2))
    states, neutral = transport(out.transport_input, ctx.setup, normals)
    shift = np.nan_to_num(states[:, ctx.setup.index("ECAL"), :4] - out.face[:, :4])
    out.em[:, 0, 1:5] += shift
    out.tracks[:, :, 1:5] += shift[:, None, :]
    out.hadron[:, 4:8] += shift
    rows = np.flatnonzero(neutral.E_GeV > 0)
    nx, ny = neutral.at(ctx.z_ecal)
    out.em[rows, 1, 1], out.em[rows, 1, 2] = nx[rows], ny[rows]
    out.em[rows, 1, 3], out.em[rows, 1, 4] = neutral.tx[rows], neutral.ty[rows]
    return states


_STAGE2_BATCH = 16384  # events per full-deposit batch: bounds the SR photon arrays (memory)


def _stage2(out: _Outcome, rng, ctx: _Context) -> Deposits:
    """Full deposits of the selected particles, in batches of ``_STAGE2_BATCH``."""
    m = len(out)
    dep = Deposits.zeros(m)
    for start in range(0, m, _STAGE2_BATCH):
        part = slice(start, min(start + _STAGE2_BATCH, m))
        built = _stage2_batch(out.take(part), rng, ctx)
        for f in fields(Deposits):
            getattr(dep, f.name)[part] = getattr(built, f.name)
    return dep


def _stage2_batch(out: _Outcome, rng, ctx: _Context) -> Deposits:
    m = len(out)
    dep = Deposits.zeros(m)
    states = _retransport(out, rng, ctx)
    dep.ecal_GeV[:] = _ecal_cells(out, rng, ctx)
    hcal, behind = _hcal_cells(out, rng, ctx)
    n_layers = ctx.hcal.n_layers
    mu_hits = np.zeros((m, n_layers), dtype=np.int64)
    _muons_in_hcal(hcal, mu_hits, out, rng, ctx)
    dep.hcal_GeV[:] = hcal
    punch = rng.random(behind.shape) < -np.expm1(-behind / ctx.params.hcal.punch_through_scale_GeV)
    counts = np.zeros((m, N_COUNTERS), dtype=np.int64)
    counts[:, _COUNTER["S1"]] = out.s1
    counts[:, _COUNTER["V1"]] = out.v1
    counts[:, _COUNTER["S2"]] = out.s2
    counts[:, _COUNTER["V2"]] = _v2_tracks(out, rng, ctx)
    counts[:, _COUNTER["MU"] : _COUNTER["MU"] + n_layers] = mu_hits + punch
    dep.counters_GeV[:] = _mip_sum(counts, rng, ctx.params.counters)
    srd0 = _COUNTER["SRD"]
    dep.counters_GeV[:, srd0 : srd0 + len(ctx.srd)] = _srd(out, states, rng, ctx)
    dep.track_x_mm[:], dep.track_y_mm[:] = _trackers(states, ctx)
    return dep


# ------------------------------------------------------------------------------ driver


def _beam_for(kind: str, n: int, rng, ctx: _Context, target: np.ndarray | None,
              momentum_GeV: float | None = None) -> BeamParticles:
    bp = ctx.params.beam
    species = {
        "physics": "mix",
        "signal": "electron",
        "ecal_scan": "electron",
        "hcal_muons": "muon",
    }
    beam = sample_beam(n, rng, bp, species=species[kind], momentum_GeV=momentum_GeV)
    if target is not None:
        tx, ty = aim_slopes(
            beam.p_GeV,
            np.full(n, -1.0),
            beam.z_mm,
            target[:, 0],
            target[:, 1],
            ctx.z_ecal,
            ctx.setup.dipoles,
        )
        beam.tx += tx
        beam.ty += ty
    return beam


# (id of the field data, scale) -> (that field data, kept alive; its scaled copy)
_SCALED_FIELDS: dict[tuple[int, float], tuple[dict, dict]] = {}


def _scaled_field(field_data: dict, scale: float) -> dict:
    """The field with every dipole's B scaled by ``scale`` (magnets set to a beam momentum of
    ``scale`` times the nominal one); one object per (field, scale), so that the generator's
    context cache keeps serving it; ``scale`` 1 returns ``field_data`` itself."""
    if scale == 1.0:
        return field_data
    key = (id(field_data), scale)
    if key not in _SCALED_FIELDS:
        dipoles = [{**d, "B_x": float(d.get("B_x", 0.0)) * scale, "B_y": float(d["B_y"]) * scale}
                   for d in field_data["dipoles"]]
        _SCALED_FIELDS[key] = (field_data, {**field_data, "dipoles": dipoles})
    return _SCALED_FIELDS[key][1]


@cache
def _aprime_spectrum(mass: float, E0: float, Z: float, A: float, n: int) -> AprimeSpectrum:
    return AprimeSpectrum(mass, E0, Z=Z, A=A, n_table=n)


def _chunk(kind, n, rng, ctx: _Context, signal, target, pileup: bool,
           aprime_counts: np.ndarray | None,
           momentum_GeV: float | None = None) -> tuple[TrueEvents, int]:
    beam = _beam_for(kind, n, rng, ctx, target, momentum_GeV)
    config = trigger_config(kind, ctx.params.trigger, steered=target is not None)
    threshold = ecal_thresholds(n, config, rng)
    out = _stage1(beam, rng, ctx, signal, unbiased=False, e_cut=threshold)
    if aprime_counts is not None:  # every A' generated, triggered or not (numpy-path rows)
        emitted = out.slow.e_aprime[out.slow.e_aprime > 0]
        aprime_counts += np.histogram(emitted, bins=APRIME_HISTOGRAM_EDGES_GeV)[0]
    alone = TriggerInputs(
        out.s1, out.s2, out.v1, out.e_ecal, np.zeros(n, dtype=bool), np.zeros(n), np.full(n, np.nan)
    )
    # pile-up only adds ECAL energy and V1 vetoes: an event whose in-time particle fails
    # alone fails with any pile-up, so pile-up particles are drawn and simulated for the
    # candidates only (arrays below are over the candidates)
    cand = np.flatnonzero(trigger_decision(alone, config, rng, threshold))
    m = cand.size
    has_pu, dt = (
        sample_pileup(m, rng, ctx.params.beam)
        if pileup
        else (np.zeros(m, dtype=bool), np.full(m, np.nan))
    )
    pu_rows = np.flatnonzero(has_pu)
    pu_beam = sample_beam(pu_rows.size, rng, ctx.params.beam, species="mix")
    pu = _stage1(pu_beam, rng, ctx, None, unbiased=True)
    pu_v1 = np.zeros(m, dtype=bool)
    pu_e = np.zeros(m)
    pu_v1[pu_rows], pu_e[pu_rows] = pu.v1, pu.e_ecal
    inputs = TriggerInputs(out.s1[cand], out.s2[cand], out.v1[cand], out.e_ecal[cand], pu_v1,
                           pu_e, dt)
    passed = np.flatnonzero(
        trigger_decision(inputs, config, rng, None if threshold is None else threshold[cand])
    )
    sel = cand[passed]
    kept = out.take(sel)
    pu_index = np.full(m, -1)
    pu_index[pu_rows] = np.arange(pu_rows.size)
    sel_pu = pu_index[passed]
    with_pu = np.flatnonzero(sel_pu >= 0)
    # in-time and pile-up particles of the kept events share one full stage (one set of
    # per-call costs): the first sel.size rows are the in-time particles, then the pile-up
    built = _stage2(_concat_outcomes([kept, pu.take(sel_pu[with_pu])]), rng, ctx)
    intime = built.take(slice(0, sel.size))
    pileup_dep = Deposits.zeros(sel.size)
    for f in fields(Deposits):
        getattr(pileup_dep, f.name)[with_pu] = getattr(built, f.name)[sel.size:]
    pu_pdg = np.zeros(sel.size, dtype=np.int32)
    pu_pdg[with_pu] = pu.pdg[sel_pu[with_pu]]
    events = TrueEvents(
        pdg=kept.pdg.astype(np.int32),
        process=kept.process.astype(np.int8),
        p_true_GeV=kept.p_true,
        e_aprime_GeV=kept.e_aprime,
        weight=kept.weight,
        intime=intime,
        pileup=pileup_dep,
        pileup_dt_ns=dt[passed],
        pileup_pdg=pu_pdg,
    )
    return events, int(np.count_nonzero(beam.pdg == PDG_ELECTRON))


def _random_events(n: int) -> TrueEvents:
    return TrueEvents(
        pdg=np.zeros(n, dtype=np.int32),
        process=np.full(n, Process.NO_PARTICLE, dtype=np.int8),
        p_true_GeV=np.zeros(n),
        e_aprime_GeV=np.zeros(n),
        weight=np.ones(n),
        intime=Deposits.zeros(n),
        pileup=Deposits.zeros(n),
        pileup_dt_ns=np.full(n, np.nan),
        pileup_pdg=np.zeros(n, dtype=np.int32),
    )


def _concatenate(parts: list[TrueEvents]) -> TrueEvents:
    values = {}
    for f in fields(TrueEvents):
        items = [getattr(p, f.name) for p in parts]
        if isinstance(items[0], Deposits):
            values[f.name] = Deposits(
                **{
                    g.name: np.concatenate([getattr(d, g.name) for d in items])
                    for g in fields(Deposits)
                }
            )
        else:
            values[f.name] = np.concatenate(items)
    return TrueEvents(**values)


def simulate_beam(
    beam: BeamParticles,
    rng: np.random.Generator,
    *,
    geometry: Geometry,
    field_data: dict,
    params: PhysicsParams,
) -> TrueEvents:
    """Full deposits of given beam particles, no trigger and no pile-up (studies, tests).

    Electrons get the physics processes of a physics run (EM shower, electronuclear,
    dimuon, upstream brems); the particles may start anywhere upstream of the ECAL.
    """
    ctx = _Context.build(geometry, field_data, params)
    out = _stage1(beam, rng, ctx, None, unbiased=False).take(np.arange(len(beam)))
    n = len(out)
    return TrueEvents(
        pdg=out.pdg.astype(np.int32),
        process=out.process.astype(np.int8),
        p_true_GeV=out.p_true,
        e_aprime_GeV=out.e_aprime,
        weight=out.weight,
        intime=_stage2(out, rng, ctx),
        pileup=Deposits.zeros(n),
        pileup_dt_ns=np.full(n, np.nan),
        pileup_pdg=np.zeros(n, dtype=np.int32),
    )


def generate(
    kind: str,
    n_beam: int,
    rng: np.random.Generator,
    *,
    geometry: Geometry,
    field_data: dict,
    params: PhysicsParams,
    mass_GeV: float | None = None,
    beam_target_xy_mm: np.ndarray | None = None,
    pileup: bool = True,
    aprime_counts: np.ndarray | None = None,
    beam_momentum_GeV: float | None = None,
) -> tuple[TrueEvents, int]:
    """Simulate ``n_beam`` beam particles; return (triggered events, electrons on target).

    ``mass_GeV`` is required for ``kind="signal"``; ``beam_target_xy_mm`` (n_beam, 2) aims
    ``ecal_scan`` / ``hcal_muons`` particles at (x, y) on the ECAL face plane.
    ``aprime_counts`` (signal runs), an array over the bins of the A' energy histogram, is
    incremented by the energies of every A' generated, triggered or not: the denominator
    of the signal efficiency (:data:`sim.deposits.APRIME_HISTOGRAM_EDGES_GeV`).
    ``beam_momentum_GeV`` replaces the nominal momentum of the beam (same relative spread)
    and scales the dipole fields with it (the ECAL energy scan of ``ecal_scan`` runs: the
    beam keeps its trajectory); None keeps both.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if kind == "random":
        return _random_events(n_beam), 0
    if kind == "signal" and mass_GeV is None:
        raise ValueError("kind 'signal' needs mass_GeV")
    target = None if beam_target_xy_mm is None else np.asarray(beam_target_xy_mm, dtype=float)
    if target is not None and target.shape != (n_beam, 2):
        raise ValueError("beam_target_xy_mm must have shape (n_beam, 2)")
    if beam_momentum_GeV is not None:
        field_data = _scaled_field(field_data, beam_momentum_GeV / params.beam.momentum_GeV)
    ctx = _Context.build(geometry, field_data, params)
    pa = params.processes
    signal = (
        _aprime_spectrum(
            float(mass_GeV), params.beam.momentum_GeV, pa.aprime_z, pa.aprime_a, pa.aprime_n_table
        )
        if kind == "signal"
        else None
    )
    parts, n_eot = [], 0
    for start in range(0, n_beam, params.chunk_size):
        stop = min(start + params.chunk_size, n_beam)
        chunk_target = None if target is None else target[start:stop]
        events, n_e = _chunk(kind, stop - start, rng, ctx, signal, chunk_target, pileup,
                             aprime_counts, beam_momentum_GeV)
        parts.append(events)
        n_eot += n_e
    if not parts:
        return _random_events(0), 0
    return _concatenate(parts), n_eot
