"""Synthetic tracker events for the tracking tests and benchmark (independent of ``sim``).

A small stand-alone generator: beam electrons through the invis2016 dipoles
(drift + circular arcs in the x-z plane, written independently of
``recon.tracking.propagation``), Highland multiple scattering in the tracker
planes, and APV strip digitisation: charge cloud shared over 2-4 strips,
Moyal (Landau-like) cluster charge, CR-RC pulse sampled 3 times 25 ns apart,
per-strip pedestals and noise, plane inefficiency, dead strips, noise strips,
fake clusters and zero suppression. Units: mm, ns, GeV, ADC counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recon.tracking.strip_pedestals import STRIP_ABSENT, STRIP_DEAD, STRIP_GOOD, StripPedestals

C_GEV_PER_T_MM = 0.299792458e-3
Z_BEAM_MM = -3500.0


@dataclass(frozen=True)
class TrackerResponse:
    """Detector response of the generator (its own truth, not read from recon)."""

    x_over_X0: dict = field(default_factory=lambda: {"MM": 0.003, "GEM": 0.005})
    intrinsic_sigma_mm: dict = field(default_factory=lambda: {"MM": 0.067, "GEM": 0.097})
    cloud_sigma_mm: dict = field(default_factory=lambda: {"MM": 0.15, "GEM": 0.25})
    charge_mpv_adc: float = 250.0
    charge_width_adc: float = 35.0
    xy_charge_sigma: float = 0.10
    plane_efficiency: float = 0.95
    dead_fraction: float = 0.01
    pulse_tau_ns: float = 50.0
    pulse_phase_ns: float = 25.0  # sample 0 of an in-time pulse, from the pulse start
    time_jitter_ns: float = 6.0
    zs_sigma: float = 3.0
    fake_clusters_per_plane: float = 0.0


DEFAULT_RESPONSE = TrackerResponse()


@dataclass
class Truth:
    p_GeV: np.ndarray
    x_mm: np.ndarray  # (n, n_stations) true crossing points, global frame
    y_mm: np.ndarray
    tx_in: np.ndarray
    ty_in: np.ndarray
    x_ecal_mm: np.ndarray
    y_ecal_mm: np.ndarray


@dataclass
class StripEvents:
    event_offsets: np.ndarray
    detector: np.ndarray
    plane: np.ndarray
    strip: np.ndarray
    samples: np.ndarray  # (n, 3) uint16 raw ADC


def stations_by_id(geometry):
    return sorted(geometry.trackers.values(), key=lambda s: s.id)


def make_pedestal_table(geometry, rng, response=DEFAULT_RESPONSE) -> StripPedestals:
    """True pedestals 200..700 ADC and noise 3..8 ADC per strip, with dead strips."""
    stations = stations_by_id(geometry)
    width = max(s.n_strips for s in stations)
    shape = (len(stations), 2, width)
    pedestal = rng.uniform(200.0, 700.0, shape)
    noise = rng.uniform(3.0, 8.0, shape)
    status = np.full(shape, STRIP_GOOD, dtype=np.int8)
    status[rng.random(shape) < response.dead_fraction] = STRIP_DEAD
    n_strips = np.array([s.n_strips for s in stations])
    absent = np.broadcast_to(np.arange(width)[None, None, :] >= n_strips[:, None, None], shape)
    status[absent] = STRIP_ABSENT
    pedestal[absent] = np.nan
    noise[absent] = np.nan
    return StripPedestals(
        station_names=tuple(s.name for s in stations),
        pedestal_adc=pedestal,
        noise_adc=noise,
        status=status,
        n_strips=n_strips,
    )


def _highland(p_GeV, x_over_X0):
    return 0.0136 / p_GeV * np.sqrt(x_over_X0) * (1.0 + 0.038 * np.log(x_over_X0))


def _arc(x, y, tx, ty, p_GeV, b_y, dz):
    """Circle in the x-z plane of a charge -1 particle in B = (0, b_y, 0)."""
    cos_lambda = np.sqrt(1.0 + tx**2) / np.sqrt(1.0 + tx**2 + ty**2)
    k = C_GEV_PER_T_MM * b_y / (p_GeV * cos_lambda)  # curvature towards +x
    phi0 = np.arctan(tx)
    phi1 = np.arcsin(np.sin(phi0) + k * dz)
    tan_lambda = ty * np.cos(phi0)
    x1 = x + (np.cos(phi0) - np.cos(phi1)) / k
    y1 = y + tan_lambda * (phi1 - phi0) / k
    return x1, y1, np.tan(phi1), tan_lambda / np.cos(phi1)


def _transport(x, y, tx, ty, p_GeV, z0, z1, dipoles):
    """From z0 to z1 > z0 through the dipoles (list of (z_start, z_end, B_y))."""
    z = z0
    for zs, ze, b_y in dipoles:
        lo, hi = max(zs, z), min(ze, z1)
        if hi <= lo:
            continue
        x, y = x + tx * (lo - z), y + ty * (lo - z)
        x, y, tx, ty = _arc(x, y, tx, ty, p_GeV, b_y, hi - lo)
        z = hi
    return x + tx * (z1 - z), y + ty * (z1 - z), tx, ty


def generate_tracks(
    n,
    geometry,
    field_data,
    rng,
    *,
    p_GeV=100.0,
    p_spread=0.01,
    spot_mm=3.0,
    divergence_rad=1e-4,
    response=DEFAULT_RESPONSE,
    multiple_scattering=True,
) -> Truth:
    """Beam electrons from z = -3500 through stations and magnets to the ECAL face."""
    p = np.broadcast_to(np.asarray(p_GeV, float), (n,)).copy()
    if p_spread > 0:
        p *= 1.0 + p_spread * rng.standard_normal(n)
    x, y = spot_mm * rng.standard_normal(n), spot_mm * rng.standard_normal(n)
    tx, ty = divergence_rad * rng.standard_normal(n), divergence_rad * rng.standard_normal(n)
    tx_in, ty_in = tx.copy(), ty.copy()
    dipoles = [(d["z_start"], d["z_end"], d["B_y"]) for d in field_data["dipoles"]]
    stations = stations_by_id(geometry)
    xs, ys = np.empty((n, len(stations))), np.empty((n, len(stations)))
    z = Z_BEAM_MM
    for s in sorted(stations, key=lambda s: s.z):
        x, y, tx, ty = _transport(x, y, tx, ty, p, z, s.z, dipoles)
        z = s.z
        xs[:, s.id], ys[:, s.id] = x, y
        if multiple_scattering:
            theta = _highland(p, response.x_over_X0[s.technology])
            tx = tx + theta * rng.standard_normal(n)
            ty = ty + theta * rng.standard_normal(n)
    x, y, tx, ty = _transport(x, y, tx, ty, p, z, geometry.ecal.z_front, dipoles)
    return Truth(p_GeV=p, x_mm=xs, y_mm=ys, tx_in=tx_in, ty_in=ty_in, x_ecal_mm=x, y_ecal_mm=y)


def crrc(t_ns, tau_ns):
    """CR-RC pulse normalised to 1 at its peak (t = tau)."""
    t = np.maximum(np.asarray(t_ns, float), 0.0) / tau_ns
    return t * np.exp(1.0 - t)


def apv_shape(dt_ns, response=DEFAULT_RESPONSE):
    """The 3 sample values of a unit pulse arriving ``dt_ns`` late, shape (..., 3)."""
    k = np.arange(3) * 25.0
    return crrc(
        response.pulse_phase_ns + k - np.asarray(dt_ns, float)[..., None], response.pulse_tau_ns
    )


def _moyal(rng, n, mpv, width):
    z = rng.standard_normal(n)
    return np.clip(mpv - width * np.log(np.maximum(z * z, 1e-12)), 0.3 * mpv, 20.0 * mpv)


def _deposits(truth, geometry, offsets_mm, rng, response, dt_ns):
    """Strip amplitudes (event, det, plane, strip, amplitude, arrival time) of a track set."""
    n = truth.p_GeV.size
    out = []
    charge_x = _moyal(rng, n * 4, response.charge_mpv_adc, response.charge_width_adc).reshape(n, 4)
    charge_y = charge_x * (1.0 + response.xy_charge_sigma * rng.standard_normal((n, 4)))
    t_hit = dt_ns + response.time_jitter_ns * rng.standard_normal((n, 4))
    for s in stations_by_id(geometry):
        sigma_cloud = response.cloud_sigma_mm[s.technology]
        half = int(np.ceil(3.0 * sigma_cloud / s.pitch)) + 1
        for plane, (true, centre, charge) in enumerate(
            ((truth.x_mm[:, s.id], s.x, charge_x), (truth.y_mm[:, s.id], s.y, charge_y))
        ):
            local = true - (centre + offsets_mm[s.id, plane]) + 0.5 * s.size
            local = local + response.intrinsic_sigma_mm[s.technology] * rng.standard_normal(n)
            efficient = (rng.random(n) < response.plane_efficiency) & np.isfinite(local)
            ev = np.flatnonzero(efficient)
            centre_strip = np.floor(local[ev] / s.pitch).astype(np.int64)
            strips = centre_strip[:, None] + np.arange(-half, half + 1)[None, :]
            lo, hi = strips * s.pitch, (strips + 1) * s.pitch
            u = local[ev][:, None]
            frac = _gauss_cdf((hi - u) / sigma_cloud) - _gauss_cdf((lo - u) / sigma_cloud)
            amp = frac * charge[ev, s.id][:, None]
            keep = (strips >= 0) & (strips < s.n_strips)
            rows = np.broadcast_to(ev[:, None], strips.shape)[keep]
            out.append(
                (
                    rows,
                    np.full(rows.size, s.id),
                    np.full(rows.size, plane),
                    strips[keep],
                    amp[keep],
                    t_hit[rows, s.id],
                )
            )
    return [np.concatenate(parts) for parts in zip(*out, strict=True)]


def _gauss_cdf(x):
    from scipy.special import ndtr

    return ndtr(x)


def _noise_strips(n, geometry, rng, pedestals, response):
    """Strips whose noise alone passes zero suppression, and fake clusters."""
    rows, dets, planes, strips, amps, times = [], [], [], [], [], []
    p_exceed = 1.0 - (1.0 - 0.5 * _erfc_scaled(response.zs_sigma)) ** 3
    for s in stations_by_id(geometry):
        for plane in (0, 1):
            k = rng.poisson(p_exceed * s.n_strips, n)
            ev = np.repeat(np.arange(n), k)
            rows.append(ev)
            dets.append(np.full(ev.size, s.id))
            planes.append(np.full(ev.size, plane))
            strips.append(rng.integers(0, s.n_strips, ev.size))
            amps.append(np.full(ev.size, -1.0))  # marks a pure-noise strip
            times.append(np.zeros(ev.size))
    return rows, dets, planes, strips, amps, times


def _erfc_scaled(k):
    from scipy.special import erfc

    return erfc(k / np.sqrt(2.0))


def digitize(
    tracks: list[tuple[Truth, float]],
    n: int,
    geometry,
    pedestals: StripPedestals,
    rng,
    *,
    offsets_mm=None,
    response=DEFAULT_RESPONSE,
) -> StripEvents:
    """APV strip data of ``n`` events from track sets ``[(truth, arrival_dt_ns), ...]``."""
    stations = stations_by_id(geometry)
    if offsets_mm is None:
        offsets_mm = np.zeros((len(stations), 2))
    parts = [_deposits(t, geometry, offsets_mm, rng, response, dt) for t, dt in tracks]
    if response.fake_clusters_per_plane > 0:
        parts.append(_fake_clusters(n, geometry, rng, response))
    rows, dets, planes, strips, amps, times = (np.concatenate(c) for c in zip(*parts, strict=True))
    width = pedestals.pedestal_adc.shape[2]
    key = ((rows * len(stations) + dets) * 2 + planes) * width + strips
    shapes = amps[:, None] * apv_shape(times, response)
    unique_key, inverse = np.unique(key, return_inverse=True)
    signal = np.zeros((unique_key.size, 3))
    np.add.at(signal, inverse, shapes)
    noise_parts = _noise_strips(n, geometry, rng, pedestals, response)
    noise_key = (
        (np.concatenate(noise_parts[0]) * len(stations) + np.concatenate(noise_parts[1])) * 2
        + np.concatenate(noise_parts[2])
    ) * width + np.concatenate(noise_parts[3])
    noise_key = np.setdiff1d(np.unique(noise_key), unique_key)
    all_key = np.concatenate([unique_key, noise_key])
    signal = np.concatenate([signal, np.zeros((noise_key.size, 3))])
    is_noise_strip = np.concatenate(
        [np.zeros(unique_key.size, bool), np.ones(noise_key.size, bool)]
    )
    order = np.argsort(all_key, kind="stable")
    all_key, signal, is_noise_strip = all_key[order], signal[order], is_noise_strip[order]

    strip = all_key % width
    plane = (all_key // width) % 2
    det = (all_key // (2 * width)) % len(stations)
    row = all_key // (2 * width * len(stations))
    ped = pedestals.pedestal_adc[det, plane, strip]
    sigma = pedestals.noise_adc[det, plane, strip]
    noise = sigma[:, None] * rng.standard_normal((all_key.size, 3))
    # a noise strip is one whose noise passes zero suppression: draw one sample from the tail
    tail = response.zs_sigma + rng.exponential(1.0 / response.zs_sigma, is_noise_strip.sum())
    which = rng.integers(0, 3, tail.size)
    noise[np.flatnonzero(is_noise_strip), which] = tail * sigma[is_noise_strip]
    values = signal + noise
    readable = pedestals.status[det, plane, strip] == STRIP_GOOD
    passes = readable & (values.max(axis=1) > response.zs_sigma * sigma)
    raw = np.clip(np.rint(values + ped[:, None]), 0, 4095).astype(np.uint16)
    counts = np.bincount(row[passes], minlength=n)
    return StripEvents(
        event_offsets=np.concatenate(([0], np.cumsum(counts))),
        detector=det[passes].astype(np.uint8),
        plane=plane[passes].astype(np.uint8),
        strip=strip[passes].astype(np.uint16),
        samples=raw[passes],
    )


def _fake_clusters(n, geometry, rng, response):
    """Uncorrelated real-looking clusters (halo, delta rays) at random positions."""
    out = []
    for s in stations_by_id(geometry):
        for plane in (0, 1):
            k = rng.poisson(response.fake_clusters_per_plane, n)
            ev = np.repeat(np.arange(n), k)
            centre = rng.uniform(2, s.n_strips - 3, ev.size)
            strips = np.floor(centre).astype(np.int64)[:, None] + np.arange(-2, 3)[None, :]
            frac = np.exp(-0.5 * ((strips + 0.5 - centre[:, None]) * s.pitch / 0.2) ** 2)
            amp = (
                frac
                / frac.sum(axis=1, keepdims=True)
                * _moyal(rng, ev.size, response.charge_mpv_adc, response.charge_width_adc)[:, None]
            )
            rows = np.broadcast_to(ev[:, None], strips.shape).ravel()
            out.append(
                (
                    rows,
                    np.full(rows.size, s.id),
                    np.full(rows.size, plane),
                    strips.ravel(),
                    amp.ravel(),
                    np.repeat(
                        response.time_jitter_ns * rng.standard_normal(ev.size), strips.shape[1]
                    ),
                )
            )
    return [np.concatenate(c) for c in zip(*out, strict=True)]


def pedestal_run(n, geometry, pedestals, rng, *, signal_probability=0.02) -> StripEvents:
    """Random-trigger events without zero suppression; a few carry a particle's signal."""
    stations = stations_by_id(geometry)
    det, plane, strip = [], [], []
    for s in stations:
        for p in (0, 1):
            det.append(np.full(s.n_strips, s.id))
            plane.append(np.full(s.n_strips, p))
            strip.append(np.arange(s.n_strips))
    det, plane, strip = np.concatenate(det), np.concatenate(plane), np.concatenate(strip)
    readable = pedestals.status[det, plane, strip] != STRIP_DEAD
    det, plane, strip = det[readable], plane[readable], strip[readable]
    m = det.size
    ped = pedestals.pedestal_adc[det, plane, strip]
    sigma = pedestals.noise_adc[det, plane, strip]
    values = ped[None, :, None] + sigma[None, :, None] * rng.standard_normal((n, m, 3))
    hit = rng.random(n) < signal_probability
    for e in np.flatnonzero(hit):  # a few events: a beam particle near the plane centres
        for s in stations:
            for p in (0, 1):
                centre = int(np.clip(s.n_strips // 2 + rng.normal(0.0, 6.0), 2, s.n_strips - 3))
                sel = np.flatnonzero((det == s.id) & (plane == p) & (np.abs(strip - centre) <= 1))
                values[e, sel, :] += 80.0 * apv_shape(np.zeros(1))[0]
    raw = np.clip(np.rint(values), 0, 4095).astype(np.uint16)
    return StripEvents(
        event_offsets=np.arange(n + 1) * m,
        detector=np.tile(det, n).astype(np.uint8),
        plane=np.tile(plane, n).astype(np.uint8),
        strip=np.tile(strip, n).astype(np.uint16),
        samples=raw.reshape(n * m, 3),
    )
