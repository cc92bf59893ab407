"""`nas-bench check` on broken experiment files: one line naming the fix, exit code 1, no traceback
(hardening issue, item 6). Each case starts from the shipped cifar10 random baseline and breaks one thing."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nni_nas_bench.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
GOOD = (REPO / "experiments" / "cifar10" / "random.yml").read_text()


def _class_args(**changes: object) -> str:
    config = yaml.safe_load(GOOD)
    config["tuner"]["classArgs"].update(changes)
    return yaml.safe_dump(config, sort_keys=False)


def _protocol(**changes: object) -> str:
    config = yaml.safe_load(GOOD)
    protocol = config["tuner"]["classArgs"].setdefault("protocol", {})
    if isinstance(protocol, str):
        protocol = config["tuner"]["classArgs"]["protocol"] = {"preset": protocol}
    protocol.update(changes)
    return yaml.safe_dump(config, sort_keys=False)


def _top(**changes: object) -> str:
    config = yaml.safe_load(GOOD)
    config.update(changes)
    return yaml.safe_dump(config, sort_keys=False)


CASES = [
    ("duplicate-key", GOOD.replace("tuner:", "trialConcurrency: 3\ntuner:", 1), r"given twice"),
    ("max-trials-zero", _top(maxTrialNumber=0), r"maxTrialNumber must be a positive whole number, got 0"),
    ("max-trials-negative", _top(maxTrialNumber=-1), r"maxTrialNumber must be a positive whole number, got -1"),
    ("concurrency-zero", _top(trialConcurrency=0), r"trialConcurrency must be a positive whole number, got 0"),
    ("unknown-platform", _top(trainingService={"platform": "mars"}), r"platform 'mars' is not one of NNI's"),
    ("float-seed", _class_args(seed=1.5), r"seed"),
    ("nan-lr", _protocol(lr=float("nan")), r"lr"),
    ("nine-nodes", _class_args(space_args={"n_nodes": 9}), r"n_nodes"),
]


@pytest.mark.parametrize("text, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_yaml_is_one_line_and_exit_1(tmp_path: Path, text: str, message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exp.yml"
    path.write_text(text.replace("../..", str(REPO)))
    assert cli_main(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith("FAIL ")
    assert pytest.importorskip("re").search(message, err[0]), err[0]


def test_non_utf8_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exp.yml"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    assert cli_main(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not UTF-8 text" in err[0] and "save it as UTF-8" in err[0]
