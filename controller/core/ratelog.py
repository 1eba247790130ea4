"""Log lines that hostile input could repeat thousands of times a second, at most a few per
reason per interval, with a count of what was left out. Time is passed in."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


@dataclass
class RateLimitedLog:
    logger: logging.Logger
    interval: float = 10.0
    per_interval: int = 3
    # reason -> (window start, lines logged in it, lines suppressed in it)
    _windows: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # reason -> total ever (for metrics)

    def warning(self, reason: str, now: float, msg: str, *args: object) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        start, logged, suppressed = self._windows.get(reason, (now, 0, 0))
        if now - start >= self.interval:
            if suppressed:
                self.logger.warning("%s: %d more like this in the last %.0f s", reason, suppressed, now - start)
            start, logged, suppressed = now, 0, 0
        if logged < self.per_interval:
            self.logger.warning(msg, *args)
            logged += 1
        else:
            suppressed += 1
        self._windows[reason] = (start, logged, suppressed)
        if len(self._windows) > 1000:  # reasons are few; never let odd input grow this
            self._windows.clear()
