"""How far a scoring is: a log line and a progress artifact as batches are scored, never too often."""

from __future__ import annotations

import time
from typing import Any

from kerasflow.tasks.progress import ProgressArtifact


class ScoringProgress:
    """A log line and a progress artifact as batches are scored, at most every few seconds.

    Args:
        logger: the logger of the scoring's lines (a Prefect run logger).
        total: the rows to score, when known; without it no percentage is shown.
        source: what is scored, for the log lines and the artifact.
        min_update_seconds: the fewest seconds between two reports.
    """

    def __init__(self, logger: Any, *, total: int | None, source: str, min_update_seconds: float = 5.0):
        self.logger, self.total, self.source = logger, total, source
        self.min_update_seconds = min_update_seconds
        self._last = time.monotonic()
        self._artifact = ProgressArtifact("scoring-progress", f"scoring {source}")

    def scored(self, rows: int) -> None:
        """Report ``rows`` scored so far, unless the last report is less than ``min_update_seconds`` old."""
        now = time.monotonic()
        if now - self._last < self.min_update_seconds:
            return
        self._last = now
        of_total = f" of {self.total}" if self.total else ""
        self.logger.info("scored %d row(s)%s of %s so far", rows, of_total, self.source)
        if self.total:
            self._artifact.show(100.0 * rows / self.total)

    def done(self, rows: int) -> None:
        """Complete the progress artifact (100 %) if one was shown; ``rows``, the rows scored, is not used."""
        self._artifact.finish()
