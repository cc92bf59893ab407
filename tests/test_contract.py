"""The trial contract (nni_nas_bench/contract.py): roles, identity, trial keys and the parameter line."""

from __future__ import annotations

import json
from pathlib import Path

from nni_nas_bench.contract import (
    IDENTITY,
    KEY,
    PARAMETERS_LINE,
    Role,
    TrialParams,
    identity,
    parameters_line,
    read_parameters,
    trial_key,
)


def test_roles_are_the_db_text() -> None:
    """A role is stored as plain text (NNI's DB, CSVs, the report): the enum must not change it."""
    assert [r.value for r in Role] == ["search", "searched", "random", "candidate"]
    assert Role.SEARCHED == "searched" and str(Role.SEARCHED) == "searched" and f"{Role.RANDOM}" == "random"
    assert json.dumps({"role": Role.CANDIDATE}) == '{"role": "candidate"}'
    assert "searched" in {Role.SEARCHED} and Role("random") is Role.RANDOM


def test_identity_keys_are_parameters_and_analysis_columns() -> None:
    from analysis.trial_db import ALL_COLUMNS

    assert set(IDENTITY) | set(KEY) <= set(TrialParams.__annotations__)
    assert set(IDENTITY) <= set(ALL_COLUMNS)  # every identity key the trial repeats has a column
    params = {"role": "searched", "method": "darts", "genotype": "g", "protocol": {}, "search_seed": 3}
    assert identity(params) == {"role": "searched", "method": "darts", "search_seed": 3}


def test_trial_key_names_role_seeds_and_indices() -> None:
    """The journal's keys: their text must not change between versions (resumed experiments compare them)."""
    assert trial_key({"role": "searched", "search_seed": 3, "method": "darts"}) == "searched/3/None/None/None"
    assert trial_key({"role": "random", "arch_index": 4, "variant": "seed1"}) == "random/None/None/4/seed1"
    assert trial_key({"search_seed": 3}) is None and trial_key(12.5) is None


def _trial_log(experiment: Path, trial: str, text: str, name: str = "trial.stdout") -> None:
    path = experiment / "environments" / "local-env" / "trials" / trial / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_parameter_line_round_trip(tmp_path: Path) -> None:
    """What a trial prints first is what the analysis and a resumed tuner read back."""
    params = {"role": Role.RANDOM.value, "arch_index": 2, "genotype": "Genotype(...)", "protocol": {"seed": 0}}
    line = parameters_line(params)
    assert line.startswith(PARAMETERS_LINE) and "\n" not in line
    _trial_log(tmp_path, "T1", f"some warning\n{line}\nepoch 1\n")
    _trial_log(tmp_path, "T2", "no parameter line\n", "trial.log")
    _trial_log(tmp_path, "T3", f"{PARAMETERS_LINE}{{not json\n")
    assert read_parameters(tmp_path, "T1") == params
    assert read_parameters(tmp_path, "T2") is None
    assert read_parameters(tmp_path, "T3") is None
    assert read_parameters(tmp_path, "missing") is None


def test_tuner_parameters_use_known_keys_and_roles() -> None:
    """Every key the tuners write is a TrialParams key, and every role a Role value."""
    from nni_nas_bench.tuners import BenchmarkTuner

    tuner = BenchmarkTuner(method="darts", dataset="cifar10", num_searches=1, num_random=1,
                           search={"epochs": 1}, tabular={"dataset": "cifar10"})
    first = [tuner.generate_parameters(i) for i in range(2)]
    tuner.receive_trial_result(0, first[0], {"default": 1.0, "genotype": first[1]["genotype"]}, trial_job_id="T0")
    served = [*first, tuner.generate_parameters(2)]
    assert [p["role"] for p in served] == [Role.SEARCH, Role.RANDOM, Role.SEARCHED]
    for params in served:
        assert type(params["role"]) is str  # plain text: NNI serializes parameters with json_tricks
        assert set(params) <= set(TrialParams.__annotations__), set(params) - set(TrialParams.__annotations__)


def test_a_trial_s_arch_id_is_the_report_s() -> None:
    """The ``arch_id`` a trial reports (NNI's web UI column) is the report's: same space, settings and genotype,
    same id; another genotype or other space settings, another id."""
    import pandas as pd

    from analysis.stats import architecture_table
    from nni_nas_bench.contract import arch_id, with_arch_id

    metrics = with_arch_id({"space": "darts", "space_args": '{"op_set": "darts"}', "genotype": "G1", "default": 1.0})
    assert metrics["arch_id"] == arch_id("darts", '{"op_set": "darts"}', "G1")
    assert len(metrics["arch_id"]) == 8 and int(metrics["arch_id"], 16) >= 0
    assert arch_id("darts", '{"op_set": "poor"}', "G1") != metrics["arch_id"]
    assert arch_id("darts", '{"op_set": "darts"}', "G2") != metrics["arch_id"]
    rows = pd.DataFrame([{**metrics, "dataset": "cifar10", "method": "random", "role": "random", "protocol_name": "p",
                          "train_seed": 0, "final_acc": 50.0, "status": "SUCCEEDED", "complete": True}])
    assert architecture_table(rows, metric="final")["arch_id"].tolist() == [metrics["arch_id"]]
