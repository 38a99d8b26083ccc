"""`na64 chain` (stages in one process), `--skip-current` (keep a current output) and
`na64 manifest`, on small generated raw files."""

from __future__ import annotations

import json
import logging

import pytest

from recon.cli import main
from recon.commands.chain import split_commands
from recon.io.tables import read_provenance
from recon.provenance import file_checksum
from tests.conftest import CONDITIONS

ARGS = ["--conditions", str(CONDITIONS)]


def _decode(raw, out, report, *extra):
    return ["decode", str(raw), "-o", str(out), "--report", str(report), *ARGS, *extra]


def test_chain_runs_its_stages_like_separate_commands(tmp_path, raw_file):
    raw, _ = raw_file
    alone, chained = tmp_path / "alone", tmp_path / "chained"
    for d in (alone, chained):
        d.mkdir()
    assert main(_decode(raw, alone / "d.parquet", alone / "r.json")) == 0
    assert main(["summarize-decode", str(alone / "r.json"), "-o", str(alone / "s.json")]) == 0
    summarize = ["summarize-decode", str(chained / "r.json"), "-o", str(chained / "s.json")]
    chain = [*_decode(raw, chained / "d.parquet", chained / "r.json"), "::", *summarize]
    assert main(["chain", *chain]) == 0
    for name in ("d.parquet", "r.json", "s.json"):
        assert (alone / name).read_bytes() == (chained / name).read_bytes()


def test_chain_stops_at_the_first_failing_stage(tmp_path):
    bad = tmp_path / "nope.na64raw"
    summary = tmp_path / "s.json"
    chain = [*_decode(bad, tmp_path / "d.parquet", tmp_path / "r.json"), "::",
             "summarize-decode", str(tmp_path / "r.json"), "-o", str(summary)]  # fmt: skip
    assert main(["chain", *chain]) != 0
    assert not summary.exists()


def test_chain_refuses_what_is_not_a_stage_command():
    with pytest.raises(SystemExit):
        split_commands(["chain", "decode", "x"])
    assert split_commands(["::", "merge", "a", "::"]) == [["merge", "a"]]


def test_skip_current_keeps_an_output_made_the_same_way(tmp_path, raw_file, caplog):
    raw, _ = raw_file
    out, report = tmp_path / "d.parquet", tmp_path / "r.json"
    assert main(_decode(raw, out, report, "--skip-current")) == 0
    first = out.stat().st_mtime_ns, out.read_bytes()
    with caplog.at_level(logging.INFO, logger="na64"):
        assert main(_decode(raw, out, report, "--skip-current")) == 0
    assert "kept" in caplog.text
    assert (out.stat().st_mtime_ns, out.read_bytes()) == first


@pytest.mark.parametrize(
    "change", ["configuration", "input", "missing report", "unreadable output", "no flag"]
)
def test_skip_current_redoes_an_output_that_is_not_current(tmp_path, raw_file, change):
    raw, _ = raw_file
    out, report = tmp_path / "d.parquet", tmp_path / "r.json"
    assert main(_decode(raw, out, report, "--chunk-events", "16")) == 0
    before = read_provenance(out)
    extra = ["--skip-current", "--chunk-events", "16"]
    if change == "configuration":
        extra[-1] = "32"
    elif change == "input":
        raw.write_bytes(raw.read_bytes()[:-8])  # the last record cut short
    elif change == "missing report":
        report.unlink()
    elif change == "unreadable output":
        out.write_bytes(b"not parquet")
    else:
        extra.remove("--skip-current")
    out.touch()
    stamp = out.stat().st_mtime_ns
    main(_decode(raw, out, report, *extra))  # a truncated raw file decodes with rejections
    assert out.stat().st_mtime_ns != stamp  # rewritten
    after = read_provenance(out)
    if change == "configuration":
        assert after["config"]["chunk_events"] == 32 != before["config"]["chunk_events"]
    if change == "input":
        assert after["inputs"] != before["inputs"]
    assert report.is_file()


def test_manifest_lists_paths_and_checksums_in_order(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("{}")
    b.write_text("[]")
    out = tmp_path / "m.json"
    assert main(["manifest", str(b), str(a), "-o", str(out)]) == 0
    files = json.loads(out.read_text())["files"]
    assert [f["path"] for f in files] == [str(b), str(a)]
    assert files[1]["xxh3_128"] == file_checksum(a)
