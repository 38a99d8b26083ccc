"""ECAL event summaries from calibrated cells: energies, hit cell, shower centre and shape.

Per event, from the calibrated cells (flat arrays with event offsets; cell
index ``(section * n_x + ix) * n_y + iy``, section 0 preshower, 1 main), one
numba kernel computes

* ``e_ecal_GeV``: all cells; ``e_ecal_intime_GeV``: cells in time
  (``|t_ns| <= intime_window_ns`` after the cell's ``t0``, or without a pulse);
  the quantities below use the in-time cells only;
* ``e_ecal_pre_GeV``: preshower; towers = preshower + main of a cell;
  ``ecal_max_ix``, ``ecal_max_iy``: the most energetic tower;
  ``e_ecal_3x3_GeV``: the 3x3 towers around it;
* ``e_ecal_shower_GeV``: the shower energy with less electronics noise than the
  all-cell sum (section 6 of ``docs/calorimetry.md``). The 3x3 towers around the
  hit cell are summed as they are; of the in-time energy outside them,
  ``E_out`` (~3 % of a shower, but the noise of 27 cells), the estimate is the
  linear minimum-variance combination of the measured value and its mean
  ``rho_c E_3x3`` from the cell scan (``rho_c`` of the hit cell):
  ``E = E_3x3 + w E_out + (1 - w) rho_c E_3x3``,
  ``w = kappa E_3x3 / (kappa E_3x3 + sigma_out^2)``, with ``kappa E_3x3`` the
  variance of the physical fluctuation of ``E_out`` (cell scan) and
  ``sigma_out^2`` the amplitude-noise variance of the outside cells. Unbiased on
  average for any ``w`` (``E_out`` and ``rho_c E_3x3`` have the same mean);
  ``w`` grows from ~0.1 at 10 GeV to ~0.5 at 100 GeV. Without the outer-energy
  calibration (NaN) ``w = 1``: the in-time sum;
* ``x_ecal_shower_mm``, ``y_ecal_shower_mm``: logarithmically weighted centre of
  the towers, ``w_i = max(0, w0 + ln(E_i / E))`` (T.C. Awes et al., NIM A311
  (1992) 130; ``w0`` = 4);
* lateral shape chi2: the main-section energy fractions of the 3x3 cells
  around the hit cell against the mean fractions of electrons from the cell
  scan, ``sum (f - <f>)^2 / (sigma_f^2 + (sigma_noise / E_3x3)^2)`` (cells
  outside the matrix are skipped).

Then, in numpy, the longitudinal chi2: the preshower fraction against the
electron expectation at the event's energy, scaled from the cell-scan value at
``E_ref`` with the Longo-Sestili profile (:class:`ShowerModel`), with a
relative width taken from the cell scan; ``ecal_shape_chi2`` is
``(lateral + longitudinal) / (ndf_lateral + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from recon.calo.shower_model import ShowerModel

__all__ = ["EcalShape", "OuterEnergy", "ecal_summary"]

_NO_SIGNAL, _SATURATED, _PILEUP = 8, 1, 2


@dataclass(frozen=True)
class EcalShape:
    """Expected electron shower shape (from the ``ecal_calibration`` condition)."""

    profile_mean: np.ndarray      # (3, 3) main fractions [dx + 1, dy + 1]
    profile_sigma: np.ndarray     # (3, 3)
    preshower_fraction_mean: float
    preshower_fraction_sigma: float
    reference_energy_GeV: float
    preshower_depth_X0: float


@dataclass(frozen=True)
class OuterEnergy:
    """Inputs of ``e_ecal_shower_GeV``: outside/inside-3x3 ratio per hit cell (n_x n_y),
    ``kappa`` (GeV; from ``ecal_calibration``) and the amplitude noise of every cell in GeV
    (2 n_x n_y, pedestals and templates)."""

    ratio: np.ndarray
    kappa_GeV: float
    amplitude_noise_GeV: np.ndarray


@nb.njit(cache=True, nogil=True)
def _in_time(t, flag, window):
    return (flag & _NO_SIGNAL) != 0 or abs(t) <= window


@nb.njit(cache=True, nogil=True)
def _log_centre(towers, total, w0, cell_x, cell_y, n_y):
    sum_w = 0.0
    sum_x = 0.0
    sum_y = 0.0
    for k in range(towers.size):
        if towers[k] > 0.0 and total > 0.0:
            w = max(0.0, w0 + np.log(towers[k] / total))
            sum_w += w
            sum_x += w * cell_x[k // n_y]
            sum_y += w * cell_y[k % n_y]
    if sum_w <= 0.0:
        return np.nan, np.nan
    return sum_x / sum_w, sum_y / sum_w


@nb.njit(cache=True, nogil=True)
def _lateral_chi2(main, noise_main, ix0, iy0, n_x, n_y, mean, var):
    s = 0.0
    for dx in range(-1, 2):
        for dy in range(-1, 2):
            ix, iy = ix0 + dx, iy0 + dy
            if 0 <= ix < n_x and 0 <= iy < n_y:
                s += main[ix * n_y + iy]
    if s <= 0.0:
        return np.nan, 0
    chi2 = 0.0
    ndf = 0
    for dx in range(-1, 2):
        for dy in range(-1, 2):
            ix, iy = ix0 + dx, iy0 + dy
            if 0 <= ix < n_x and 0 <= iy < n_y:
                k = ix * n_y + iy
                f = main[k] / s
                sigma_noise = noise_main[k] / s
                chi2 += (f - mean[dx + 1, dy + 1]) ** 2 / (var[dx + 1, dy + 1] + sigma_noise**2)
                ndf += 1
    return chi2, ndf


@nb.njit(cache=True, nogil=True)
def _shower_energy(e_3x3, e_out, rho, kappa, noise_out_var):
    """Noise-weighted shower energy (module docstring); the plain sum without calibration."""
    if not (np.isfinite(rho) and np.isfinite(kappa)) or e_3x3 <= 0.0:
        return e_3x3 + e_out
    signal_var = kappa * e_3x3
    w = signal_var / (signal_var + noise_out_var) if signal_var + noise_out_var > 0.0 else 1.0
    return e_3x3 + w * e_out + (1.0 - w) * rho * e_3x3


@nb.njit(cache=True, nogil=True)
def _ecal_kernel(offsets, channel, e_GeV, t_ns, flags, n_x, n_y, cell_x, cell_y, window, w0,
                 mean, var, noise_GeV, outer_ratio, outer_kappa, tower_noise_var, out_f, out_i):
    """out_f columns: total, intime, pre, 3x3, x, y, lateral chi2, shower energy; out_i: max
    ix, max iy, lateral ndf, saturated, pile-up."""
    n_cells = n_x * n_y
    pre = np.zeros(n_cells)
    main = np.zeros(n_cells)
    noise_main = noise_GeV[n_cells:2 * n_cells]
    all_noise_var = tower_noise_var.sum()
    for e in range(offsets.size - 1):
        pre[:] = 0.0
        main[:] = 0.0
        total = 0.0
        saturated = 0
        pileup = 0
        for h in range(offsets[e], offsets[e + 1]):
            total += e_GeV[h]
            saturated |= (flags[h] & _SATURATED) != 0
            pileup |= (flags[h] & _PILEUP) != 0
            if _in_time(t_ns[h], flags[h], window):
                c = channel[h]
                if c < n_cells:
                    pre[c] += e_GeV[h]
                else:
                    main[c - n_cells] += e_GeV[h]
        towers = pre + main
        k_max = np.argmax(towers)
        ix0, iy0 = k_max // n_y, k_max % n_y
        e_3x3 = 0.0
        noise_out_var = all_noise_var
        for ix in range(max(ix0 - 1, 0), min(ix0 + 2, n_x)):
            for iy in range(max(iy0 - 1, 0), min(iy0 + 2, n_y)):
                e_3x3 += towers[ix * n_y + iy]
                noise_out_var -= tower_noise_var[ix * n_y + iy]
        intime = towers.sum()
        x, y = _log_centre(towers, intime, w0, cell_x, cell_y, n_y)
        chi2, ndf = _lateral_chi2(main, noise_main, ix0, iy0, n_x, n_y, mean, var)
        out_f[e, 0] = total
        out_f[e, 1] = intime
        out_f[e, 2] = pre.sum()
        out_f[e, 3] = e_3x3
        out_f[e, 4] = x
        out_f[e, 5] = y
        out_f[e, 6] = chi2
        out_f[e, 7] = _shower_energy(e_3x3, intime - e_3x3, outer_ratio[k_max], outer_kappa,
                                     max(noise_out_var, 0.0))
        out_i[e, 0] = ix0
        out_i[e, 1] = iy0
        out_i[e, 2] = ndf
        out_i[e, 3] = saturated
        out_i[e, 4] = pileup


def _longitudinal_chi2(e_pre, e_intime, shape: EcalShape, model: ShowerModel) -> np.ndarray:
    reference = model.preshower_fraction(shape.reference_energy_GeV, shape.preshower_depth_X0)
    energy = np.maximum(e_intime, 1e-3)
    scale = model.preshower_fraction(energy, shape.preshower_depth_X0) / reference
    expected = shape.preshower_fraction_mean * scale
    sigma = shape.preshower_fraction_sigma * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = e_pre / e_intime
        return np.where(e_intime > 0, ((fraction - expected) / sigma) ** 2, np.nan)


def ecal_summary(offsets: np.ndarray, channel_index: np.ndarray, e_GeV: np.ndarray,
                 t_ns: np.ndarray, flags: np.ndarray, n_x: int, n_y: int, cell_x_mm: np.ndarray,
                 cell_y_mm: np.ndarray, noise_GeV: np.ndarray, shape: EcalShape,
                 model: ShowerModel, intime_window_ns: float,
                 log_weight_w0: float, outer: OuterEnergy | None = None) -> dict[str, np.ndarray]:
    """Per-event ECAL columns from calibrated cells (``t_ns`` already minus the cell t0).

    ``noise_GeV`` (2 n_x n_y): per-sample noise of the cells in GeV (lateral chi2);
    ``outer``: the outer-energy calibration of ``e_ecal_shower_GeV`` (None: in-time sum).
    """
    n_events = offsets.size - 1
    n_cells = n_x * n_y
    if outer is None:
        outer = OuterEnergy(np.full(n_cells, np.nan), float("nan"), np.zeros(2 * n_cells))
    tower_var = np.asarray(outer.amplitude_noise_GeV, np.float64).reshape(2, n_cells) ** 2
    out_f = np.empty((n_events, 8))
    out_i = np.empty((n_events, 5), dtype=np.int64)
    # native dtypes (float32 energies, uint8 flags): no converted copies of the cells
    _ecal_kernel(offsets, channel_index, e_GeV, t_ns, flags, n_x, n_y,
                 np.asarray(cell_x_mm, np.float64), np.asarray(cell_y_mm, np.float64),
                 intime_window_ns, log_weight_w0, shape.profile_mean, shape.profile_sigma**2,
                 np.asarray(noise_GeV, np.float64),
                 np.ascontiguousarray(outer.ratio, np.float64).reshape(-1), float(outer.kappa_GeV),
                 tower_var.sum(axis=0), out_f, out_i)
    chi2_long = _longitudinal_chi2(out_f[:, 2], out_f[:, 1], shape, model)
    shape_chi2 = (out_f[:, 6] + chi2_long) / (out_i[:, 2] + 1)
    return {
        "e_ecal_GeV": out_f[:, 0].astype(np.float32),
        "e_ecal_intime_GeV": out_f[:, 1].astype(np.float32),
        "e_ecal_pre_GeV": out_f[:, 2].astype(np.float32),
        "e_ecal_3x3_GeV": out_f[:, 3].astype(np.float32),
        "e_ecal_shower_GeV": out_f[:, 7].astype(np.float32),
        "ecal_max_ix": out_i[:, 0].astype(np.uint8),
        "ecal_max_iy": out_i[:, 1].astype(np.uint8),
        "x_ecal_shower_mm": out_f[:, 4].astype(np.float32),
        "y_ecal_shower_mm": out_f[:, 5].astype(np.float32),
        "ecal_lateral_chi2": out_f[:, 6].astype(np.float32),
        "ecal_longitudinal_chi2": chi2_long.astype(np.float32),
        "ecal_shape_chi2": shape_chi2.astype(np.float32),
        "ecal_saturated": out_i[:, 3].astype(bool),
        "ecal_pileup": out_i[:, 4].astype(bool),
    }
