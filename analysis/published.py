"""The original benchmark's published results layout, in and out of the tidy trial table.

The paper's code publishes one CSV per dataset, one row per run, and a pair of columns per method:
``Random <Method>`` (architectures sampled at random from the method's space) then ``<Method>`` (what
the method found), e.g. ``Random DARTS,DARTS,Random PDARTS,PDARTS,...``. The pairs are not always
named alike (``Random MANAS`` sits before ``MANAS-LS``), so a random column is paired with the method
column that follows it, and each row keeps the column it came from so :func:`write_published_csv`
writes the same header back.

Imported rows use the reader's columns (:data:`analysis.trial_db.ALL_COLUMNS`) with ``origin``
'published', ``role`` 'searched' or 'random', ``method`` the method's column name, ``dataset`` given by
the caller, ``final_acc`` (or ``best_acc``) the published number, ``complete`` True, plus ``run`` (row index) and
``csv_column``. Statistics never pool them with new NNI runs (they group by ``origin``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from analysis.stats import baseline_rows, metric_column, usable, with_protocol_key
from analysis.trial_db import ALL_COLUMNS
from nni_nas_bench.contract import Role
from nni_nas_bench.errors import ConfigError

PUBLISHED_COLUMNS = [*ALL_COLUMNS, "run", "csv_column"]
RANDOM_PREFIX = "Random "


def _dataset_name(dataset: str) -> str:
    """The suite's own dataset name when it knows the dataset ('CIFAR10' -> 'cifar10'), else as given."""
    from nni_nas_bench.data import get_dataset_info

    try:
        return get_dataset_info(dataset).name
    except ConfigError:
        return dataset


def read_published_csv(source: str | Path | IO[str], dataset: str, *, name: str | None = None,
                       metric: str = "final") -> pd.DataFrame:
    """Published per-run accuracies (``Random <Method>``, ``<Method>`` columns) as tidy rows.

    ``dataset`` names the dataset the file is about (the layout does not say); ``name`` labels the
    source in ``experiment_id`` (default: the file name). ``metric`` says what the numbers are: 'final'
    (last epoch, what the paper says it reports) or 'best' (best epoch, what the original code logged);
    they go into that column only. Empty cells (methods with fewer runs) are skipped, never read as zeros.
    """
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "published")
    try:
        table = pd.read_csv(source)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read published results {label!r}: {exc}") from None
    columns = list(table.columns)
    if not columns:
        raise ConfigError(f"published results {label!r} have no columns")
    if not any(str(c).strip().startswith(RANDOM_PREFIX) for c in columns):
        raise ConfigError(f"published results {label!r} have no '{RANDOM_PREFIX}<Method>' column (columns: "
                          f"{', '.join(map(str, columns[:6]))}); the layout pairs 'Random DARTS,DARTS,...' per method")
    dataset = _dataset_name(dataset)
    column_name = metric_column(metric)
    rows = []
    for position, column in enumerate(columns):
        header = str(column).strip()
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table[column].notna() & values.isna()
        if bad.any():
            raise ConfigError(f"published results {label!r}, column {column!r}: not a number: "
                              f"{table[column][bad].iloc[0]!r}")
        outside = values.notna() & ((values < 0) | (values > 100))
        if outside.any():
            raise ConfigError(f"published results {label!r}, column {column!r}: {values[outside].iloc[0]!r} is not a "
                              "top-1 accuracy in percent (0-100)")
        if header.startswith(RANDOM_PREFIX):
            role = Role.RANDOM.value
            following = columns[position + 1] if position + 1 < len(columns) else None
            paired = following is not None and not str(following).strip().startswith(RANDOM_PREFIX)
            method = str(following).strip() if paired else header[len(RANDOM_PREFIX):].strip()
        else:
            role, method = Role.SEARCHED.value, header
        for run, value in enumerate(values):
            if np.isnan(value):
                continue
            rows.append({
                "experiment_id": f"published:{label}", "trial_id": f"{column}#{run}", "status": "PUBLISHED",
                "role": role, "method": method, "dataset": dataset, column_name: float(value), "curve": [],
                "params_mismatch": False, "origin": "published", "complete": True, "failed": False,
                "experiment_name": label, "run": run, "csv_column": column,
            })
    return pd.DataFrame(rows, columns=PUBLISHED_COLUMNS)


def to_published_table(df: pd.DataFrame, dataset: str | None = None, metric: str = "final") -> pd.DataFrame:
    """The published layout (one column per method and role, one row per run) for one dataset.

    Imported rows keep their original columns and order. NNI rows become ``Random <Method>`` /
    ``<Method>`` pairs, the random column holding the baseline :func:`analysis.stats.ri_table` uses for
    that method; random rows with no searched method (today's random-only experiments) become one
    ``Random <space>`` column per space.
    """
    column = metric_column(metric)
    data = with_protocol_key(usable(df, metric))
    datasets = sorted(data["dataset"].dropna().unique())
    if dataset is None:
        if len(datasets) != 1:
            raise ConfigError(f"the published layout holds one dataset; choose one of {datasets}")
        dataset = datasets[0]
    data = data[data["dataset"] == _dataset_name(dataset)]
    if data.empty:
        raise ConfigError(f"no complete trials with {column} on dataset {dataset!r}")
    series: dict[str, list[float]] = {}
    if "csv_column" in data and data["csv_column"].notna().any():
        imported = data[data["csv_column"].notna()].sort_values(["run"])
        # Keep the file's column order: the order of first appearance in the import.
        for name in pd.unique(data.loc[data["csv_column"].notna(), "csv_column"]):
            series[name] = imported.loc[imported["csv_column"] == name, "acc"].to_list()
        data = data[data["csv_column"].isna()]
    searched, randoms = data[data["role"] == Role.SEARCHED], data[data["role"] == Role.RANDOM]
    for method, group in searched.groupby("method", sort=True):
        base, _ = baseline_rows(group, randoms, method, ("space", "space_args", "protocol_key"))
        series[f"{RANDOM_PREFIX}{method}"] = _ordered(base)
        series[str(method)] = _ordered(group)
    if searched.empty and not randoms.empty:
        for space, group in randoms.groupby(randoms["space"].fillna("space"), sort=True):
            series[f"{RANDOM_PREFIX}{space}"] = _ordered(group)
    length = max(len(v) for v in series.values())
    return pd.DataFrame({k: pd.Series(v + [np.nan] * (length - len(v)), dtype=float) for k, v in series.items()})


def _ordered(rows: pd.DataFrame) -> list[float]:
    """Runs in a stable order: by run index, architecture index or seed when known, else as read."""
    for key in ("run", "arch_index", "search_seed", "trial_id"):
        if key in rows and rows[key].notna().all():
            return rows.sort_values(key, kind="stable")["acc"].to_list()
    return rows["acc"].to_list()


def write_published_csv(df: pd.DataFrame, path: str | Path | None = None, dataset: str | None = None,
                        metric: str = "final") -> str:
    """Write :func:`to_published_table` as CSV (to ``path`` when given); return the CSV text.

    Numbers are written at full precision (Python's shortest round-tripping form), so importing the
    file again gives the same values.
    """
    buffer = io.StringIO()
    to_published_table(df, dataset, metric).to_csv(buffer, index=False)
    text = buffer.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text
