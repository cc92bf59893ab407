"""NNI trial databases to tables, statistics, figures and reports.

- :mod:`analysis.trial_db`: NNI ``nni.sqlite`` files to one tidy DataFrame (schema in its docstring).
- :mod:`analysis.published`: the original benchmark's published CSV layout, in and out.
- :mod:`analysis.stats`: relative improvement with bootstrap interval and rank test, Kendall τ, cost.
- :mod:`analysis.figures`: the paper's figures (matplotlib/seaborn, PNG and PDF).
- :mod:`analysis.report`: ``nas-bench report`` (Markdown + HTML, tables as CSV and LaTeX).
- :mod:`analysis.synthetic`: made-up NNI DBs for tests and benchmarks (never results).

Figures and reports import matplotlib and seaborn, so they are not imported here: ``from analysis import
figures`` when needed.
"""

from analysis.published import read_published_csv, write_published_csv
from analysis.trial_db import ALL_COLUMNS, COLUMNS, TrialDBError, find_db, find_dbs, read_experiment, read_experiments

__all__ = [
    "ALL_COLUMNS", "COLUMNS", "TrialDBError", "find_db", "find_dbs", "read_experiment", "read_experiments",
    "read_published_csv", "write_published_csv",
]
