"""HCAL event summaries: energy per module, total, and the veto sum of the first modules.

One numba kernel over the calibrated cells (flat arrays with event offsets;
cell index ``(module * n_x + ix) * n_y + iy``) sums per event and module all
cells (``e_hcal_module_GeV``, shape (n_events, n_modules)) and the in-time cells
(``|t_ns| <= intime_window_ns`` after the cell t0, or no pulse). Columns:
``e_hcal_total_GeV`` (all modules), ``e_hcal_GeV`` (the first
``n_modules_in_sum`` = 2 modules, as E_HCAL in the seed paper),
``e_hcal_intime_GeV`` (the same, in-time cells only), ``hcal_saturated``,
``hcal_pileup``. Out-of-time energy is kept in the main sums on purpose: a
pile-up hadron still vetoes (conservative for the missing-energy search).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["hcal_summary"]

_NO_SIGNAL, _SATURATED, _PILEUP = 8, 1, 2


@nb.njit(cache=True, nogil=True)
def _hcal_kernel(offsets, channel, e_GeV, t_ns, flags, cells_per_module, window, out_all,
                 out_intime, out_flags):
    for e in range(offsets.size - 1):
        for h in range(offsets[e], offsets[e + 1]):
            module = channel[h] // cells_per_module
            out_all[e, module] += e_GeV[h]
            if (flags[h] & _NO_SIGNAL) != 0 or abs(t_ns[h]) <= window:
                out_intime[e, module] += e_GeV[h]
            out_flags[e, 0] |= (flags[h] & _SATURATED) != 0
            out_flags[e, 1] |= (flags[h] & _PILEUP) != 0


def hcal_summary(offsets: np.ndarray, channel_index: np.ndarray, e_GeV: np.ndarray,
                 t_ns: np.ndarray, flags: np.ndarray, n_modules: int, cells_per_module: int,
                 intime_window_ns: float, n_modules_in_sum: int = 2) -> dict[str, np.ndarray]:
    """Per-event HCAL columns from calibrated cells (``t_ns`` already minus the cell t0)."""
    n_events = offsets.size - 1
    out_all = np.zeros((n_events, n_modules))
    out_intime = np.zeros((n_events, n_modules))
    out_flags = np.zeros((n_events, 2), dtype=np.bool_)
    # native dtypes (float32 energies, uint8 flags): no converted copies of the cells
    _hcal_kernel(offsets, channel_index, e_GeV, t_ns, flags, cells_per_module,
                 intime_window_ns, out_all, out_intime, out_flags)
    return {
        "e_hcal_module_GeV": out_all.astype(np.float32),
        "e_hcal_total_GeV": out_all.sum(axis=1).astype(np.float32),
        "e_hcal_GeV": out_all[:, :n_modules_in_sum].sum(axis=1).astype(np.float32),
        "e_hcal_intime_GeV": out_intime[:, :n_modules_in_sum].sum(axis=1).astype(np.float32),
        "hcal_saturated": out_flags[:, 0],
        "hcal_pileup": out_flags[:, 1],
    }
