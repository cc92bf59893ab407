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


# ------------------------------------------------------------------ genotypes, trial command lines, report --out
DARTS_EDGES = "[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('max_pool_3x3', 0)]"


@pytest.mark.parametrize("text", [None, 3, 2.5, ["x"]], ids=["none", "int", "float", "list"])
def test_genotype_that_is_no_text_is_one_genotype_error(text: object) -> None:
    from nni_nas_bench.errors import GenotypeError
    from search_spaces.genotype import Genotype

    with pytest.raises(GenotypeError, match="a genotype is DARTS-notation text"):
        Genotype.from_text(text)  # type: ignore[arg-type]


def test_nested_per_node_genotype_reads_as_the_flat_one() -> None:
    """pt.darts and the paper's code group each node's two edges: both forms are the same genotype."""
    from search_spaces.genotype import Genotype

    nested = ("Genotype(normal=[[('sep_conv_3x3', 0), ('skip_connect', 1)], [('sep_conv_3x3', 1), "
              "('max_pool_3x3', 0)]], normal_concat=[2, 3], reduce=[[('sep_conv_3x3', 0), ('skip_connect', 1)], "
              "[('sep_conv_3x3', 1), ('max_pool_3x3', 0)]], reduce_concat=range(2, 4))")
    flat = (f"Genotype(normal={DARTS_EDGES}, normal_concat=range(2, 4), reduce={DARTS_EDGES}, "
            "reduce_concat=range(2, 4))")
    assert Genotype.from_text(nested) == Genotype.from_text(flat)


@pytest.mark.parametrize("digit", ["²", "٢", "１"], ids=["superscript", "arabic-indic", "fullwidth"])
def test_nb201_index_with_non_ascii_digits_is_refused(digit: str) -> None:
    from nni_nas_bench.errors import GenotypeError
    from search_spaces.nb201_arch import NB201Arch

    with pytest.raises(GenotypeError, match="bad input"):
        NB201Arch.from_text(f"|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~{digit}|")


@pytest.mark.parametrize("value, message", [
    ("[1,2]", r"must be a JSON object \(\{\.\.\.\}\), got a JSON list"),
    ("3", r"got a JSON int"),
    ("{oops", r"the text \(no such file either\) is not JSON"),
])
def test_trial_params_that_are_no_json_object(value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from nni_nas_bench.trial import main as trial_main

    assert trial_main(["--params", value, "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and pytest.importorskip("re").search(message, err[0]), err


def test_report_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from analysis.synthetic import make_benchmark

    make_benchmark(tmp_path / "exps", datasets=("cifar10",), methods=("darts",), runs=2, epochs=3, studies=False)
    target = tmp_path / "report.txt"
    target.write_text("not a folder")
    code = cli_main(["report", str(tmp_path / "exps"), "--out", str(target), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert "is a file, not a folder: give a folder for the report" in err[0]
