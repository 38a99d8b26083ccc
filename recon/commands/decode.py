"""``na64 decode RAW [RAW ...] -o OUT``: raw files of one run to per-event digits (Parquet or ROOT)
and a JSON report (one entry per file; a list when there are several files)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from recon.commands.common import add_conditions_options, conditions_from_args
from recon.commands.stage import add_skip_current_option, log_kept, output_is_current
from recon.decode import DecodeConfig, DecodeReport, DecoderTables, iter_digits
from recon.io.rawreader import RawReader
from recon.io.tables import write_events, write_json
from recon.progress import Progress
from recon.provenance import CHECKSUM_ALGORITHM, file_checksum, make_provenance

__all__ = ["decode_origin", "register", "run_decode", "run_decode_files", "summarize_reports"]

log = logging.getLogger("na64.decode")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "decode", help="decode an NA64RAW1 file into per-event digits", description=__doc__
    )
    p.add_argument(
        "raw", type=Path, nargs="+", help="NA64RAW1 input files of one run, decoded in this order"
    )
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="digits file (.parquet or .root)"
    )
    p.add_argument("--format", choices=["parquet", "root"], help="default: from the output suffix")
    p.add_argument("--chunk-events", type=int, default=DecodeConfig.chunk_events)
    p.add_argument(
        "--policy",
        choices=["skip", "fail"],
        default=DecodeConfig.policy,
        help="on a corrupt record: count, report and skip it, or stop",
    )
    p.add_argument("--report", type=Path, help="JSON report of read, decoded and rejected records")
    p.add_argument("--compression", default="none", help="Parquet codec (none, lz4, zstd, snappy)")
    add_conditions_options(p)
    add_skip_current_option(p)
    p.set_defaults(func=_main)
    s = subparsers.add_parser("summarize-decode", help="sum the decode reports of a dataset")
    s.add_argument("reports", nargs="+", type=Path, help="JSON reports of `na64 decode`")
    s.add_argument("-o", "--output", type=Path, required=True)
    s.set_defaults(func=_summarize)


def run_decode(
    raw: Path,
    output: Path,
    *,
    db,
    config: DecodeConfig,
    fmt: str | None = None,
    compression: str = "none",
) -> DecodeReport:
    """Decode ``raw`` into ``output``; return the report."""
    (report,) = run_decode_files(
        [raw], output, db=db, config=config, fmt=fmt, compression=compression
    )
    return report


def run_decode_files(
    raws: Sequence[Path],
    output: Path,
    *,
    db,
    config: DecodeConfig,
    fmt: str | None = None,
    compression: str = "none",
) -> list[DecodeReport]:
    """Decode raw files of one setup and run, in order, into one ``output``; one report per file."""
    raws = [Path(raw) for raw in raws]
    headers = [RawReader(raw).header for raw in raws]
    runs = sorted({(h.setup, h.run) for h in headers})
    if len(runs) != 1:
        raise ValueError(f"raw files decoded into one output must share setup and run, got {runs}")
    header = headers[0]
    log.info(
        "decoding %s: run %d, setup %s, %s",
        " ".join(str(raw) for raw in raws),
        header.run,
        header.setup,
        header.run_type.name.lower(),
    )
    tables = DecoderTables.for_run(db, header.setup, header.run)
    records = [db.find(kind, header.setup, header.run) for kind in ("channel_map", "daq")]
    reports = [DecodeReport(path=str(raw)) for raw in raws]

    def chunks():
        for raw, file_header, report in zip(raws, headers, reports, strict=True):
            progress = Progress(f"decode {raw.name}", total=file_header.n_events or None)
            for chunk in iter_digits(raw, tables, config, report):
                progress.update(len(chunk))
                yield chunk
            progress.done()

    def provenance():
        return make_provenance(
            stage="decode",
            config=_provenance_config(config),
            inputs=[(raw, report.checksum) for raw, report in zip(raws, reports, strict=True)],
            conditions=records,
            extra={"setup": header.setup, "run": header.run, "decode": _decode_record(reports)},
        )

    write_events(output, chunks(), provenance, fmt=fmt, compression=compression)
    return reports


def decode_origin(raws: Sequence[Path], *, db, config: DecodeConfig) -> dict:
    """The provenance the digits of ``raws`` would carry, without the decode figures
    (which follow from it): what ``--skip-current`` compares with an existing output."""
    header = RawReader(raws[0]).header
    return make_provenance(
        stage="decode",
        config=_provenance_config(config),
        inputs=[(raw, file_checksum(raw)) for raw in raws],
        conditions=[db.find(kind, header.setup, header.run) for kind in ("channel_map", "daq")],
    )


def _provenance_config(config: DecodeConfig) -> dict:
    """The decode options that make the digits (recorded in their provenance)."""
    return {"chunk_events": config.chunk_events, "policy": config.policy}


def _report_is_current(report: Path | None, origin: dict) -> bool:
    """No report asked for, or one that lists the input files with their checksums."""
    if report is None:
        return True
    if not report.is_file():
        return False
    document = json.loads(report.read_text())
    entries = document if isinstance(document, list) else [document]
    listed = [(Path(e.get("file", "")).name, e.get(CHECKSUM_ALGORITHM)) for e in entries]
    return listed == [(i["file"], i[CHECKSUM_ALGORITHM]) for i in origin["inputs"]]


def _decode_record(reports: list[DecodeReport]) -> dict:
    """The decode figures in the digits' provenance: the file's report, or totals over the files."""
    entries = [report.to_dict() for report in reports]
    if len(entries) == 1:
        return {k: v for k, v in entries[0].items() if k not in ("rejected", "file")}
    totals = {k: v for k, v in summarize_reports(entries).items() if k != "files"}
    return {"run": entries[0]["run"], **totals}


def summarize_reports(reports: list[dict]) -> dict:
    """Totals over the decode reports of a dataset (one entry per file, by name)."""
    by_reason: dict[str, int] = {}
    for r in reports:
        for reason, n in r["rejected_by_reason"].items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    keys = ("events_read", "events_decoded", "events_rejected", "bytes_read")
    per_file = (*keys, CHECKSUM_ALGORITHM)
    return {
        **{k: sum(r[k] for r in reports) for k in keys},
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "files": {Path(r["file"]).name: {k: r[k] for k in per_file} for r in reports},
    }


def _summarize(args: argparse.Namespace) -> int:
    reports = []
    for path in args.reports:
        document = json.loads(path.read_text())  # one file's report, or a list of them
        reports += document if isinstance(document, list) else [document]
    write_json(args.output, summarize_reports(reports))
    return 0


def _main(args: argparse.Namespace) -> int:
    db = conditions_from_args(args)
    config = DecodeConfig(chunk_events=args.chunk_events, policy=args.policy)
    if args.skip_current:
        origin = decode_origin(args.raw, db=db, config=config)
        if output_is_current(args.output, origin) and _report_is_current(args.report, origin):
            log_kept(args.output)
            return 0
    reports = run_decode_files(
        args.raw, args.output, db=db, config=config, fmt=args.format, compression=args.compression
    )
    summaries = [report.to_dict() for report in reports]
    if args.report:
        write_json(args.report, summaries[0] if len(summaries) == 1 else summaries)
    for report, summary in zip(reports, summaries, strict=True):
        log.info(
            "%s: read %d, decoded %d, rejected %d %s",
            Path(report.path).name,
            report.events_read,
            report.events_decoded,
            report.events_rejected,
            summary["rejected_by_reason"] or "",
        )
    return 0
