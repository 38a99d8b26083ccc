"""Transport of charged and neutral particles through the invis2016 spectrometer.

Units: mm, GeV, T, rad. State ``(x, y, tx, ty)`` at a given ``z`` with slopes
``tx = px/pz``, ``ty = py/pz``.

Field: the uniform dipoles of the ``field`` condition (``B_y`` inside
``z_start..z_end``, zero outside). Inside a dipole the path is an exact helix:
with the direction ``u`` and ``kappa = q c B_y / p`` (``c = 0.299792458e-3``
GeV/(T mm)), ``du/ds = kappa (-u_z, 0, u_x)``, so the angle ``phi`` of ``u``
in the x-z plane obeys ``phi(s) = phi_0 - kappa s`` and

    sin(phi_1) = sin(phi_0) - kappa dz / r,   x_1 - x_0 = (r / kappa) (cos phi_1 - cos phi_0),
    s = (phi_0 - phi_1) / kappa,              y_1 - y_0 = u_y s,

with ``r = sqrt(u_x^2 + u_z^2)``. A negative particle is bent towards +x by
``0.299792458 * Integral(B dl) / p`` (21.0 mrad at 100 GeV for 7.0 T m,
spec section 2). Particles that would curl back (|sin phi_1| >= 1) are lost
(state NaN). Straight lines elsewhere; magnet apertures are not modelled.

Material (``material`` parameters, x/X0 per element): multiple scattering
with the Highland formula (PDG, "Passage of particles through matter", eq.
34.15),

    theta_0 = 13.6 MeV / (beta c p) sqrt(x/X0) [1 + 0.038 ln(x / (X0 beta^2))],

applied as a Gaussian kick to both slopes at each element; upstream
bremsstrahlung (one hard photon at a chosen element, sampled by
:mod:`sim.processes`) leaves a photon on the electron's direction there and
reduces the electron momentum by ``(1 - y)``; a decay in flight at a given z
replaces the charged particle by its charged daughter and may emit a neutral
(pi0) with its own direction.

The transport kernel walks each particle through the z-ordered planes (the
counters S1, V1, S2, the trackers, the magnet entries, the vessel windows and
the ECAL face) and records ``(x, y, tx, ty, p)`` at each.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numba as nb
import numpy as np

from recon.conditions.geometry import Geometry

__all__ = [
    "C_GEV_PER_T_MM",
    "Dipoles",
    "NeutralOrigin",
    "TransportInput",
    "TransportSetup",
    "aim_slopes",
    "deflection_angle_rad",
    "highland_theta0_rad",
    "propagate",
    "transport",
]

C_GEV_PER_T_MM = 0.299792458e-3  # p [GeV] = C * B [T] * R [mm]
_STATE = 5  # x, y, tx, ty, p


@dataclass(frozen=True)
class Dipoles:
    """Uniform B_y dipoles sorted in z (mm, T)."""

    z_start_mm: np.ndarray
    z_end_mm: np.ndarray
    b_y_T: np.ndarray
    names: tuple[str, ...]

    @classmethod
    def from_field(cls, field_data: dict) -> Dipoles:
        if field_data.get("model") != "uniform_dipoles":
            raise ValueError(f"unsupported field model {field_data.get('model')!r}")
        dipoles = sorted(field_data["dipoles"], key=lambda d: float(d["z_start"]))
        if any(float(d.get("B_x", 0.0)) != 0.0 for d in dipoles):
            raise ValueError("only B_y dipoles are supported")
        return cls(
            z_start_mm=np.array([float(d["z_start"]) for d in dipoles]),
            z_end_mm=np.array([float(d["z_end"]) for d in dipoles]),
            b_y_T=np.array([float(d["B_y"]) for d in dipoles]),
            names=tuple(str(d["name"]) for d in dipoles),
        )

    def field_integral_T_mm(self) -> float:
        return float(np.sum(self.b_y_T * (self.z_end_mm - self.z_start_mm)))


@dataclass(frozen=True)
class TransportSetup:
    """The z-ordered planes a particle is recorded at, their material, and the field."""

    names: tuple[str, ...]
    z_mm: np.ndarray
    x_X0: np.ndarray
    dipoles: Dipoles

    @classmethod
    def build(
        cls, geometry: Geometry, field_data: dict, material: dict[str, float]
    ) -> TransportSetup:
        dipoles = Dipoles.from_field(field_data)
        planes: dict[str, float] = {}
        for name in ("S1", "V1", "S2"):
            planes[name] = geometry.counters[name].z
        for name, station in geometry.trackers.items():
            planes[name] = station.z
        for name, z in zip(dipoles.names, dipoles.z_start_mm, strict=True):
            planes[name] = float(z)
        planes["vessel_entrance"], planes["vessel_exit"] = geometry.vacuum_vessel
        planes["ECAL"] = geometry.ecal.z_front
        unknown = set(material) - set(planes)
        if unknown:
            raise ValueError(f"material on unknown elements {sorted(unknown)}")
        order = sorted(planes, key=planes.get)
        return cls(
            names=tuple(order),
            z_mm=np.array([planes[k] for k in order]),
            x_X0=np.array([float(material.get(k, 0.0)) for k in order]),
            dipoles=dipoles,
        )

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def material_planes(self) -> np.ndarray:
        """Indices of the planes carrying material."""
        return np.flatnonzero(self.x_X0 > 0)


@dataclass
class TransportInput:
    """Per particle: the starting state and what happens on the way (arrays of length n).

    ``brems_plane`` is the plane index of a hard upstream bremsstrahlung (-1: none) with
    photon energy fraction ``brems_y``. ``decay_z_mm`` is the decay point (inf: none);
    the charged daughter has momentum ``daughter_p_GeV``, charge, mass and slope kicks
    ``daughter_dtx/dty`` relative to the parent; a neutral (pi0) of ``neutral_E_GeV``
    leaves the decay point with kicks ``neutral_dtx/dty``.
    """

    z_mm: float
    x_mm: np.ndarray
    y_mm: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    p_GeV: np.ndarray
    charge: np.ndarray
    mass_GeV: np.ndarray
    brems_plane: np.ndarray
    brems_y: np.ndarray
    decay_z_mm: np.ndarray
    daughter_p_GeV: np.ndarray
    daughter_charge: np.ndarray
    daughter_mass_GeV: np.ndarray
    daughter_dtx: np.ndarray
    daughter_dty: np.ndarray
    neutral_E_GeV: np.ndarray
    neutral_dtx: np.ndarray
    neutral_dty: np.ndarray

    @classmethod
    def simple(cls, z_mm: float, x, y, tx, ty, p, charge, mass) -> TransportInput:
        """Particles without brems or decay."""
        n = np.shape(p)[0]
        nan = np.full(n, np.nan)
        zero = np.zeros(n)
        return cls(
            z_mm,
            np.asarray(x, float),
            np.asarray(y, float),
            np.asarray(tx, float),
            np.asarray(ty, float),
            np.asarray(p, float),
            np.asarray(charge, float),
            np.asarray(mass, float),
            np.full(n, -1, dtype=np.int64),
            zero,
            np.full(n, np.inf),
            nan,
            zero,
            zero,
            zero,
            zero,
            zero,
            zero,
            zero,
        )

    def take(self, index) -> TransportInput:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return TransportInput(**{k: (v if k == "z_mm" else v[index]) for k, v in values.items()})


@dataclass
class NeutralOrigin:
    """Where a neutral (brems photon, pi0) starts: z, x, y, tx, ty and its energy; E = 0: none."""

    z_mm: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    E_GeV: np.ndarray

    def at(self, z_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """Straight-line (x, y) at ``z_mm`` (NaN where there is no neutral)."""
        dz = z_mm - self.z_mm
        return self.x_mm + self.tx * dz, self.y_mm + self.ty * dz


@nb.njit(cache=True, nogil=True)
def _helix(x, y, tx, ty, dz, kappa):
    """Exact helix step over dz in a uniform B_y (kappa = q C B_y / p, 1/mm).

    With s0 = sin(phi0), c0 = cos(phi0): s1 = s0 - kappa dz / r and
    x1 - x0 = (r/kappa)(c1 - c0) = dz (s0 + s1) / (c0 + c1) (no cancellation).
    """
    norm = np.sqrt(1.0 + tx * tx + ty * ty)
    ux, uy, uz = tx / norm, ty / norm, 1.0 / norm
    r = np.sqrt(ux * ux + uz * uz)
    if abs(kappa * dz) < 1e-15:
        return x + tx * dz, y + ty * dz, tx, ty
    s0, c0 = ux / r, uz / r
    s1 = s0 - kappa * dz / r
    if abs(s1) >= 1.0:
        return np.nan, np.nan, np.nan, np.nan
    c1 = np.sqrt(1.0 - s1 * s1)
    turn = np.arcsin(s0 * c1 - c0 * s1)  # phi0 - phi1
    return x + dz * (s0 + s1) / (c0 + c1), y + uy * turn / kappa, s1 / c1, uy / (r * c1)


@nb.njit(cache=True, nogil=True)
def _propagate(x, y, tx, ty, z_from, z_to, k_per_T, dip_z0, dip_z1, dip_b):
    """Forward propagation z_from -> z_to; ``k_per_T = q C / p`` (1/(T mm))."""
    z = z_from
    for j in range(dip_z0.shape[0]):
        lo = max(dip_z0[j], z)
        hi = min(dip_z1[j], z_to)
        if hi <= lo:
            continue
        x += tx * (lo - z)
        y += ty * (lo - z)
        x, y, tx, ty = _helix(x, y, tx, ty, hi - lo, k_per_T * dip_b[j])
        z = hi
    return x + tx * (z_to - z), y + ty * (z_to - z), tx, ty


@nb.njit(cache=True, nogil=True)
def _highland(p, mass, x_X0):
    beta = p / np.sqrt(p * p + mass * mass)
    return 0.0136 / (beta * p) * np.sqrt(x_X0) * (1.0 + 0.038 * np.log(x_X0 / (beta * beta)))


@nb.njit(cache=True, nogil=True)
def _propagate_many(x, y, tx, ty, p, charge, z_from, z_to, dip_z0, dip_z1, dip_b):
    n = x.shape[0]
    out = np.empty((n, 4))
    for i in range(n):
        k = charge[i] * C_GEV_PER_T_MM / p[i]
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = _propagate(
            x[i], y[i], tx[i], ty[i], z_from, z_to, k, dip_z0, dip_z1, dip_b
        )
    return out


@nb.njit(cache=True, nogil=True)
def _transport_kernel(
    z0,
    x0,
    y0,
    tx0,
    ty0,
    p0,
    q0,
    m0,
    brems_plane,
    brems_y,
    decay_z,
    d_p,
    d_q,
    d_m,
    d_dtx,
    d_dty,
    n_E,
    n_dtx,
    n_dty,
    plane_z,
    plane_x,
    ms_slot,
    normals,
    record_slot,
    dip_z0,
    dip_z1,
    dip_b,
    out,
    neutral,
):
    n = x0.shape[0]
    with_ms = normals.shape[1] > 0
    for i in range(n):
        x, y, tx, ty, p, q, m = x0[i], y0[i], tx0[i], ty0[i], p0[i], q0[i], m0[i]
        z = z0
        decayed = False
        for c in range(6):
            neutral[i, c] = np.nan
        neutral[i, 5] = 0.0
        for k in range(plane_z.shape[0]):
            zt = plane_z[k]
            if zt < z0:  # plane upstream of the start: not crossed
                if record_slot[k] >= 0:
                    out[i, record_slot[k], :] = np.nan
                continue
            if not decayed and decay_z[i] <= zt:
                x, y, tx, ty = _propagate(
                    x, y, tx, ty, z, decay_z[i], q * C_GEV_PER_T_MM / p, dip_z0, dip_z1, dip_b
                )
                z = decay_z[i]
                if n_E[i] > 0.0:
                    neutral[i, 0], neutral[i, 1], neutral[i, 2] = z, x, y
                    neutral[i, 3], neutral[i, 4] = tx + n_dtx[i], ty + n_dty[i]
                    neutral[i, 5] = n_E[i]
                p, q, m = d_p[i], d_q[i], d_m[i]
                tx += d_dtx[i]
                ty += d_dty[i]
                decayed = True
            x, y, tx, ty = _propagate(
                x, y, tx, ty, z, zt, q * C_GEV_PER_T_MM / p, dip_z0, dip_z1, dip_b
            )
            z = zt
            r = record_slot[k]
            if r >= 0:
                out[i, r, 0], out[i, r, 1], out[i, r, 2], out[i, r, 3], out[i, r, 4] = (
                    x,
                    y,
                    tx,
                    ty,
                    p,
                )
            slot = ms_slot[k]
            if with_ms and slot >= 0 and np.isfinite(x):
                theta0 = _highland(p, m, plane_x[k])
                tx += theta0 * normals[i, slot, 0]
                ty += theta0 * normals[i, slot, 1]
            if brems_plane[i] == k:
                neutral[i, 0], neutral[i, 1], neutral[i, 2] = z, x, y
                neutral[i, 3], neutral[i, 4], neutral[i, 5] = tx, ty, brems_y[i] * p
                p *= 1.0 - brems_y[i]


def transport(
    inp: TransportInput,
    setup: TransportSetup,
    ms_normals: np.ndarray | None,
    record: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, NeutralOrigin]:
    """Walk particles through the planes of ``setup``.

    ``ms_normals`` (n, n_material_planes, 2) are standard normals for the scattering
    kicks (None: no multiple scattering). Returns ``states`` (n, n_record, 5) =
    (x, y, tx, ty, p) of the charged particle at each plane of ``record`` (default: all
    planes, in ``setup.names`` order; NaN once lost) and the origin of the neutral, if any.
    """
    n = inp.p_GeV.shape[0]
    slot = np.full(len(setup.names), -1, dtype=np.int64)
    slot[setup.material_planes] = np.arange(setup.material_planes.size)
    record = setup.names if record is None else record
    record_slot = np.full(len(setup.names), -1, dtype=np.int64)
    record_slot[[setup.index(name) for name in record]] = np.arange(len(record))
    if ms_normals is None:
        ms_normals = np.zeros((n, 0, 2))
    out = np.empty((n, len(record), _STATE))
    neutral = np.empty((n, 6))
    d = setup.dipoles
    _transport_kernel(
        float(inp.z_mm),
        inp.x_mm,
        inp.y_mm,
        inp.tx,
        inp.ty,
        inp.p_GeV,
        inp.charge,
        inp.mass_GeV,
        inp.brems_plane,
        inp.brems_y,
        inp.decay_z_mm,
        inp.daughter_p_GeV,
        inp.daughter_charge,
        inp.daughter_mass_GeV,
        inp.daughter_dtx,
        inp.daughter_dty,
        inp.neutral_E_GeV,
        inp.neutral_dtx,
        inp.neutral_dty,
        setup.z_mm,
        setup.x_X0,
        slot,
        ms_normals,
        record_slot,
        d.z_start_mm,
        d.z_end_mm,
        d.b_y_T,
        out,
        neutral,
    )
    origin = NeutralOrigin(*(neutral[:, c].copy() for c in range(6)))
    return out, origin


def propagate(x, y, tx, ty, p_GeV, charge, z_from_mm: float, z_to_mm: float, dipoles: Dipoles):
    """Propagate arrays of particles from ``z_from_mm`` to ``z_to_mm`` (no material).

    Returns (x, y, tx, ty) arrays.
    """
    arrays = [np.atleast_1d(np.asarray(a, dtype=float)) for a in (x, y, tx, ty, p_GeV, charge)]
    arrays = np.broadcast_arrays(*arrays)
    out = _propagate_many(
        *(np.ascontiguousarray(a) for a in arrays),
        float(z_from_mm),
        float(z_to_mm),
        dipoles.z_start_mm,
        dipoles.z_end_mm,
        dipoles.b_y_T,
    )
    return out[:, 0], out[:, 1], out[:, 2], out[:, 3]


def deflection_angle_rad(p_GeV, dipoles: Dipoles):
    """Small-angle bend of a unit charge: 0.299792458 * Integral(B dl) / p."""
    return C_GEV_PER_T_MM * dipoles.field_integral_T_mm() / np.asarray(p_GeV, dtype=float)


def highland_theta0_rad(p_GeV, mass_GeV, x_X0):
    """Highland multiple-scattering width (rad) for unit charge."""
    p = np.asarray(p_GeV, dtype=float)
    beta = p / np.sqrt(p * p + np.asarray(mass_GeV, dtype=float) ** 2)
    return 0.0136 / (beta * p) * np.sqrt(x_X0) * (1.0 + 0.038 * np.log(x_X0 / beta**2))


def aim_slopes(
    p_GeV: np.ndarray,
    charge: np.ndarray,
    z_start_mm: float,
    target_x_mm: np.ndarray,
    target_y_mm: np.ndarray,
    z_target_mm: float,
    dipoles: Dipoles,
    *,
    iterations: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Initial slopes (from x = y = 0 at ``z_start_mm``) that reach the target at ``z_target_mm``.

    Newton steps with the lever arm as derivative; the residual after three steps is far
    below a micrometre for the setup's bends.
    """
    lever = z_target_mm - z_start_mm
    tx = np.asarray(target_x_mm, float) / lever
    ty = np.asarray(target_y_mm, float) / lever
    zero = np.zeros_like(tx)
    for _ in range(iterations):
        x, y, _, _ = propagate(zero, zero, tx, ty, p_GeV, charge, z_start_mm, z_target_mm, dipoles)
        tx = tx + (target_x_mm - x) / lever
        ty = ty + (target_y_mm - y) / lever
    return tx, ty
