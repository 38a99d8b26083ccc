"""``na64 align`` on a simulated run with displaced GEMs: the offsets come back.

The fast simulation (public API, no trigger: ``tests/validation/sim_momentum_scan.py``)
runs with a geometry whose GEM3 and GEM4 are shifted; the run is decoded and
aligned with the nominal geometry (MM1, MM2 the references). With a
monochromatic beam (``--beam-spread 0``) the momentum-scale mode is fixed
exactly; the statistical error is then that of the extrapolation from the two
reference stations, 10-15 um per coordinate for the ~3300 complete tracks of
5000 events.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from recon.cli import main
from recon.conditions import ConditionsDB
from recon.tracking import load_alignment
from tests.conftest import CONDITIONS
from tests.validation.sim_momentum_scan import (
    simulate_fixed_momentum_run,
    write_true_strip_pedestals,
)

INJECTED_MM = {"GEM3": (0.45, -0.30), "GEM4": (-0.60, 0.25)}


def _misaligned_root(tmp_path):
    doc = yaml.safe_load((CONDITIONS / "invis2016" / "geometry" / "v1.yaml").read_text())
    doc["version"] = "v9"
    for name, (dx, dy) in INJECTED_MM.items():
        doc["data"]["trackers"][name]["x"] += dx
        doc["data"]["trackers"][name]["y"] += dy
    root = tmp_path / "misaligned"
    (root / "invis2016" / "geometry").mkdir(parents=True)
    (root / "invis2016" / "geometry" / "v9.yaml").write_text(yaml.safe_dump(doc))
    return root


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_align_command_recovers_injected_offsets(tmp_path):
    run = 3100
    simulate_fixed_momentum_run(
        100.0, run, 5000, 2016, tmp_path,
        conditions_roots=[CONDITIONS, _misaligned_root(tmp_path)],
        condition_pins={"geometry": "v9"},
    )  # fmt: skip
    derived = tmp_path / "derived"
    write_true_strip_pedestals(
        tmp_path / f"true_constants_run{run}.json", derived, conditions_roots=[CONDITIONS]
    )
    digits = tmp_path / "d.parquet"
    assert main(["decode", str(tmp_path / f"run{run}.na64raw"), "-o", str(digits),
                 "--conditions", str(CONDITIONS)]) == 0  # fmt: skip
    out = tmp_path / "aligned"
    plots = tmp_path / "plots"
    assert main(["align", str(digits), "--root", str(out), "--version", "v2",
                 "--valid-runs", "3000", "3999", "--plots", str(plots), "--beam-spread", "0",
                 "--conditions", str(CONDITIONS), "--conditions", str(derived)]) == 0  # fmt: skip

    db = ConditionsDB([CONDITIONS, out], pins={"alignment": "v2"})
    geometry = db.geometry("invis2016", run)
    alignment = load_alignment(db, "invis2016", run, geometry)
    expected = np.zeros((4, 2))
    for name, offsets in INJECTED_MM.items():
        expected[geometry.trackers[name].id] = offsets
    # ~3300 complete tracks: the GEM offsets are extrapolations of the MM1-MM2 line
    # (lever arm ~5), statistical error 10-15 um per coordinate (measured over four
    # 5000-event samples: |error| <= 18 um); 3-4 sigma here. The 20 um goal is
    # met with 40k events (docs/tracking.md, "Validation on the simulation").
    np.testing.assert_allclose(alignment.offsets_mm, expected, atol=0.050)
    np.testing.assert_array_equal(alignment.offsets_mm[:2], 0.0)  # references held

    summary = json.loads((plots / "alignment_v2.summary.json").read_text())
    assert summary["report"]["tracks_used"] > 2500
    before, after = summary["residuals_before"], summary["residuals_after"]
    assert abs(before["GEM3.x"]["median_mm"]) > 0.1
    for key, row in after.items():
        assert abs(row["median_mm"]) < 0.005, key
    assert (plots / "alignment_v2.png").stat().st_size > 0
    condition = json.loads((out / "invis2016" / "alignment" / "v2.json").read_text())
    assert condition["kind"] == "alignment" and condition["valid_runs"] == [3000, 3999]
