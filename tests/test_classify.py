"""Event classification in the (E_ECAL, E_HCAL) plane of the paper."""

from __future__ import annotations

import numpy as np

from recon.classify import ClassifyConfig, Region, classify_events


def _columns(e_ecal, e_hcal, e_hcal_total=None, mu=None, pileup=None):
    n = len(e_ecal)
    cols = {
        "e_ecal_GeV": np.asarray(e_ecal, float),
        "e_hcal_GeV": np.asarray(e_hcal, float),
        "e_hcal_total_GeV": np.asarray(e_hcal if e_hcal_total is None else e_hcal_total, float),
    }
    mu = np.zeros((n, 4)) if mu is None else np.asarray(mu, float)
    cols |= {f"mu{k + 1}_GeV": mu[:, k] for k in range(4)}
    if pileup is not None:
        cols["calo_pileup"] = np.asarray(pileup, bool)
    return cols


def test_regions_of_the_paper():
    cols = _columns(
        e_ecal=[30.0, 10.0, 60.0, 85.0, 90.0, 40.0, 70.0],
        e_hcal=[0.2, 85.0, 8.0, 0.3, 60.0, 0.1, 20.0],
        mu=[[0] * 4, [0] * 4, [2.5, 2.5, 2.5, 2.5], [0] * 4, [0] * 4, [0] * 4, [0] * 4],
        pileup=[0, 0, 0, 0, 0, 1, 0],
    )
    out = classify_events(cols, ClassifyConfig())
    assert out["region"].tolist() == [
        Region.OTHER,      # signal-box like
        Region.HADRONIC,   # E_ECAL + E_HCAL ~ E0
        Region.DIMUON,     # muons in the MU counters
        Region.OTHER,      # sideband C: e- energy loss upstream
        Region.PILEUP,     # 150 GeV: two particles
        Region.PILEUP,     # second pulse flagged by the calorimetry
        Region.HADRONIC,
    ]
    assert out["in_signal_box"].tolist() == [True, False, False, False, False, True, False]
    assert out["in_sideband_A"].tolist() == [False, True, False, False, False, False, False]
    assert out["in_sideband_C"].tolist() == [False, False, False, True, False, False, False]
    assert out["n_mu_planes"].tolist() == [0, 0, 4, 0, 0, 0, 0]


def test_box_and_sidebands_partition_the_plane():
    rng = np.random.default_rng(3)
    cols = _columns(rng.uniform(0, 120, 1000), rng.exponential(2.0, 1000))
    out = classify_events(cols, ClassifyConfig())
    labelled = out["in_signal_box"].astype(int) + out["in_sideband_A"] + out["in_sideband_C"]
    high_both = (cols["e_ecal_GeV"] >= 50) & (cols["e_hcal_GeV"] >= 1)
    assert np.array_equal(labelled, (~high_both).astype(int))
