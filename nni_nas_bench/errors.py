"""Errors the user can act on.

Every error raised for bad input is a :class:`NasBenchError` whose message names what was wrong and
how to fix it, so a trial log or an ``nnictl create`` failure shows one clear line instead of a stack
of library frames.
"""

from __future__ import annotations

import argparse
import sys


class NasBenchError(Exception):
    """Base class: a problem with the user's input or environment, with the fix in the message."""


class ConfigError(NasBenchError, ValueError):
    """A malformed or inconsistent setting (protocol YAML, tuner classArgs, unknown name)."""


class GenotypeError(NasBenchError, ValueError):
    """An architecture that does not belong to its search space."""


class DatasetNotFoundError(NasBenchError, FileNotFoundError):
    """A dataset that is not where it was looked for."""


class TrialFailedError(NasBenchError, RuntimeError):
    """Training cannot go on (NaN loss, ...); the trial ends as FAILED with this reason."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose command-line errors are one line naming ``--help`` (argparse prints its usage block
    first, which buries the reason in a trial log), or a :class:`ConfigError` where a command line is being
    checked rather than run (``nas-bench check`` reading a YAML's ``trialCommand``: :meth:`check`).

    ``error_name`` starts the line (``nni-nas-bench: error: ...``, what every other error of the suite's
    processes starts with); it defaults to ``prog``. Subcommand parsers are of this class too.
    """

    def __init__(self, *args: object, error_name: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.error_name = error_name or self.prog
        self._checking = False

    def error(self, message: str) -> None:  # type: ignore[override]
        if self._checking:
            raise ConfigError(f"{self.prog} {message} (it takes {', '.join(self.options())})")
        print(f"{self.error_name}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    def options(self) -> list[str]:
        """The options this parser takes (each option's first spelling)."""
        return [action.option_strings[0] for action in self._actions if action.option_strings]

    def check(self, args: list[str]) -> None:
        """ConfigError when ``args`` is not a command line this parser takes (nothing is run or printed)."""
        self._checking = True
        try:
            _, extra = self.parse_known_args(args)
            if extra:
                self.error(f"does not take {' '.join(extra)}")
        finally:
            self._checking = False


def unknown_name_error(kind: str, name: str, known: list[str] | tuple[str, ...]) -> ConfigError:
    """The one message for every registry lookup that misses."""
    return ConfigError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(known))}")


def mapping_arg(name: str, value: object) -> dict:
    """A YAML setting that must be a mapping (``search``, ``space_args`` …) as a dict; ``None`` is empty.

    ``dict()`` of a list or a string raises a bare ``TypeError``/``ValueError`` deep in a tuner; this
    names the setting instead.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a mapping of settings (name: value), got {value!r:.80}")
    return dict(value)


def construct(cls: type, settings: dict, what: str) -> object:
    """``cls(**settings)``, where settings the constructor does not take are one clear :class:`ConfigError`.

    The settings are bound to the signature first, so only a YAML's mistake (an unknown or missing setting)
    becomes "bad settings"; a ``TypeError`` raised inside a constructor is a bug and keeps its traceback.
    """
    import inspect
    import re

    try:
        inspect.signature(cls).bind(**settings)
    except TypeError as exc:
        raise ConfigError(f"bad settings {settings} for {what}: {exc}") from None
    try:
        return cls(**settings)
    except TypeError as exc:
        # A constructor taking **settings hands them to its base class, whose signature rejects them: that
        # is still the YAML's mistake. Any other TypeError is a bug.
        if re.search(r"__init__\(\) (got an unexpected keyword argument|missing \d+ required)", str(exc)):
            raise ConfigError(f"bad settings {settings} for {what}: {exc}") from None
        raise
