"""APV strip pedestals and noise from pedestal runs, and the ``strip_pedestals`` condition.

Units: ADC counts. Pedestal runs (run type 2, random triggers) are read
without zero suppression, so every strip of every plane appears in every
event with its 3 raw APV samples. Per strip ``(detector, plane, strip)``:

1. a robust start: median ``m`` and median absolute deviation ``MAD`` of all
   samples of the strip (``sigma_0 = 1.4826 MAD``, floored at 0.5 ADC);
2. the pedestal and noise are the mean and standard deviation of the samples
   within ``m +- clip_sigma * sigma_0``; the standard deviation of a Gaussian
   truncated at ``+-k sigma`` is smaller by
   ``sqrt(1 - 2 k phi(k) / (2 Phi(k) - 1))`` and is corrected for it.

Occasional beam signals (a random trigger in the spill) are positive
excursions affecting a few events; the median and the clipping make the
estimates insensitive to them. Strips never read out or with noise below
``dead_noise_adc`` are *dead*; strips noisier than ``noisy_factor`` times the
median noise of their plane are *noisy*; both are masked in clustering.

The condition file (kind ``strip_pedestals``, JSON, conditions header
``kind, setup, version, valid_runs, description``) holds per station
``id``, ``n_strips`` and ``[X, Y]`` lists ``pedestal_adc``, ``noise_adc``,
``status``. References: the COMPASS GEM/APV pedestal procedure (Ketzer et
al., NIM A 535 (2004) 314; Abbon et al., NIM A 577 (2007) 455, sect. 4.2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "STRIP_ABSENT",
    "STRIP_DEAD",
    "STRIP_GOOD",
    "STRIP_NOISY",
    "PedestalConfig",
    "StripPedestals",
    "derive_strip_pedestals",
    "load_strip_pedestals",
    "strip_pedestals_from_condition",
    "write_strip_pedestals_condition",
]

STRIP_GOOD = 0
STRIP_DEAD = 1
STRIP_NOISY = 2
STRIP_ABSENT = 3  # no such strip on this plane

_ADC_RANGE = 4096
_MAD_TO_SIGMA = 1.4826
_MIN_SIGMA0_ADC = 0.5


@dataclass(frozen=True)
class PedestalConfig:
    """Settings of the pedestal derivation (noise-independent, in sigma units or ADC)."""

    clip_sigma: float = 3.0
    dead_noise_adc: float = 0.5
    noisy_factor: float = 3.0


@dataclass(frozen=True)
class StripPedestals:
    """Per-strip pedestal and noise, arrays of shape ``(n_detectors, 2, n_strips_max)``.

    Index ``[detector_id, plane, strip]``; plane 0 = X, 1 = Y. Strips that do
    not exist have ``status == STRIP_ABSENT`` and NaN pedestal and noise.
    """

    station_names: tuple[str, ...]
    pedestal_adc: np.ndarray
    noise_adc: np.ndarray
    status: np.ndarray
    n_strips: np.ndarray
    n_events: int = 0

    def __post_init__(self) -> None:
        shape = self.pedestal_adc.shape
        if self.noise_adc.shape != shape or self.status.shape != shape or len(shape) != 3:
            raise ValueError("pedestal, noise and status must share a (n_det, 2, n_strips) shape")


def _truncation_factor(k: float) -> float:
    """Ratio of the std of a Gaussian truncated at +-k sigma to sigma."""
    phi = math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi)
    inside = math.erf(k / math.sqrt(2.0))
    return math.sqrt(1.0 - 2.0 * k * phi / inside)


def _group_medians(
    keys: np.ndarray, values: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray]:
    """Median of integer ``values`` (0..4095) per key; also the counts per key."""
    combined = np.sort(keys.astype(np.int64) * _ADC_RANGE + values.astype(np.int64))
    counts = np.bincount(keys, minlength=n_keys)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    medians = np.full(n_keys, np.nan)
    filled = counts > 0
    low = combined[starts[filled] + (counts[filled] - 1) // 2] % _ADC_RANGE
    high = combined[starts[filled] + counts[filled] // 2] % _ADC_RANGE
    medians[filled] = 0.5 * (low + high)
    return medians, counts


def derive_strip_pedestals(
    detector: np.ndarray,
    plane: np.ndarray,
    strip: np.ndarray,
    samples: np.ndarray,
    *,
    geometry,
    n_events: int,
    config: PedestalConfig = PedestalConfig(),
) -> StripPedestals:
    """Pedestal and noise per strip from the flat strip table of a pedestal run.

    ``detector``, ``plane``, ``strip`` (n,) and ``samples`` (n, 3) raw ADC are
    the flattened ``strips`` records of all events; ``geometry`` gives the
    stations (names, ids, strips per plane).
    """
    stations = sorted(geometry.trackers.values(), key=lambda s: s.id)
    n_det = stations[-1].id + 1
    n_strips = np.zeros(n_det, dtype=np.int64)
    names = [""] * n_det
    for s in stations:
        n_strips[s.id] = s.n_strips
        names[s.id] = s.name
    width = int(n_strips.max())
    detector, plane, strip = (np.asarray(a, dtype=np.int64) for a in (detector, plane, strip))
    samples = np.asarray(samples)
    valid = (detector < n_det) & (plane < 2) & (strip < n_strips[np.minimum(detector, n_det - 1)])
    if not np.all(valid):
        raise ValueError(f"{np.count_nonzero(~valid)} strip records outside the geometry")
    n_keys = n_det * 2 * width
    n_samples = samples.shape[1]
    keys = np.repeat((detector * 2 + plane) * width + strip, n_samples)
    values = samples.reshape(-1).astype(np.int64)

    median, counts = _group_medians(keys, values, n_keys)
    deviation = np.abs(values - median[keys])
    mad2, _ = _group_medians(keys, np.round(2.0 * deviation).astype(np.int64), n_keys)
    sigma0 = np.maximum(_MAD_TO_SIGMA * 0.5 * mad2, _MIN_SIGMA0_ADC)

    inside = deviation <= config.clip_sigma * sigma0[keys]
    w = inside.astype(np.float64)
    n_in = np.bincount(keys, weights=w, minlength=n_keys)
    sum1 = np.bincount(keys, weights=w * values, minlength=n_keys)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sum1 / n_in
        sum2 = np.bincount(keys, weights=w * (values - mean[keys]) ** 2, minlength=n_keys)
        std = np.sqrt(sum2 / np.maximum(n_in - 1.0, 1.0)) / _truncation_factor(config.clip_sigma)

    shape = (n_det, 2, width)
    pedestal = mean.reshape(shape)
    noise = std.reshape(shape)
    status = np.full(shape, STRIP_GOOD, dtype=np.int8)
    exists = np.broadcast_to(np.arange(width)[None, None, :] < n_strips[:, None, None], shape)
    status[~exists] = STRIP_ABSENT
    pedestal[~exists] = np.nan
    noise[~exists] = np.nan
    dead = exists & ((counts.reshape(shape) == 0) | ~(noise >= config.dead_noise_adc))
    status[dead] = STRIP_DEAD
    good_noise = np.where(status == STRIP_GOOD, noise, np.nan)
    plane_median = np.nanmedian(good_noise, axis=2, keepdims=True)
    status[(status == STRIP_GOOD) & (noise > config.noisy_factor * plane_median)] = STRIP_NOISY
    return StripPedestals(
        station_names=tuple(names),
        pedestal_adc=pedestal,
        noise_adc=noise,
        status=status,
        n_strips=n_strips,
        n_events=int(n_events),
    )


def write_strip_pedestals_condition(
    path: str | Path,
    pedestals: StripPedestals,
    *,
    setup: str,
    version: str,
    valid_runs: Sequence[int],
    description: str,
) -> Path:
    """Write a ``strip_pedestals`` condition file (JSON) and return its path."""
    stations: dict[str, Any] = {}
    for det, name in enumerate(pedestals.station_names):
        n = int(pedestals.n_strips[det])
        if n == 0:
            continue
        stations[name] = {
            "id": det,
            "n_strips": n,
            "pedestal_adc": _rounded(pedestals.pedestal_adc[det, :, :n]),
            "noise_adc": _rounded(pedestals.noise_adc[det, :, :n]),
            "status": pedestals.status[det, :, :n].astype(int).tolist(),
        }
    document = {
        "kind": "strip_pedestals",
        "setup": setup,
        "version": version,
        "valid_runs": [int(valid_runs[0]), int(valid_runs[1])],
        "description": description,
        "data": {"n_events": pedestals.n_events, "units": "ADC counts", "stations": stations},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    return path


def _rounded(values: np.ndarray) -> list:
    """Two decimals; NaN (a dead strip with no data) becomes null."""
    return [[None if not np.isfinite(v) else round(float(v), 2) for v in row] for row in values]


def strip_pedestals_from_condition(data: Mapping[str, Any]) -> StripPedestals:
    """Typed pedestals from the ``data`` of a ``strip_pedestals`` condition."""
    stations = data["stations"]
    n_det = max(int(s["id"]) for s in stations.values()) + 1
    width = max(int(s["n_strips"]) for s in stations.values())
    pedestal = np.full((n_det, 2, width), np.nan)
    noise = np.full((n_det, 2, width), np.nan)
    status = np.full((n_det, 2, width), STRIP_ABSENT, dtype=np.int8)
    n_strips = np.zeros(n_det, dtype=np.int64)
    names = [""] * n_det
    for name, spec in stations.items():
        det, n = int(spec["id"]), int(spec["n_strips"])
        names[det], n_strips[det] = name, n
        pedestal[det, :, :n] = np.array(spec["pedestal_adc"], dtype=float)
        noise[det, :, :n] = np.array(spec["noise_adc"], dtype=float)
        status[det, :, :n] = np.array(spec["status"], dtype=np.int8)
    return StripPedestals(
        station_names=tuple(names),
        pedestal_adc=pedestal,
        noise_adc=noise,
        status=status,
        n_strips=n_strips,
        n_events=int(data.get("n_events", 0)),
    )


def load_strip_pedestals(db, setup: str, run: int) -> StripPedestals:
    """The strip pedestals valid for ``run`` from a :class:`~recon.conditions.ConditionsDB`."""
    data, _ = db.data("strip_pedestals", setup, run)
    return strip_pedestals_from_condition(data)
