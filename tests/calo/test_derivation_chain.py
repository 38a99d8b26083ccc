"""The derivation chain through condition files: pedestals -> templates -> calibrations -> stage.

Small synthetic runs (a pedestal run, an electron cell scan, a muon run) go
through the file-writing derivations; the stage then loads every condition
from the conditions database, as in production.
"""

import awkward as ak
import numpy as np
import pytest

from recon.calo.calo_stage import CaloConditions, calo_from_digits
from recon.calo.condition_files import ConditionHeader
from recon.calo.derivations import (
    run_counter_calibration,
    run_ecal_calibration,
    run_hcal_calibration,
    run_pulse_templates,
    run_sadc_pedestals,
)
from recon.calo.ecal_calibration import EcalCalibrationConfig
from recon.conditions import ConditionsDB
from tests.calo.calo_synthetic import RISE_NS, digits, group_digits, moyal, showers
from tests.conftest import CONDITIONS

MIP_SCINTILLATOR_GeV = 0.000978
RUN = 7


def _run(rng, truth, ecal_GeV, hcal_GeV, counters_GeV, pulses=True):
    n = ecal_GeV.shape[0]
    phase = rng.uniform(-6.25, 6.25, (n, 1))
    samples = [group_digits(dep.reshape(n, -1) * pulses, truth[name], RISE_NS[name], rng, phase)
               for name, dep in (("ecal", ecal_GeV), ("hcal", hcal_GeV),
                                 ("counters", counters_GeV))]
    return digits(*samples, n_events=n)


@pytest.fixture(scope="module")
def chain(truth, tmp_path_factory):
    rng = np.random.default_rng(61)
    root = tmp_path_factory.mktemp("derived")
    plots = root / "plots"
    header = ConditionHeader("invis2016", "t1", (0, 100), "synthetic test")
    base = ConditionsDB([CONDITIONS])
    outputs = {}
    pedestal_run = _run(rng, truth, np.zeros((300, 2, 6, 6)), np.zeros((300, 4, 3, 3)),
                        np.zeros((300, 11)))
    outputs["pedestals"] = run_sadc_pedestals(pedestal_run, base, RUN, header, root, plots)
    # electron cell scan: beam on every ECAL cell centre; S1, S2 and the SRD fire
    cell = np.repeat(np.arange(36), 60)
    ix, iy = np.divmod(cell, 6)
    ecal = showers(np.full(cell.size, 100.0), (ix - 3) * 38.2 + rng.normal(0, 3, cell.size),
                   (iy - 3) * 38.2 + rng.normal(0, 3, cell.size), rng)
    counters = np.zeros((cell.size, 11))
    counters[:, [0, 2]] = moyal(MIP_SCINTILLATOR_GeV, 0.1 * MIP_SCINTILLATOR_GeV,
                                (cell.size, 2), rng)
    counters[:, 4:7] = rng.exponential(0.020, (cell.size, 3))
    electrons = _run(rng, truth, ecal, np.zeros((cell.size, 4, 3, 3)), counters)
    # muons over the whole HCAL face: every module and S1, S2, V2, MU1-4 see a MIP
    n_mu = 700
    hcal = np.zeros((n_mu, 4, 9))
    hcal[np.arange(n_mu), :, rng.integers(0, 9, n_mu)] = moyal(2.5, 0.25, (4, n_mu), rng).T
    mu_counters = np.zeros((n_mu, 11))
    mu_counters[:, [0, 2, 3, 7, 8, 9, 10]] = moyal(MIP_SCINTILLATOR_GeV,
                                                   0.1 * MIP_SCINTILLATOR_GeV, (n_mu, 7), rng)
    muons = _run(rng, truth, np.zeros((n_mu, 2, 6, 6)), hcal.reshape(n_mu, 4, 3, 3), mu_counters)
    # hadrons showering in the HCAL: large HCAL pulses for its template (MIPs are too small)
    n_h = 300
    hadrons_GeV = rng.uniform(0.0, 12.0, (n_h, 4, 3, 3))
    hadrons = _run(rng, truth, np.zeros((n_h, 2, 6, 6)), hadrons_GeV, np.zeros((n_h, 11)))
    db = ConditionsDB([CONDITIONS, root])
    outputs["templates"] = run_pulse_templates(ak.concatenate([electrons, muons, hadrons]), db,
                                               RUN, header, root, plots)
    db = ConditionsDB([CONDITIONS, root])
    outputs["ecal"] = run_ecal_calibration(electrons, db, RUN, header, root, plots)
    outputs["hcal"] = run_hcal_calibration(muons, db, RUN, header, root, plots)
    outputs["counters"] = run_counter_calibration(electrons, muons, db, RUN, header, root, plots)
    db = ConditionsDB([CONDITIONS, root])
    return db, outputs, electrons, ecal, counters


def test_every_derivation_writes_condition_plot_and_summary(chain):
    _, outputs, *_ = chain
    for paths in outputs.values():
        for path in paths:
            assert path.stat().st_size > 0


def test_stage_with_derived_conditions(chain, truth):
    db, _, electrons, ecal_GeV, counters_GeV = chain
    conditions = CaloConditions.load(db, "invis2016", RUN)
    assert set(conditions.provenance()) >= {"sadc_pedestals", "ecal_calibration"}
    gain = conditions.ecal.gain_GeV_per_adc[1].reshape(-1) * truth["ecal"].gain_adc_per_GeV[36:]
    # the derived template fixes the amplitude scale (absorbed by the gains): compare spreads
    assert gain.std() / gain.mean() < 0.015
    hcal_gain = conditions.hcal.gain_GeV_per_adc.reshape(-1) * truth["hcal"].gain_adc_per_GeV
    assert hcal_gain.std() / hcal_gain.mean() < 0.03
    events = calo_from_digits(electrons, conditions)
    response = np.asarray(events.e_ecal_GeV) / ecal_GeV.sum(axis=(1, 2, 3))
    assert np.median(response) == pytest.approx(1.0, abs=0.01)
    s1 = np.asarray(events.s1_GeV)
    assert np.median(s1 / counters_GeV[:, 0]) == pytest.approx(1.0, abs=0.05)
    srd = np.asarray(events.srd1_GeV)
    assert srd.mean() == pytest.approx(counters_GeV[:, 5].mean(), rel=0.05)
    assert np.median(np.asarray(events.v1_GeV)) == pytest.approx(0.0, abs=1e-4)


def test_muon_cell_scan_intercalibrates_the_preshower(chain, truth, tmp_path):
    """``run_ecal_calibration`` with a muon cell scan (400 mu- per cell, a MIP in the preshower
    and main section of the aimed cell and in the central cell of every HCAL module, which
    times the event): the preshower gains follow the true ones to the precision of the MIP
    responses, far better than the 60 electrons per cell of the scan."""
    import json

    db, outputs, electrons, *_ = chain
    rng = np.random.default_rng(67)
    n_per_cell = 400
    cell = np.repeat(np.arange(36), n_per_cell)
    ecal = np.zeros((cell.size, 2, 36))
    ecal[np.arange(cell.size), 0, cell] = moyal(0.028, 0.0022, cell.size, rng)
    ecal[np.arange(cell.size), 1, cell] = moyal(0.30, 0.02, cell.size, rng)
    hcal = np.zeros((cell.size, 4, 9))
    hcal[:, :, 4] = moyal(2.5, 0.25, (cell.size, 4), rng)
    muon_scan = _run(rng, truth, ecal.reshape(-1, 2, 6, 6), hcal.reshape(-1, 4, 3, 3),
                     np.zeros((cell.size, 11)))
    header = ConditionHeader("invis2016", "t2", (0, 100), "synthetic test, muon scan")
    # the main-section MIP (9 counts at 30 ADC/GeV) of the noisiest, low-gain cells stands
    # only ~3 noise sigmas out: the isolation keeps ~45 % of their muons (88-95 % in the
    # simulation's scan), hence a lower minimum than the default 200 per cell
    config = EcalCalibrationConfig(min_muons_per_cell=100)
    condition, figure, summary_path = run_ecal_calibration(electrons, db, RUN, header, tmp_path,
                                                           tmp_path / "plots", config=config,
                                                           muon_digits=[muon_scan[:5000],
                                                                        muon_scan[5000:]])
    assert figure.stat().st_size > 0
    summary = json.loads(summary_path.read_text())
    assert summary["preshower_method"] == "muon_mip_intercalibration"
    assert summary["preshower_mip"]["cells_fitted"] == 36
    entries = np.array(summary["preshower_mip"]["mip_entries"])
    assert entries.min() > 0.4 * n_per_cell and np.median(entries) > 0.9 * n_per_cell
    timing = summary["preshower_mip"]["event_time"]
    # every muon timed by its HCAL MIPs, nearly every shower by its main-section pulses; at
    # the event time the fixed-time fit keeps the free fit's scale to a few 0.1 %
    assert timing["muons_with_event_time"] > 0.99
    assert timing["showers_with_event_time"] > 0.9
    assert timing["fixed_over_free_mean"] == pytest.approx(1.0, abs=0.01)

    def preshower_spread(path):
        from recon.calo.condition_files import array_from_json
        gain = array_from_json(json.loads(path.read_text())["data"]["gain_GeV_per_adc"])
        ratio = gain[0].reshape(-1) * truth["ecal"].gain_adc_per_GeV[:36]
        return ratio.std() / ratio.mean()

    with_muons, electrons_only = preshower_spread(condition), preshower_spread(outputs["ecal"][0])
    # MIP response of 400 muons: ~2 % (noise of 1-3 counts per sample against a 7-count MIP,
    # measured 2.2 %); the electron mean of 60 showers: ~7 %
    assert with_muons < 0.03
    assert with_muons < 0.5 * electrons_only


def test_derive_command_takes_a_muon_scan_for_the_ecal_calibration_only(tmp_path):
    import argparse
    from pathlib import Path

    from recon.commands import derive

    parser = argparse.ArgumentParser(prog="na64")
    derive.register(parser.add_subparsers(dest="command", required=True))
    common = ["--version", "v1", "--valid-runs", "0", "10", "--root", str(tmp_path / "c"),
              "--plots", str(tmp_path / "p")]
    args = parser.parse_args(["derive", "ecal-calibration", "scan.parquet", "--muon-scan",
                              "m1.parquet", "m2.parquet", *common])
    assert args.muon_scan == [Path("m1.parquet"), Path("m2.parquet")]
    assert parser.parse_args(["derive", "ecal-calibration", "scan.parquet",
                              *common]).muon_scan is None
    args = parser.parse_args(["derive", "hcal-calibration", "mu.parquet", "--muon-scan",
                              "m1.parquet", *common])
    with pytest.raises(SystemExit, match="ecal-calibration only"):
        args.func(args)
