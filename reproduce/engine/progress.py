"""Training progress: per step inside each epoch on a terminal, one line per epoch in a log.

On a terminal (stderr is a TTY, ``runtime.progress`` on) a bar over the epoch's steps shows the step, steps/s, the
time left in the epoch and the last logged loss (read only at the ``log_every`` cadence, so the bar adds no device
synchronisation), under the bar of the epochs. Otherwise -- a log file, a cluster job, ``--no-progress`` -- each
epoch ends with one line: loss, steps, speed and the estimated time left of the run. Only the main process shows
either.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("reproduce.engine.trainer")


def interactive() -> bool:
    """Whether stderr is a terminal (progress bars) rather than a log (lines)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def format_duration(seconds: float) -> str:
    """``83`` -> ``1 min 23 s``; ``5000`` -> ``1 h 23 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class EpochProgress:
    """The progress of one run's epochs and steps. ``bars``: draw tqdm bars (else log one line per epoch);
    ``shown``: this process reports at all (the main process)."""

    def __init__(self, label: str, epochs: int, shown: bool, bars: bool) -> None:
        self.label, self.epochs, self.shown, self.bars = label, epochs, shown, bars and shown
        self._bar: Any = None
        self._epoch_start = 0.0
        self._steps_done = 0
        self._epoch_seconds: list[float] = []

    def start_epoch(self, epoch: int, steps: int, done: int = 0) -> None:
        """Epoch ``epoch`` of ``steps`` steps begins (``done`` of them already, on resume)."""
        self._epoch_start, self._steps_done = time.perf_counter(), 0
        if self.bars:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=steps, initial=done, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False,
                             unit="step", dynamic_ncols=True)  # fmt: skip

    def step(self) -> None:
        self._steps_done += 1
        if self._bar is not None:
            self._bar.update(1)

    def loss(self, value: float) -> None:
        """The last logged loss (shown on the bar)."""
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{value:.4f}", refresh=False)

    def end_epoch(self, epoch: int, entry: dict[str, Any]) -> None:
        """Epoch ``epoch`` ended with history ``entry`` (its mean loss, validation)."""
        seconds = time.perf_counter() - self._epoch_start
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if not self._steps_done:
            return
        self._epoch_seconds.append(seconds)
        if not self.shown or self.bars:
            return
        recent = self._epoch_seconds[-3:]
        left = sum(recent) / len(recent) * (self.epochs - epoch - 1)
        loss = entry.get("loss")
        loss_text = f"loss {loss:.4f}, " if isinstance(loss, float) and loss == loss else ""
        log.info("%s: epoch %d/%d: %s%d steps in %s (%.2f steps/s), about %s left", self.label, epoch + 1,
                 self.epochs, loss_text, self._steps_done, format_duration(seconds), self._steps_done / seconds,
                 format_duration(left))  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
