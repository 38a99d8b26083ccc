"""The simulation's true per-channel constants: what the reconstruction must rediscover.

For a (seed, setup) pair the digitiser's hidden truth is drawn once from the
ranges of ``sim/params/digitization.yaml`` and written as JSON beside the run
truth:

* SADC channels (per source, in channel order): gain in ADC counts of pulse
  amplitude per GeV (normal, relative width ``gain_spread`` around the nominal
  of the channel's class), even- and odd-sample pedestals (uniform in
  ``pedestal_range``, counts), noise (uniform in ``noise_range``, counts per
  sample), pulse rise and decay constants (ns, relative spread
  ``shape_spread``) and a time offset (ns, normal);
* APV strips (per station, per strip channel): pedestal and noise (counts).

The reconstruction derives its own pedestals, noise and gains from pedestal
and calibration runs; only validation compares them with this file.

JSON layout (``format: na64-sim-true-constants``, ``format_version: 1``)::

    {"format": ..., "format_version": 1, "setup": "invis2016", "seed": 1,
     "params_version": "v1",
     "sadc": {"ecal": {"source": 16, "channel": [...], "channel_class": [...],
                       "gain_adc_per_GeV": [...], "pedestal_even_adc": [...],
                       "pedestal_odd_adc": [...], "noise_adc": [...],
                       "rise_ns": [...], "decay_ns": [...], "time_offset_ns": [...]},
              "hcal": {...}, "counters": {...}},
     "apv": {"MM1": {"source": 32, "channel": [...], "pedestal_adc": [...],
                     "noise_adc": [...]}, ...}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from recon.conditions import ChannelMap, Geometry

__all__ = [
    "ApvStrips",
    "SadcChannels",
    "TrueConstants",
    "channel_classes",
    "constants_seed_sequence",
    "draw_true_constants",
    "read_true_constants",
    "write_true_constants",
]

FORMAT = "na64-sim-true-constants"
FORMAT_VERSION = 1
STREAM_CONSTANTS = 1  # entropy word after the seed: keeps this stream apart from event streams


@dataclass(frozen=True, eq=False)
class SadcChannels:
    """True constants of the channels of one SADC source, in channel order."""

    group: str
    source: int
    channel: np.ndarray            # (n,) int
    channel_class: np.ndarray      # (n,) str: ecal_preshower, ecal_main, hcal, counter, srd, muon
    gain_adc_per_GeV: np.ndarray
    pedestal_even_adc: np.ndarray
    pedestal_odd_adc: np.ndarray
    noise_adc: np.ndarray
    rise_ns: np.ndarray
    decay_ns: np.ndarray
    time_offset_ns: np.ndarray

    def __len__(self) -> int:
        return self.channel.size


@dataclass(frozen=True, eq=False)
class ApvStrips:
    """True pedestal and noise of every mapped strip channel of one APV station."""

    detector: str
    source: int
    channel: np.ndarray            # (n,) strip channel = plane * 512 + strip
    pedestal_adc: np.ndarray
    noise_adc: np.ndarray

    def dense(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per mapped channel) as an array indexed by strip channel (NaN gaps)."""
        out = np.full(int(self.channel.max()) + 1, np.nan)
        out[self.channel] = values
        return out


@dataclass(frozen=True, eq=False)
class TrueConstants:
    setup: str
    seed: int
    params_version: str
    sadc: dict[str, SadcChannels]
    apv: dict[str, ApvStrips]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "setup": self.setup,
            "seed": self.seed,
            "params_version": self.params_version,
            "sadc": {name: _arrays_to_lists(c) for name, c in self.sadc.items()},
            "apv": {name: _arrays_to_lists(c) for name, c in self.apv.items()},
        }

    @classmethod
    def from_json_dict(cls, doc: dict[str, Any]) -> TrueConstants:
        if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} document")
        return cls(
            setup=doc["setup"],
            seed=int(doc["seed"]),
            params_version=str(doc["params_version"]),
            sadc={k: _from_lists(SadcChannels, v) for k, v in doc["sadc"].items()},
            apv={k: _from_lists(ApvStrips, v) for k, v in doc["apv"].items()},
        )


def _arrays_to_lists(obj) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
    return out


def _from_lists(cls, doc: dict[str, Any]):
    values = {}
    for f in fields(cls):
        value = doc[f.name]
        values[f.name] = np.asarray(value) if isinstance(value, list) else value
    return cls(**values)


def constants_seed_sequence(seed: int, setup: str) -> np.random.SeedSequence:
    """The random stream of the true constants: one per (seed, setup), whatever the run."""
    return np.random.SeedSequence([int(seed), STREAM_CONSTANTS, *setup.encode("ascii")])


def channel_classes(group: str, field_table: np.ndarray, geometry: Geometry,
                    counter_classes: dict[str, str]) -> np.ndarray:
    """The class (gain and shape family) of every channel of an SADC group.

    ``field_table`` is the channel map's (n_channels, 3) field table of the source.
    """
    if group == "ecal":
        return np.where(field_table[:, 0] == 0, "ecal_preshower", "ecal_main")
    if group == "hcal":
        return np.full(field_table.shape[0], "hcal")
    if group == "counters":
        names = {c.id: c.name for c in geometry.counters.values()}
        return np.array([counter_classes[names[int(c)]] for c in field_table[:, 0]])
    raise ValueError(f"no channel classes defined for SADC group {group!r}")


def _draw_sadc(rng: np.random.Generator, group: str, source: int, classes: np.ndarray,
               sadc: dict[str, Any]) -> SadcChannels:
    n = classes.size
    nominal = np.array([sadc["gain_adc_per_GeV"][c] for c in classes], dtype=np.float64)
    rise = np.array([sadc["shapes"][c]["rise_ns"] for c in classes], dtype=np.float64)
    decay = np.array([sadc["shapes"][c]["decay_ns"] for c in classes], dtype=np.float64)
    gain = nominal * np.clip(1.0 + sadc["gain_spread"] * rng.standard_normal(n), 0.3, None)
    ped_lo, ped_hi = sadc["pedestal_range"]
    noise_lo, noise_hi = sadc["noise_range"]
    spread = sadc["shape_spread"]
    return SadcChannels(
        group=group,
        source=source,
        channel=np.arange(n),
        channel_class=classes,
        gain_adc_per_GeV=gain,
        pedestal_even_adc=rng.uniform(ped_lo, ped_hi, n),
        pedestal_odd_adc=rng.uniform(ped_lo, ped_hi, n),
        noise_adc=rng.uniform(noise_lo, noise_hi, n),
        rise_ns=rise * np.clip(1.0 + spread * rng.standard_normal(n), 0.5, None),
        decay_ns=decay * np.clip(1.0 + spread * rng.standard_normal(n), 0.5, None),
        time_offset_ns=sadc["channel_time_offset_ns"] * rng.standard_normal(n),
    )


def draw_true_constants(seed: int, setup: str, channel_map: ChannelMap, geometry: Geometry,
                        params: dict[str, Any]) -> TrueConstants:
    """Draw every true constant of ``setup`` for ``seed`` (deterministic).

    ``params`` is the parsed digitisation parameter file. SADC groups and APV
    stations are taken in channel-map order.
    """
    rng = np.random.Generator(np.random.PCG64(constants_seed_sequence(seed, setup)))
    sadc_params = params["sadc"]
    sadc = {}
    for group in channel_map.groups:
        table = channel_map.sadc_fields[group.source]
        mapped = table[:, 0] >= 0
        if not mapped.all():
            raise ValueError(f"SADC group {group.name}: channel numbers must be contiguous from 0")
        classes = channel_classes(group.name, table, geometry, sadc_params["counter_classes"])
        sadc[group.name] = _draw_sadc(rng, group.name, group.source, classes, sadc_params)
    apv_params = params["apv"]
    apv = {}
    for source, table in sorted(channel_map.apv_tables.items()):
        detector = channel_map.apv_detectors[int(channel_map.apv_detector[source])]
        channel = np.flatnonzero(table[:, 0] >= 0)
        apv[detector] = ApvStrips(
            detector=detector,
            source=int(source),
            channel=channel,
            pedestal_adc=rng.uniform(*apv_params["pedestal_range"], channel.size),
            noise_adc=rng.uniform(*apv_params["noise_range"], channel.size),
        )
    return TrueConstants(setup=setup, seed=int(seed), params_version=str(params["version"]),
                         sadc=sadc, apv=apv)


def write_true_constants(path: str | Path, constants: TrueConstants) -> None:
    """Write ``constants`` as JSON, atomically (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(constants.to_json_dict(), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_true_constants(path: str | Path) -> TrueConstants:
    return TrueConstants.from_json_dict(json.loads(Path(path).read_text()))
