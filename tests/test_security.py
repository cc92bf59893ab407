"""Attacks that must not run code or exhaust memory: a crafted checkpoint, links in report text, a
foreign tuner named by a YAML, and huge genotype ranges (hardening issue, items 1-4)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from analysis.report import Document
from nni_nas_bench.errors import ConfigError, GenotypeError
from nni_nas_bench.experiment_config import check_experiment
from nni_nas_bench.training.checkpoint import CheckpointStore
from search_spaces.genotype import Genotype

MARKER_ENV = "NNB_TEST_PWNED_FILE"


class _Payload:
    """Pickles to a call of os.system: what a crafted checkpoint would run on an unsafe load."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.target}",))


def test_a_crafted_checkpoint_runs_nothing_and_is_refused_with_the_fix(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    store = CheckpointStore(tmp_path, "run")
    torch.save({"model": _Payload(marker)}, store.path)
    with pytest.raises(ConfigError, match=r"unreadable.*delete it to retrain"):
        store.load()
    assert not marker.exists(), "loading a checkpoint executed code from it"


def test_a_real_checkpoint_still_round_trips(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "run")
    state = {"model": {"w": torch.ones(2)}, "history": [{"epoch": 1, "acc": 0.5}], "rng_cpu": torch.get_rng_state(),
             "train_seconds": 1.5, "rng_cuda": None, "settings": {"lr": 0.1, "name": "x", "layers": (1, 2)}}
    store.save(state)
    loaded = store.load()
    assert torch.equal(loaded["model"]["w"], torch.ones(2)) and loaded["history"] == state["history"]
    assert loaded["settings"] == state["settings"]


@pytest.mark.parametrize("text", [
    "[click](javascript:alert(1))",
    '[x](http://a.b/"onmouseover="alert(1))',
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](JaVaScRiPt:alert(1))",
    '<img src=x onerror="alert(1)">',
])
def test_report_html_escapes_db_text_and_links_only_http_or_relative(text: str) -> None:
    doc = Document(title=f"experiment {text}")
    doc.para(f"trial note {text}")
    doc.table(pd.DataFrame({"genotype": [text]}))
    doc.figure("fig.png", text, links=[(text, "javascript:alert(2)")])
    page = doc.to_html()
    lowered = page.lower()
    assert 'href="javascript' not in lowered and 'href="data:' not in lowered
    assert '"onmouseover' not in lowered and '"onerror' not in lowered  # no text can open an attribute
    assert "<img src=x" not in lowered


def test_report_keeps_http_and_relative_links() -> None:
    doc = Document(title="t")
    doc.para("all trials in [trials.csv](trials.csv), paper [arXiv](https://arxiv.org/abs/1912.12522)")
    page = doc.to_html()
    assert '<a href="trials.csv">trials.csv</a>' in page
    assert '<a href="https://arxiv.org/abs/1912.12522">arXiv</a>' in page


def _yaml(tmp_path: Path, class_name: str) -> Path:
    path = tmp_path / "exp.yml"
    path.write_text(
        "searchSpace: {}\ntrialCommand: python3 -m nni_nas_bench.trial\ntrialConcurrency: 1\nmaxTrialNumber: 1\n"
        f"tuner:\n  className: {class_name}\n  codeDirectory: .\n  classArgs: {{}}\n"
        "trainingService:\n  platform: local\n")
    return path


def test_check_never_imports_a_foreign_tuner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil_tuner.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\nclass Tuner:\n    pass\n")
    assert check_experiment(_yaml(tmp_path, "evil_tuner.Tuner")) is None
    assert not marker.exists(), "nas-bench check imported (ran) the tuner module named by the YAML"
    assert "not one of the suite's tuners" in capsys.readouterr().err


def test_a_code_directory_cannot_shadow_the_suite(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    fake = tmp_path / "nni_nas_bench" / "tuners"
    fake.mkdir(parents=True)
    (tmp_path / "nni_nas_bench" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (fake / "__init__.py").write_text("class RandomBaselineTuner:\n    def __init__(self, **kw):\n        pass\n")
    with pytest.raises(ConfigError):  # the real tuner rejects the empty classArgs (no dataset)
        check_experiment(_yaml(tmp_path, "nni_nas_bench.tuners.RandomBaselineTuner"))
    assert not marker.exists()


def test_a_misspelt_suite_tuner_gets_the_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"did you mean nni_nas_bench\.tuners\.RandomBaselineTuner"):
        check_experiment(_yaml(tmp_path, "nni_nas_bench.tuners.RandomBaselineTunr"))


@pytest.mark.parametrize("concat", ["range(2, 10000000000)", "range(-10**12, 2)", "range(2, 6, 0)",
                                    "range(2, 6.5)", "range(True, 6)", "range(2, stop=6)"])
def test_huge_or_malformed_range_concat_is_refused_at_once(concat: str) -> None:
    text = (f"Genotype(normal=[('skip_connect', 0), ('skip_connect', 1)], normal_concat={concat}, "
            "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=range(2, 3))")
    start = time.perf_counter()
    with pytest.raises(GenotypeError):
        Genotype.from_text(text)
    assert time.perf_counter() - start < 1.0
