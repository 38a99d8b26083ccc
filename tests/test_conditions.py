"""The conditions layer: lookup by (kind, setup, run), clear errors, typed views of invis2016."""

from __future__ import annotations

import pytest
import yaml

from recon.conditions import ConditionsDB, ConditionsError


def _write(root, kind, version, runs, data=None, setup="invis2016"):
    path = root / setup / kind / f"{version}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "kind": kind,
        "setup": setup,
        "version": version,
        "valid_runs": list(runs),
        "data": data or {},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_lookup_by_run_range(tmp_path):
    _write(tmp_path, "ecal_calibration", "v1", (0, 99), {"gain": 1})
    _write(tmp_path, "ecal_calibration", "v2", (100, 200), {"gain": 2})
    db = ConditionsDB([tmp_path])
    assert db.data("ecal_calibration", "invis2016", 50)[0] == {"gain": 1}
    assert db.find("ecal_calibration", "invis2016", 150).version == "v2"


def test_missing_run_is_an_error_naming_the_ranges(tmp_path):
    _write(tmp_path, "ecal_calibration", "v1", (0, 99))
    with pytest.raises(ConditionsError, match=r"covers run 500 \(v1: 0-99\)"):
        ConditionsDB([tmp_path]).find("ecal_calibration", "invis2016", 500)


def test_missing_kind_and_setup_are_errors(tmp_path):
    _write(tmp_path, "geometry", "v1", (0, 10))
    db = ConditionsDB([tmp_path])
    with pytest.raises(ConditionsError, match="no 'pedestals'"):
        db.find("pedestals", "invis2016", 1)
    with pytest.raises(ConditionsError, match="setup 'invis2017'"):
        db.find("geometry", "invis2017", 1)


def test_overlap_is_ambiguous_unless_pinned(tmp_path):
    _write(tmp_path, "ecal_calibration", "v1", (0, 1000), {"gain": 1})
    _write(tmp_path, "ecal_calibration", "v2", (500, 1000), {"gain": 2})
    with pytest.raises(
        ConditionsError, match=r"ambiguous.*v1, v2.*conditions\.versions\.ecal_calibration"
    ):
        ConditionsDB([tmp_path]).find("ecal_calibration", "invis2016", 600)
    pinned = ConditionsDB([tmp_path], pins={"ecal_calibration": "v2"})
    assert pinned.data("ecal_calibration", "invis2016", 600)[0] == {"gain": 2}
    with pytest.raises(ConditionsError, match="covers run 10"):
        pinned.find("ecal_calibration", "invis2016", 10)


def test_same_version_in_two_roots_is_an_error(tmp_path):
    _write(tmp_path / "a", "geometry", "v1", (0, 10))
    _write(tmp_path / "b", "geometry", "v1", (0, 10))
    with pytest.raises(ConditionsError, match="defined twice"):
        ConditionsDB([tmp_path / "a", tmp_path / "b"]).find("geometry", "invis2016", 1)


def test_malformed_files_are_errors(tmp_path):
    path = _write(tmp_path, "geometry", "v1", (10, 0))
    with pytest.raises(ConditionsError, match="first <= last"):
        ConditionsDB([tmp_path]).find("geometry", "invis2016", 1)
    path.write_text("kind: geometry\n")
    with pytest.raises(ConditionsError, match="missing header field"):
        ConditionsDB([tmp_path]).find("geometry", "invis2016", 1)
    path.write_text(
        yaml.safe_dump(
            {
                "kind": "field",
                "setup": "invis2016",
                "version": "v1",
                "valid_runs": [0, 1],
                "data": {},
            }
        )
    )
    with pytest.raises(ConditionsError, match="sits under invis2016/geometry"):
        ConditionsDB([tmp_path]).find("geometry", "invis2016", 1)


def test_invis2016_geometry_matches_the_spec(db):
    geo = db.geometry("invis2016", run=1)
    assert geo.ecal.cell_x(3) == pytest.approx(456.5)
    assert geo.ecal.cell_x(0) == pytest.approx(456.5 - 3 * 38.2)
    assert geo.hcal.cell_x(1) == pytest.approx(480.0)
    assert geo.hcal_z_fronts == (24800.0, 26100.0, 27400.0, 28700.0)
    gem3 = geo.trackers["GEM3"]
    assert (gem3.z, gem3.x, gem3.n_strips, gem3.pitch) == (5500.0, 68.2, 256, 0.4)
    assert gem3.strip_position(0, plane=0) == pytest.approx(68.2 + 0.2 - 51.2)
    assert geo.counter_names() == [
        "S1",
        "V1",
        "S2",
        "V2",
        "SRD0",
        "SRD1",
        "SRD2",
        "MU1",
        "MU2",
        "MU3",
        "MU4",
    ]
    srd = [geo.counters[f"SRD{i}"] for i in range(3)]
    assert [c.x - c.size_x / 2 for c in srd] == [180.0, 240.0, 300.0]
    assert srd[-1].x + srd[-1].size_x / 2 == 360.0


def test_invis2016_channel_map_matches_the_spec(db):
    cmap = db.channel_map("invis2016", run=1)
    assert [(g.name, g.source, g.fields) for g in cmap.groups] == [
        ("ecal", 16, ("section", "ix", "iy")),
        ("hcal", 17, ("module", "ix", "iy")),
        ("counters", 18, ("counter",)),
    ]
    ecal = cmap.sadc_fields[16]
    assert ecal[0, :3].tolist() == [0, 5, 0] and ecal[71, :3].tolist() == [1, 0, 5]
    assert cmap.sadc_fields[17][35, :3].tolist() == [3, 2, 2]
    assert cmap.apv_tables[35][512 + 255].tolist() == [1, 255]
    assert cmap.apv_tables[32].shape[0] == 512 + 320 and cmap.apv_tables[32][320].tolist() == [
        -1,
        -1,
    ]
    assert cmap.apv_detectors == {0: "MM1", 1: "MM2", 2: "GEM3", 3: "GEM4"}
