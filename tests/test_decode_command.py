"""`na64 decode` and `na64 summarize-decode`: outputs, formats, reports, provenance, errors."""

from __future__ import annotations

import json

import awkward as ak
import pytest
import uproot
import xxhash

from recon.cli import main
from recon.decode import decode_file
from recon.io.tables import read_events, read_provenance
from tests.conftest import CONDITIONS

ARGS = ["--conditions", str(CONDITIONS)]


def test_decode_parquet_and_root_read_back_equal(tmp_path, raw_file, db):
    raw, batch = raw_file
    pq_out, root_out, report = tmp_path / "d.parquet", tmp_path / "d.root", tmp_path / "r.json"
    assert (
        main(
            [
                "decode",
                str(raw),
                "-o",
                str(pq_out),
                "--report",
                str(report),
                "--chunk-events",
                "16",
                *ARGS,
            ]
        )
        == 0
    )
    assert main(["decode", str(raw), "-o", str(root_out), "--format", "root", *ARGS]) == 0
    expected, _ = decode_file(raw, db)
    from_parquet = read_events(pq_out)
    with uproot.open(root_out) as f:  # what a ROOT user sees: one TTree "events"
        from_root = f["events"].arrays()
    assert from_parquet.fields == expected.fields
    for name in expected.fields:
        assert ak.array_equal(from_parquet[name], expected[name]), name
        assert ak.array_equal(from_root[name], expected[name]), name
    summary = json.loads(report.read_text())
    assert summary["events_read"] == summary["events_decoded"] == len(batch)
    assert (
        summary["events_rejected"] == 0
        and summary["rejected"] == []
        and summary["rejected_by_reason"] == {}
    )
    assert summary["bytes_read"] == raw.stat().st_size


def test_outputs_carry_provenance(tmp_path, raw_file):
    raw, _ = raw_file
    out = tmp_path / "d.parquet"
    main(["decode", str(raw), "-o", str(out), *ARGS])
    prov = read_provenance(out)
    assert prov["stage"] == "decode"
    assert prov["inputs"] == [
        {"file": raw.name, "xxh3_128": xxhash.xxh3_128(raw.read_bytes()).hexdigest()}
    ]
    assert set(prov["conditions"]) == {"channel_map", "daq"}
    assert prov["conditions"]["channel_map"]["version"] == "v1"
    assert {"code_version", "code_hash", "config_hash"} <= set(prov)


def test_decoding_is_byte_identical_on_rerun(tmp_path, raw_file):
    raw, _ = raw_file
    outputs = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for out in outputs:
        main(["decode", str(raw), "-o", str(out), *ARGS])
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


def test_corrupt_records_are_counted_in_the_report(tmp_path, raw_file):
    raw, batch = raw_file
    data = bytearray(raw.read_bytes())
    data[64 + 40] ^= 0xFF  # inside the first record: CRC mismatch
    raw.write_bytes(bytes(data))
    report = tmp_path / "r.json"
    assert (
        main(
            ["decode", str(raw), "-o", str(tmp_path / "d.parquet"), "--report", str(report), *ARGS]
        )
        == 0
    )
    summary = json.loads(report.read_text())
    assert summary["rejected"] == [{"offset": 64, "reason": "crc_mismatch"}]
    assert summary["events_read"] == len(batch) == summary["events_decoded"] + 1


def test_fail_policy_exits_with_a_clear_message(tmp_path, raw_file, caplog):
    raw, _ = raw_file
    data = bytearray(raw.read_bytes())
    data[64 + 40] ^= 0xFF
    raw.write_bytes(bytes(data))
    out = tmp_path / "d.parquet"
    assert main(["decode", str(raw), "-o", str(out), "--policy", "fail", *ARGS]) == 2
    assert f"{raw}: offset 64: crc_mismatch" in caplog.text
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_summary_adds_reports_up(tmp_path):
    reports = []
    for i, (read, bad) in enumerate([(10, 1), (20, 0)]):
        path = tmp_path / f"r{i}.json"
        path.write_text(
            json.dumps(
                {
                    "file": f"f{i}.na64raw",
                    "events_read": read,
                    "events_decoded": read - bad,
                    "events_rejected": bad,
                    "bytes_read": 100,
                    "xxh3_128": "x",
                    "rejected_by_reason": {"crc_mismatch": bad} if bad else {},
                }
            )
        )
        reports.append(str(path))
    out = tmp_path / "summary.json"
    assert main(["summarize-decode", *reports, "-o", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert (summary["events_read"], summary["events_decoded"], summary["events_rejected"]) == (
        30,
        29,
        1,
    )
    assert summary["rejected_by_reason"] == {"crc_mismatch": 1}


@pytest.mark.parametrize("pin", ["channel_map", "channel_map=", "=v1"])
def test_bad_pin_is_refused(tmp_path, raw_file, pin):
    raw, _ = raw_file
    with pytest.raises(SystemExit, match="KIND=VERSION"):
        main(["decode", str(raw), "-o", str(tmp_path / "d.parquet"), "--pin", pin, *ARGS])


def test_unknown_pinned_version_is_an_error(tmp_path, raw_file, caplog):
    raw, _ = raw_file
    assert (
        main(["decode", str(raw), "-o", str(tmp_path / "d.parquet"), "--pin", "daq=v7", *ARGS]) == 2
    )
    assert "'daq' version 'v7' (pinned) does not exist" in caplog.text
    assert not (tmp_path / "d.parquet").exists()
