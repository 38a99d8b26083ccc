"""Clustering of APV strip hits: pedestal subtraction, clusters, centroids and times.

Input: the flat ``strips`` table of the decoded digits (``detector``,
``plane``, ``strip``, ``samples`` (n, 3) raw ADC with pedestals) and event
offsets. Output: one row per cluster with event offsets (:class:`Clusters`).
Positions are in strip units here (centre of strip ``s`` is ``s``); the
conversion to mm with geometry and alignment is in
:mod:`recon.tracking.space_points`.

Per strip: amplitudes ``a_k = samples_k - pedestal`` (k = 0, 1, 2, 25 ns
apart) and the charge ``q = a_0 + a_1 + a_2`` (noise ``sqrt(3) sigma``).
A strip is used if it is good in the pedestal table and its largest
amplitude exceeds ``strip_threshold_sigma * sigma``. Used strips of the same
plane are merged into a cluster while the gap between neighbours is at most
``max_gap_strips`` missing strips (a dead strip or one below threshold).

Cluster quantities (``Q = sum q_i``):

* centroid ``c = sum q_i s_i / Q`` (negative strip charges count as 0);
* its noise error ``sigma_c^2 = sum (s_i - c)^2 sigma_qi^2 / Q^2``;
* signal-to-noise ``Q / sqrt(sum sigma_qi^2)``, required above
  ``cluster_threshold_sigma``;
* time: the ratios ``r_02 = A_0 / A_2`` and ``r_12 = A_1 / A_2`` of the
  cluster-summed samples ``A_k`` fall monotonically with the signal arrival
  time. Each is converted to a time with a calibrated relation
  (:class:`ApvTimeRelation`, a table ``t_i -> r_i`` interpolated linearly),
  with the error ``|dt/dr| sigma_r``, ``sigma_r = sigma_A sqrt(1 + r^2) / A_2``;
  the two times are averaged with inverse-variance weights. ``t`` is the
  arrival time relative to an in-time particle (positive = later). Clusters
  with ``t`` outside ``[t_min_ns, t_max_ns]`` or without a valid time are
  flagged out of time.

The ratio method follows the COMPASS GEM/APV25 readout (Ketzer et al.,
NIM A 535 (2004) 314; Abbon et al., NIM A 577 (2007) 455, sect. 4.2), which
parametrises ``r(t)`` with a Fermi function. For a CR-RC pulse sampled on
its rising edge and peak a Fermi function leaves closure errors of 5-25 ns
over +-40 ns, so the relation is kept as the measured table itself: the
median ratio at each delay of a delay scan (known arrival times),
:func:`calibrate_time_relation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from recon.tracking.strip_pedestals import STRIP_GOOD, StripPedestals

__all__ = [
    "ApvTimeRelation",
    "ClusteringConfig",
    "Clusters",
    "calibrate_time_relation",
    "cluster_strips",
]


@dataclass(frozen=True)
class ApvTimeRelation:
    """Calibrated sample-ratio -> time table: ``ratio[i]`` measured at arrival time ``t_ns[i]``.

    The ratio must fall monotonically with time; it is interpolated linearly
    and is invalid (NaN time) outside the tabulated ratio range.
    """

    t_ns: tuple[float, ...]
    ratio: tuple[float, ...]

    def __post_init__(self) -> None:
        t, r = np.asarray(self.t_ns, float), np.asarray(self.ratio, float)
        if t.size < 2 or t.size != r.size or np.any(np.diff(t) <= 0) or np.any(np.diff(r) >= 0):
            raise ValueError("need >= 2 knots, increasing in time and decreasing in ratio")

    def time_ns(self, ratio) -> np.ndarray:
        """Arrival time for measured ratios; NaN outside the table."""
        t, r = np.asarray(self.t_ns, float)[::-1], np.asarray(self.ratio, float)[::-1]
        ratio = np.asarray(ratio, dtype=float)
        inside = (ratio >= r[0]) & (ratio <= r[-1])
        return np.where(inside, np.interp(ratio, r, t), np.nan)

    def as_array(self) -> np.ndarray:
        """Table as (2, n) rows (ratio ascending, matching time) for the kernels."""
        return np.array([self.ratio[::-1], self.t_ns[::-1]], dtype=np.float64)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ApvTimeRelation:
        return cls(
            t_ns=tuple(float(v) for v in data["t_ns"]), ratio=tuple(float(v) for v in data["ratio"])
        )


def calibrate_time_relation(
    t_ns: np.ndarray, ratio: np.ndarray, knots_ns: np.ndarray
) -> ApvTimeRelation:
    """Table from a delay scan: the median measured ratio at each knot time.

    ``t_ns`` are the known arrival times of the scan (e.g. trigger delays), one
    per measured ``ratio``; every knot needs scan points at exactly its time.
    """
    t_ns, ratio = np.asarray(t_ns, float), np.asarray(ratio, float)
    table = [float(np.nanmedian(ratio[t_ns == k])) for k in knots_ns]
    return ApvTimeRelation(t_ns=tuple(float(k) for k in knots_ns), ratio=tuple(table))


@dataclass(frozen=True)
class ClusteringConfig:
    """Thresholds (noise units), merging and timing of the strip clustering."""

    strip_threshold_sigma: float
    cluster_threshold_sigma: float
    max_gap_strips: int
    max_cluster_strips: int
    time_r02: ApvTimeRelation
    time_r12: ApvTimeRelation
    t_min_ns: float
    t_max_ns: float

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ClusteringConfig:
        return cls(
            strip_threshold_sigma=float(data["strip_threshold_sigma"]),
            cluster_threshold_sigma=float(data["cluster_threshold_sigma"]),
            max_gap_strips=int(data["max_gap_strips"]),
            max_cluster_strips=int(data["max_cluster_strips"]),
            time_r02=ApvTimeRelation.from_mapping(data["time_r02"]),
            time_r12=ApvTimeRelation.from_mapping(data["time_r12"]),
            t_min_ns=float(data["t_min_ns"]),
            t_max_ns=float(data["t_max_ns"]),
        )


@dataclass(frozen=True)
class Clusters:
    """Strip clusters, flat with ``offsets`` (n_events + 1) into the per-cluster arrays.

    Within an event, clusters are ordered by (detector, plane, position).
    ``position_strip`` is the centroid in strip units (strip ``s`` at ``s``).
    """

    offsets: np.ndarray
    detector: np.ndarray
    plane: np.ndarray
    position_strip: np.ndarray
    position_err_strip: np.ndarray
    charge_adc: np.ndarray
    snr: np.ndarray
    size: np.ndarray
    t_ns: np.ndarray
    t_err_ns: np.ndarray
    in_time: np.ndarray

    def __len__(self) -> int:
        return self.detector.shape[0]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ratio_time(a_j, a_2, sigma_a, table):
    """Time and error from ``a_j / a_2``; ``table`` rows: ratio (ascending), time."""
    if a_2 <= 0.0:
        return np.nan, np.inf
    r = a_j / a_2
    ratios, times = table[0], table[1]
    n = ratios.shape[0]
    if not (ratios[0] <= r <= ratios[n - 1]):
        return np.nan, np.inf
    k = min(max(np.searchsorted(ratios, r) - 1, 0), n - 2)
    slope = (times[k + 1] - times[k]) / (ratios[k + 1] - ratios[k])
    t = times[k] + slope * (r - ratios[k])
    sigma_r = math.sqrt(sigma_a * sigma_a * (1.0 + r * r)) / a_2
    return t, abs(slope) * sigma_r


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _finish_cluster(acc, rel02, rel12, t_min, t_max):
    """Centroid, errors, S/N and time of an accumulated cluster.

    ``acc``: [Q, sum q s, sum var, sum s var, sum s^2 var, A0, A1, A2, sum noise^2].
    """
    q, qs, var, svar, s2var = acc[0], acc[1], acc[2], acc[3], acc[4]
    if q <= 0.0:
        return np.nan, np.nan, 0.0, np.nan, np.nan, False
    c = qs / q
    err2 = (s2var - 2.0 * c * svar + c * c * var) / (q * q)
    snr = q / math.sqrt(var)
    sigma_a = math.sqrt(acc[8])
    t1, e1 = _ratio_time(acc[5], acc[7], sigma_a, rel02)
    t2, e2 = _ratio_time(acc[6], acc[7], sigma_a, rel12)
    w1 = 0.0 if math.isnan(t1) else 1.0 / (e1 * e1)
    w2 = 0.0 if math.isnan(t2) else 1.0 / (e2 * e2)
    if w1 + w2 > 0.0:
        t = ((t1 * w1 if w1 > 0 else 0.0) + (t2 * w2 if w2 > 0 else 0.0)) / (w1 + w2)
        t_err = 1.0 / math.sqrt(w1 + w2)
    else:
        t, t_err = np.nan, np.nan
    in_time = t_min <= t <= t_max
    return c, math.sqrt(max(err2, 0.0)), snr, t, t_err, in_time


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sort_order(keys, n, order):
    """Stable insertion sort of ``keys[:n]`` into ``order``: linear for the usual sorted
    DAQ order, quadratic only in the (small) number of hits of one event otherwise."""
    for j in range(n):
        k = j
        while k > 0 and keys[order[k - 1]] > keys[j]:
            order[k] = order[k - 1]
            k -= 1
        order[k] = j


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cluster_event(
    lo,
    hi,
    det,
    plane,
    strip,
    samples,
    ped,
    noise,
    status,
    sel,
    keys,
    order,
    acc,
    thr_strip,
    thr_cluster,
    max_gap,
    max_size,
    rel02,
    rel12,
    t_min,
    t_max,
    write,
    out_at,
    o_det,
    o_plane,
    o_pos,
    o_err,
    o_q,
    o_snr,
    o_size,
    o_t,
    o_terr,
    o_in,
):
    """Cluster one event (hits ``lo:hi``); write from ``out_at`` if ``write``; return count."""
    n_det, width = ped.shape[0], ped.shape[2]
    n_sel = np.int64(0)
    for i in range(lo, hi):
        d, p, s = det[i], plane[i], strip[i]
        if d >= n_det or p > 1 or s >= width or status[d, p, s] != STRIP_GOOD:
            continue
        a_max = max(samples[i, 0], samples[i, 1], samples[i, 2]) - ped[d, p, s]
        if a_max > thr_strip * noise[d, p, s]:
            sel[n_sel] = i
            keys[n_sel] = (d * 2 + p) * width + s
            n_sel += 1
    _sort_order(keys, n_sel, order)
    acc[:] = 0.0
    n_out = 0
    cur_plane_key = -1
    first_strip = 0
    last_strip = -10
    for j in range(n_sel + 1):
        if j < n_sel:
            i = sel[order[j]]
            d, p, s = det[i], plane[i], strip[i]
            plane_key = d * 2 + p
            joins = plane_key == cur_plane_key and s - last_strip - 1 <= max_gap
        else:
            joins = False
        if not joins and cur_plane_key >= 0:
            c, err, snr, t, t_err, in_time = _finish_cluster(acc, rel02, rel12, t_min, t_max)
            size = last_strip - first_strip + 1
            if snr >= thr_cluster and size <= max_size:
                if write:
                    k = out_at + n_out
                    o_det[k], o_plane[k] = cur_plane_key // 2, cur_plane_key % 2
                    o_pos[k], o_err[k], o_q[k], o_snr[k] = c, err, acc[0], snr
                    o_size[k], o_t[k], o_terr[k], o_in[k] = size, t, t_err, in_time
                n_out += 1
            acc[:] = 0.0
            cur_plane_key = -1
        if j == n_sel:
            break
        if cur_plane_key < 0:
            cur_plane_key = plane_key
            first_strip = s
        last_strip = s
        sigma = noise[d, p, s]
        a0 = samples[i, 0] - ped[d, p, s]
        a1 = samples[i, 1] - ped[d, p, s]
        a2 = samples[i, 2] - ped[d, p, s]
        q = max(a0 + a1 + a2, 0.0)
        var = 3.0 * sigma * sigma
        acc[0] += q
        acc[1] += q * s
        acc[2] += var
        acc[3] += s * var
        acc[4] += s * s * var
        acc[5] += a0
        acc[6] += a1
        acc[7] += a2
        acc[8] += sigma * sigma
    return n_out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cluster_all(
    offsets,
    det,
    plane,
    strip,
    samples,
    ped,
    noise,
    status,
    thr_strip,
    thr_cluster,
    max_gap,
    max_size,
    rel02,
    rel12,
    t_min,
    t_max,
):
    n_ev = offsets.shape[0] - 1
    max_hits = 0
    for e in range(n_ev):
        max_hits = max(max_hits, offsets[e + 1] - offsets[e])
    sel = np.empty(max_hits, dtype=np.int64)
    keys = np.empty(max_hits, dtype=np.int64)
    order = np.empty(max_hits, dtype=np.int64)
    acc = np.zeros(9)
    dummy_i = np.empty(0, dtype=np.int16)
    dummy_f = np.empty(0)
    dummy_b = np.empty(0, dtype=np.bool_)
    counts = np.zeros(n_ev + 1, dtype=np.int64)
    count_only = n_ev < 0  # a run-time False: one compiled specialisation for both passes
    for e in range(n_ev):  # count pass
        counts[e + 1] = _cluster_event(
            offsets[e],
            offsets[e + 1],
            det,
            plane,
            strip,
            samples,
            ped,
            noise,
            status,
            sel,
            keys,
            order,
            acc,
            thr_strip,
            thr_cluster,
            max_gap,
            max_size,
            rel02,
            rel12,
            t_min,
            t_max,
            count_only,
            np.int64(0),
            dummy_i,
            dummy_i,
            dummy_f,
            dummy_f,
            dummy_f,
            dummy_f,
            dummy_i,
            dummy_f,
            dummy_f,
            dummy_b,
        )
    out_offsets = np.cumsum(counts)
    n = out_offsets[-1]
    o_det = np.empty(n, dtype=np.int16)
    o_plane = np.empty(n, dtype=np.int16)
    o_pos, o_err, o_q, o_snr = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    o_size = np.empty(n, dtype=np.int16)
    o_t, o_terr = np.empty(n), np.empty(n)
    o_in = np.empty(n, dtype=np.bool_)
    for e in range(n_ev):  # fill pass
        _cluster_event(
            offsets[e],
            offsets[e + 1],
            det,
            plane,
            strip,
            samples,
            ped,
            noise,
            status,
            sel,
            keys,
            order,
            acc,
            thr_strip,
            thr_cluster,
            max_gap,
            max_size,
            rel02,
            rel12,
            t_min,
            t_max,
            not count_only,
            out_offsets[e],
            o_det,
            o_plane,
            o_pos,
            o_err,
            o_q,
            o_snr,
            o_size,
            o_t,
            o_terr,
            o_in,
        )
    return out_offsets, o_det, o_plane, o_pos, o_err, o_q, o_snr, o_size, o_t, o_terr, o_in


def cluster_strips(
    event_offsets: np.ndarray,
    detector: np.ndarray,
    plane: np.ndarray,
    strip: np.ndarray,
    samples: np.ndarray,
    *,
    pedestals: StripPedestals,
    config: ClusteringConfig,
) -> Clusters:
    """Clusters of all events from the flat strip table (see the module docstring)."""
    samples = np.ascontiguousarray(samples, dtype=np.uint16)
    if samples.ndim != 2 or samples.shape[1] != 3:
        raise ValueError("APV samples must have shape (n, 3)")
    result = _cluster_all(
        np.asarray(event_offsets, dtype=np.int64),
        np.asarray(detector, dtype=np.int64),
        np.asarray(plane, dtype=np.int64),
        np.asarray(strip, dtype=np.int64),
        samples,
        np.ascontiguousarray(pedestals.pedestal_adc, dtype=np.float64),
        np.ascontiguousarray(pedestals.noise_adc, dtype=np.float64),
        np.ascontiguousarray(pedestals.status, dtype=np.int8),
        float(config.strip_threshold_sigma),
        float(config.cluster_threshold_sigma),
        int(config.max_gap_strips),
        int(config.max_cluster_strips),
        config.time_r02.as_array(),
        config.time_r12.as_array(),
        float(config.t_min_ns),
        float(config.t_max_ns),
    )
    return Clusters(*result)
