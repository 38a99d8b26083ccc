"""Electron shower model: lateral containment in the ECAL matrix and preshower fraction.

Parameters come from the versioned file ``recon/calo/params/ecal_shower_model.yaml``.

Radial profile (Grindhammer and Peters, hep-ex/0001020, core + tail form)::

    dE/dA = sum_i w_i R_i^2 / (pi (r^2 + R_i^2)^2),   R_i in units of the Moliere radius

Its integral over a rectangle is done analytically in x,
``int dx / (x^2 + q^2)^2 = x / (2 q^2 (x^2 + q^2)) + atan(x / q) / (2 q^3)`` with
``q^2 = y^2 + R^2``, and numerically in y.

Longitudinal profile (Longo and Sestili, NIM 128 (1975) 283; PDG eq. 34.36)::

    dE/dt = E b (b t)^(a - 1) exp(-b t) / Gamma(a),   t_max = (a - 1)/b = ln(E / E_c) - 0.5

so the fraction in the first ``t_pre`` radiation lengths (the preshower) is the
regularised incomplete gamma function ``P(a, b t_pre)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy import special

from recon.conditions.geometry import CalorimeterGeometry

__all__ = ["DEFAULT_MODEL_PATH", "ShowerModel"]

DEFAULT_MODEL_PATH = Path(__file__).parent / "params" / "ecal_shower_model.yaml"


@dataclass(frozen=True)
class ShowerModel:
    """Radial (Moliere-radius units) and longitudinal (X0, GeV) shower parameters."""

    version: str
    core_fraction: float
    core_radius_rm: float
    tail_radius_rm: float
    b: float
    critical_energy_GeV: float

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL_PATH) -> ShowerModel:
        doc = yaml.safe_load(Path(path).read_text())
        radial, longitudinal = doc["radial"], doc["longitudinal"]
        return cls(
            version=str(doc["version"]),
            core_fraction=float(radial["core_fraction"]),
            core_radius_rm=float(radial["core_radius_rm"]),
            tail_radius_rm=float(radial["tail_radius_rm"]),
            b=float(longitudinal["b"]),
            critical_energy_GeV=float(longitudinal["critical_energy_GeV"]),
        )

    def rectangle_fraction(self, x_lo, x_hi, y_lo, y_hi, moliere_mm: float,
                           n_steps: int = 2000) -> float:
        """Fraction of a shower at the origin deposited in ``[x_lo, x_hi] x [y_lo, y_hi]`` (mm)."""
        y = np.linspace(y_lo, y_hi, n_steps + 1)
        y_mid = 0.5 * (y[1:] + y[:-1])
        total = 0.0
        for weight, radius_rm in ((self.core_fraction, self.core_radius_rm),
                                  (1.0 - self.core_fraction, self.tail_radius_rm)):
            r2 = (radius_rm * moliere_mm) ** 2
            q2 = y_mid**2 + r2
            q = np.sqrt(q2)

            def primitive(x, q=q, q2=q2):
                return x / (2 * q2 * (x * x + q2)) + np.arctan(x / q) / (2 * q2 * q)

            inner = r2 / np.pi * (primitive(x_hi) - primitive(x_lo))
            total += weight * float(np.sum(inner * np.diff(y)))
        return total

    def matrix_containment(self, ecal: CalorimeterGeometry, dx_mm: np.ndarray | None = None,
                           dy_mm: np.ndarray | None = None) -> np.ndarray:
        """(n_x, n_y) fraction of a shower aimed at each cell that stays inside the matrix.

        The shower axis sits at the cell centre, or displaced from it by ``dx_mm``,
        ``dy_mm`` ((n_x, n_y) arrays, e.g. from :meth:`displacement_from_ratio`).
        """
        half = 0.5 * ecal.cell_size
        moliere = float(ecal.extra["moliere_radius"])
        shape = (ecal.n_x, ecal.n_y)
        dx = np.zeros(shape) if dx_mm is None else np.broadcast_to(dx_mm, shape)
        dy = np.zeros(shape) if dy_mm is None else np.broadcast_to(dy_mm, shape)
        out = np.empty(shape)
        x_lo, x_hi = ecal.cell_x(0) - half, ecal.cell_x(ecal.n_x - 1) + half
        y_lo, y_hi = ecal.cell_y(0) - half, ecal.cell_y(ecal.n_y - 1) + half
        for ix in range(ecal.n_x):  # 36 cells, once per derivation
            for iy in range(ecal.n_y):
                x0, y0 = ecal.cell_x(ix) + dx[ix, iy], ecal.cell_y(iy) + dy[ix, iy]
                out[ix, iy] = self.rectangle_fraction(x_lo - x0, x_hi - x0, y_lo - y0, y_hi - y0,
                                                      moliere)
        return out

    def central_cell_fraction(self, ecal: CalorimeterGeometry, dx_mm: float = 0.0,
                              dy_mm: float = 0.0) -> float:
        """Model fraction of a shower in its own cell, axis displaced by (dx, dy) mm from the
        cell centre (centred by default: a cross-check of the data)."""
        half = 0.5 * ecal.cell_size
        moliere = float(ecal.extra["moliere_radius"])
        return self.rectangle_fraction(-half - dx_mm, half - dx_mm, -half - dy_mm,
                                       half - dy_mm, moliere)

    def neighbour_ratio(self, ecal: CalorimeterGeometry, d_mm: np.ndarray) -> np.ndarray:
        """Energy in the next cell over that in the previous one (along one axis) for a shower
        displaced by ``d_mm`` from the centre of its cell along that axis."""
        half, pitch = 0.5 * ecal.cell_size, ecal.cell_size
        moliere = float(ecal.extra["moliere_radius"])
        return np.array([
            self.rectangle_fraction(pitch - half - d, pitch + half - d, -half, half, moliere)
            / self.rectangle_fraction(-pitch - half - d, -pitch + half - d, -half, half, moliere)
            for d in np.atleast_1d(d_mm)])

    def displacement_from_ratio(self, ecal: CalorimeterGeometry, ratio: np.ndarray,
                                max_mm: float = 15.0, step_mm: float = 0.1) -> np.ndarray:
        """Inverse of :meth:`neighbour_ratio` (mm; by interpolation on a grid of
        ``+-max_mm``, clipped there)."""
        grid = np.arange(-max_mm, max_mm + 0.5 * step_mm, step_mm)
        model = np.log(self.neighbour_ratio(ecal, grid))
        return np.interp(np.log(np.asarray(ratio, np.float64)), model, grid)

    def preshower_fraction(self, energy_GeV, depth_X0: float) -> np.ndarray:
        """Mean fraction of an electron shower of ``energy_GeV`` in the first ``depth_X0``."""
        energy = np.maximum(np.asarray(energy_GeV, dtype=np.float64), 2 * self.critical_energy_GeV)
        a = 1.0 + self.b * (np.log(energy / self.critical_energy_GeV) - 0.5)
        return special.gammainc(a, self.b * depth_X0)
