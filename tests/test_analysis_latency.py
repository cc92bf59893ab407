"""Accuracy vs predicted latency (Single-Path NAS): reader column, table, figure and report section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import figures, stats
from analysis.report import write_report
from analysis.synthetic import FakeTrial, write_trial_db
from analysis.trial_db import read_experiments

PROTOCOL = {"name": "single_path", "epochs": 2, "seed": 0, "layers": 22, "channels": 32}


def _as_reported(params: dict) -> dict:
    """Trials report protocol and space_args as JSON text (flat metrics for NNI's web UI)."""
    return {k: json.dumps(params.get(k, {}), sort_keys=True) for k in ("protocol", "space_args")}


def _trials(rng: np.random.Generator) -> tuple[list[FakeTrial], dict[str, list[tuple[float, float]]]]:
    """Searched (fast) and random (slower) mobilenet_sp trials with latency_ms, one DARTS trial without it."""
    trials, truth = [], {"searched": [], "random": []}
    common = {"dataset": "sport8", "space": "mobilenet_sp", "space_args": {"latency_table": "pixel1"},
              "protocol": PROTOCOL}
    for i in range(10):
        role = "searched" if i < 4 else "random"
        latency = float(rng.uniform(60, 70) if role == "searched" else rng.uniform(80, 110))
        acc = float(rng.normal(90 if role == "searched" else 88, 0.5))
        truth[role].append((acc, latency))
        params = {**common, "role": role, "method": "single_path" if role == "searched" else "random",
                  "genotype": f"arch{i}", **({"search_seed": i} if role == "searched" else {"arch_index": i})}
        final = {**params, **_as_reported(params), "default": acc, "latency_ms": latency}
        trials.append(FakeTrial(f"t{i}", params, final, [acc - 1, acc], parameter_id=i))
    darts = {"role": "random", "method": "random", "dataset": "sport8", "space": "darts", "genotype": "g",
             "arch_index": 0, "protocol": {**PROTOCOL, "name": "darts"}}
    trials.append(FakeTrial("d0", darts, {**darts, **_as_reported(darts), "default": 80.0}, [80.0], parameter_id=10))
    return trials, truth


@pytest.fixture()
def frame(tmp_path: Path) -> tuple[pd.DataFrame, dict]:
    trials, truth = _trials(np.random.default_rng(0))
    write_trial_db(tmp_path / "exp", trials, experiment_id="sp", experiment_name="single-path-sport8")
    return read_experiments([tmp_path / "exp"]), truth


def test_reader_and_table(frame: tuple[pd.DataFrame, dict]) -> None:
    df, truth = frame
    assert df["latency_ms"].notna().sum() == 10 and df.loc[df["space"] == "darts", "latency_ms"].isna().all()
    table = stats.latency_table(df)
    assert table["role"].tolist() == ["searched", "random"]  # the DARTS row has no latency: not listed
    for role, row in zip(("searched", "random"), table.itertuples()):
        acc, latency = np.array(truth[role]).T
        assert row.n == len(acc)
        assert row.acc_mean == pytest.approx(acc.mean()) and row.acc_std == pytest.approx(acc.std(ddof=1))
        assert row.latency_mean == pytest.approx(latency.mean()) and row.latency_max == pytest.approx(latency.max())
    assert table.loc[0, "latency_mean"] < table.loc[1, "latency_mean"]


def test_figure_and_skip(frame: tuple[pd.DataFrame, dict], tmp_path: Path) -> None:
    df, _ = frame
    fig = figures.accuracy_vs_latency(df)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted latency (ms)" and "sport8" in ax.get_title()
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["random (n=6)", "single_path searched (n=4)"]
    paths = figures.save(fig, tmp_path, "lat", formats=("png",))
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(figures.FigureSkipped, match="latency_ms"):
        figures.accuracy_vs_latency(df[df["space"] == "darts"])


def test_report_has_the_latency_section_only_with_latency_rows(frame: tuple[pd.DataFrame, dict],
                                                              tmp_path: Path) -> None:
    df, _ = frame
    result = write_report(df, tmp_path / "with", n_boot=100, formats=("png",))
    text = (tmp_path / "with" / "report.md").read_text()
    assert "## Accuracy vs predicted latency" in text and "figures/accuracy_vs_latency.png" in text
    assert (tmp_path / "with" / "latency.csv") in result.files
    assert pd.read_csv(tmp_path / "with" / "latency.csv")["n"].tolist() == [4, 6]
    write_report(df[df["space"] == "darts"], tmp_path / "without", n_boot=100, formats=("png",))
    assert "predicted latency" not in (tmp_path / "without" / "report.md").read_text()
