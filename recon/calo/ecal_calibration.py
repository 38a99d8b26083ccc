"""ECAL cell calibration from the cell-scan run: GeV per ADC amplitude per cell and section.

In the cell-scan calibration run a beam of known energy ``E_beam`` (100 GeV
electrons) is steered onto the centre of each cell in turn. The derivation:

1. assigns every event to the cell with the largest main-section amplitude
   (the centred cell holds about 80 % of the shower, its neighbours a few %,
   so a 10 % gain spread cannot confuse them) and keeps events whose target
   cell pulse is in time, unsaturated and without pile-up;
2. per cell ``c``: ``P_c``, the peak of the main-section amplitude of the cell
   in its own events (Gaussian fit around the mode, :func:`fit_peak`) and
   ``Q_c``, the mean preshower amplitude of the cell in its own events
   (within ``preshower_clip_sigma`` robust sigmas of the median: double showers
   out; the share fluctuates by ~60 % event to event with a long upper tail,
   and the mean is the more efficient estimator: per-cell closure on the
   simulated 28 800-event scan 2.3 % rms against 3.1 % with the median, the
   statistical limit of the truth's own-cell preshower energy being 2.0 %);
   after a first pass of step 3, ``P_c`` is replaced by the peak of the cell's
   tower ``A_c + (g_pre_c / g_main_c) B_c`` in main-section counts, which does
   not fluctuate with the event-by-event split between the two sections;
3. the containment correction: the energy of a centred shower is shared as
   ``E_beam * C_c = alpha * sum_j A_j / P_j + beta * sum_j B_j / Q_j`` where
   ``A``, ``B`` are the main and preshower amplitudes of all cells and ``C_c`` the
   fraction of a shower centred on ``c`` contained in the matrix (lateral
   leakage, from the documented radial profile of :class:`ShowerModel`).
   ``alpha`` and ``beta`` are fitted to all events by linear least squares
   with ``outlier_sigma`` clipping. ``alpha / E_beam`` is then the (peak)
   fraction of a centred shower in its own cell (tower, both sections) and
   ``beta / E_beam`` the (mean) fraction in the preshower of that cell: the
   containment fractions,
   obtained from the data themselves (the model only enters through the small
   leakage ``1 - C_c``; the model's own central-cell fraction is reported as a
   cross-check);
   third pass (``displacement_correction``): showers aimed at a cell centre sit a
   few mm off it (an inclined beam); the displacement of each targeted cell's
   showers follows from the ratio of the median tower energies of its two
   neighbours along x and y, inverted with the radial model (cells on the matrix
   edge along an axis: a plane fitted over the others); ``P_c`` is divided by
   the model's own-cell fraction of the displaced shower over that of a centred
   one, ``C_c`` becomes the containment of the displaced shower, and ``alpha``,
   ``beta`` are refitted;
4. gains: ``g_main_c = alpha / P_c``, ``g_pre_c = beta / Q_c`` GeV per ADC count,
   all divided by the *peak* of ``E_sum / (E_beam C_c)`` over the events aimed at
   interior cells (``peak_scale``, :func:`_peak_scale`: least squares matches the
   mean, which a low-energy tail pulls down);
   time offsets ``t0_ns``: the median pulse time of each cell in its own events;
5. the expected electron shower shape for the shape chi2 of the reconstruction:
   mean and standard deviation of the main-section energy fractions of the 3x3
   cells around the hit cell (cells with a full 3x3 neighbourhood) and of the
   preshower fraction of the total, at ``E_beam``.

With a muon cell scan (``preshower_mips``, :func:`fit_preshower_mips`: muons
aimed at every cell centre in turn), the preshower cells are intercalibrated
with MIPs instead, as real calorimeters do: the electron estimate ``Q_c``
fluctuates by 2.3 % per cell with 800 showers (the preshower share of a
shower fluctuates by ~57 % event to event), the MIP response of 2 400 muons
by 0.25 % (10 000 per cell). ``Q_c`` is replaced by ``K M_c``, ``M_c`` the MIP
response of the cell (ADC: truncated mean of its preshower amplitudes, fitted at
the cell's pulse time plus the event's time offset from the HCAL MIPs, corrected
for the pedestal error and carried to the free-time scale, in the isolated,
pile-up-free muons aimed at it; :func:`fit_preshower_mips`,
:func:`event_time_offsets`, :func:`event_time_amplitudes`,
:func:`fixed_time_ratio`) and ``K`` the mean over the cells of
``Q_c / M_c`` (the electron response per MIP; the absolute preshower scale
keeps coming from the electron scan: ``beta``, refitted below, absorbs ``K``).
Cells without a MIP response keep their ``Q_c``. Everything downstream
(``beta``, tower peaks, gains) is unchanged.

6. the energy outside the 3x3 towers around the hit cell (the input of the
   reconstruction's noise-weighted shower energy, ``ecal_summary``): per
   targeted cell the mean ratio ``rho_c`` of the tower energy outside to that
   inside the 3x3 (a mean over the cell's events within 5 robust sigmas, MAD:
   double showers are excluded), and, given the amplitude noise of the cells
   (``amplitude_noise_adc``, from the pedestals and templates), the physical
   fluctuation of the outside energy, ``var(E_out - rho E_3x3) - sigma_noise^2
   = kappa E_3x3`` (``kappa`` in GeV; a fluctuation growing like the energy
   for a fixed lateral-shape spread).

Condition ``ecal_calibration`` (JSON) ``data``: ``axes [section, ix, iy]``,
``gain_GeV_per_adc``, ``t0_ns``, ``shape`` {``profile_mean``, ``profile_sigma``
(3x3, [dx, dy]), ``preshower_fraction_mean``, ``preshower_fraction_sigma``,
``reference_energy_GeV``}, ``containment`` {``alpha_GeV``, ``beta_GeV``,
``central_fraction``, ``preshower_central_fraction``, ``model_central_fraction``,
``displacement_{x,y}_mm_{mean,rms}`` (over the cells)}, and (optional; absent from
older files, which then give the plain in-time sum as shower energy) ``outer_energy``
{``axes [ix, iy]``, ``ratio``, ``kappa_GeV``}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np

from recon.calo.condition_files import array_from_json
from recon.calo.peak_fit import PeakFit, fit_peak
from recon.calo.shower_model import ShowerModel
from recon.calo.waveform import WaveformFlag
from recon.conditions import ConditionRecord, ConditionsDB
from recon.conditions.geometry import CalorimeterGeometry

__all__ = [
    "EcalCalibration",
    "EcalCalibrationConfig",
    "EcalCalibrationFit",
    "PreshowerMipFit",
    "derive_ecal_calibration",
    "event_time_amplitudes",
    "event_time_offsets",
    "fit_preshower_mips",
    "fixed_time_ratio",
    "load_ecal_calibration",
    "plot_ecal_calibration",
    "preshower_pulse_times",
]

KIND = "ecal_calibration"
_BAD = WaveformFlag.SATURATED | WaveformFlag.PILEUP | WaveformFlag.NO_SIGNAL


@dataclass(frozen=True)
class EcalCalibrationConfig:
    """Cell-scan derivation settings (GeV, ns)."""

    beam_energy_GeV: float = 100.0
    min_events_per_cell: int = 50
    time_window_ns: float = 50.0
    outlier_sigma: float = 3.0
    n_clip_iterations: int = 3
    n_sum_iterations: int = 0
    cell_share: float = 0.8
    peak_scale: bool = True
    scale_min_containment: float = 0.96
    displacement_correction: bool = True
    preshower_clip_sigma: float = 5.0
    min_muons_per_cell: int = 200             # MIP response of a preshower cell (muon scan)
    mip_truncation_over_median: float = 3.0   # its truncated mean: below this times the median
    min_ratio_pulses: int = 20                # fixed- over free-time amplitude of a cell
    mip_max_main_over_median: float = 10.0    # muon event: main-section sum below this x MIP
    mip_main_min_sigma: float = 3.0           # its main-section MIP: above this x cell noise
    mip_isolation_sigma: float = 3.5          # other main cells, neighbouring preshower: below
    event_time_min_adc_showers: float = 100.0  # event time of a shower: main-section pulses
    event_time_min_adc_muons: float = 20.0    # event time of a muon: HCAL pulses (MIP ~60)
    event_time_max_offset_ns: float = 10.0    # |event time| beyond (5 sigma of the jitter): none
    event_time_min_pulses: int = 50           # reference time of a channel: its median pulse


@dataclass(frozen=True)
class EcalCalibration:
    """The ``ecal_calibration`` condition (arrays shaped [section, ix, iy])."""

    gain_GeV_per_adc: np.ndarray
    t0_ns: np.ndarray
    profile_mean: np.ndarray
    profile_sigma: np.ndarray
    preshower_fraction_mean: float
    preshower_fraction_sigma: float
    reference_energy_GeV: float
    containment: dict[str, float] = field(default_factory=dict)
    record: ConditionRecord | None = None
    outer_ratio: np.ndarray | None = None     # (n_x, n_y) E_out / E_3x3 of the showers per cell
    outer_kappa_GeV: float = float("nan")     # var of E_out beyond noise = kappa * E_3x3

    def to_data(self) -> dict[str, Any]:
        data = {
            "axes": ["section", "ix", "iy"],
            "gain_GeV_per_adc": np.round(self.gain_GeV_per_adc, 9),
            "t0_ns": np.round(self.t0_ns, 4),
            "shape": {
                "axes": ["dx", "dy"],
                "profile_mean": np.round(self.profile_mean, 6),
                "profile_sigma": np.round(self.profile_sigma, 6),
                "preshower_fraction_mean": self.preshower_fraction_mean,
                "preshower_fraction_sigma": self.preshower_fraction_sigma,
                "reference_energy_GeV": self.reference_energy_GeV,
            },
            "containment": self.containment,
        }
        if self.outer_ratio is not None:
            data["outer_energy"] = {"axes": ["ix", "iy"],
                                    "ratio": np.round(self.outer_ratio, 6),
                                    "kappa_GeV": (float(f"{self.outer_kappa_GeV:.6g}")
                                                  if np.isfinite(self.outer_kappa_GeV) else None)}
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any],
                  record: ConditionRecord | None = None) -> EcalCalibration:
        shape = data["shape"]
        outer = data.get("outer_energy")
        return cls(
            gain_GeV_per_adc=array_from_json(data["gain_GeV_per_adc"]),
            t0_ns=array_from_json(data["t0_ns"]),
            profile_mean=array_from_json(shape["profile_mean"]),
            profile_sigma=array_from_json(shape["profile_sigma"]),
            preshower_fraction_mean=float(shape["preshower_fraction_mean"]),
            preshower_fraction_sigma=float(shape["preshower_fraction_sigma"]),
            reference_energy_GeV=float(shape["reference_energy_GeV"]),
            containment={k: float(v) for k, v in data.get("containment", {}).items()},
            record=record,
            outer_ratio=None if outer is None else array_from_json(outer["ratio"]),
            outer_kappa_GeV=(float("nan") if outer is None or outer["kappa_GeV"] is None
                             else float(outer["kappa_GeV"])),
        )


@dataclass
class PreshowerMipFit:
    """MIP responses of the preshower cells in a muon cell scan (ADC), one per cell (flat index):
    ``peaks[c].mu`` the truncated mean, ``window`` (lowest amplitude, truncation)."""

    peaks: list[PeakFit]
    amplitudes: list[np.ndarray]   # per cell: the preshower amplitudes of its selected muons
    offset_adc: np.ndarray         # per cell: the amplitude offset subtracted (pedestal error)

    @property
    def mpv_adc(self) -> np.ndarray:
        """MIP response (truncated mean) per cell, ADC counts; NaN without one."""
        return np.array([p.mu if p.ok else np.nan for p in self.peaks])

    @property
    def relative_error(self) -> np.ndarray:
        """Statistical error of the response over the response, per cell."""
        return np.array([p.mu_error / p.mu if p.ok else np.nan for p in self.peaks])


@dataclass
class EcalCalibrationFit:
    """A derivation's result with what its plot and summary need."""

    calibration: EcalCalibration
    peaks: list[PeakFit]
    cell_amplitudes: list[np.ndarray]
    energy_sum_GeV: np.ndarray
    summary: dict[str, Any]
    preshower_mips: PreshowerMipFit | None = None


def fit_preshower_mips(amplitude_adc: np.ndarray, t_ns: np.ndarray, flags: np.ndarray,
                       config: EcalCalibrationConfig = EcalCalibrationConfig(),
                       time_ratio: np.ndarray | None = None) -> PreshowerMipFit:
    """MIP response of every preshower cell in a muon cell scan (pure core).

    Inputs dense per event as in :func:`derive_ecal_calibration`, shaped
    (n_events, 2, n_x, n_y); the preshower amplitudes are best those of
    :func:`event_time_amplitudes` at each cell's pulse time plus the event's time
    offset (:func:`recon.calo.derivations.fixed_time_preshower`; NaN where the event
    has no time: left out). Every muon is assigned to the cell with the largest
    main-section amplitude (its main-section MIP, independent of its preshower
    deposit) and kept if that pulse is neither saturated nor piled up and, if above
    the signal threshold, in time (``time_window_ns``), and the cell's preshower
    pulse is neither saturated nor piled up; if the main-section sum is below
    ``mip_max_main_over_median`` times the median main MIP (a beam electron
    showering in the readout window: 5.6 % of the simulated scan); and if it is
    isolated: its main MIP above ``mip_main_min_sigma`` times the cell's amplitude
    noise, every other main-section cell and every preshower neighbour below
    ``mip_isolation_sigma`` times theirs (noise: 1.4826 MAD of the amplitudes in the
    muons two or more cells away). The preshower amplitudes are corrected for the
    error of the pedestals (``offset_adc``: per cell, the median amplitude in the
    muons aimed two or more cells away; up to 0.04 counts, 0.6 % of a MIP, on the
    simulated scan). The MIP response of a cell (``PeakFit.mu``, ADC) is the
    *truncated mean* of the preshower amplitudes of its muons (all of them, however
    small) below ``mip_truncation_over_median`` times their median, ``mu_error`` its
    standard error, ``sigma`` the standard deviation of the kept amplitudes; below
    ``min_muons_per_cell`` muons the cell has none (NaN). With ``time_ratio``
    (n_cells,) (:func:`fixed_time_ratio`), the responses are divided by it: the
    scale of the free-time amplitudes of the showers (cells where it is NaN: not).

    Why a truncated mean and not the Landau peak: the preshower noise (3-9 MeV
    per cell) is comparable with the width of the MIP peak (Moyal scale 2.2 MeV
    at a 28 MeV peak); a Moyal fit absorbs the noise into its location (9 % cell
    to cell on the simulated scan). The noise has zero mean, so a mean is free of
    it; the truncation, at the same multiple of the median in every cell
    (scale-invariant), removes the Landau tail, showers and hard delta rays, which
    would dominate a plain mean's variance. A likelihood fit of a Moyal convolved
    with each cell's measured noise (its width common to all cells) was only 7 %
    better in rms on the simulated scan (0.359 against 0.384 %, 4 400 muons per
    cell) for a dependence on the deposit's shape: not used. Statistical error per
    cell: the deposit's own spread (16 % per muon) and the noise (3-9 MeV), about
    equal: 0.36 % together with 4 400 muons, 0.25 % with 8 850 (the 360 000-muon
    scan).
    """
    n_events = amplitude_adc.shape[0]
    pre, main = (amplitude_adc[:, s].reshape(n_events, -1).astype(np.float64) for s in (0, 1))
    n_cells = main.shape[1]
    target = np.argmax(main, axis=1)
    rows = np.arange(n_events)
    main_flags = flags[:, 1].reshape(n_events, n_cells)[rows, target]
    pre_flags = flags[:, 0].reshape(n_events, n_cells)[rows, target]
    t_main = t_ns[:, 1].reshape(n_events, n_cells)[rows, target]
    clean = WaveformFlag.SATURATED | WaveformFlag.PILEUP
    # the main-section MIP (~12 counts) is often below the signal threshold of a noisy
    # channel (then untimed): still the largest amplitude, and the muon is kept
    in_time = ((main_flags & WaveformFlag.NO_SIGNAL) != 0) | (np.abs(t_main)
                                                               < config.time_window_ns)
    good = ((main_flags & clean) == 0) & in_time & ((pre_flags & clean) == 0)
    # pile-up: a muon leaves one MIP in the main section (~12 counts); a beam electron showering
    # in the readout window (5.6 % of the simulated scan, on the beam axis) leaves thousands of
    # counts, took the target cell (65 % of the muons assigned to the axis cell were such
    # events) and adds part of its preshower deposit to the fits of the cells around it
    if good.any():
        mip_main = float(np.median(main[rows, target][good]))
        good &= main.sum(axis=1) < config.mip_max_main_over_median * max(mip_main, 0.0)
    # pedestal offset of each preshower amplitude: its median in the muons that pass two or
    # more cells away (the pedestal condition is good to a few 0.01 counts: 0.6 % of a MIP),
    # and the noise of every amplitude there (1.4826 MAD: only noise two cells away)
    n_y = amplitude_adc.shape[-1]
    ix, iy = np.divmod(np.arange(n_cells), n_y)
    tx, ty = np.divmod(target, n_y)
    offset = np.zeros(n_cells)
    noise = np.full((2, n_cells), np.nan)
    for c in range(n_cells):  # 36 cells, once per derivation
        far = good & ((np.abs(tx - ix[c]) > 1) | (np.abs(ty - iy[c]) > 1))
        for s, values in enumerate((pre[far, c], main[far, c])):
            values = values[np.isfinite(values)]
            if values.size:
                centre = np.median(values)
                noise[s, c] = 1.4826 * np.median(np.abs(values - centre))
                if s == 0:
                    offset[c] = centre
    # isolation: the main-section MIP must stand out of the noise of its cell and be the only
    # one, and no neighbouring preshower cell may hold one. A muon assigned to a cell it did
    # not cross (a noise fluctuation above a low main MIP, a muon leaving no main MIP, a
    # track crossing from one cell to its neighbour between the two sections) has no deposit
    # in that cell's preshower: 0.1-1.2 % of the muons of a cell on the simulated scan, more
    # where the main channel is noisier (0.68 correlation), i.e. a response 0.27 % rms too low
    # cell to cell; 0.03 % after these cuts, which take 8 % of the muons. They use neither the
    # cell's own preshower amplitude nor anything correlated with it.
    noise = np.fmax(noise, 1e-6)   # noise-free synthetic data: no isolation veto from noise
    neighbours = (np.abs(ix[:, None] - ix[None, :]) <= 1) & (np.abs(iy[:, None] - iy[None, :])
                                                               <= 1)
    np.fill_diagonal(neighbours, False)
    with np.errstate(invalid="ignore"):
        z = main / noise[1]                     # (n_events, n_cells), reused in place
        good &= z[rows, target] > config.mip_main_min_sigma
        z[rows, target] = -np.inf
        good &= z.max(axis=1) < config.mip_isolation_sigma
        np.subtract(pre, offset, out=z)
        z /= noise[0]
        z[~neighbours[target]] = -np.inf
        good &= z.max(axis=1) < config.mip_isolation_sigma
    peaks, amplitudes = [], []
    for c in range(n_cells):  # 36 cells, once per derivation
        own = pre[good & (target == c), c] - offset[c]
        if time_ratio is not None and np.isfinite(time_ratio[c]):
            own = own / time_ratio[c]
        own = own[np.isfinite(own)]
        upper = config.mip_truncation_over_median * np.median(own) if own.size else np.nan
        kept = own[own < upper]
        amplitudes.append(own)
        if kept.size < config.min_muons_per_cell:
            peaks.append(PeakFit(np.nan, np.nan, np.nan, int(kept.size), (np.nan, np.nan)))
            continue
        mean, spread = float(kept.mean()), float(kept.std())
        peaks.append(PeakFit(mean, spread, spread / np.sqrt(kept.size), int(kept.size),
                             (float(own.min()), float(upper))))
    return PreshowerMipFit(peaks, amplitudes, offset)


def preshower_pulse_times(amplitude_adc: np.ndarray, t_ns: np.ndarray, flags: np.ndarray,
                          config: EcalCalibrationConfig = EcalCalibrationConfig(),
                          event_offset_ns: np.ndarray | None = None) -> np.ndarray:
    """Median pulse time (ns) of every preshower cell in the cell-scan showers aimed at it.

    Inputs as :func:`derive_ecal_calibration` (the same event selection); NaN for a
    cell without a timed preshower pulse. Large pulses, timed to ~0.1 ns: the time
    at which :func:`event_time_amplitudes` fits the MIPs of the cell. With
    ``event_offset_ns`` (n_events,) (:func:`event_time_offsets` of the main section),
    the median of the pulse time minus the event's offset, over the events that have
    one: the cell's delay from the event time (:func:`event_time_amplitudes`).
    """
    n_events = amplitude_adc.shape[0]
    main = amplitude_adc[:, 1].reshape(n_events, -1)
    n_cells = main.shape[1]
    target = np.argmax(main, axis=1)
    rows = np.arange(n_events)
    t_main = t_ns[:, 1].reshape(n_events, n_cells)[rows, target]
    good = (((flags[:, 1].reshape(n_events, n_cells)[rows, target] & _BAD) == 0)
            & (np.abs(t_main) < config.time_window_ns))
    t_pre = t_ns[:, 0].reshape(n_events, n_cells)[rows, target]
    if event_offset_ns is not None:
        t_pre = t_pre - event_offset_ns
    times = np.full(n_cells, np.nan)
    for c in range(n_cells):  # 36 cells, once per derivation
        own = t_pre[good & (target == c)]
        own = own[np.isfinite(own)]
        if own.size:
            times[c] = np.median(own)
    return times


def event_time_offsets(t_ns: np.ndarray, flags: np.ndarray, amplitude_adc: np.ndarray,
                       min_amplitude_adc: float,
                       config: EcalCalibrationConfig = EcalCalibrationConfig()) -> np.ndarray:
    """Time offset (ns) of every event from the pulses of reference channels; NaN without one.

    ``t_ns``, ``flags``, ``amplitude_adc`` (n_events, ...): the waveform reconstruction of
    the reference channels (muons: the HCAL cells, a MIP of ~60 counts in each module;
    showers: the ECAL main section). The trigger time jitters from event to event (2 ns
    in the simulation) and moves every pulse of the event alike. A channel's reference
    is the median time of its clean pulses above ``min_amplitude_adc`` (ADC) (at least
    ``event_time_min_pulses`` of them: its delay); the event's offset is the median over
    its clean pulses of their time minus the channel's reference (robust against a
    piled-up or mis-timed pulse). Offsets beyond ``event_time_max_offset_ns`` (an
    out-of-time pulse took the event, 5 sigma of the jitter) are NaN. Measured on the
    simulated runs against the true jitter: muons (four HCAL modules) 0.44 ns, 100 GeV
    showers (main-section cells above 100 counts, ~2 per event) 0.48 ns; the per-channel
    time jitter of the simulation is 0.5 ns.
    """
    n_events = t_ns.shape[0]
    t = t_ns.reshape(n_events, -1).astype(np.float64)
    bad = WaveformFlag.SATURATED | WaveformFlag.PILEUP | WaveformFlag.NO_SIGNAL | (
        WaveformFlag.AT_WINDOW_EDGE)
    good = (np.isfinite(t) & ((flags.reshape(t.shape) & bad) == 0)
            & (amplitude_adc.reshape(t.shape) > min_amplitude_adc))
    n_good = good.sum(axis=0)
    reference = np.full(t.shape[1], np.nan)
    for j in np.flatnonzero(n_good >= config.event_time_min_pulses):  # the channels, once
        reference[j] = np.median(t[good[:, j], j])
    residual = np.where(good & np.isfinite(reference), t - reference, np.nan)
    has = np.isfinite(residual).any(axis=1)
    offset = np.full(n_events, np.nan)
    if has.any():
        offset[has] = np.nanmedian(residual[has], axis=1)
    offset[np.abs(offset) > config.event_time_max_offset_ns] = np.nan
    return offset


@nb.njit(cache=True, nogil=True)
def _event_time_amplitudes(samples, channel, shift_ns, pedestal, values, t_first_ns, step_ns,
                           tau_ns, window, t0_ns, out):
    """``out[i] = sum_k (s_ik - p_k) T_ik / sum_k T_ik^2``, ``T_ik`` the channel's template at
    ``tau_k - t0_c - shift_i`` (linear interpolation on its grid, zero outside)."""
    n_grid = values.shape[1]
    for i in range(samples.shape[0]):
        c = channel[i]
        if not np.isfinite(shift_ns[i]):
            out[i] = np.nan
            continue
        num = 0.0
        den = 0.0
        for k in range(samples.shape[1]):
            if not window[k]:
                continue
            x = (tau_ns[k] - t0_ns[c] - shift_ns[i] - t_first_ns) / step_ns
            j = int(np.floor(x))
            if j < 0 or j + 1 >= n_grid:
                continue
            w = x - j
            value = (1.0 - w) * values[c, j] + w * values[c, j + 1]
            num += (samples[i, k] - pedestal[c, k % 2]) * value
            den += value * value
        out[i] = num / den if den > 0.0 else np.nan


def event_time_amplitudes(samples: np.ndarray, channel: np.ndarray, shift_ns: np.ndarray,
                          pedestal_adc: np.ndarray, template_values: np.ndarray,
                          t_first_ns: float, step_ns: float, tau_ns: np.ndarray,
                          window: np.ndarray, t0_ns: np.ndarray) -> np.ndarray:
    """Least-squares amplitudes (ADC) of pulses of known shape at the channel's time plus the
    event's time offset.

    Linear least squares, ``A = sum_k (s_k - p_k) T_k / sum_k T_k^2`` over the fit window
    (unbiased at any amplitude; noise ``sigma / sqrt(sum T_k^2)``), the template of every pulse
    peaking at ``t0_ns[c] + shift_ns[i]``: ``samples`` (n, n_samples) raw, ``channel`` (n,),
    ``shift_ns`` (n,) the event time offset of each pulse (:func:`event_time_offsets`;
    NaN gives NaN), ``pedestal_adc`` (n_channels, 2) even/odd, ``template_values``
    (n_channels, n_grid) each channel's template on the grid ``t_first_ns + step_ns * j``
    (ns from the peak), ``tau_ns`` (n_samples,) the sample times from the nominal
    in-time peak, ``window`` (n_samples,) bool the fit window, ``t0_ns`` (n_channels,)
    the channel's pulse time. A fit at the channel's mean time loses to the event's
    time jitter (2 ns) 0.3-0.9 % of the amplitude, depending on where the pulse sits
    between the 12.5 ns samples; at the event's own time the loss is that of the
    residual (0.5 ns per channel), ~0.05 %, alike in every cell. One numba loop over
    the pulses.
    """
    out = np.empty(samples.shape[0])
    _event_time_amplitudes(np.ascontiguousarray(samples, dtype=np.float64),
                           np.asarray(channel, dtype=np.int64),
                           np.asarray(shift_ns, dtype=np.float64),
                           np.asarray(pedestal_adc, dtype=np.float64),
                           np.ascontiguousarray(template_values, dtype=np.float64),
                           float(t_first_ns), float(step_ns),
                           np.asarray(tau_ns, dtype=np.float64), np.asarray(window, dtype=bool),
                           np.asarray(t0_ns, dtype=np.float64), out)
    return out


def fixed_time_ratio(free_adc: np.ndarray, fixed_adc: np.ndarray, flags: np.ndarray,
                     config: EcalCalibrationConfig = EcalCalibrationConfig()) -> np.ndarray:
    """Per preshower cell: mean ratio of its fixed-time to its free-time amplitude in the
    cell-scan showers aimed at it (large pulses: the ratio is free of noise).

    ``free_adc`` (n_events, 2, n_x, n_y) the waveform reconstruction's amplitudes,
    ``fixed_adc`` (n_events, n_cells) the preshower amplitudes of
    :func:`event_time_amplitudes` at the cells' pulse times plus the event time
    offsets (NaN: left out), ``flags`` as ``free_adc``. The MIP responses are
    divided by it (:func:`fit_preshower_mips`): it carries the fixed-time fit over
    to the free-time amplitudes the gains apply to. At the event's own time it is
    0.9993 with 0.04 % rms over the cells of the simulated scan (the residual
    0.5 ns per channel and the template's fit); at the cell's mean time it was
    0.3 % rms, the loss to the 2 ns event-time jitter depending on where the pulse
    sits between the 12.5 ns samples, and as a correction for the muons it left
    0.18 % rms of its own. Ratios further than 5 % from the cell's median (rare
    mis-fits) are left out; NaN with fewer than ``min_ratio_pulses`` clean pulses
    (neither saturated, piled up nor below threshold).
    """
    n_events = free_adc.shape[0]
    main = free_adc[:, 1].reshape(n_events, -1)
    n_cells = main.shape[1]
    target = np.argmax(main, axis=1)
    pre = free_adc[:, 0].reshape(n_events, n_cells)
    pre_flags = flags[:, 0].reshape(n_events, n_cells)
    out = np.full(n_cells, np.nan)
    for c in range(n_cells):  # 36 cells, once per derivation
        own = ((target == c) & ((pre_flags[:, c] & _BAD) == 0) & (pre[:, c] > 0)
               & np.isfinite(fixed_adc[:, c]))
        ratio = fixed_adc[own, c] / pre[own, c]
        if ratio.size:
            ratio = ratio[np.abs(ratio - np.median(ratio)) < 0.05]
        if ratio.size >= config.min_ratio_pulses:
            out[c] = ratio.mean()
    return out


def _mip_intercalibration(q_pre: np.ndarray, mips: PreshowerMipFit,
                          ) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-cell preshower response ``K M_c`` (ADC) from the MIP peaks ``M_c`` and the summary.

    ``K`` = mean over the cells with a MIP response of the electron response per MIP
    ``Q_c / M_c``; cells without one keep their electron response ``Q_c``.
    """
    mpv = mips.mpv_adc
    ok = np.isfinite(mpv) & (mpv > 0) & np.isfinite(q_pre)
    if not ok.any():
        raise ValueError("no preshower cell has a MIP response in the muon scan")
    per_mip = q_pre[ok] / mpv[ok]
    k = float(per_mip.mean())
    response = np.where(ok, k * np.where(ok, mpv, 1.0), q_pre)
    relative = mips.relative_error
    summary = {
        "cells_fitted": int(ok.sum()),
        "cells_without_fit": np.flatnonzero(~ok).tolist(),
        "muons_per_cell_min": int(min(p.n for p in mips.peaks)),
        "electron_adc_per_mip_adc": k,
        "electron_adc_per_mip_adc_relative_error": float(per_mip.std(ddof=1) / np.sqrt(ok.sum())
                                                         / k) if ok.sum() > 1 else float("nan"),
        "electron_over_mip_rms": float(per_mip.std() / k),
        "mip_relative_error_median": float(np.nanmedian(relative)),
        "mip_relative_error_max": float(np.nanmax(relative)),
        "mip_response_adc": np.round(mpv, 4).tolist(),
        "mip_spread_adc": [round(p.sigma, 4) if p.ok else None for p in mips.peaks],
        "mip_relative_error": np.round(relative, 6).tolist(),
        "mip_entries": [p.n for p in mips.peaks],
        "pedestal_offset_adc": np.round(mips.offset_adc, 4).tolist(),
    }
    return response, summary


def _cell_peaks(main, pre, t_main, t_pre, target, good, n_cells, config):
    peaks, values = [], []
    p_main = np.full(n_cells, np.nan)
    q_pre = np.full(n_cells, np.nan)
    t0 = np.full((2, n_cells), np.nan)
    for c in range(n_cells):  # 36 cells, once per derivation
        mine = good & (target == c)
        values.append(main[mine, c])
        peak = fit_peak(main[mine, c], min_entries=config.min_events_per_cell)
        peaks.append(peak)
        if peak.ok:
            p_main[c] = peak.mu
            own = pre[mine, c]
            q_pre[c] = own[_robust_mean_mask(own, config.preshower_clip_sigma)].mean()
            t0[1, c] = np.median(t_main[mine, c])
            t0[0, c] = np.nanmedian(t_pre[mine, c]) if np.isfinite(t_pre[mine, c]).any() else 0.0
    return p_main, q_pre, t0, peaks, values


def _scale_fit(x, y, target_GeV, config):
    """alpha, beta of ``alpha x + beta y = target`` with iterative outlier clipping."""
    keep = np.isfinite(x) & np.isfinite(y)
    coefficients = np.array([np.nan, np.nan])
    for _ in range(config.n_clip_iterations):
        design = np.column_stack([x[keep], y[keep]])
        coefficients = np.linalg.lstsq(design, target_GeV[keep], rcond=None)[0]
        residual = coefficients[0] * x + coefficients[1] * y - target_GeV
        keep &= np.abs(residual) < config.outlier_sigma * np.std(residual[keep])
    return float(coefficients[0]), float(coefficients[1]), keep


def _peak_scale(gain, main, pre, target_GeV, mask):
    """Rescale the gains so that the *peak* of ``E_sum / (E_beam C_c)`` is 1.

    The least-squares fit of ``alpha``, ``beta`` matches the *mean* of the
    energy sum to ``E_beam C_c``; the sum has a low tail (upstream
    bremsstrahlung, leakage fluctuations) that clipping removes only in part,
    so the mean-matched scale puts the bulk of the showers ~1 % high (measured
    on the simulated scan: least squares over peak 1.006). The containment
    model describes the typical (full-energy) shower, i.e. the peak
    (:func:`fit_peak`, iterated mean around the mode), used here on the events
    aimed at cells whose model containment is >= ``scale_min_containment``
    (interior cells: the model's leakage there is 2-4 % and its error a few
    0.1 %; at the matrix edges the leakage depends on the shower's impact point
    and inclination, up to 3 % off on the simulated scan). Returns the gains and
    the peak (the factor they were divided by).
    """
    n_events = main.shape[0]
    energy = (main @ gain[1].reshape(-1)) + (pre @ gain[0].reshape(-1))
    ratio = energy[mask] / target_GeV[mask]
    peak = fit_peak(ratio, min_entries=min(50, ratio.size)).mu if n_events else 1.0
    if not np.isfinite(peak) or peak <= 0:
        return gain, 1.0
    return gain / peak, float(peak)


def _sum_iterations(gain, main, pre, target, good, target_GeV, n_cells, config):
    """Refine the main-section gains on the energy sum of whole showers (all cells).

    Per cell ``c``, ``r_c`` is the peak (:func:`fit_peak`) of ``E_sum / (E_beam C_c)``
    over the good events aimed at ``c``; the main gain of ``c`` is divided by
    ``1 + (r_c - 1) / cell_share`` (``cell_share`` ~ the share of the sum in the
    cell itself), then all gains are scaled so that the peak over all events is 1.
    Iterated ``n_sum_iterations`` times (Jacobi iteration: neighbours' corrections
    enter the next sums). The summed shower fluctuates by ~1.5 % (sampling and
    beam spread), the cell's own tower fraction by ~3 % with tails: per-cell
    precision ~0.2 % instead of ~0.4 % with 200 events per cell.
    Returns the gains and the last global scale peak.
    """
    gain = gain.copy()
    flat_main, flat_pre = gain[1].reshape(-1), gain[0].reshape(-1)
    peak_all = float("nan")
    for _ in range(config.n_sum_iterations):
        ratio = (main @ flat_main + pre @ flat_pre) / target_GeV
        for c in range(n_cells):  # 36 cells
            mine = good & (target == c)
            peak = fit_peak(ratio[mine], min_entries=config.min_events_per_cell)
            if peak.ok:
                flat_main[c] /= 1.0 + (peak.mu - 1.0) / config.cell_share
        ratio = (main @ flat_main + pre @ flat_pre) / target_GeV
        peak_all = fit_peak(ratio[good]).mu
        flat_main /= peak_all
        flat_pre /= peak_all
    return np.stack([flat_pre, flat_main]).reshape(gain.shape), peak_all


def _displacement_fit(measured: np.ndarray, ok: np.ndarray, ix: np.ndarray,
                      iy: np.ndarray) -> np.ndarray:
    """Per-cell displacement: the measured value where ``ok``, elsewhere (matrix edges along
    that axis) a plane ``a + b ix + c iy`` fitted to the measured cells."""
    design = np.column_stack([np.ones(ix.size), ix, iy])
    plane = np.linalg.lstsq(design[ok], measured[ok], rcond=None)[0]
    return np.where(ok, measured, design @ plane)


def _shower_displacement(towers: np.ndarray, target: np.ndarray, good: np.ndarray,
                         ecal: CalorimeterGeometry, model: ShowerModel,
                         min_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean displacement (mm) of the showers aimed at each cell from its centre, x and y.

    From the ratio of the median tower energies of the two neighbours along each
    axis in the events aimed at the cell, inverted with the radial model
    (:meth:`ShowerModel.displacement_from_ratio`); cells on the matrix edge along
    an axis (one neighbour only) take a plane fitted over the others.
    """
    n_x, n_y = ecal.n_x, ecal.n_y
    ix, iy = np.divmod(np.arange(n_x * n_y), n_y)
    grid = towers.reshape(-1, n_x, n_y)
    ratio = np.full((2, n_x * n_y), np.nan)
    for c in range(n_x * n_y):  # 36 cells, once per derivation
        mine = good & (target == c)
        if mine.sum() < min_events:
            continue
        if 0 < ix[c] < n_x - 1:
            ratio[0, c] = (np.median(grid[mine, ix[c] + 1, iy[c]])
                           / np.median(grid[mine, ix[c] - 1, iy[c]]))
        if 0 < iy[c] < n_y - 1:
            ratio[1, c] = (np.median(grid[mine, ix[c], iy[c] + 1])
                           / np.median(grid[mine, ix[c], iy[c] - 1]))
    ok = np.isfinite(ratio) & (ratio > 0)
    measured = np.where(ok, model.displacement_from_ratio(ecal, np.where(ok, ratio, 1.0)), 0.0)
    dx = _displacement_fit(measured[0], ok[0], ix, iy)
    dy = _displacement_fit(measured[1], ok[1], ix, iy)
    return dx.reshape(n_x, n_y), dy.reshape(n_x, n_y)


def _shape_statistics(e_main, e_pre, target, good, n_x, n_y):
    """Mean and sigma of the 3x3 main fractions around interior targets and of f_pre."""
    ix, iy = np.divmod(target, n_y)
    interior = good & (ix >= 1) & (ix <= n_x - 2) & (iy >= 1) & (iy <= n_y - 2)
    rows = np.flatnonzero(interior)
    grid = e_main.reshape(-1, n_x, n_y)
    d = np.arange(-1, 2)
    block = grid[rows[:, None, None], ix[rows, None, None] + d[None, :, None],
                 iy[rows, None, None] + d[None, None, :]]
    fractions = block / block.sum(axis=(1, 2), keepdims=True)
    f_pre = e_pre[rows].sum(axis=1) / (e_pre[rows].sum(axis=1) + e_main[rows].sum(axis=1))
    return (fractions.mean(axis=0), fractions.std(axis=0), float(f_pre.mean()),
            float(f_pre.std()))


def _robust_mean_mask(x: np.ndarray, n_sigma: float) -> np.ndarray:
    """Values within ``n_sigma`` robust sigmas (1.4826 MAD) of the median."""
    median = np.median(x)
    sigma = 1.4826 * np.median(np.abs(x - median))
    return np.abs(x - median) <= n_sigma * sigma


def _outer_energy(e_main: np.ndarray, e_pre: np.ndarray, target: np.ndarray, mask: np.ndarray,
                  n_x: int, n_y: int, noise_GeV: np.ndarray | None, min_events: int,
                  n_sigma: float = 5.0) -> tuple[np.ndarray, float]:
    """Mean outside/inside-3x3 tower energy ratio per targeted cell and ``kappa`` (GeV).

    ``noise_GeV`` (2, n_x, n_y): amplitude noise of the cells in GeV (None: kappa NaN).
    """
    towers = e_main + e_pre
    ix, iy = np.divmod(np.arange(n_x * n_y), n_y)
    tx, ty = np.divmod(target, n_y)
    inside = (np.abs(ix[None, :] - tx[:, None]) <= 1) & (np.abs(iy[None, :] - ty[:, None]) <= 1)
    e_in = np.where(inside, towers, 0.0).sum(axis=1)
    e_out = towers.sum(axis=1) - e_in
    ratio = np.full(n_x * n_y, np.nan)
    kept = np.zeros(target.size, bool)
    for c in range(n_x * n_y):  # 36 cells
        rows = np.flatnonzero(mask & (target == c) & (e_in > 0))
        if rows.size < min_events:
            continue
        ok = _robust_mean_mask(e_out[rows] / e_in[rows], n_sigma)
        ratio[c] = float(e_out[rows[ok]].sum() / e_in[rows[ok]].sum())
        kept[rows[ok]] = True
    kappa = float("nan")
    if noise_GeV is not None and kept.any():
        variance = (np.asarray(noise_GeV, np.float64).reshape(2, -1) ** 2).sum(axis=0)
        noise_out = np.where(inside, 0.0, variance[None, :]).sum(axis=1)[kept]
        residual = e_out[kept] - ratio[target[kept]] * e_in[kept]
        ok = _robust_mean_mask(residual, n_sigma)
        kappa = max(float((np.var(residual[ok]) - noise_out[ok].mean()) / e_in[kept][ok].mean()),
                    0.0)
    return ratio.reshape(n_x, n_y), kappa


def derive_ecal_calibration(amplitude_adc: np.ndarray, t_ns: np.ndarray, flags: np.ndarray,
                            ecal: CalorimeterGeometry, model: ShowerModel,
                            config: EcalCalibrationConfig = EcalCalibrationConfig(),
                            amplitude_noise_adc: np.ndarray | None = None,
                            preshower_mips: PreshowerMipFit | None = None,
                            ) -> EcalCalibrationFit:
    """Gains, time offsets and the expected shower shape from a cell scan (pure core).

    Inputs are dense per event, shaped (n_events, 2, n_x, n_y) [section 0
    preshower, 1 main]: waveform amplitudes (ADC), times (ns) and flags;
    ``amplitude_noise_adc`` (2, n_x, n_y): the noise of a fitted amplitude per
    cell (without it the outer-energy ``kappa`` is NaN); ``preshower_mips``: the
    MIP peaks of a muon cell scan (:func:`fit_preshower_mips`), which then
    intercalibrate the preshower cells (the module docstring).
    """
    n_x, n_y = ecal.n_x, ecal.n_y
    n_cells = n_x * n_y
    n_events = amplitude_adc.shape[0]
    pre, main = (amplitude_adc[:, s].reshape(n_events, n_cells).astype(np.float64) for s in (0, 1))
    t_pre, t_main = (t_ns[:, s].reshape(n_events, n_cells) for s in (0, 1))
    target = np.argmax(main, axis=1)
    rows = np.arange(n_events)
    target_flags = flags[:, 1].reshape(n_events, n_cells)[rows, target]
    good = ((target_flags & _BAD) == 0) & (np.abs(t_main[rows, target]) < config.time_window_ns)
    p_main, q_pre, t0, peaks, values = _cell_peaks(main, pre, t_main, t_pre, target, good,
                                                   n_cells, config)
    missing = np.flatnonzero(~np.isfinite(p_main))
    if missing.size:
        raise ValueError(f"cells {missing.tolist()} have fewer than "
                         f"{config.min_events_per_cell} good events in the cell scan")
    mip_summary = None
    if preshower_mips is not None:
        q_pre, mip_summary = _mip_intercalibration(q_pre, preshower_mips)
    containment = model.matrix_containment(ecal).reshape(-1)
    target_GeV = config.beam_energy_GeV * containment[target]
    alpha, beta, used = _scale_fit((main / p_main).sum(axis=1), (pre / q_pre).sum(axis=1),
                                   target_GeV, config)
    # second pass: the peak of the cell's tower (main + preshower in main-section counts,
    # with the first-pass gain ratio), free of the event-by-event longitudinal split
    tower = main + pre * (beta / q_pre) / (alpha / p_main)
    p_main = np.array([fit_peak(tower[good & (target == c), c],
                                min_entries=config.min_events_per_cell).mu
                       for c in range(n_cells)])
    alpha, beta, used = _scale_fit((main / p_main).sum(axis=1), (pre / q_pre).sum(axis=1),
                                   target_GeV, config)
    dx = dy = np.zeros((n_x, n_y))
    if config.displacement_correction:
        # third pass: showers aimed at a cell centre sit a few mm off it (beam inclination):
        # correct each tower peak to a centred shower and the containment to the actual axis
        towers = main * (alpha / p_main) + pre * (beta / q_pre)
        dx, dy = _shower_displacement(towers, target, good, ecal, model,
                                      config.min_events_per_cell)
        centred = model.central_cell_fraction(ecal)
        own = np.array([model.central_cell_fraction(ecal, a, b) / centred
                        for a, b in zip(dx.ravel(), dy.ravel(), strict=True)])
        p_main = p_main / own
        containment = model.matrix_containment(ecal, dx, dy).reshape(-1)
        target_GeV = config.beam_energy_GeV * containment[target]
        alpha, beta, used = _scale_fit((main / p_main).sum(axis=1),
                                       (pre / q_pre).sum(axis=1), target_GeV, config)
    gain = np.stack([beta / q_pre, alpha / p_main]).reshape(2, n_x, n_y)
    peak_scale = 1.0
    if config.peak_scale:
        gain, peak_scale = _peak_scale(gain, main, pre, target_GeV,
                                       good & used & (containment[target]
                                                      >= config.scale_min_containment))
    gain, scale_peak = _sum_iterations(gain, main, pre, target, good & used, target_GeV, n_cells,
                                       config)
    e_main, e_pre = main * gain[1].reshape(-1), pre * gain[0].reshape(-1)
    energy_sum = e_main.sum(axis=1) + e_pre.sum(axis=1)
    mean, sigma, f_pre, f_pre_sigma = _shape_statistics(e_main, e_pre, target, good & used,
                                                        n_x, n_y)
    fractions = {
        "alpha_GeV": alpha,
        "beta_GeV": beta,
        "central_fraction": alpha / peak_scale / config.beam_energy_GeV,
        "preshower_central_fraction": beta / peak_scale / config.beam_energy_GeV,
        "least_squares_over_peak_scale": peak_scale,
        "model_central_fraction": model.central_cell_fraction(ecal),
        "displacement_x_mm_mean": float(dx.mean()),
        "displacement_x_mm_rms": float(dx.std()),
        "displacement_y_mm_mean": float(dy.mean()),
        "displacement_y_mm_rms": float(dy.std()),
    }
    noise_GeV = None if amplitude_noise_adc is None else amplitude_noise_adc * gain
    outer_ratio, kappa = _outer_energy(e_main, e_pre, target, good & used, n_x, n_y, noise_GeV,
                                       config.min_events_per_cell)
    calibration = EcalCalibration(gain, t0.reshape(2, n_x, n_y), mean, sigma, f_pre, f_pre_sigma,
                                  config.beam_energy_GeV, fractions, outer_ratio=outer_ratio,
                                  outer_kappa_GeV=kappa)
    ratio = energy_sum[good & used] / target_GeV[good & used]
    summary = {
        "n_events": int(n_events),
        "n_events_used": int((good & used).sum()),
        "events_per_cell_min": int(min(p.n for p in peaks)),
        "containment": fractions,
        "gain_GeV_per_adc_main": {"mean": float(gain[1].mean()),
                                  "rms_over_mean": float(gain[1].std() / gain[1].mean())},
        "gain_GeV_per_adc_preshower": {"mean": float(gain[0].mean()),
                                       "rms_over_mean": float(gain[0].std() / gain[0].mean())},
        "energy_sum_over_expected": {"mean": float(ratio.mean()), "rms": float(ratio.std())},
        "peak_relative_error_max": float(max(p.mu_error / p.mu for p in peaks)),
        "sum_iterations_scale_peak": scale_peak,
        "outer_energy": {"ratio_mean": float(np.nanmean(outer_ratio)),
                         "ratio_min": float(np.nanmin(outer_ratio)),
                         "ratio_max": float(np.nanmax(outer_ratio)), "kappa_GeV": kappa},
        "shower_model": model.version,
        "preshower_method": ("muon_mip_intercalibration" if mip_summary is not None
                             else "electron_scan_mean"),
    }
    if mip_summary is not None:
        summary["preshower_mip"] = mip_summary
    return EcalCalibrationFit(calibration, peaks, values, energy_sum[good & used], summary,
                              preshower_mips)


def load_ecal_calibration(db: ConditionsDB, setup: str, run: int) -> EcalCalibration:
    data, record = db.data(KIND, setup, run)
    return EcalCalibration.from_data(data, record)


def plot_ecal_calibration(fit: EcalCalibrationFit, n_x: int, n_y: int, path: str | Path) -> Path:
    """Main-section amplitude of every cell in its own events with the peak fit (grid of cells);
    with a muon scan, beside it the preshower MIP spectrum of every cell, its response
    (truncated mean) and truncation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mips = fit.preshower_mips
    n_blocks = 1 if mips is None else 2
    fig, axes = plt.subplots(n_y, n_blocks * n_x, figsize=(2.2 * n_blocks * n_x, 1.8 * n_y),
                             squeeze=False)
    for c, (peak, values) in enumerate(zip(fit.peaks, fit.cell_amplitudes, strict=True)):
        ix, iy = divmod(c, n_y)
        ax = axes[n_y - 1 - iy, ix]
        ax.hist(values, bins=40, range=(peak.mu - 5 * peak.sigma, peak.mu + 4 * peak.sigma),
                histtype="step")
        x = np.linspace(*peak.window, 50)
        width = 9 * peak.sigma / 40
        norm = peak.n * width / (np.sqrt(2 * np.pi) * peak.sigma) * np.mean(
            np.abs(values - peak.mu) < 3 * peak.sigma)
        ax.plot(x, norm * np.exp(-0.5 * ((x - peak.mu) / peak.sigma) ** 2), "r-")
        ax.set_title(f"({ix},{iy}) {peak.mu:.0f}", fontsize=7)
        ax.tick_params(labelsize=6)
    if mips is not None:
        for c, (peak, values) in enumerate(zip(mips.peaks, mips.amplitudes, strict=True)):
            ix, iy = divmod(c, n_y)
            ax = axes[n_y - 1 - iy, n_x + ix]
            if not peak.ok:
                ax.set_title(f"({ix},{iy}) no MIP", fontsize=7)
                continue
            ax.hist(values, bins=40, range=(min(peak.window[0], 0.0), 1.2 * peak.window[1]),
                    histtype="step")
            ax.axvline(peak.mu, color="r")
            ax.axvline(peak.window[1], color="k", ls=":")
            ax.set_title(f"({ix},{iy}) MIP {peak.mu:.2f}", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.suptitle("ECAL cell scan: main-section amplitude [ADC] of the targeted cell"
                 + ("" if mips is None else
                    "; muon scan: preshower amplitude [ADC], truncated mean (red) and cut"))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
