"""Progress reporting for long stages: a live line on a terminal, plain log lines in batch jobs."""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["Progress", "configure_logging"]

log = logging.getLogger("na64")


def configure_logging(verbosity: int = 0) -> None:
    level = logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


class Progress:
    """Count events through a stage and say how fast it goes.

    On a terminal the count is redrawn in place; otherwise (batch jobs, Snakemake
    logs) a plain log line is written at most every ``interval_s`` seconds.
    """

    def __init__(self, what: str, *, total: int | None = None, interval_s: float = 10.0):
        self.what, self.total, self.interval_s = what, total, interval_s
        self.count = 0
        self.start = self._last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if self.tty:
            sys.stderr.write(f"\r{self._line(now)}")
            sys.stderr.flush()
        elif now - self._last >= self.interval_s:
            log.info(self._line(now))
            self._last = now

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
        log.info("%s (done)", self._line(time.monotonic()))

    def _line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        total = f"/{self.total}" if self.total else ""
        rate = self.count / elapsed
        return f"{self.what}: {self.count}{total} events, {elapsed:.1f} s, {rate:.0f} events/s"
