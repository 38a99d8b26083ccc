"""Pedestal derivation from synthetic random-trigger runs (with pulses caught by chance)."""

import numpy as np

from recon.calo.condition_files import ConditionHeader, condition_path, write_condition
from recon.calo.sadc_channels import SadcLayout, sadc_hits
from recon.calo.sadc_pedestals import (
    derive_group_pedestals,
    derive_sadc_pedestals,
    load_sadc_pedestals,
    pedestal_summary,
    plot_pedestals,
)
from recon.conditions import ConditionsDB
from tests.calo.calo_synthetic import TIMING, digits, waveforms
from tests.conftest import CONDITIONS


def _random_triggers(rng, n_events, pedestal, noise, pulse_probability=0.02):
    n_ch = pedestal.shape[0]
    channel = np.tile(np.arange(n_ch), n_events)
    amplitude = np.where(rng.random(channel.size) < pulse_probability,
                         rng.uniform(10.0, 800.0, channel.size), 0.0)
    t = rng.uniform(-150.0, 230.0, channel.size)  # anywhere in the window
    return waveforms(amplitude, t, pedestal[channel], noise[channel], 20.0, rng), channel


def test_pedestals_and_noise_within_half_a_count():
    rng = np.random.default_rng(31)
    pedestal = rng.uniform(100.0, 300.0, size=(36, 2))
    noise = rng.uniform(1.0, 3.0, size=36)
    samples, channel = _random_triggers(rng, 500, pedestal, noise)
    result = derive_group_pedestals(samples, channel, (36,))
    assert np.abs(result.pedestal_adc - pedestal).max() < 0.5
    assert np.abs(result.noise_adc - noise[:, None]).max() < 0.2
    assert (result.n_waveforms > 450).all()  # pulses rejected, noise kept


def test_condition_file_round_trip(tmp_path, geometry, truth):
    rng = np.random.default_rng(32)
    n_events = 200
    groups = {}
    for name in ("ecal", "hcal", "counters"):
        channels = truth[name]
        groups[name], _ = _random_triggers(rng, n_events, channels.pedestal_adc,
                                           channels.noise_adc, pulse_probability=0.0)
    chunk = digits(groups["ecal"], groups["hcal"], groups["counters"], n_events)
    layout = SadcLayout.from_geometry(geometry)
    assert sadc_hits(chunk, "hcal", layout).samples.shape == (n_events * 36, 32)
    pedestals = derive_sadc_pedestals(chunk, layout, TIMING.adc_max)
    root = tmp_path / "derived"
    path = condition_path(root, "invis2016", "sadc_pedestals", "test1")
    write_condition(path, "sadc_pedestals", ConditionHeader("invis2016", "test1", (0, 99)),
                    pedestals.to_data())
    loaded = load_sadc_pedestals(ConditionsDB([CONDITIONS, root]), "invis2016", 5)
    for name in ("ecal", "hcal", "counters"):
        np.testing.assert_allclose(loaded.groups[name].pedestal_adc,
                                   truth[name].pedestal_adc, atol=0.5)
    assert pedestal_summary(loaded)["ecal"]["channels_without_pedestal"] == []
    assert plot_pedestals(loaded, tmp_path / "pedestals.png").stat().st_size > 0
