"""In-epoch progress lines: a trial says it is alive (and what is left) long before an epoch ends."""
from __future__ import annotations

import pytest

from nni_nas_bench.training.progress import EpochProgress, format_duration, progress_interval


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_with_rate_and_both_etas() -> None:
    clock, lines = _Clock(), []
    progress = EpochProgress(epoch=2, epochs=10, batches=100, log=lines.append, interval=30, clock=clock)
    for _ in range(25):  # 25 batches of 64 images, 2 s each: 32 img/s
        clock.now += 2.0
        progress.step(64)
    # one line at t = 30 s (15 batches); the next is due at t = 60 s, not reached by t = 50 s
    # trial ETA: 170 s left in this epoch + 7 epochs x 200 s
    assert lines == ["progress: epoch 3/10 15% (15/100 batches) 32.0 img/s, epoch ETA 2m50s, trial ETA 26m10s"]
    clock.now += 10.0
    progress.step(64)  # t = 62 s: the second line
    assert len(lines) == 2 and lines[1].startswith("progress: epoch 3/10 26% (26/100 batches)")


def test_no_line_for_the_last_batch_or_when_disabled() -> None:
    clock, lines = _Clock(), []
    progress = EpochProgress(epoch=0, epochs=1, batches=2, log=lines.append, interval=0, clock=clock)
    for _ in range(2):
        clock.now += 100
        progress.step(8)
    assert lines == []
    progress = EpochProgress(epoch=0, epochs=1, batches=2, log=lines.append, interval=1, clock=clock)
    clock.now += 100
    progress.step(8)
    clock.now += 100
    progress.step(8)  # the epoch's own line follows: no progress line for the last batch
    assert len(lines) == 1


@pytest.mark.parametrize("seconds, text", [(9.4, "9s"), (252, "4m12s"), (11100, "3h05m"), (-3, "0s")])
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_interval_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_PROGRESS_SECONDS", "5")
    assert progress_interval() == 5
    monkeypatch.setenv("NNB_PROGRESS_SECONDS", "soon")
    assert progress_interval() == 30
    monkeypatch.delenv("NNB_PROGRESS_SECONDS")
    assert progress_interval() == 30
