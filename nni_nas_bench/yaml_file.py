"""Reading the user's YAML files (experiments, protocols) with one kind of error for every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nni_nas_bench.errors import ConfigError


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed content of ``path``; a missing file or bad syntax is a ConfigError naming the file and line.

    ``what`` names the kind of file in the message ("protocol file", "experiment file").
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
