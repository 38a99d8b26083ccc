"""The SRD electron tag: energy window, timing, 3-of-3 and 2-of-3 modes."""

from __future__ import annotations

import numpy as np
import pytest

from recon.srd import SrdConfig, srd_tag


def _columns(energies, times):
    energies, times = np.asarray(energies, float), np.asarray(times, float)
    cols = {f"srd{k}_GeV": energies[:, k] for k in range(3)}
    return cols | {f"srd{k}_t_ns": times[:, k] for k in range(3)}


def test_window_and_timing():
    cols = _columns(
        [[0.02, 0.03, 0.01], [0.02, 0.0, 0.01], [0.02, 0.5, 0.01], [0.02, 0.02, 0.02]],
        [[0.0, 3.0, -2.0], [0.0, np.nan, 1.0], [0.0, 0.0, 0.0], [0.0, 40.0, 0.0]],
    )
    out = srd_tag(cols, SrdConfig(module_min_GeV=0.001, module_max_GeV=0.1, min_modules=3))
    assert out["srd_n_modules"].tolist() == [3, 2, 2, 2]
    assert out["srd_tag"].tolist() == [True, False, False, False]
    two_of_three = srd_tag(cols, SrdConfig(min_modules=2, module_max_GeV=0.1))
    assert two_of_three["srd_tag"].tolist() == [True, True, True, True]
    assert out["srd_GeV"][0] == pytest.approx(0.06)


@pytest.mark.parametrize("bad", [{"min_modules": 0}, {"min_modules": 4}, {"module_min_GeV": 0.2}])
def test_bad_configuration_is_refused(bad):
    with pytest.raises(ValueError):
        SrdConfig(**bad)
