"""SRD and classification validation: intervals, figures and the command on synthetic tables."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
from scipy import stats

from recon.classify import Region
from recon.cli import main
from recon.validation.events import (
    EVENT_COLUMNS,
    PROCESS_NAMES,
    TRUTH_COLUMNS,
    EventAcceptance,
    binomial_interval,
    classification_table,
    sample_table,
    suppression_figure,
    validate_events,
)

CL = 0.6827
PROCESS = {name: code for code, name in enumerate(PROCESS_NAMES)}


def _table(rng, species: dict[int, tuple[int, float]]) -> dict[str, np.ndarray]:
    """Joined columns: ``species`` maps truth pdg -> (events, SRD tag probability)."""
    pdg = np.concatenate([np.full(n, p, np.int32) for p, (n, _) in species.items()])
    p_tag = np.concatenate([np.full(n, f) for n, f in species.values()])
    n = pdg.size
    p_true = 100.0 + rng.normal(0, 1.0, n)
    e_ecal_true = np.where(pdg == 11, 100.0, 5.0)
    return {
        "run": np.full(n, 7, np.uint32),
        "spill": np.ones(n, np.uint32),
        "event": np.arange(n, dtype=np.uint32),
        "weight": np.ones(n),
        "srd_tag": rng.random(n) < p_tag,
        "srd_n_modules": np.zeros(n, np.uint8),
        "srd_GeV": np.zeros(n, np.float32),
        **{f"srd{k}_GeV": rng.exponential(0.02, n) * (pdg == 11) for k in range(3)},
        "region": np.where(pdg == 11, Region.OTHER, Region.HADRONIC).astype(np.uint8),
        "in_signal_box": pdg == 11,
        "e_ecal_GeV": e_ecal_true * (1.0 + 0.01 * rng.standard_normal(n)),
        "e_hcal_GeV": np.where(pdg == 11, 0.0, 95.0),
        "p_track_GeV": p_true * (1.0 + 0.004 * rng.standard_normal(n)),
        "track_ok": np.ones(n, bool),
        "pdg": pdg,
        "process": np.where(pdg == 11, PROCESS["hadronic"], PROCESS["hadron_shower"]).astype(
            np.int8
        ),
        "p_true_GeV": p_true,
        "e_ecal_true_GeV": e_ecal_true,
        "pileup_pdg": np.zeros(n, np.int32),
    }


def test_process_names_follow_the_simulation_truth_codes():
    from sim.deposits import Process

    assert tuple(p.name.lower() for p in Process) == PROCESS_NAMES


def test_limits_at_zero_and_full_count():
    n, tail = 1000, (1 - CL) / 2
    up = binomial_interval(0, n, CL)  # Clopper-Pearson: the central upper edge
    assert up["kind"] == "upper_limit" and up["low"] == 0
    assert up["high"] == pytest.approx(1 - tail ** (1 / n), rel=1e-9)
    low = binomial_interval(n, n, CL)
    assert low["kind"] == "lower_limit" and low["high"] == 1
    assert low["low"] == pytest.approx(tail ** (1 / n), rel=1e-9)
    bayes = binomial_interval(0, n, CL, "bayesian")  # one-sided at CL: P(f < high) = CL
    assert stats.beta(1, n + 1).cdf(bayes["high"]) == pytest.approx(CL)


@pytest.mark.parametrize("p_true", [0.02, 0.3, 0.97])
def test_clopper_pearson_covers_at_least_the_confidence_level(p_true):
    """Exact coverage: sum of binomial probabilities of the k whose interval holds p_true."""
    n = 60
    covered = [
        (i := binomial_interval(k, n, CL))["low"] <= p_true <= i["high"] for k in range(n + 1)
    ]
    coverage = stats.binom.pmf(np.arange(n + 1), n, p_true)[covered].sum()
    assert coverage >= CL - 1e-9


def test_bayesian_interval_is_the_central_beta_posterior_and_inside_clopper_pearson():
    k, n = 7, 40
    bayes = binomial_interval(k, n, CL, "bayesian")
    posterior = stats.beta(k + 1, n - k + 1)
    assert posterior.cdf(bayes["high"]) - posterior.cdf(bayes["low"]) == pytest.approx(CL)
    cp = binomial_interval(k, n, CL)
    assert cp["low"] <= bayes["low"] and bayes["high"] <= cp["high"]


def test_zero_mistags_give_only_a_lower_bound_on_the_suppression():
    out = suppression_figure(np.zeros(5000, bool), CL)
    assert out["value"] is None and out["clopper_pearson"]["high"] is None
    # k = 0: mis-tag < 1 - ((1 - CL) / 2)^(1/n) ~ -ln((1 - CL) / 2) / n: suppression > n / 1.84
    assert out["lower_bound"] == pytest.approx(5000 / -np.log((1 - CL) / 2), rel=1e-3)
    assert out["clopper_pearson"]["kind"] == "lower_bound"


def test_measured_efficiency_and_suppression_bracket_the_true_values():
    rng = np.random.default_rng(5)
    table = _table(rng, {11: (4000, 0.97), -211: (60_000, 1 / 2000), -321: (500, 0.0)})
    figures = validate_events(table)
    eff = figures["srd"]["electron_efficiency"]
    cp = eff["clopper_pearson"]
    # 1 sigma intervals of n = 4000: half-width ~ sqrt(0.97 * 0.03 / 4000) = 0.0027
    assert cp["low"] < eff["value"] < cp["high"] and cp["high"] - cp["low"] < 0.007
    assert abs(eff["value"] - 0.97) < 4 * 0.0027
    pions = figures["srd"]["pion_suppression"]
    # ~30 mis-tags: the interval spans about +-20 % around 2000
    assert pions["clopper_pearson"]["low"] < pions["value"] < pions["clopper_pearson"]["high"]
    assert 2000 / 1.8 < pions["value"] < 2000 * 1.8
    assert figures["srd"]["kaon_suppression"]["value"] is None
    assert figures["pass_by_goal"] == {"electron_efficiency": True, "pion_suppression": True}
    assert figures["events_by_species"] == {"K-": 500, "pi-": 60_000, "e-": 4000}


def test_goals_use_the_conservative_end_of_the_interval():
    rng = np.random.default_rng(6)
    # efficiency 0.95 exactly: the lower edge of its interval is below the goal
    table = _table(rng, {11: (2000, 1.0), -211: (2500, 0.0)})
    table["srd_tag"][:2000] = np.arange(2000) < 1900
    figures = validate_events(table)
    assert figures["srd"]["electron_efficiency"]["value"] == pytest.approx(0.95)
    # 2500 pions, none tagged: suppression > 2500 / 1.84 = 1360
    assert figures["srd"]["pion_suppression"]["lower_bound"] > 1e3
    assert figures["pass_by_goal"] == {"electron_efficiency": False, "pion_suppression": True}
    assert figures["pass"] is False
    strict = validate_events(table, EventAcceptance(suppression_goal=1.5e3))
    assert strict["pass_by_goal"]["pion_suppression"] is False


def test_classification_table_sums_weights_per_process_and_region():
    table = {
        "region": np.array([0, 2, 2, 3, 1, 1], np.uint8),
        "process": np.array([1, 1, 1, 1, 2, 2], np.int8),
        "weight": np.array([1.0, 2.0, 2.0, 5.0, 0.5, 0.5]),
        "in_signal_box": np.array([True, False, False, False, False, True]),
    }
    out = classification_table(table)
    hadronic = out["by_process"]["hadronic"]
    assert hadronic["events"] == 4 and hadronic["weighted"] == 10.0
    assert hadronic["weighted_by_region"] == {
        "other": 1.0, "dimuon": 0.0, "hadronic": 4.0, "pileup": 5.0,
    }  # fmt: skip
    assert hadronic["fraction_by_region"]["pileup"] == 0.5
    assert out["by_process"]["dimuon"]["fraction_by_region"]["dimuon"] == 1.0
    assert out["by_process"]["dimuon"]["signal_box_weighted"] == 0.5


def test_momentum_resolution_and_ecal_response_of_electrons():
    rng = np.random.default_rng(7)
    figures = validate_events(_table(rng, {11: (5000, 0.99), -211: (100, 0.0)}))
    momentum = figures["electron_momentum"]
    # p_track = p_true (1 + 0.004 z): half-width 0.004 (bootstrap error ~1.5 %)
    assert momentum["relative"]["half_width"] == pytest.approx(0.004, rel=0.06)
    assert momentum["absolute_GeV"]["half_width"] == pytest.approx(0.4, rel=0.06)
    assert abs(momentum["relative"]["median"]) < 3e-4
    response = figures["ecal_response"]["electrons"]["ratio"]
    assert response["median"] == pytest.approx(1.0, abs=5e-4)
    assert response["half_width"] == pytest.approx(0.01, rel=0.06)
    assert figures["ecal_response"]["signal"]["ratio"] is None  # no A' events


def test_sample_table_joins_truth_in_any_order():
    rng = np.random.default_rng(8)
    table = _table(rng, {11: (50, 1.0), -211: (50, 0.0)})
    order = rng.permutation(100)
    truth = {k: table[k][order] for k in TRUTH_COLUMNS}
    joined = sample_table({k: table[k] for k in EVENT_COLUMNS}, truth)
    assert np.array_equal(joined["event"], table["event"])
    assert np.array_equal(joined["pdg"], table["pdg"])


def test_command_writes_figures_and_plots(tmp_path):
    rng = np.random.default_rng(9)
    table = _table(rng, {11: (300, 0.98), -211: (3000, 0.0)})
    table["process"][:100] = PROCESS["aprime"]
    events, truth = tmp_path / "events.parquet", tmp_path / "truth.parquet"
    reverse = np.arange(table["run"].size)[::-1]
    ak.to_parquet(ak.zip({k: table[k] for k in EVENT_COLUMNS}, depth_limit=1), events)
    ak.to_parquet(ak.zip({k: table[k][reverse] for k in TRUTH_COLUMNS}, depth_limit=1), truth)
    out, plots = tmp_path / "events.json", tmp_path / "plots"
    args = ["validate-events", "--events", str(events), "--truth", str(truth)]
    args += ["--output-json", str(out), "--plots", str(plots), "--srd-min-modules", "3"]
    assert main(args) == 0
    figures = json.loads(out.read_text())
    assert figures["srd"]["signal_efficiency"]["n"] == 100
    assert figures["srd"]["electron_efficiency"]["n"] == 200
    assert figures["srd_config"]["min_modules"] == 3
    assert figures["inputs"]["runs"] == [7]
    assert len(list(plots.glob("events_validation_*.png"))) == 4
