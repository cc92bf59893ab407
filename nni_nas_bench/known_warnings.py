"""Silence the warnings every command printed that are known to be harmless, in the suite's entry points.

- NNI 3.0 wraps every class of ``torch.nn`` when ``nni.nas`` is imported and warns for each one that is not
  a module (``torch.nn.Buffer`` and others of newer torch): "your PyTorch version might not be supported".
  The suite never uses those classes through NNI; NNI is archived (3.0 is final), so the warning will never
  go away upstream.
- ``pkg_resources is deprecated``: printed by NNI's and other packages' imports, not by this code.

Only these messages are filtered, and only by the command-line entry points (``nas-bench``, the trial),
never on import: a library user keeps every warning.
"""

from __future__ import annotations

import warnings

KNOWN = (
    (RuntimeWarning, r".*is found to be not a nn\.Module, which is unexpected.*"),
    (UserWarning, r"pkg_resources is deprecated.*"),
    (DeprecationWarning, r"pkg_resources is deprecated.*"),
)


def silence_known_warnings() -> None:
    """Filter exactly the :data:`KNOWN` harmless messages (see the module docstring)."""
    for category, message in KNOWN:
        warnings.filterwarnings("ignore", message=message, category=category)
