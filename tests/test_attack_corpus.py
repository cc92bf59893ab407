"""A table-driven corpus of bad input, as an attacker or a careless user gives it (hardening issue, "done
when"): experiment YAMLs (``nas-bench check``), genotype texts and trial command lines
(``python -m nni_nas_bench.trial``), trial databases and published CSVs (``nas-bench report``), and data
roots. Every case must end with exactly ONE line on stderr, the expected exit code and no traceback; the
line must say what is wrong (the pattern). Everything runs in-process and fails before any training, so
the whole corpus takes seconds.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from nni_nas_bench.cli import main as cli_main
from nni_nas_bench.trial import main as trial_main
from tests.conftest import REPO

_DELETE = object()


def _yaml(base: str, path: str = "", value: Any = None) -> str:
    """experiments/<base> with the dotted ``path`` set to ``value`` (``_DELETE`` removes it)."""
    config = copy.deepcopy(yaml.safe_load((REPO / "experiments" / base).read_text()))
    if path:
        node = config
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if value is _DELETE:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return yaml.safe_dump(config, sort_keys=False)


RANDOM, DARTS, MANAS = "cifar10/random.yml", "cifar10/darts.yml", "cifar10/manas.yml"
ARGS = "tuner.classArgs"

# name, YAML text, pattern of the one FAIL line of `nas-bench check` (exit code 1)
YAML_CASES: list[tuple[str, str, str]] = [
    ("unknown-dataset", _yaml(RANDOM, f"{ARGS}.dataset", "cifar11"), r"unknown dataset 'cifar11'"),
    ("unknown-space", _yaml(RANDOM, f"{ARGS}.space", "dartz"), r"unknown search space 'dartz'"),
    ("space-arg-unknown", _yaml(RANDOM, f"{ARGS}.space_args", {"nodes": 4}), r"unexpected keyword argument 'nodes'"),
    ("space-args-list", _yaml(RANDOM, f"{ARGS}.space_args", [4]), r"space_args must be a mapping"),
    ("op-set-unknown", _yaml(RANDOM, f"{ARGS}.space_args", {"op_set": "fancy"}), r"unknown op set 'fancy'"),
    ("n-nodes-zero", _yaml(RANDOM, f"{ARGS}.space_args", {"n_nodes": 0}), r"n_nodes must be an integer from 1"),
    ("n-nodes-nine", _yaml(RANDOM, f"{ARGS}.space_args", {"n_nodes": 9}), r"n_nodes must be an integer from 1"),
    ("n-nodes-text", _yaml(RANDOM, f"{ARGS}.space_args", {"n_nodes": "four"}), r"n_nodes .* got 'four'"),
    ("pool-bn-text", _yaml(DARTS, f"{ARGS}.space_args", {"pool_bn": "yes"}), r"pool_bn must be true or false"),
    ("num-archs-negative", _yaml(RANDOM, f"{ARGS}.num_archs", -3), r"num_archs"),
    ("unknown-class-arg", _yaml(RANDOM, f"{ARGS}.num_random", 3), r"unexpected keyword argument 'num_random'"),
    ("seed-float", _yaml(RANDOM, f"{ARGS}.seed", 1.5), r"seed must be a non-negative integer"),
    ("seed-negative", _yaml(RANDOM, f"{ARGS}.seed", -1), r"seed must be a non-negative integer"),
    ("preset-unknown", _yaml(RANDOM, f"{ARGS}.protocol", {"preset": "fastest"}), r"unknown protocol preset 'fastest'"),
    ("protocol-epochs-negative", _yaml(RANDOM, f"{ARGS}.protocol", {"preset": "darts", "epochs": -1}),
     r"protocol\.epochs must be > 0"),
    ("protocol-lr-text", _yaml(RANDOM, f"{ARGS}.protocol", {"preset": "darts", "lr": "fast"}), r"protocol\.lr"),
    ("protocol-lr-nan", _yaml(RANDOM, f"{ARGS}.protocol", {"preset": "darts", "lr": float("nan")}), r"lr"),
    ("protocol-lr-inf", _yaml(RANDOM, f"{ARGS}.protocol", {"preset": "darts", "lr": float("inf")}),
     r"protocol\.lr must be a finite number"),
    ("protocol-batch-zero", _yaml(RANDOM, f"{ARGS}.protocol", {"preset": "darts", "batch_size": 0}),
     r"protocol\.batch_size must be > 0"),
    ("protocol-unknown-key", _yaml(RANDOM, f"{ARGS}.protocol", {"preset": "darts", "epoch": 3}),
     r"unknown protocol setting\(s\) \['epoch'\]"),
    ("protocol-cutout-negative", _yaml(RANDOM, f"{ARGS}.protocol", {"preset": "darts", "cutout": -4}),
     r"protocol\.cutout must be >= 0"),
    ("search-epochs-zero", _yaml(DARTS, f"{ARGS}.search.epochs", 0), r"darts\.epochs must be an integer >= 1"),
    ("search-unknown-setting", _yaml(DARTS, f"{ARGS}.search.epoch", 3), r"unexpected keyword argument 'epoch'"),
    ("search-not-a-mapping", _yaml(DARTS, f"{ARGS}.search", [1, 2]), r"search must be a mapping"),
    ("num-searches-zero", _yaml(DARTS, f"{ARGS}.num_searches", 0), r"num_searches must be an integer >= 1"),
    ("method-unknown", _yaml(DARTS, f"{ARGS}.method", "dartz"), r"unknown strategy 'dartz'"),
    ("manas-gamma-two", _yaml(MANAS, f"{ARGS}.search.gamma", 2.0), r"manas\.gamma .* must be in \[0, 1\]"),
    ("manas-cells-unknown", _yaml(MANAS, f"{ARGS}.search.cells", "unique"), r"manas\.cells must be one of"),
    ("manas-variant-unknown", _yaml(MANAS, f"{ARGS}.search.variant", "lsq"), r"manas\.variant must be one of"),
    ("missing-tuner", _yaml(RANDOM, "tuner", _DELETE), r"tuner must be set"),
    ("missing-trial-command", _yaml(RANDOM, "trialCommand", _DELETE), r"trial_command"),
    ("missing-search-space", _yaml(RANDOM, "searchSpace", _DELETE), r"search_space"),
    ("tuner-class-unknown", _yaml(RANDOM, "tuner.className", "nni_nas_bench.tuners.NoSuchTuner"),
     r"cannot be imported: the suite's tuners are"),
    ("tuner-class-missing", _yaml(RANDOM, "tuner.className", _DELETE), r"className"),
    ("class-args-list", _yaml(RANDOM, "tuner.classArgs", [1]), r"class_args"),
    ("concurrency-text", _yaml(RANDOM, "trialConcurrency", "two"), r"trialConcurrency must be a positive whole"),
    ("concurrency-zero", _yaml(RANDOM, "trialConcurrency", 0), r"trialConcurrency must be a positive whole"),
    ("max-trials-zero", _yaml(RANDOM, "maxTrialNumber", 0), r"maxTrialNumber must be a positive whole"),
    ("max-trials-negative", _yaml(RANDOM, "maxTrialNumber", -1), r"maxTrialNumber must be a positive whole"),
    ("max-trials-too-few", _yaml(RANDOM, "maxTrialNumber", 5), r"maxTrialNumber is 5 but the tuner submits 8"),
    ("unknown-top-level-key", _yaml(RANDOM, "maxTrialNumbr", 3), r"does not have field\(s\) maxtrialnumbr"),
    ("duration-without-unit", _yaml(RANDOM, "maxExperimentDuration", "3 fortnights"),
     r"maxExperimentDuration must be a number with a unit"),
    ("gpu-number-negative", _yaml(RANDOM, "trialGpuNumber", -1), r"trial_gpu_number"),
    ("code-directory-missing", _yaml(RANDOM, "trialCodeDirectory", "/no/such/dir"), r"is not a directory"),
    ("platform-unknown", _yaml(RANDOM, "trainingService", {"platform": "mars"}), r"platform 'mars' is not one"),
    ("platform-missing", _yaml(RANDOM, "trainingService", {}), r"platform None is not one of NNI's"),
    ("training-service-list", _yaml(RANDOM, "trainingService", ["local"]), r"platform None is not one of NNI's"),
    ("trial-flag-misspelt", _yaml(RANDOM, "trialCommand", "python3 -m nni_nas_bench.trial --data-rot x"),
     r"does not take --data-rot"),
    ("trial-flag-without-value", _yaml(RANDOM, "trialCommand", "python3 -m nni_nas_bench.trial --device"),
     r"--device"),
    ("trial-command-unbalanced-quote", _yaml(RANDOM, "trialCommand", "python3 -m nni_nas_bench.trial 'x"),
     r"cannot be split into words"),
    ("duplicate-key", _yaml(RANDOM).replace("tuner:", "trialConcurrency: 3\ntuner:", 1), r"given twice"),
    ("yaml-syntax", "experimentName: x\n  tuner: [unclosed\n", r"is not valid YAML \(line 2"),
    ("yaml-tab", "experimentName: x\n\ttuner: 1\n", r"is not valid YAML"),
    ("empty-file", "", r"must be a mapping of NNI config fields"),
    ("top-level-list", "- 1\n- 2\n", r"must be a mapping of NNI config fields"),
    ("top-level-scalar", "hello\n", r"must be a mapping of NNI config fields"),
    ("python-object-tag", "experimentName: !!python/object/apply:os.system ['echo hacked']\n", r"not valid YAML"),
]


@pytest.mark.parametrize("text, pattern", [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_bad_yaml(tmp_path: Path, text: str, pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exp.yml"
    path.write_text(text.replace("../..", str(REPO)))
    _one_line(lambda: cli_main(["check", str(path)]), 1, rf"^FAIL .*{pattern}", capsys)


def test_check_of_several_files_reports_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """NNI's config loader keeps a module-global base path after refusing a file; the next file checked in
    the same process must still get its own verdict (not NNI's `assert _current_base_path is None`)."""
    bad, good = tmp_path / "bad.yml", tmp_path / "good.yml"
    bad.write_text(_yaml(RANDOM, "trialGpuNumber", -1).replace("../..", str(REPO)))
    good.write_text(_yaml(RANDOM).replace("../..", str(REPO)))
    assert cli_main(["check", str(bad), str(good)]) == 1
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "trial_gpu_number" in err
    assert out.startswith(f"ok   {good}")


# --------------------------------------------------------------------------- trial command lines
GENOTYPE = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
PARAMS = {"role": "random", "dataset": "cifar10", "space": "darts", "space_args": {}, "genotype": GENOTYPE,
          "arch_index": 0, "arch_seed": 0, "protocol": {"preset": "darts", "epochs": 1, "subset": 10}}


def _params(**changes: Any) -> str:
    params = {**PARAMS, **changes}
    return json.dumps({k: v for k, v in params.items() if v is not _DELETE})


# genotype texts a trial may be handed (each refused before any data is read)
GENOTYPE_CASES: list[tuple[str, Any, str]] = [
    ("empty", "", r"cannot parse genotype text"),
    ("garbage", "hello", r"a genotype must read Genotype\("),
    ("code", "__import__('os').system('echo hacked')", r"a genotype must read Genotype\("),
    ("missing-fields", "Genotype(normal=[], normal_concat=[2])", r"fields missing \['reduce', 'reduce_concat'\]"),
    ("positional", "Genotype([('sep_conv_3x3', 0)], [2], [], [2])", r"a genotype must read Genotype\("),
    ("unknown-op", GENOTYPE.replace("dil_conv_3x3", "dil_conv_9x9"), r"operation 'dil_conv_9x9' is not in"),
    ("none-op", GENOTYPE.replace("dil_conv_3x3", "none"), r"operation 'none' is not in"),
    ("input-out-of-range", GENOTYPE.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)"), r"input index 7 out of"),
    ("negative-input", GENOTYPE.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', -1)"), r"input index -1 out of"),
    ("bool-input", GENOTYPE.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', True)"), r"input_index: int"),
    ("float-input", GENOTYPE.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2.0)"), r"input_index: int"),
    ("same-inputs", GENOTYPE.replace("('sep_conv_3x3', 1), ('sep_conv_3x3', 0)", "('sep_conv_3x3', 0), "
                                     "('sep_conv_3x3', 0)", 1), r"both edges read input 0"),
    ("odd-edge-count", GENOTYPE.replace(", ('dil_conv_3x3', 2)]", "]", 1), r"7 edges: need two per node"),
    ("huge-concat", GENOTYPE.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 10000000000)"),
     r"at most 64"),
    ("wrong-concat", GENOTYPE.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3]"),
     r"normal_concat must be range\(2, 6\)"),
    ("deep-nesting", "Genotype(normal=" + "[" * 500 + "]" * 500 + ", normal_concat=[2], reduce=[], reduce_concat=[2])",
     r"cannot parse genotype text"),
    ("per-layer-too-few-cells", "LayerwiseGenotype(cells=[[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)]], "
     "concats=[range(2, 3)])", r"3 to 64 cells"),
    ("per-layer-bad-keys", "LayerwiseGenotype(cells=[], normal=[])", r"a per-layer genotype reads"),
    ("number", 42, r"a genotype is DARTS-notation text, got int"),
    ("list", [1, 2], r"a genotype is DARTS-notation text, got list"),
    ("null", None, r"a genotype is DARTS-notation text, got NoneType"),
    ("nb201-string-in-darts", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|"
     "skip_connect~2|", r"cannot parse genotype text"),
]

# (name, argv, expected exit code, pattern); DATA is replaced by the real data root
TRIAL_CASES: list[tuple[str, list[str], int, str]] = [
    *[(f"genotype-{name}", ["--params", _params(genotype=text), "--data-root", "DATA", "--device", "cpu"], 2, pattern)
      for name, text, pattern in GENOTYPE_CASES],
    ("params-not-json", ["--params", "{role: random", "--data-root", "DATA"], 2, r"--params must be a JSON object"),
    ("params-a-list", ["--params", "[1, 2]", "--data-root", "DATA"], 2, r"got a JSON list"),
    ("params-missing-file", ["--params", "/no/such/params.json", "--data-root", "DATA"], 2, r"no such file either"),
    ("params-empty", ["--params", "{}", "--data-root", "DATA"], 2, r"trial parameters miss \['dataset'"),
    ("role-unknown", ["--params", _params(role="teacher"), "--data-root", "DATA"], 2, r"trial role 'teacher'"),
    ("dataset-unknown", ["--params", _params(dataset="imagenet"), "--data-root", "DATA"], 2,
     r"unknown dataset 'imagenet'"),
    ("space-unknown", ["--params", _params(space="dartz"), "--data-root", "DATA"], 2, r"unknown search space"),
    ("space-args-a-list", ["--params", _params(space_args=[1]), "--data-root", "DATA"], 2,
     r"space_args must be a mapping"),
    ("preset-unknown", ["--params", _params(protocol={"preset": "nope"}), "--data-root", "DATA"], 2,
     r"unknown protocol preset 'nope'"),
    ("protocol-epochs-text", ["--params", _params(protocol={"preset": "darts", "epochs": "ten"}), "--data-root",
                              "DATA"], 2, r"protocol\.epochs must be int"),
    ("genotype-missing", ["--params", _params(genotype=_DELETE), "--data-root", "DATA"], 2,
     r"trial parameters miss \['genotype'\]"),
    ("device-unknown", ["--params", _params(), "--data-root", "DATA", "--device", "tpu"], 2,
     r"device 'tpu' is not a torch device"),
    ("device-gpu-absent", ["--params", _params(), "--data-root", "DATA", "--device", "cuda:3"], 2, r"device 'cuda:3'"),
    ("outside-nni-without-params", ["--data-root", "DATA"], 2, r"not running inside NNI: pass --params"),
    ("flag-misspelt", ["--params", _params(), "--data-rot", "DATA"], 2, r"unrecognized arguments: --data-rot"),
    ("flag-without-value", ["--params"], 2, r"argument --params: expected one argument"),
    ("data-root-missing", ["--params", _params(), "--data-root", "/no/such/root"], 2,
     r"data root /no/such/root .* does not exist"),
    ("data-root-a-file", ["--params", _params(), "--data-root", "FILE"], 2, r"is a file, not a folder"),
    ("data-root-empty", ["--params", _params(), "--data-root", "EMPTY"], 2,
     r"dataset 'cifar10' not found under data root .*looked at: .*Provide it"),
    ("data-root-without-images", ["--params", _params(dataset="sport8"), "--data-root", "HALF"], 2,
     r"dataset 'sport8' not found under data root"),
    ("checkpoint-dir-a-file", ["--params", _params(), "--data-root", "DATA", "--checkpoint-dir", "FILE"], 2,
     r"--checkpoint-dir .* is a file"),
    ("search-unknown-method", ["--params", json.dumps({"role": "search", "method": "dartz", "dataset": "cifar10",
                                                       "space": "darts", "search_seed": 0, "search": {}}),
                               "--data-root", "DATA"], 2, r"unknown strategy 'dartz'"),
    ("search-bad-setting", ["--params", json.dumps({"role": "search", "method": "darts", "dataset": "cifar10",
                                                    "space": "darts", "search_seed": 0, "search": {"epoch": 1}}),
                            "--data-root", "DATA"], 2, r"unexpected keyword argument 'epoch'"),
    ("search-settings-a-list", ["--params", json.dumps({"role": "search", "method": "darts", "dataset": "cifar10",
                                                        "space": "darts", "search_seed": 0, "search": [1]}),
                                "--data-root", "DATA"], 2, r"search"),
]


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Stand-ins of the trial cases: a data root (empty: every case must fail BEFORE data is read, so
    none may reach the loader), a file, an empty folder, a half-made dataset."""
    base = tmp_path_factory.mktemp("roots")
    (base / "data").mkdir()
    (base / "file").write_text("not a folder")
    (base / "empty").mkdir()
    (base / "half" / "Sport8" / "train" / "a").mkdir(parents=True)
    return {"DATA": str(base / "data"), "FILE": str(base / "file"), "EMPTY": str(base / "empty"),
            "HALF": str(base / "half")}


@pytest.mark.parametrize("argv, code, pattern", [c[1:] for c in TRIAL_CASES], ids=[c[0] for c in TRIAL_CASES])
def test_bad_trial_command_line(argv: list[str], code: int, pattern: str, roots: dict[str, str],
                                monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NNI_PLATFORM", raising=False)
    argv = [roots.get(word, word) for word in argv]
    _one_line(lambda: trial_main(argv), code, rf"^nni-nas-bench: error: .*{pattern}", capsys)


# ------------------------------------------------------------------------ trial DBs and reports
def _copy_with(db: Path, sql: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        target = tmp / "exp" / "db" / "nni.sqlite"
        target.parent.mkdir(parents=True)
        shutil.copy(db, target)
        with contextlib.closing(sqlite3.connect(target)) as con:
            con.executescript(sql)
            con.commit()
        return [str(target)]
    return make


def _raw(data: bytes) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        target = tmp / "exp" / "db" / "nni.sqlite"
        target.parent.mkdir(parents=True)
        target.write_bytes(data)
        return [str(target)]
    return make


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from analysis.synthetic import make_benchmark

    root = tmp_path_factory.mktemp("good")
    make_benchmark(root, seed=0, datasets=("cifar10",))
    return next(root.rglob("nni.sqlite"))


# (name, argv builder from (tmp folder, good DB), exit code, pattern); every report gets --out and --no-progress
REPORT_CASES: list[tuple[str, Callable[[Path, Path], list[str]], int, str]] = [
    ("missing-path", lambda t, g: [str(t / "nope")], 1, r"no NNI trial database for"),
    ("empty-folder", lambda t, g: [str(t)], 1, r"no NNI trial database for"),
    ("empty-file", lambda t, g: _raw(b"")(t), 1, r"is not a readable NNI trial database"),
    ("random-bytes", lambda t, g: _raw(bytes(range(256)) * 16)(t), 1, r"is not a readable NNI trial database"),
    ("text-file", lambda t, g: _raw(b"hello world\n" * 100)(t), 1, r"is not a readable NNI trial database"),
    ("truncated", lambda t, g: _raw(g.read_bytes()[:3000])(t), 1, r"is not a readable NNI trial database"),
    ("no-tables", lambda t, g: _copy_with(g, "DROP TABLE TrialJobEvent; DROP TABLE MetricData;")(t), 1,
     r"no such table: TrialJobEvent"),
    ("no-metric-table", lambda t, g: _copy_with(g, "DROP TABLE MetricData;")(t), 1, r"no such table: MetricData"),
    ("wrong-columns", lambda t, g: _copy_with(g, "DROP TABLE MetricData; CREATE TABLE MetricData (x TEXT);")(t), 1,
     r"no such column"),
    ("no-trials", lambda t, g: _copy_with(g, "DELETE FROM TrialJobEvent; DELETE FROM MetricData;")(t), 1,
     r"no trials to report"),
    ("unknown-id", lambda t, g: ["abcdefgh", "--experiments-dir", str(t)], 1, r"no NNI trial database for 'abcdefgh'"),
    ("nothing-named", lambda t, g: [], 1, r"name at least one experiment"),
    ("out-is-a-file", lambda t, g: [str(g), "--out", str(g)], 1, r"--out .* is a file"),
    ("bootstrap-negative", lambda t, g: [str(g), "--bootstrap", "-5"], 1, r"--bootstrap .* positive"),
    ("bootstrap-text", lambda t, g: [str(g), "--bootstrap", "many"], 2, r"invalid int value: 'many'"),
    ("metric-unknown", lambda t, g: [str(g), "--metric", "top5"], 2, r"invalid choice: 'top5'"),
    ("interval-unknown", lambda t, g: [str(g), "--interval", "bca"], 2, r"invalid choice: 'bca'"),
    ("published-without-dataset", lambda t, g: [str(g), "--published", "cifar10.csv"], 1, r"DATASET=FILE\.csv"),
    ("published-missing-file", lambda t, g: [str(g), "--published", f"cifar10={t / 'no.csv'}"], 1,
     r"cannot read published results"),
    ("published-not-the-layout", lambda t, g: _published(t, g, "a,b\n1,2\n"), 1, r"no 'Random <Method>' column"),
    ("published-not-numbers", lambda t, g: _published(t, g, "Random DARTS,DARTS\nx,1\n"), 1, r"not a number: 'x'"),
    ("published-not-percent", lambda t, g: _published(t, g, "Random DARTS,DARTS\n9,900\n"), 1,
     r"not a top-1 accuracy in percent"),
    ("published-binary", lambda t, g: _published(t, g, b"\xff\xfe\x00" * 50), 1, r"published results"),
]


def _published(folder: Path, db: Path, content: str | bytes) -> list[str]:
    """Report arguments: the good DB plus a published CSV holding ``content``."""
    path = folder / "published.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return [str(db), "--published", f"cifar10={path}"]


@pytest.mark.parametrize("build, code, pattern", [c[1:] for c in REPORT_CASES], ids=[c[0] for c in REPORT_CASES])
def test_bad_report_input(tmp_path: Path, good_db: Path, build: Callable[[Path, Path], list[str]], code: int,
                          pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    args = build(inputs, good_db)
    out = [] if "--out" in args else ["--out", str(tmp_path / "report")]
    _one_line(lambda: cli_main(["report", *args, *out, "--no-progress"]), code,
              rf"^nas-bench( report)?: error: .*{pattern}", capsys)


def test_unreadable_metrics_are_listed_not_fatal(tmp_path: Path, good_db: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Damaged metric rows: the report is written, the trials are listed, and the terminal says so in one line."""
    args = _copy_with(good_db, "UPDATE MetricData SET data = 'not json';")(tmp_path)
    _one_line(lambda: cli_main(["report", *args, "--out", str(tmp_path / "r"), "--no-progress", "--bootstrap", "100"]),
              0, r"^note: \d+ of \d+ trials did not complete", capsys)
    assert "unreadable metrics" in (tmp_path / "r" / "report.md").read_text()


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line(lambda: cli_main(["frobnicate"]), 2, r"^nas-bench: error: argument command: invalid choice", capsys)


def test_the_corpus_has_at_least_100_cases() -> None:
    assert len(YAML_CASES) + len(TRIAL_CASES) + len(REPORT_CASES) >= 100


# ------------------------------------------------------------------------------------- helper
def _one_line(run: Callable[[], int], code: int, pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``run()`` (or its SystemExit) gives ``code``; stderr is exactly one line matching ``pattern``."""
    try:
        returned = run()
    except SystemExit as exc:
        returned = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, lines
    assert re.search(pattern, lines[0]), lines[0]
    assert returned == code, (returned, lines[0])


@pytest.fixture(autouse=True)
def _no_nni_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("NNI_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NNB_CHECKPOINT_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "nnb-corpus-ckpt"))
