"""Fixtures of the calorimetry tests: true channel constants and the matching conditions."""

from __future__ import annotations

import numpy as np
import pytest

from recon.calo.calo_stage import CaloConditions
from recon.calo.counters import CounterCalibration
from recon.calo.ecal_calibration import EcalCalibration
from recon.calo.hcal_calibration import HcalCalibration
from recon.calo.pulse_template import PulseTemplates
from recon.calo.sadc_channels import SadcLayout
from recon.calo.sadc_pedestals import GroupPedestals, SadcPedestals
from recon.calo.shower_model import ShowerModel
from recon.conditions import ConditionsDB
from tests.calo.calo_synthetic import TIMING, Channels, analytic_shapes, make_channels, showers
from tests.conftest import CONDITIONS

ECAL_GAIN_ADC_PER_GEV = (250.0, 30.0)   # preshower, main
HCAL_GAIN_ADC_PER_GEV = 40.0
# counters: S1 V1 S2 V2 (MIP ~1 MeV), SRD0-2 (~20 MeV), MU1-4 (MIP)
COUNTER_GAIN_ADC_PER_GEV = np.array([2e5, 2e5, 2e5, 2e5, 1e4, 1e4, 1e4, 2e5, 2e5, 2e5, 2e5])


@pytest.fixture(scope="session")
def geometry():
    return ConditionsDB([CONDITIONS]).geometry("invis2016", 1)


@pytest.fixture(scope="session")
def truth() -> dict[str, Channels]:
    rng = np.random.default_rng(7)
    pre = make_channels(36, rng, ECAL_GAIN_ADC_PER_GEV[0])
    main = make_channels(36, rng, ECAL_GAIN_ADC_PER_GEV[1])
    ecal = Channels(np.concatenate([pre.pedestal_adc, main.pedestal_adc]),
                    np.concatenate([pre.noise_adc, main.noise_adc]),
                    np.concatenate([pre.gain_adc_per_GeV, main.gain_adc_per_GeV]))
    counters = make_channels(11, rng, 1.0, gain_spread=0.0)
    counters.gain_adc_per_GeV[:] = COUNTER_GAIN_ADC_PER_GEV
    return {"ecal": ecal, "hcal": make_channels(36, rng, HCAL_GAIN_ADC_PER_GEV),
            "counters": counters}


def _expected_shape(rng) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Electron shape statistics at 100 GeV on cell (3, 3), from the tests' shower model."""
    deposits = showers(np.full(2000, 100.0), rng.normal(0, 3, 2000), rng.normal(0, 3, 2000), rng)
    block = deposits[:, 1, 2:5, 2:5]
    fractions = block / block.sum(axis=(1, 2), keepdims=True)
    f_pre = deposits[:, 0].sum(axis=(1, 2)) / deposits.sum(axis=(1, 2, 3))
    return fractions.mean(axis=0), fractions.std(axis=0), float(f_pre.mean()), float(f_pre.std())


@pytest.fixture(scope="session")
def conditions(geometry, truth) -> CaloConditions:
    """Conditions equal to the truth (true pedestals, shapes and gains)."""
    layout = SadcLayout.from_geometry(geometry)
    pedestals = SadcPedestals({
        g: GroupPedestals(layout.shape(g), truth[g].pedestal_adc,
                          np.repeat(truth[g].noise_adc[:, None], 2, axis=1),
                          np.full(layout.size(g), 1000))
        for g in ("ecal", "hcal", "counters")})
    templates = PulseTemplates(("ecal", "hcal", "counters"), analytic_shapes(), {})
    mean, sigma, f_pre, f_pre_sigma = _expected_shape(np.random.default_rng(8))
    ecal = EcalCalibration((1.0 / truth["ecal"].gain_adc_per_GeV).reshape(2, 6, 6),
                           np.zeros((2, 6, 6)), mean, sigma, f_pre, f_pre_sigma, 100.0)
    hcal = HcalCalibration((1.0 / truth["hcal"].gain_adc_per_GeV).reshape(4, 3, 3),
                           np.zeros((4, 3, 3)))
    counters = CounterCalibration(layout.counter_names, 1.0 / truth["counters"].gain_adc_per_GeV,
                                  np.zeros(11))
    return CaloConditions(geometry, layout, TIMING, pedestals, templates, ecal, hcal, counters,
                          ShowerModel.load())
