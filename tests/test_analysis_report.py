"""Figures and the `nas-bench report` command on a synthetic benchmark that has every kind of trial the
suite will produce (search, searched, random, the studies): every figure drawn, every listed file written.
The same on the DBs of real nnictl experiments: test_analysis_nnictl.py."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from analysis import figures, read_experiments
from analysis.published import read_published_csv
from analysis.report import Document, latex_table, write_report
from analysis.synthetic import make_benchmark
from nni_nas_bench.cli import main as cli


@pytest.fixture(scope="module")
def synthetic_experiments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "nni-experiments"
    make_benchmark(root, seed=0, runs=4, epochs=8)
    return root


@pytest.fixture(scope="module")
def table(synthetic_experiments: Path) -> pd.DataFrame:
    return read_experiments([synthetic_experiments])


def test_every_figure_is_drawn_when_its_data_exists(table: pd.DataFrame, tmp_path: Path) -> None:
    results = figures.draw_all(table, tmp_path, "final")
    assert [r.name for r in results] == list(figures.FIGURES)
    assert {r.name: r.note for r in results if r.note} == {}
    for r in results:
        assert [p.suffix for p in r.paths] == [".png", ".pdf"]
        assert all(p.stat().st_size > 1000 for p in r.paths)
        assert r.paths[0].read_bytes()[:4] == b"\x89PNG" and r.paths[1].read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("figure, message", [
    ("searched_vs_random", "needs searched trials"),
    ("accuracy_vs_cost", "needs search trials"),
    ("seed_scatter", "two values of 'train_seed'"),
    ("depth_scatter", "at two depths"),
    ("training_tricks", "at least two protocols"),
    ("accuracy_vs_cells", "two or more depths"),
])
def test_figures_without_their_data_are_skipped_with_a_reason(table: pd.DataFrame, figure: str, message: str) -> None:
    random_only = table[(table.role == "random") & (table.experiment_id == "random-darts-cifar10")]
    with pytest.raises(figures.FigureSkipped, match=message):
        getattr(figures, figure)(random_only)


def test_distributions_need_complete_trials_but_not_searched_ones(table: pd.DataFrame) -> None:
    random_only = table[(table.role == "random") & (table.experiment_id == "random-darts-cifar10")]
    with pytest.raises(figures.FigureSkipped, match="no complete searched or random"):
        figures.distributions(random_only[random_only.role == "none"])
    assert figures.distributions(random_only).axes  # the baseline alone is still worth a figure


def test_best_metric_figure_labels(table: pd.DataFrame) -> None:
    fig = figures.distributions(table, "best")
    assert fig.axes[0].get_ylabel() == "best-epoch accuracy (%)"


def test_report_files_and_content(table: pd.DataFrame, tmp_path: Path) -> None:
    result = write_report(table, tmp_path, "final", n_boot=500, sources=["synthetic"])
    assert result.has_ri and result.skipped_figures == {}
    for path in result.files:
        assert path.is_file() and path.stat().st_size > 0, path
    names = {p.relative_to(tmp_path).as_posix() for p in result.files}
    assert {"report.md", "report.html", "ri_table.csv", "ri_table.tex", "random_baseline.csv",
            "random_baseline.tex", "cost.csv", "cost.tex", "trials.csv"} <= names
    assert {f"figures/{n}.{e}" for n in figures.FIGURES for e in ("png", "pdf")} <= names
    md = (tmp_path / "report.md").read_text()
    for heading in ("## Relative improvement over random sampling", "## Random-sampling baseline", "## Cost",
                    "### Training protocols", "### Ranking stability", "### Ranking at epoch e vs final",
                    "## Failed and unfinished trials", "## Provenance"):
        assert heading in md
    ri = pd.read_csv(tmp_path / "ri_table.csv")
    assert set(ri.method) == {"darts", "enas"} and set(ri.dataset) == {"cifar10", "sport8"}
    assert (ri.ri_low <= ri.ri).all() and (ri.ri <= ri.ri_high).all()
    # Every figure the Markdown shows exists, and the HTML shows the same ones with no remote asset.
    for target in re.findall(r"\]\(([^)]+)\)", md):
        assert (tmp_path / target).is_file(), target
    page = (tmp_path / "report.html").read_text()
    assert page.count("<img ") == len(figures.FIGURES) and "http" not in page.replace("http-equiv", "")
    # The synthetic failed trial is listed with its id.
    failed = table[table.failed]
    assert len(failed) == 1 and f"| {failed.trial_id.iloc[0]} | FAILED |" in md
    assert (tmp_path / "ri_table.tex").read_text().startswith("\\begin{table}")


def test_cli_report_with_published_numbers(synthetic_experiments: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "CIFAR10.csv"
    csv.write_text("Random DARTS,DARTS\n96.5,97.0\n96.0,97.5\n")
    out = tmp_path / "report"
    code = cli(["report", str(synthetic_experiments), "--out", str(out), "--metric", "best", "--bootstrap", "200",
                "--published", f"cifar10={csv}", "--no-progress"])
    printed = capsys.readouterr().out.split()
    assert code == 0 and printed
    for path in map(Path, printed):
        assert path.is_file() and path.stat().st_size > 0, path
    md = (out / "report.md").read_text()
    assert "best-epoch accuracy (`best_acc`)" in md and "cifar10 (published)" in md
    ri = pd.read_csv(out / "ri_table.csv")
    assert set(ri.origin) == {"nni", "published"}  # never pooled


def test_cli_report_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "no NNI trial database" in capsys.readouterr().err
    assert cli(["report", "--out", str(tmp_path / "o")]) == 1
    assert "name at least one experiment" in capsys.readouterr().err
    assert cli(["report", "--out", str(tmp_path / "o"), "--published", "nofile.csv"]) == 1
    assert "DATASET=FILE.csv" in capsys.readouterr().err


def test_report_rendering_helpers() -> None:
    doc = Document("T")
    doc.para("a `code` and [link](x.pdf) <b>")
    doc.table(pd.DataFrame({"a|b": [1.23456, None], "c": ["x_y", "z"]}))
    md, page = doc.to_markdown(), doc.to_html()
    assert "| a\\|b | c |" in md and "| 1.23 | x_y |" in md
    assert "<code>code</code>" in page and '<a href="x.pdf">link</a>' in page and "&lt;b&gt;" in page
    tex = latex_table(pd.DataFrame({"method": ["x_y"], "ri": [1.0]}), caption="50% & more")
    assert "x\\_y & 1.00 \\\\" in tex and "50\\% \\& more" in tex and "{lr}" in tex


def test_published_only_report(tmp_path: Path) -> None:
    df = read_published_csv(io.StringIO("Random DARTS,DARTS\n96.5,97.0\n96.0,97.5\n"), "cifar10")
    result = write_report(df, tmp_path, n_boot=100)
    assert result.has_ri and "figures/searched_vs_random.png" in (tmp_path / "report.md").read_text()


def test_report_lists_every_architecture_and_flags_tiny_samples(table: pd.DataFrame, tmp_path: Path) -> None:
    """The report's own per-architecture table (issue 19: genotype id, role, accuracy, seeds) with every row in
    architectures.csv, and statistics of fewer than MIN_RANK_N runs flagged instead of read as evidence."""
    from analysis import stats

    write_report(table, tmp_path, "final", n_boot=200)
    md = (tmp_path / "report.md").read_text()
    archs = pd.read_csv(tmp_path / "architectures.csv")
    benchmark = stats.usable(table)
    benchmark = benchmark[benchmark.role.isin(["searched", "random"]) & benchmark.study.isna()]
    assert archs["n"].sum() == len(benchmark)
    assert set(archs.genotype) == set(benchmark.genotype)
    assert "## Architectures" in md and archs.arch_id.iloc[0] in md
    # best first within each dataset and role
    for _, group in archs.groupby(["dataset", "role"], sort=False):
        assert group["mean"].is_monotonic_decreasing
    ri = stats.ri_table(table, "final", n_boot=100)
    if (ri[["searched_n", "random_n"]].min(axis=1) < stats.MIN_RANK_N).any():
        assert "too few runs to judge" in md


def test_architecture_table_groups_the_seeds_of_one_architecture() -> None:
    """Two trainings of one genotype (two seeds) are one row with n 2, both seeds, their mean and std."""
    from analysis import stats

    rows = pd.DataFrame({
        "dataset": ["cifar10"] * 3, "method": ["random"] * 3, "role": ["random"] * 3, "space": ["darts"] * 3,
        "space_args": ["{}"] * 3, "genotype": ["A", "A", "B"], "protocol_name": ["darts"] * 3,
        "train_seed": [1, 0, 0], "final_acc": [90.0, 92.0, 95.0], "complete": [True] * 3, "study": [None] * 3,
    })
    table = stats.architecture_table(rows)
    assert table[["genotype", "n", "train_seeds"]].values.tolist() == [["B", 1, "0"], ["A", 2, "0, 1"]]
    assert table["mean"].tolist() == [95.0, 91.0] and table["std"].iloc[1] == pytest.approx(2 ** 0.5)
    assert table.arch_id.str.fullmatch(r"[0-9a-f]{8}").all()
