"""A publishable report from trial DBs: ``report.md`` + ``report.html``, figures, tables as CSV and LaTeX.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and rendered twice,
to Markdown and to self-contained HTML (inline style, figures by relative path, no network assets), so
the two never disagree and no Markdown library is needed.

Sections: relative improvement (or, while no searched trials exist, a plain statement that RI needs
them), the random-sampling baseline, cost, the studies of SPEC that the data supports, figures (skipped
ones with the reason), failed and unfinished trials, provenance (experiments, trial counts, seeds,
protocols, code versions, devices). :func:`write_report` returns every file it wrote.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import figures, stats
from nni_nas_bench.contract import Role
from nni_nas_bench.errors import ConfigError

_PROTOCOL_SHOWN = ("epochs", "batch_size", "channels", "layers", "lr", "weight_decay", "cutout", "drop_path",
                   "auxiliary_weight", "autoaugment", "label_smoothing", "subset")


# ------------------------------------------------------------------------------------- document model
@dataclass
class Document:
    """Blocks of a report, rendered to Markdown or HTML."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("para", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def figure(self, path: str, alt: str, links: Sequence[tuple[str, str]] = ()) -> None:
        self.blocks.append(("figure", (path, alt, list(links))))

    # --------------------------------------------------------------------------------- rendering
    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                out += ["#" * value[0] + " " + value[1], ""]
            elif kind == "para":
                out += [value, ""]
            elif kind == "bullets":
                out += [f"- {item}" for item in value] + [""]
            elif kind == "table":
                out += [_markdown_table(value), ""]
            elif kind == "figure":
                path, alt, links = value
                out += [f"![{alt}]({path})", ""]
                if links:
                    out += [" · ".join(f"[{text}]({href})" for text, href in links), ""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        body = [f"<h1>{_inline(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                body.append(f"<h{value[0]}>{_inline(value[1])}</h{value[0]}>")
            elif kind == "para":
                body.append(f"<p>{_inline(value)}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in value) + "</ul>")
            elif kind == "table":
                body.append(_html_table(value))
            elif kind == "figure":
                path, alt, links = value
                link_html = " · ".join(_link(html.escape(t), html.escape(h)) for t, h in links)
                src = _safe_href(path) or ""
                body.append(f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt)}">'
                            f"<figcaption>{_inline(alt)} {link_html}</figcaption></figure>")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n"
        )


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}th{background:#f3f3f3}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}figure{margin:1em 0}"
    "code{background:#f3f3f3;padding:0 0.2em}"
)


def _safe_href(href: str) -> str | None:
    """``href`` if it is an http(s) URL or a relative path (the report's own files), else None.

    Text from a trial DB (experiment names, genotypes, notes) reaches the report: a ``javascript:`` or
    ``data:`` link written there must not become a clickable script in ``report.html``.
    """
    scheme = re.match(r"\s*([A-Za-z][A-Za-z0-9+.-]*):", href)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        return None
    return href


def _link(text_html: str, href: str) -> str:
    """An ``<a>`` for an allowed ``href`` (attribute-escaped), or the bare text for any other."""
    safe = _safe_href(html.unescape(href))
    if safe is None:
        return text_html
    return f'<a href="{html.escape(safe, quote=True)}">{text_html}</a>'


def _inline(text: str) -> str:
    """Escape for HTML (quotes too: nothing from a DB can open an attribute), then render the Markdown
    inline subset the report uses: `code` and [text](href), links only to http(s) or relative paths."""
    escaped = html.escape(text, quote=True)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", lambda m: _link(m.group(1), m.group(2)), escaped)


def _cell(value: Any) -> str:
    """Numbers of the statistics tables with two decimals (accuracies, RI), tiny p-values with 4 digits."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}" if (abs(value) < 1e-2 and value != 0) or abs(value) >= 1e6 else f"{value:.2f}"
    return str(value)


def _listing(frame: pd.DataFrame) -> pd.DataFrame:
    """A table of identifiers and settings as text: ids stay ids (1000, not 1000.00), settings as written."""
    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, (float, np.floating)) and float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return str(value)
    return frame.astype(object).map(text) if hasattr(frame, "map") else frame.astype(object).applymap(text)


def _markdown_table(frame: pd.DataFrame) -> str:
    def esc(v: Any) -> str:
        return _cell(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(esc(c) for c in frame.columns) + " |",
             "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_inline(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_table(frame: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs ``table`` environment (no jinja2 needed, unlike ``DataFrame.to_latex``)."""
    def esc(value: Any) -> str:
        return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in _cell(value))
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns)
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{esc(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(esc(c) for c in frame.columns) + r" \\",
              r"\midrule"]
    lines += [" & ".join(esc(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ content
def _pm(mean: float, std: float, n: int) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.2f} ± {std:.2f} (n={n})" if np.isfinite(std) else f"{mean:.2f} (n={n})"


def _ri_display(table: pd.DataFrame, ci: float) -> pd.DataFrame:
    rows = []
    for r in table.itertuples():
        rows.append({
            "dataset": r.dataset + (" (published)" if r.origin == "published" else ""),
            "method": r.method,
            "searched": _pm(r.searched_mean, r.searched_std, r.searched_n),
            "random": _pm(r.random_mean, r.random_std, r.random_n),
            "RI (%)": f"{r.ri:+.2f}" if np.isfinite(r.ri) else "–",
            f"{ci:.0%} interval": f"[{r.ri_low:+.2f}, {r.ri_high:+.2f}]" if np.isfinite(r.ri_low) else "–",
            "Mann–Whitney p": f"{r.mwu_p:.3g}" if np.isfinite(r.mwu_p) else "–",
            "baseline": r.baseline,
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


def write_report(df: pd.DataFrame, out_dir: str | Path, metric: str = "final", *, n_boot: int = 10_000,
                 ci: float = 0.95, seed: int = 0, sources: Sequence[str] = (),
                 formats: Sequence[str] = ("png", "pdf")) -> ReportResult:
    """Write the report of ``df`` into ``out_dir``; return every file written (and what was skipped)."""
    column = stats.metric_column(metric)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"--out {out} is a file, not a folder: give a folder for the report") from None
    except PermissionError:
        raise ConfigError(f"--out {out} cannot be created here (permission denied): give a writable folder") from None
    files: list[Path] = []
    if df.empty:
        raise ConfigError("no trials to report: the experiments hold no trials")
    label = {"final_acc": "last-epoch accuracy (`final_acc`)", "best_acc": "best-epoch accuracy (`best_acc`)"}
    plain = {"final_acc": "last-epoch accuracy", "best_acc": "best-epoch accuracy"}[column]
    doc = Document("NAS evaluation report")
    n_complete = int(df["complete"].fillna(False).astype(bool).sum())
    n_failed = int(df["failed"].fillna(False).astype(bool).sum())
    n_experiments = df["experiment_id"].nunique()
    from nni_nas_bench.provenance import code_version

    doc.para(
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by nni-nas-bench {code_version()} from "
        f"{n_experiments} experiment(s): {len(df)} trials, {n_complete} complete, {n_failed} failed, "
        f"{len(df) - n_complete - n_failed} unfinished or cancelled. Accuracy: {label[column]}; statistics use "
        "complete trials only. Standard deviations are sample standard deviations."
    )

    # ---- RI
    doc.heading("Relative improvement over random sampling")
    ri = stats.ri_table(df, metric, n_boot=n_boot, ci=ci, seed=seed)
    if not ri.empty:
        doc.para(
            "RI = 100 (Acc_m − Acc_r) / Acc_r with Acc_m, Acc_r the mean accuracy of the searched and of the "
            f"random architectures. Interval: seeded percentile bootstrap ({n_boot} resamples, searched and "
            "random resampled independently). p: two-sided Mann–Whitney U test of searched vs random runs."
        )
        doc.table(_ri_display(ri, ci))
        files += _write_table(ri, out, "ri_table", f"Relative improvement ({plain})")
    else:
        doc.para(
            "RI needs searched trials (role `searched`: architectures found by a NAS method, trained with the "
            "final protocol). These experiments have none, so no RI is reported; the random-sampling "
            "baseline below is what every method will be compared with."
        )

    # ---- random baseline
    doc.heading("Random-sampling baseline")
    baseline = stats.random_summary(df, metric)
    if baseline.empty:
        doc.para("No complete random-baseline trials (role `random`).")
    else:
        doc.para("Architectures sampled uniformly from each space and trained with the protocol shown.")
        doc.table(baseline)
        files += _write_table(baseline, out, "random_baseline", f"Random-sampling baseline ({plain})")

    # ---- cost
    cost = stats.cost_table(df)
    if not cost.empty:
        doc.heading("Cost")
        doc.para("Device-hours from each trial's own timing (`train_seconds`, `search_seconds`), on the devices "
                 "listed. Random sampling has no search cost.")
        doc.table(cost)
        files += _write_table(cost, out, "cost", "Search and training cost (device-hours)")

    # ---- accuracy vs predicted latency (spaces with a latency model: Single-Path NAS)
    latency = stats.latency_table(df, metric)
    if not latency.empty:
        doc.heading("Accuracy vs predicted latency")
        doc.para("Architectures of spaces with a per-layer latency model (Single-Path NAS's `mobilenet_sp`): "
                 "the latency is the table's prediction (`latency_ms`, ms; the Pixel-1 table unless the space "
                 "names another), searched vs random. τ: Kendall τ of accuracy and latency within the group.")
        doc.table(latency)
        files += _write_table(latency, out, "latency", f"Accuracy ({plain}) vs predicted latency")
        paths = figures.save(figures.accuracy_vs_latency(df, metric), out / "figures", "accuracy_vs_latency",
                             formats)
        files += paths
        doc.figure(paths[0].relative_to(out).as_posix(), "Accuracy vs predicted latency, searched vs random",
                   [(q.suffix[1:].upper(), q.relative_to(out).as_posix()) for q in paths[1:]])

    # ---- studies
    study_blocks = _studies(df, metric)
    if study_blocks:
        doc.heading("Studies")
        for title, text, table in study_blocks:
            doc.heading(title, 3)
            doc.para(text)
            doc.table(table)

    # ---- figures
    doc.heading("Figures")
    results = figures.draw_all(df, out / "figures", metric, formats=formats)
    skipped = {r.name: r.note for r in results if r.note}
    for r in results:
        if r.paths:
            files += r.paths
            first = r.paths[0].relative_to(out).as_posix()
            links = [(p.suffix[1:].upper(), p.relative_to(out).as_posix()) for p in r.paths[1:]]
            doc.figure(first, r.title, links)
    if skipped:
        doc.para("Not drawn (the data they need is not in these experiments):")
        doc.bullets([f"`{name}`: {note}" for name, note in skipped.items()])

    # ---- failed
    doc.heading("Failed and unfinished trials")
    bad = df[~df["complete"].fillna(False).astype(bool)]
    if bad.empty:
        doc.para("None: every trial completed.")
    else:
        doc.para(f"{len(bad)} trial(s) did not complete ({n_failed} failed). They are excluded from every "
                 "statistic above and listed here so that nothing is dropped silently.")
        doc.table(_listing(bad[["experiment_id", "trial_id", "status", "role", "method", "dataset", "arch_index",
                                "train_seed", "error"]].reset_index(drop=True)))

    # ---- provenance
    doc.heading("Provenance")
    experiments = (
        df.groupby("experiment_id", sort=True)
        .agg(name=("experiment_name", "first"), trials=("trial_id", "size"),
             complete=("complete", lambda s: int(s.fillna(False).astype(bool).sum())),
             failed=("failed", lambda s: int(s.fillna(False).astype(bool).sum())),
             roles=("role", _values), methods=("method", _values), datasets=("dataset", _values),
             source=("db_path", "first"))
        .reset_index()
    )
    doc.heading("Experiments", 3)
    doc.table(_listing(experiments))
    doc.heading("Seeds, code and devices", 3)
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
    if sources:
        items.append("sources: " + ", ".join(f"`{s}`" for s in sources))
    doc.bullets(items)
    protocols = _protocols(df)
    if not protocols.empty:
        doc.heading("Training protocols", 3)
        doc.table(_listing(protocols))

    trials = df.drop(columns=["curve", "protocol", "recorded_parameters"], errors="ignore")
    trials_path = out / "trials.csv"
    trials.to_csv(trials_path, index=False)
    files.append(trials_path)
    doc.para("Every trial (one row each, curves left out) is in [trials.csv](trials.csv).")

    md, page = out / "report.md", out / "report.html"
    md.write_text(doc.to_markdown())
    page.write_text(doc.to_html())
    return ReportResult([md, page, *files], skipped, not ri.empty)


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
                row[f"τ at {q:.0%}"] = f"{at['tau']:.2f} / {at['tau_smoothed']:.2f} (e={int(at['epoch'])})"
            rows.append(row)
        blocks.append(("Ranking at epoch e vs final", "Kendall τ between the accuracy at epoch e and the final "
                       "accuracy after a quarter, half and three quarters of training (SPEC experiment 5), raw / "
                       "smoothed with a 5-epoch trailing moving average.", pd.DataFrame(rows)))
    return blocks


def report_command(experiments: Sequence[str], out: str | Path, metric: str = "final", *,
                   published: Sequence[str] = (), experiments_dir: str | None = None, n_boot: int = 10_000,
                   seed: int = 0, progress: bool | None = None) -> list[Path]:
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
    result = write_report(df, out, metric, n_boot=n_boot, seed=seed, sources=sources)
    if not df.empty and "complete" in df:
        incomplete = int((~df["complete"].fillna(False).astype(bool)).sum())
        if incomplete:  # written to the report; said here too so that a terminal user does not miss them
            print(f"note: {incomplete} of {len(df)} trials did not complete (failed, unreadable or unfinished): "
                  "listed under 'Failed and unfinished trials' in report.md and excluded from every statistic",
                  file=sys.stderr)
    return result.files
