"""Signal efficiency factors of the A' search on synthetic selections."""

import numpy as np
import pytest

from recon.analysis.selection import PackedSelection
from recon.analysis.signal_efficiency import (
    SignalWindow,
    clopper_pearson,
    efficiency_breakdown,
    generated_in_window,
)

CUTS = ("track_angle", "srd_tag", "shower_shape", "v2_veto", "ecal_box", "hcal_box")
WINDOW = SignalWindow(beam_energy_GeV=100.0, x_min=0.5)


def _selection(failing: dict[str, np.ndarray], n: int) -> PackedSelection:
    selection = PackedSelection(n)
    for name in CUTS:
        mask = np.ones(n, bool)
        mask[failing.get(name, [])] = False
        selection.add(name, mask)
    return selection


def test_factors_multiply_to_the_total_and_follow_the_paper_breakdown():
    n = 1000
    e_aprime = np.full(n, 80.0)
    e_aprime[:100] = 30.0  # outside the window: not counted anywhere
    track_ok = np.ones(n, bool)
    track_ok[100:120] = False  # 20 without track: acceptance
    failing = {"srd_tag": np.arange(120, 200), "v2_veto": np.arange(200, 240),
               "hcal_box": np.arange(240, 280), "ecal_box": np.arange(280, 290)}
    result = efficiency_breakdown(
        _selection(failing, n), e_aprime_GeV=e_aprime, track_ok=track_ok,
        pileup=np.zeros(n, bool), n_generated_in_window=1000.0, window=WINDOW,
    )
    steps = {s["name"]: s for s in result["steps"]}
    assert steps["acceptance"]["passed"] == 880 and steps["acceptance"]["total"] == 1000
    assert steps["analysis"]["value"] == pytest.approx(800 / 880)
    assert steps["v2"]["value"] == pytest.approx(760 / 800)
    assert steps["hcal"]["value"] == pytest.approx(720 / 760)
    assert steps["ecal"]["value"] == pytest.approx(710 / 720)
    product = np.prod([s["value"] for s in result["steps"]])
    assert result["efficiency"] == pytest.approx(product) == pytest.approx(0.710)
    assert result["efficiency_low"] < 0.710 < result["efficiency_high"]
    assert result["n_selected"] == 710


def test_pileup_loss_compares_events_with_and_without_a_second_particle():
    n = 400
    pileup = np.zeros(n, bool)
    pileup[:100] = True
    failing = {"hcal_box": np.arange(0, 50)}  # half of the pile-up events fail the veto
    result = efficiency_breakdown(
        _selection(failing, n), e_aprime_GeV=np.full(n, 90.0), track_ok=np.ones(n, bool),
        pileup=pileup, n_generated_in_window=n, window=WINDOW,
    )
    assert result["pileup_fraction"] == pytest.approx(0.25)
    assert result["pileup_loss"] == pytest.approx(0.5)


def test_generated_in_window_counts_partial_bins_by_overlap():
    histogram = {"edges_GeV": list(np.arange(0.0, 111.0, 10.0)), "counts": [1.0] * 11}
    # window (50, 100): bins 50-60 ... 90-100 -> 5 bins
    assert generated_in_window(histogram, WINDOW) == pytest.approx(5.0)
    assert generated_in_window(histogram, SignalWindow(100.0, 0.55)) == pytest.approx(4.5)


def test_clopper_pearson_covers_the_fraction_and_handles_the_edges():
    low, high = clopper_pearson(50, 100)
    assert low < 0.5 < high and high - low == pytest.approx(0.1, abs=0.01)
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0
    assert clopper_pearson(0, 0) == (0.0, 1.0)
