"""Progress lines from inside an epoch, so a trial says it is alive long before its first epoch ends.

One CIFAR-10 epoch of a 20-cell DARTS network takes about an hour on two idle CPU cores: a log that
speaks once per epoch looks like a hung trial. :class:`EpochProgress` is told after every step how many
images it trained and, at most every ``interval`` seconds, logs the epoch fraction, the throughput, and
the time left in the epoch and in the whole trial. It never synchronises a GPU: on CUDA the numbers run
a few steps behind the device, which is plenty for an estimate, and the training speed is untouched.
"""

from __future__ import annotations

import os
import time
from typing import Callable

DEFAULT_INTERVAL = 30.0
"""Seconds between two progress lines (``$NNB_PROGRESS_SECONDS`` overrides it; 0 turns them off)."""


def progress_interval() -> float:
    """The interval from ``$NNB_PROGRESS_SECONDS`` (a number of seconds), else :data:`DEFAULT_INTERVAL`."""
    text = os.environ.get("NNB_PROGRESS_SECONDS")
    if not text:
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value >= 0 else DEFAULT_INTERVAL


def format_duration(seconds: float) -> str:
    """``3h05m``, ``4m12s`` or ``9s``: short enough for one log line."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class EpochProgress:
    """Logs ``progress: epoch E/N  P% (b/B batches)  X img/s  epoch ETA ..  trial ETA ..`` every ``interval`` s.

    ``epoch`` is 0-based, ``epochs`` the protocol's total and ``batches`` the loader's length; the trial
    ETA assumes the remaining epochs run at this epoch's speed (evaluation time not counted).
    """

    def __init__(self, epoch: int, epochs: int, batches: int, log: Callable[[str], None],
                 interval: float | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.epoch, self.epochs, self.batches, self.log = epoch, epochs, max(batches, 1), log
        self.interval = progress_interval() if interval is None else interval
        self.clock = clock
        self.start = self.last = clock()
        self.done_batches = 0
        self.images = 0

    def step(self, images: int) -> None:
        """Count one finished step of ``images`` images; log when the interval has passed."""
        self.done_batches += 1
        self.images += images
        if self.interval <= 0:
            return
        now = self.clock()
        if now - self.last < self.interval or self.done_batches >= self.batches:
            return
        self.last = now
        self.log(self.line(now))

    def line(self, now: float) -> str:
        """The progress line at time ``now``."""
        elapsed = max(now - self.start, 1e-9)
        fraction = self.done_batches / self.batches
        epoch_left = elapsed * (1 - fraction) / max(fraction, 1e-9)
        trial_left = epoch_left + (self.epochs - self.epoch - 1) * elapsed / max(fraction, 1e-9)
        return (f"progress: epoch {self.epoch + 1}/{self.epochs} {100 * fraction:.0f}% "
                f"({self.done_batches}/{self.batches} batches) {self.images / elapsed:.1f} img/s, "
                f"epoch ETA {format_duration(epoch_left)}, trial ETA {format_duration(trial_left)}")
