"""A publishable report from trial DBs: ``report.md`` + ``report.html``, figures, tables as CSV and LaTeX.

The report is a :class:`~analysis.document.Document` (rendered to Markdown and HTML there) filled by one
function per section, in :data:`SECTIONS` order: summary, relative improvement (or, while no searched
trials exist, a plain statement that RI needs them), the random-sampling baseline, the architectures
trained, cost, accuracy vs latency, the studies of SPEC that the data supports, figures (skipped ones
with the reason), failed and unfinished trials, provenance (experiments, trial counts, seeds, protocols,
code versions, devices). A section reads and writes only through :class:`Report`.
:func:`write_report` returns every file it wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import figures, stats
from analysis.document import Document, latex_table, listing
from nni_nas_bench.contract import Role
from nni_nas_bench.errors import ConfigError

__all__ = ["Document", "Report", "ReportResult", "latex_table", "report_command", "write_report"]

_PROTOCOL_SHOWN = ("epochs", "batch_size", "channels", "layers", "lr", "weight_decay", "cutout", "drop_path",
                   "auxiliary_weight", "autoaugment", "label_smoothing", "subset")
ARCHITECTURES_SHOWN = 60
"""Rows of the architecture table in the report itself; every row is in architectures.csv."""


# ------------------------------------------------------------------------------------------ content
def _pm(mean: float, std: float, n: int, iqm: float = float("nan")) -> str:
    if not np.isfinite(mean):
        return "–"
    text = f"{mean:.2f} ± {std:.2f}" if np.isfinite(std) else f"{mean:.2f}"
    return f"{text} (n={n}; IQM {iqm:.2f})" if np.isfinite(iqm) and n >= 4 else f"{text} (n={n})"


def _power(power: float, runs: float) -> str:
    """The power line of a cell: the test's power for the observed A12, and the runs it would need."""
    if not np.isfinite(power):
        return "–"
    needed = "no effect to detect" if not np.isfinite(runs) else f"80 % needs {runs:.0f} runs per side"
    return f"{power:.0%} ({needed})"


def _ri_display(table: pd.DataFrame, ci: float) -> pd.DataFrame:
    rows = []
    for r in table.itertuples():
        rows.append({
            "dataset": r.dataset + (" (published)" if r.origin == "published" else ""),
            "method": r.method,
            "searched": _pm(r.searched_mean, r.searched_std, r.searched_n, r.searched_iqm),
            "random": _pm(r.random_mean, r.random_std, r.random_n, r.random_iqm),
            "RI (%)": f"{r.ri:+.2f}" if np.isfinite(r.ri) else "–",
            f"{ci:.0%} interval": f"[{r.ri_low:+.2f}, {r.ri_high:+.2f}]" if np.isfinite(r.ri_low) else "–",
            "Mann–Whitney p": f"{r.mwu_p:.3g}" if np.isfinite(r.mwu_p) else "–",
            "Holm p": f"{r.mwu_p_holm:.3g}" if np.isfinite(r.mwu_p_holm) else "–",
            "A12": f"{r.a12:.2f}" if np.isfinite(r.a12) else "–",
            "power": _power(r.power, r.runs_for_80),
            "baseline": r.baseline,
            "note": (f"too few runs to judge (n < {stats.MIN_RANK_N})"
                     if min(r.searched_n, r.random_n) < stats.MIN_RANK_N else ""),
        })
    return pd.DataFrame(rows)


def _protocols(df: pd.DataFrame) -> pd.DataFrame:
    rows: dict[str, dict[str, Any]] = {}
    for name, protocol, seed in zip(df["protocol_name"], df["protocol"], df["train_seed"]):
        if not isinstance(protocol, dict):
            continue
        key = json.dumps({k: v for k, v in protocol.items() if k != "seed"}, sort_keys=True, default=str)
        row = rows.setdefault(key, {"protocol": name, **{k: protocol.get(k) for k in _PROTOCOL_SHOWN},
                                    "seeds": set(), "trials": 0})
        row["trials"] += 1
        if seed is not None and not (isinstance(seed, float) and np.isnan(seed)):
            row["seeds"].add(int(seed))
    out = pd.DataFrame(list(rows.values()))
    if not out.empty:
        out["seeds"] = out["seeds"].map(lambda s: ", ".join(map(str, sorted(s))))
    return out


def _values(series: pd.Series) -> str:
    values = sorted({str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                     for v in series.dropna().unique()})
    return ", ".join(values) if values else "–"


@dataclass
class ReportResult:
    """What :func:`write_report` produced."""

    files: list[Path]
    skipped_figures: dict[str, str]
    has_ri: bool


@dataclass
class Report:
    """What every section reads (the trials, the metric, the settings) and where it writes (the document,
    the output folder, the list of files)."""

    df: pd.DataFrame
    out: Path
    metric: str
    n_boot: int
    ci: float
    seed: int
    sources: Sequence[str]
    formats: Sequence[str]
    interval: str = "BCa"
    doc: Document = field(default_factory=lambda: Document("NAS evaluation report"))
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    has_ri: bool = False

    @property
    def column(self) -> str:
        return stats.metric_column(self.metric)

    @property
    def plain(self) -> str:
        """The metric in words, for captions."""
        return {"final_acc": "last-epoch accuracy", "best_acc": "best-epoch accuracy"}[self.column]

    def table(self, frame: pd.DataFrame, name: str | None = None, caption: str = "") -> None:
        """Show ``frame``; with a ``name``, also write it as ``<name>.csv`` and ``<name>.tex``."""
        self.doc.table(frame)
        if name is not None:
            self.files += _write_table(frame, self.out, name, caption)

    def figure(self, paths: list[Path], title: str) -> None:
        """Show the first of a figure's files, link the other formats."""
        self.files += paths
        self.doc.figure(paths[0].relative_to(self.out).as_posix(), title,
                        [(p.suffix[1:].upper(), p.relative_to(self.out).as_posix()) for p in paths[1:]])


def _summary(r: Report) -> None:
    from nni_nas_bench.provenance import code_version

    df = r.df
    label = {"final_acc": "last-epoch accuracy (`final_acc`)", "best_acc": "best-epoch accuracy (`best_acc`)"}
    n_complete = int(df["complete"].fillna(False).astype(bool).sum())
    n_failed = int(df["failed"].fillna(False).astype(bool).sum())
    r.doc.para(
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by nni-nas-bench {code_version()} from "
        f"{df['experiment_id'].nunique()} experiment(s): {len(df)} trials, {n_complete} complete, {n_failed} "
        f"failed, {len(df) - n_complete - n_failed} unfinished or cancelled. Accuracy: {label[r.column]}; "
        "statistics use complete trials only. Standard deviations are sample standard deviations."
    )


def _relative_improvement(r: Report) -> None:
    r.doc.heading("Relative improvement over random sampling")
    ri = stats.ri_table(r.df, r.metric, n_boot=r.n_boot, ci=r.ci, seed=r.seed, interval=r.interval)
    r.has_ri = not ri.empty
    if ri.empty:
        r.doc.para(
            "RI needs searched trials (role `searched`: architectures found by a NAS method, trained with the "
            "final protocol). These experiments have none, so no RI is reported; the random-sampling "
            "baseline below is what every method will be compared with."
        )
        return
    r.doc.para(
        "RI = 100 (Acc_m − Acc_r) / Acc_r with Acc_m, Acc_r the mean accuracy of the searched and of the "
        f"random architectures. Interval: seeded {r.interval} bootstrap (`scipy.stats.bootstrap`, {r.n_boot} "
        "resamples, searched and "
        "random resampled independently). IQM: interquartile mean (the middle half of the runs; one diverged "
        "run cannot move it), shown from 4 runs on. p: two-sided Mann–Whitney U test of searched vs random "
        "runs; Holm p: that p adjusted for testing every cell of this table (Holm–Bonferroni, family-wise error). A12: "
        "Vargha–Delaney effect size, the chance that a searched run beats a random one (0.5: none; 0.56 / 0.64 / "
        "0.71: small / medium / large). power: the chance that this cell's run counts detect an effect of the "
        "observed A12 at p < 0.05 (Noether's approximation), and the runs per side that 80 % power needs: a "
        "low power means the cell cannot tell, not that the method equals random."
    )
    r.doc.table(_ri_display(ri, r.ci))
    r.files += _write_table(ri, r.out, "ri_table", f"Relative improvement ({r.plain})")


def _random_baseline(r: Report) -> None:
    r.doc.heading("Random-sampling baseline")
    baseline = stats.random_summary(r.df, r.metric)
    if baseline.empty:
        r.doc.para("No complete random-baseline trials (role `random`).")
        return
    r.doc.para("Architectures sampled uniformly from each space and trained with the protocol shown.")
    r.table(baseline, "random_baseline", f"Random-sampling baseline ({r.plain})")


def _architectures(r: Report) -> None:
    table = stats.architecture_table(r.df, r.metric)
    if table.empty:
        return
    r.doc.heading("Architectures")
    csv = r.out / "architectures.csv"
    table.to_csv(csv, index=False)
    r.files.append(csv)
    shown = table.drop(columns=["genotype"])
    more = (f" The {ARCHITECTURES_SHOWN} first are shown; all {len(table)} are" if len(table) > ARCHITECTURES_SHOWN
            else " They are also")
    r.doc.para("Every architecture the benchmark experiments trained (searched and random), best first within "
               "each dataset and role: `arch_id` is a stable short id of the space and genotype, `n` the "
               f"trainings (one per seed), `mean` and `std` the {r.plain} over them.{more} in "
               "[architectures.csv](architectures.csv) with the full genotypes.")
    shown = shown.head(ARCHITECTURES_SHOWN)
    r.doc.table(listing(shown.assign(mean=shown["mean"].map(lambda v: f"{v:.2f}"),
                                     std=shown["std"].map(lambda v: "" if np.isnan(v) else f"{v:.2f}"))))


def _cost(r: Report) -> None:
    cost = stats.cost_table(r.df)
    if cost.empty:
        return
    r.doc.heading("Cost")
    r.doc.para("Device-hours from each trial's own timing (`train_seconds`, `search_seconds`), on the devices "
               "listed. Random sampling has no search cost.")
    r.table(cost, "cost", "Search and training cost (device-hours)")


def _latency(r: Report) -> None:
    """Accuracy vs predicted latency, for spaces with a latency model (Single-Path NAS)."""
    latency = stats.latency_table(r.df, r.metric)
    if latency.empty:
        return
    r.doc.heading("Accuracy vs predicted latency")
    r.doc.para("Architectures of spaces with a per-layer latency model (Single-Path NAS's `mobilenet_sp`): "
               "the latency is the table's prediction (`latency_ms`, ms; the Pixel-1 table unless the space "
               "names another), searched vs random. τ: Kendall τ of accuracy and latency within the group.")
    r.table(latency, "latency", f"Accuracy ({r.plain}) vs predicted latency")
    r.figure(figures.save(figures.accuracy_vs_latency(r.df, r.metric), r.out / "figures", "accuracy_vs_latency",
                          r.formats), "Accuracy vs predicted latency, searched vs random")


def _studies_section(r: Report) -> None:
    blocks = _studies(r.df, r.metric)
    if not blocks:
        return
    r.doc.heading("Studies")
    for title, text, table in blocks:
        r.doc.heading(title, 3)
        r.doc.para(text)
        r.doc.table(table)


def _figures(r: Report) -> None:
    r.doc.heading("Figures")
    results = figures.draw_all(r.df, r.out / "figures", r.metric, formats=r.formats)
    r.skipped = {res.name: res.note for res in results if res.note}
    for res in results:
        if res.paths:
            r.figure(res.paths, res.title)
    if r.skipped:
        r.doc.para("Not drawn (the data they need is not in these experiments):")
        r.doc.bullets([f"`{name}`: {note}" for name, note in r.skipped.items()])


def _failed(r: Report) -> None:
    r.doc.heading("Failed and unfinished trials")
    bad = r.df[~r.df["complete"].fillna(False).astype(bool)]
    if bad.empty:
        r.doc.para("None: every trial completed.")
        return
    n_failed = int(r.df["failed"].fillna(False).astype(bool).sum())
    r.doc.para(f"{len(bad)} trial(s) did not complete ({n_failed} failed). They are excluded from every "
               "statistic above and listed here so that nothing is dropped silently.")
    r.doc.table(listing(bad[["experiment_id", "trial_id", "status", "role", "method", "dataset", "arch_index",
                             "train_seed", "error"]].reset_index(drop=True)))


def _provenance(r: Report) -> None:
    df = r.df
    r.doc.heading("Provenance")
    experiments = (
        df.groupby("experiment_id", sort=True)
        .agg(name=("experiment_name", "first"), trials=("trial_id", "size"),
             complete=("complete", lambda s: int(s.fillna(False).astype(bool).sum())),
             failed=("failed", lambda s: int(s.fillna(False).astype(bool).sum())),
             roles=("role", _values), methods=("method", _values), datasets=("dataset", _values),
             source=("db_path", "first"))
        .reset_index()
    )
    r.doc.heading("Experiments", 3)
    r.doc.table(listing(experiments))
    r.doc.heading("Seeds, code and devices", 3)
    items = [
        f"architecture sampling seeds: {_values(df['arch_seed'])}",
        f"training seeds: {_values(df['train_seed'])}",
        f"search seeds: {_values(df['search_seed'])}",
        f"code versions: {_values(df['code_version'])}",
        f"devices: {_values(df['device'])}",
    ]
    mismatched = int(df["params_mismatch"].fillna(False).astype(bool).sum())
    items.append(f"trials whose NNI-recorded parameters disagree with what they ran (NNI 3.0 bug #5726; the "
                 f"trials' own metrics are used): {mismatched}")
    if r.sources:
        items.append("sources: " + ", ".join(f"`{s}`" for s in r.sources))
    r.doc.bullets(items)
    protocols = _protocols(df)
    if not protocols.empty:
        r.doc.heading("Training protocols", 3)
        r.doc.table(listing(protocols))


def _trials_file(r: Report) -> None:
    trials = r.df.drop(columns=["curve", "protocol", "recorded_parameters"], errors="ignore")
    path = r.out / "trials.csv"
    trials.to_csv(path, index=False)
    r.files.append(path)
    r.doc.para("Every trial (one row each, curves left out) is in [trials.csv](trials.csv).")


SECTIONS: tuple[Callable[[Report], None], ...] = (
    _summary, _relative_improvement, _random_baseline, _architectures, _cost, _latency, _studies_section,
    _figures, _failed, _provenance, _trials_file,
)


def write_report(df: pd.DataFrame, out_dir: str | Path, metric: str = "final", *, n_boot: int = 10_000,
                 ci: float = 0.95, seed: int = 0, sources: Sequence[str] = (),
                 formats: Sequence[str] = ("png", "pdf"), interval: str = "BCa") -> ReportResult:
    """Write the report of ``df`` into ``out_dir``; return every file written (and what was skipped)."""
    stats.metric_column(metric)  # an unknown metric fails before anything is written
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"--out {out} is a file, not a folder: give a folder for the report") from None
    except PermissionError:
        raise ConfigError(f"--out {out} cannot be created here (permission denied): give a writable folder") from None
    if df.empty:
        raise ConfigError("no trials to report: the experiments hold no trials")
    if interval not in stats.INTERVALS:
        raise ConfigError(f"--interval must be one of {', '.join(stats.INTERVALS)}, got {interval!r}")
    report = Report(df, out, metric, n_boot, ci, seed, sources, formats, interval)
    for section in SECTIONS:
        section(report)
    md, page = out / "report.md", out / "report.html"
    md.write_text(report.doc.to_markdown())
    page.write_text(report.doc.to_html())
    return ReportResult([md, page, *report.files], report.skipped, report.has_ri)


def _write_table(table: pd.DataFrame, out: Path, name: str, caption: str) -> list[Path]:
    csv, tex = out / f"{name}.csv", out / f"{name}.tex"
    table.to_csv(csv, index=False)
    tex.write_text(latex_table(table, caption=caption, label=f"tab:{name.replace('_', '-')}"))
    return [csv, tex]


def _studies(df: pd.DataFrame, metric: str) -> list[tuple[str, str, pd.DataFrame]]:
    """The SPEC studies the data supports, each as (title, explanation, table)."""
    blocks = []
    tricks = stats.protocol_table(df, metric)
    counts = tricks.groupby("dataset")["protocol_name"].nunique()
    if (counts >= 2).any():
        text = "Random architectures per training protocol (SPEC experiment 1)."
        tricks_rows = stats.usable(stats.study_rows(df, "tricks"), metric)
        label = tricks_rows["variant"].fillna(tricks_rows["protocol_name"])
        for dataset, rows in tricks_rows.groupby("dataset"):
            base, every = rows[label[rows.index] == "base"]["acc"], rows[label[rows.index] == "all"]["acc"]
            if len(base) and len(every):
                gap, low, high = stats.bootstrap_mean_difference(every, base, n_boot=2000)
                text += (f" {dataset}: 'all' minus 'base' = {gap:+.2f} points "
                         f"(95% bootstrap interval {low:+.2f} to {high:+.2f}; paper: over 3 points).")
        blocks.append(("Training protocols", text, tricks[tricks["dataset"].isin(counts[counts >= 2].index)]))
    rankings = []
    for by, what, study in (("train_seed", "training seed", "seeds"), ("layers", "cells", "depth")):
        rows = stats.study_rows(df, study)
        try:
            pair = figures.depth_pair(rows, metric) if by == "layers" else (None, None)
            rankings.append({"compared": what, **stats.compare_rankings(rows, by, *pair, metric=metric).summary()})
        except (ConfigError, figures.FigureSkipped):
            continue
    if rankings:
        table = pd.DataFrame(rankings).drop(columns=["study"])
        few = table["n"] < stats.MIN_RANK_N
        table["tau"] = table["tau"].astype(object).where(~few, f"too few to rank (n < {stats.MIN_RANK_N})")
        table["p"] = table["p"].astype(object).where(~few, "")
        blocks.append(("Ranking stability", "The same random architectures ranked twice (SPEC experiments 2 and 4): "
                       "Kendall τ, the largest rank shift, and the mean/max absolute accuracy change.", table))
    operations = stats.usable(stats.study_rows(df, "operations"), metric)
    operations = operations[(operations["role"] == Role.RANDOM) & operations["op_set"].notna()]
    if operations["op_set"].nunique() >= 2:
        table = pd.DataFrame([{"op_set": op, **stats.describe(g["acc"])}
                              for op, g in operations.groupby("op_set", sort=True)])
        reference = operations[operations["op_set"] == "darts"]["acc"]
        if len(reference):
            shifts = [stats.bootstrap_mean_difference(g["acc"], reference, n_boot=2000)
                      for _, g in operations.groupby("op_set", sort=True)]
            table["mean − darts"] = [shift for shift, _, _ in shifts]
            table["95% interval"] = [f"{low:+.2f} to {high:+.2f}" for _, low, high in shifts]
        blocks.append(("Operation sets", "Random architectures of the same cell with different operation sets "
                       "(SPEC experiment 3, macro vs micro).", table))
    epochs = stats.epoch_rank_correlation(df, metric)
    if not epochs.empty:
        names = df.drop_duplicates("experiment_id").set_index("experiment_id")["experiment_name"]
        rows = []
        for (dataset, experiment, role, protocol), group in epochs.groupby(
                ["dataset", "experiment_id", "role", "protocol_name"], sort=True):
            # The evaluated epochs closest to each quarter of training (long curves are subsampled).
            available = group["epoch"].to_numpy()
            row = {"dataset": dataset, "experiment": names.get(experiment) or experiment, "role": role,
                   "protocol": protocol, "n": int(group["n"].iloc[0]), "epochs": int(available.max())}
            for q in (0.25, 0.5, 0.75):
                at = group.iloc[int(np.abs(available - available.max() * q).argmin())]
                row[f"τ at {q:.0%}"] = (f"{at['tau']:.2f} / {at['tau_smoothed']:.2f} (e={int(at['epoch'])})"
                                        if row["n"] >= stats.MIN_RANK_N else "too few to rank")
            rows.append(row)
        blocks.append(("Ranking at epoch e vs final", "Kendall τ between the accuracy at epoch e and the final "
                       "accuracy after a quarter, half and three quarters of training (SPEC experiment 5), raw / "
                       "smoothed with a 5-epoch trailing moving average.", pd.DataFrame(rows)))
    return blocks


def report_command(experiments: Sequence[str], out: str | Path, metric: str = "final", *,
                   published: Sequence[str] = (), experiments_dir: str | None = None, n_boot: int = 10_000,
                   seed: int = 0, progress: bool | None = None, interval: str = "BCa") -> list[Path]:
    """What ``nas-bench report`` does: read the experiments (and published CSVs), write the report.

    ``published`` entries are ``DATASET=FILE.csv`` (the published layout does not name its dataset).
    Returns the files written; raises :class:`~nni_nas_bench.errors.NasBenchError` subclasses with the fix
    in the message for bad input.
    """
    from analysis.published import read_published_csv
    from analysis.trial_db import read_experiments

    if not experiments and not published:
        raise ConfigError("name at least one experiment (folder, nni.sqlite, id or folder of experiments) "
                          "or a --published DATASET=FILE.csv")
    if n_boot < 1:
        raise ConfigError(f"--bootstrap is the number of bootstrap resamples: a positive whole number, got {n_boot}")
    frames = []
    if experiments:
        frames.append(read_experiments(experiments, experiments_dir, progress=progress))
    for entry in published:
        dataset, sep, path = entry.partition("=")
        if not sep or not dataset or not path:
            raise ConfigError(f"--published takes DATASET=FILE.csv (e.g. cifar10=CIFAR10.csv), got {entry!r}")
        # The published layout does not say which epoch its numbers are from: they are compared as the
        # report's metric, and the sources list says so.
        frames.append(read_published_csv(path, dataset, metric=metric))
    frames = [f for f in frames if not f.empty]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    read_as = {"final_acc": "last-epoch", "best_acc": "best-epoch"}[stats.metric_column(metric)]
    sources = [*map(str, experiments), *(f"{p} (published, read as {read_as} accuracy)" for p in published)]
    result = write_report(df, out, metric, n_boot=n_boot, seed=seed, sources=sources, interval=interval)
    if not df.empty and "complete" in df:
        incomplete = int((~df["complete"].fillna(False).astype(bool)).sum())
        if incomplete:  # written to the report; said here too so that a terminal user does not miss them
            print(f"note: {incomplete} of {len(df)} trials did not complete (failed, unreadable or unfinished): "
                  "listed under 'Failed and unfinished trials' in report.md and excluded from every statistic",
                  file=sys.stderr)
    return result.files
