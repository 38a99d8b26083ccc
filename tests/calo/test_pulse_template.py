"""Pulse-template derivation from synthetic pulses of random sampling phase."""

import numpy as np
import pytest

from recon.calo.pulse_template import (
    PulseTemplates,
    derive_group_template,
    derive_pulse_templates,
    plot_pulse_templates,
    template_summary,
)
from recon.calo.sadc_channels import SadcLayout
from recon.calo.sadc_pedestals import GroupPedestals, SadcPedestals
from recon.calo.waveform import PulseShapes, reconstruct_waveforms
from tests.calo.calo_synthetic import RISE_NS, TIMING, digits, pulse, waveforms


def _pulses(rng, n, rise):
    amplitude = rng.normal(1500.0, 60.0, n)  # a narrow spectrum, as the cell-scan central cell
    t = rng.uniform(-6.25, 6.25, n)          # asynchronous trigger: every sampling phase
    pedestal = rng.uniform(100.0, 300.0, size=(n, 2))
    noise = rng.uniform(1.0, 3.0, n)
    return waveforms(amplitude, t, pedestal, noise, rise, rng), pedestal, noise, amplitude


@pytest.mark.parametrize("group", ["ecal", "hcal"])
def test_template_matches_the_true_shape(group):
    rng = np.random.default_rng(41)
    raw, pedestal, noise, amplitude = _pulses(rng, 4000, RISE_NS[group])
    values, n_used = derive_group_template(raw, pedestal, noise, TIMING)
    assert n_used == 4000
    grid = -150.0 + 0.5 * np.arange(values.size)
    true = pulse(grid, RISE_NS[group])
    assert np.abs(values - true).max() < 0.03  # of the peak
    # amplitudes fitted with the derived template: phase-dependent scale below 1 %
    shapes = PulseShapes(values[None, :], -150.0, 0.5)
    fit = reconstruct_waveforms(raw, np.zeros(raw.shape[0], np.int64), pedestal, noise, shapes,
                                TIMING)
    ratio = fit.amplitude_adc / amplitude
    assert ratio.std() < 0.01


def test_templates_per_group_and_outputs(tmp_path, geometry, truth):
    rng = np.random.default_rng(42)
    n_events = 700
    groups = {}
    for name in ("ecal", "hcal", "counters"):
        ch = truth[name]
        n_ch = ch.noise_adc.size
        amplitude = rng.normal(1200.0, 50.0, (n_events, n_ch)).reshape(-1)
        t = np.repeat(rng.uniform(-6.25, 6.25, n_events), n_ch)  # one phase per event
        groups[name] = waveforms(amplitude, t, np.tile(ch.pedestal_adc, (n_events, 1)),
                                 np.tile(ch.noise_adc, n_events), RISE_NS[name], rng)
    chunk = digits(groups["ecal"], groups["hcal"], groups["counters"], n_events)
    layout = SadcLayout.from_geometry(geometry)
    pedestals = SadcPedestals({g: GroupPedestals(layout.shape(g), truth[g].pedestal_adc,
                                                 np.repeat(truth[g].noise_adc[:, None], 2, 1),
                                                 np.zeros(layout.size(g), int))
                               for g in ("ecal", "hcal", "counters")})
    templates = derive_pulse_templates(chunk, layout, pedestals, TIMING)
    again = PulseTemplates.from_data(templates.to_data())
    assert again.names == ("ecal", "hcal", "counters")
    summary = template_summary(again)
    for name in again.names:
        rise = summary[name]["rise_10_90_ns"]
        true_grid = np.arange(-150.0, 250.5, 0.5)
        true = pulse(true_grid, RISE_NS[name])
        above = true_grid[true >= 0.1][0], true_grid[true >= 0.9][0]
        assert rise == pytest.approx(above[1] - above[0], abs=1.5)
    assert plot_pulse_templates(again, tmp_path / "templates.png").stat().st_size > 0


def test_pulse_subset_is_spread_over_an_ordered_run():
    """A cell scan visits the cells in turn: a capped pulse sample must span the whole run,
    not its first channels (the first 50 000 pulses of a 28 800-event scan were 8 cells)."""
    from recon.calo.pulse_template import _spread_subset

    rows = np.arange(0, 100_000, 2)
    subset = _spread_subset(rows, 1000)
    assert subset.size == 1000 and subset[0] == rows[0] and subset[-1] == rows[-1]
    assert np.unique(subset).size == 1000
    assert np.all(np.diff(subset) >= 2 * (rows.size // 1000) - 2)  # evenly spaced
    np.testing.assert_array_equal(_spread_subset(rows[:500], 1000), rows[:500])
