"""The paper's selection: named cuts, cut flow and N-1 tables on small synthetic samples."""

from __future__ import annotations

import numpy as np
import pytest

from recon.analysis.selection import (
    PAPER_CUTS,
    PackedSelection,
    SelectionConfig,
    cutflow,
    n_minus_one,
    paper_selection,
)
from recon.classify import ClassifyConfig


def _columns(**overrides):
    """Six events passing everything (inside the box), then the overrides per column."""
    n = 6
    cols = {
        "theta_in_mrad": np.full(n, 0.1),
        "srd_tag": np.ones(n, bool),
        "ecal_shape_chi2": np.full(n, 1.0),
        "v2_GeV": np.zeros(n),
        "e_ecal_GeV": np.full(n, 30.0),
        "e_hcal_GeV": np.full(n, 0.2),
    }
    for name, values in overrides.items():
        cols[name] = np.asarray(values, dtype=cols[name].dtype)
    return cols


def test_packed_selection_all_and_require():
    sel = PackedSelection(4)
    sel.add("a", [True, True, False, False])
    sel.add("b", [True, False, True, False])
    assert sel.names == ("a", "b")
    assert sel.all("a", "b").tolist() == [True, False, False, False]
    assert sel.all().tolist() == [True] * 4
    assert sel.require(a=True, b=False).tolist() == [False, True, False, False]
    assert sel.require(a=False).tolist() == [False, False, True, True]
    with pytest.raises(ValueError):
        sel.add("a", [True] * 4)
    with pytest.raises(ValueError):
        sel.add("c", [True] * 3)
    with pytest.raises(KeyError):
        sel.all("missing")


def test_each_cut_of_the_paper_and_missing_measurements():
    cols = _columns(
        theta_in_mrad=[0.1, 0.5, np.nan, 0.1, 0.1, 0.1],
        ecal_shape_chi2=[1.0, 1.0, 1.0, 9.0, np.nan, 1.0],
        v2_GeV=[0.0, 0.0, 0.0, 0.0, 0.0, np.nan],
    )
    sel = paper_selection(cols, SelectionConfig(theta_in_max_mrad=0.3, shower_chi2_max=5.0))
    assert sel.names == PAPER_CUTS
    assert sel.all("track_angle").tolist() == [True, False, False, True, True, True]
    assert sel.all("shower_shape").tolist() == [True, True, True, False, False, True]
    assert sel.all("v2_veto").tolist() == [True] * 6  # no V2 pulse: no activity
    cols = _columns(
        v2_GeV=[0.0, 0.0004, 0.0005, 0.002, 0.0, 0.0],
        e_ecal_GeV=[49.9, 50.0, 30, 30, 30, 30],
        e_hcal_GeV=[0.99, 0.2, 1.0, 0.2, 0.2, 0.2],
    )
    sel = paper_selection(cols, SelectionConfig(v2_max_GeV=0.0005))
    assert sel.all("v2_veto").tolist() == [True, True, False, False, True, True]
    assert sel.all("ecal_box").tolist() == [True, False, True, True, True, True]
    assert sel.all("hcal_box").tolist() == [True, True, False, True, True, True]


def test_box_taken_from_the_classification():
    classify = ClassifyConfig(signal_box_ecal_max_GeV=60.0, hcal_zero_GeV=2.0)
    config = SelectionConfig.with_box_of(classify, theta_in_max_mrad=0.4)
    assert (config.ecal_max_GeV, config.hcal_max_GeV, config.theta_in_max_mrad) == (60, 2, 0.4)
    with pytest.raises(ValueError):
        SelectionConfig(shower_chi2_max=0.0)


def _stepped_sample():
    """Events failing exactly one cut each (index k fails cut k), two passing all; weights."""
    n_cuts = len(PAPER_CUTS)
    sel = PackedSelection(n_cuts + 2)
    for k, name in enumerate(PAPER_CUTS):
        mask = np.ones(n_cuts + 2, bool)
        mask[k] = False
        sel.add(name, mask)
    weights = np.arange(1.0, n_cuts + 3)  # 1, 2, ..., 8
    return sel, weights


def test_cutflow_counts_and_weights_exact():
    sel, w = _stepped_sample()
    table = cutflow(sel, w, PAPER_CUTS)
    assert table["cut"].tolist() == ["initial", *PAPER_CUTS]
    assert table["n"].tolist() == [8, 7, 6, 5, 4, 3, 2]
    expected = [w.sum() - w[:k].sum() for k in range(7)]
    np.testing.assert_allclose(table["sum_w"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(table["sum_w_err"], [np.sqrt(np.sum(w[k:] ** 2)) for k in range(7)])
    np.testing.assert_allclose(table["eff_step"][1:], np.array(expected[1:]) / expected[:-1])
    np.testing.assert_allclose(table["eff_cumulative"], np.array(expected) / w.sum())


def test_n_minus_one_semantics():
    sel, w = _stepped_sample()
    table = n_minus_one(sel, w, PAPER_CUTS)
    assert table["cut"].tolist() == ["initial", *PAPER_CUTS, "all"]
    # leaving out cut k brings back exactly the event that fails only cut k
    assert table["n"].tolist() == [8, 3, 3, 3, 3, 3, 3, 2]
    for k in range(len(PAPER_CUTS)):
        assert table["sum_w"][k + 1] == pytest.approx(w[-2:].sum() + w[k])
        assert table["eff_step"][k + 1] == pytest.approx(w[-2:].sum() / (w[-2:].sum() + w[k]))
    assert table["sum_w"][-1] == pytest.approx(15.0)
