"""Checks of strategy settings: one clear error that names the method and the setting.

Every strategy validates its settings in its constructor, so a bad YAML fails when the tuner starts
(``nnictl create`` / ``nas-bench check``), not hours later inside a search trial.
"""

from __future__ import annotations

from typing import Any

from nni_nas_bench.errors import ConfigError


def check_int(method: str, name: str, value: Any, minimum: int = 1) -> int:
    """An integer setting ``>= minimum`` (booleans are not integers here), or a ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{method}.{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_number(method: str, name: str, value: Any, minimum: float = 0.0) -> float:
    """A real setting ``>= minimum`` (NaN fails), or a ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise ConfigError(f"{method}.{name} must be a number >= {minimum}, got {value!r}")
    return float(value)
