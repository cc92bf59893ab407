"""NNI trial databases to tables and statistics (see :mod:`analysis.trial_db`)."""

from analysis.trial_db import TrialDBError, find_db, read_experiment, read_experiments

__all__ = ["TrialDBError", "find_db", "read_experiment", "read_experiments"]
