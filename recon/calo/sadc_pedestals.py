"""SADC pedestals and noise from pedestal runs (random triggers): derivation and loader.

For every channel of the ECAL, HCAL and counter groups, and separately for the
even and odd samples (two interleaved ADCs), the derivation computes

1. the median of all samples of that parity (from a 12-bit histogram, one
   numba pass over the run);
2. a first width ``sigma_1``: the standard deviation of the samples within
   ``coarse_window_adc`` of the median;
3. the pedestal (mean) and noise (standard deviation) of the samples of the
   waveforms whose every sample lies within ``clip_sigma * sigma_1`` (+ half
   a count) of the median: random triggers that caught a pulse are dropped
   whole, so pile-up does not bias the pedestal upwards.

Condition ``sadc_pedestals`` (JSON), ``data`` per group: ``axes`` (e.g.
``[section, ix, iy, parity]``), ``pedestal_adc`` and ``noise_adc`` of shape
``(*group_shape, 2)`` (parity 0 even, 1 odd), ``n_waveforms`` of shape
``group_shape``. Units: ADC counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numba as nb
import numpy as np

from recon.calo.condition_files import array_from_json
from recon.calo.sadc_channels import GROUPS, SadcLayout, sadc_hits
from recon.conditions import ConditionRecord, ConditionsDB

__all__ = [
    "GroupPedestals",
    "PedestalConfig",
    "SadcPedestals",
    "derive_group_pedestals",
    "derive_sadc_pedestals",
    "load_sadc_pedestals",
    "pedestal_summary",
    "plot_pedestals",
]

KIND = "sadc_pedestals"
_AXES = {"ecal": ["section", "ix", "iy"], "hcal": ["module", "ix", "iy"], "counters": ["counter"]}


@dataclass(frozen=True)
class PedestalConfig:
    """Robust pedestal estimation settings (ADC counts, noise sigmas)."""

    adc_max: int = 4095
    coarse_window_adc: float = 50.0
    clip_sigma: float = 5.0
    min_waveforms: int = 20


@dataclass(frozen=True)
class GroupPedestals:
    """Pedestals of one SADC group, flat in the group's channel index (see ``sadc_channels``)."""

    shape: tuple[int, ...]
    pedestal_adc: np.ndarray   # (n_channels, 2) even, odd
    noise_adc: np.ndarray      # (n_channels, 2)
    n_waveforms: np.ndarray    # (n_channels,) waveforms used

    @property
    def channel_noise_adc(self) -> np.ndarray:
        """One noise sigma per channel: the mean of the even and odd ones."""
        return self.noise_adc.mean(axis=1)

    def to_data(self, axes: list[str]) -> dict[str, Any]:
        return {
            "axes": [*axes, "parity"],
            "pedestal_adc": np.round(self.pedestal_adc.reshape(*self.shape, 2), 4),
            "noise_adc": np.round(self.noise_adc.reshape(*self.shape, 2), 4),
            "n_waveforms": self.n_waveforms.reshape(self.shape),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> GroupPedestals:
        pedestal = array_from_json(data["pedestal_adc"])
        shape = pedestal.shape[:-1]
        return cls(
            shape=tuple(shape),
            pedestal_adc=pedestal.reshape(-1, 2),
            noise_adc=array_from_json(data["noise_adc"]).reshape(-1, 2),
            n_waveforms=np.asarray(data["n_waveforms"], dtype=np.int64).reshape(-1),
        )


@dataclass(frozen=True)
class SadcPedestals:
    """The ``sadc_pedestals`` condition: one :class:`GroupPedestals` per SADC group."""

    groups: dict[str, GroupPedestals]
    record: ConditionRecord | None = None

    def to_data(self) -> dict[str, Any]:
        return {name: group.to_data(_AXES[name]) for name, group in self.groups.items()}

    @classmethod
    def from_data(cls, data: dict[str, Any],
                  record: ConditionRecord | None = None) -> SadcPedestals:
        groups = {name: GroupPedestals.from_data(data[name]) for name in GROUPS if name in data}
        return cls(groups, record)


@nb.njit(cache=True, nogil=True)
def _histogram_kernel(samples, channel, hist):
    """hist[channel, parity, value] += 1 for every sample."""
    for i in range(samples.shape[0]):
        c = channel[i]
        for k in range(samples.shape[1]):
            hist[c, k & 1, samples[i, k]] += 1


@nb.njit(cache=True, nogil=True)
def _accumulate_kernel(samples, channel, low, high, sums, sums2, counts, n_used):
    """Sums over the waveforms whose samples all lie in [low, high] of their channel/parity."""
    for i in range(samples.shape[0]):
        c = channel[i]
        accept = True
        for k in range(samples.shape[1]):
            v = samples[i, k]
            if v < low[c, k & 1] or v > high[c, k & 1]:
                accept = False
                break
        if not accept:
            continue
        n_used[c] += 1
        for k in range(samples.shape[1]):
            v = float(samples[i, k])
            sums[c, k & 1] += v
            sums2[c, k & 1] += v * v
            counts[c, k & 1] += 1


def _histogram_median(hist: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(hist, axis=-1)
    half = cumulative[..., -1:] / 2.0
    return np.argmax(cumulative >= half, axis=-1).astype(np.float64)


def _windowed_sigma(hist: np.ndarray, centre: np.ndarray, half_width: float) -> np.ndarray:
    values = np.arange(hist.shape[-1], dtype=np.float64)
    inside = np.abs(values - centre[..., None]) <= half_width
    weights = np.where(inside, hist, 0).astype(np.float64)
    n = np.maximum(weights.sum(axis=-1), 1.0)
    mean = (weights * values).sum(axis=-1) / n
    return np.sqrt(np.maximum((weights * values**2).sum(axis=-1) / n - mean**2, 1.0 / 12.0))


def derive_group_pedestals(samples: np.ndarray, channel_index: np.ndarray, shape: tuple[int, ...],
                           config: PedestalConfig = PedestalConfig()) -> GroupPedestals:
    """Pedestal and noise per channel and parity of one group (pure core).

    ``samples`` (n, n_samples) uint16 raw counts of random triggers,
    ``channel_index`` (n,) into the group's ``shape``. Channels with fewer than
    ``min_waveforms`` accepted waveforms get NaN.
    """
    n_channels = int(np.prod(shape))
    samples = np.ascontiguousarray(samples, dtype=np.uint16)
    channel = np.ascontiguousarray(channel_index, dtype=np.int64)
    hist = np.zeros((n_channels, 2, config.adc_max + 1), dtype=np.int64)
    _histogram_kernel(samples, channel, hist)
    median = _histogram_median(hist)
    clip = config.clip_sigma * _windowed_sigma(hist, median, config.coarse_window_adc) + 0.5
    sums = np.zeros((n_channels, 2))
    sums2 = np.zeros((n_channels, 2))
    counts = np.zeros((n_channels, 2))
    n_used = np.zeros(n_channels, dtype=np.int64)
    _accumulate_kernel(samples, channel, median - clip, median + clip, sums, sums2, counts, n_used)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        noise = np.sqrt(np.maximum(sums2 / counts - mean**2, 0.0))
    bad = n_used < config.min_waveforms
    mean[bad] = np.nan
    noise[bad] = np.nan
    return GroupPedestals(shape=tuple(shape), pedestal_adc=mean, noise_adc=noise,
                          n_waveforms=n_used)


def derive_sadc_pedestals(digits: ak.Array, layout: SadcLayout, adc_max: int,
                          config: PedestalConfig | None = None) -> SadcPedestals:
    """Pedestals of every SADC group from the digits of a pedestal run."""
    config = config or PedestalConfig(adc_max=adc_max)
    groups = {}
    for group in GROUPS:  # three detector groups
        hits = sadc_hits(digits, group, layout)
        groups[group] = derive_group_pedestals(hits.samples, hits.channel_index,
                                               layout.shape(group), config)
    return SadcPedestals(groups)


def load_sadc_pedestals(db: ConditionsDB, setup: str, run: int) -> SadcPedestals:
    data, record = db.data(KIND, setup, run)
    return SadcPedestals.from_data(data, record)


def pedestal_summary(pedestals: SadcPedestals) -> dict[str, Any]:
    """Per-group ranges and the channels without a pedestal (JSON-ready)."""
    summary = {}
    for name, group in pedestals.groups.items():
        missing = np.flatnonzero(~np.isfinite(group.pedestal_adc).all(axis=1))
        summary[name] = {
            "n_channels": int(group.n_waveforms.size),
            "channels_without_pedestal": missing.tolist(),
            "pedestal_adc_range": [float(np.nanmin(group.pedestal_adc)),
                                   float(np.nanmax(group.pedestal_adc))],
            "noise_adc_mean": float(np.nanmean(group.noise_adc)),
            "noise_adc_max": float(np.nanmax(group.noise_adc)),
            "waveforms_used_min": int(group.n_waveforms.min()),
        }
    return summary


def plot_pedestals(pedestals: SadcPedestals, path: str | Path) -> Path:
    """Pedestal and noise of every channel (even and odd), one row per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pedestals.groups), 2, figsize=(11, 3 * len(pedestals.groups)),
                             squeeze=False)
    for row, (name, group) in enumerate(pedestals.groups.items()):
        channels = np.arange(group.n_waveforms.size)
        for parity, label in enumerate(("even", "odd")):
            axes[row, 0].plot(channels, group.pedestal_adc[:, parity], ".", label=label)
            axes[row, 1].plot(channels, group.noise_adc[:, parity], ".", label=label)
        axes[row, 0].set_ylabel(f"{name} pedestal [ADC]")
        axes[row, 1].set_ylabel(f"{name} noise [ADC]")
        axes[row, 0].legend()
    for ax in axes[-1]:
        ax.set_xlabel("channel index")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
