"""Per-layer latency tables: the hardware objective of Single-Path NAS (Stamoulis et al. 2019).

A table gives, for each searchable MBConv layer ``"0".."21"`` of the MobileNetV2-style space
(:mod:`search_spaces.mobilenet`), the measured latency in ms of its four choices ``"0".."3"`` =
(kernel 3, expansion 3), (3, 6), (5, 3), (5, 6): the JSON layout of Single-Path NAS's Pixel-1 runtime
model (``../shared/data/single-path-nas/pixel1_runtime_model.json``). The predicted latency of an
architecture is ``fixed_ms + Σ_layers entry(layer, choice)``, a skipped layer costing ``skip_ms``
instead. The Pixel-1 file holds only the layer entries; its fixed part (stem, head, classifier) is
19.5999 ms and a skip 0.7 ms, the constants of the Single-Path NAS reference code, so those are the
defaults. A table measured here (``benchmarks/measure_latency.py``) has the same layer entries plus an
optional ``"_meta"`` object with its own ``fixed_ms``, ``skip_ms`` and how it was measured; readers of
the original format, which look layers up by index, ignore that key.

Note on the reference: its search network kept layers 0 and 21 at kernel 3 and counted them inside
the 19.5999 ms constant, and charged nothing for a skip; the data README, which this project follows,
treats all 22 layers as searchable and a skip as 0.7 ms. A prediction here is therefore higher than the
reference's by the entries of layers 0 and 21 (about 10 ms on the Pixel-1 table) plus 0.7 ms per skip.

:meth:`LatencyTable.expected_ms` is the same sum written over 0/1 indicators (kernel 5? expansion 6?
layer kept?) as a multilinear polynomial, so it equals the table at every hard choice and is
differentiable in the indicators, which is what the superkernel search needs.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nni_nas_bench.errors import ConfigError

CHOICES = ("k3e3", "k3e6", "k5e3", "k5e6")  # column "i" of a table = CHOICES[i]
SKIP = "skip"
PIXEL1 = "pixel1"
PIXEL1_FILE = Path("single-path-nas") / "pixel1_runtime_model.json"
PIXEL1_FIXED_MS = 19.5999  # stem, head and classifier (Single-Path NAS reference code)
PIXEL1_SKIP_MS = 0.7       # a skipped layer (data README)
META_KEY = "_meta"


def choice_index(op: str) -> int:
    """Column of ``op`` ('k5e3' -> 2) in a table."""
    try:
        return CHOICES.index(op)
    except ValueError:
        raise ConfigError(f"unknown layer choice {op!r}; choose one of {', '.join(CHOICES)} or {SKIP!r}") from None


@dataclass(frozen=True)
class LatencyTable:
    """Latency in ms per layer and choice, the fixed part and the cost of a skip."""

    layers: tuple[tuple[float, float, float, float], ...]
    fixed_ms: float = PIXEL1_FIXED_MS
    skip_ms: float = PIXEL1_SKIP_MS
    source: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def layer_ms(self, layer: int, op: str) -> float:
        """The latency of one layer's choice (``skip`` included)."""
        return self.skip_ms if op == SKIP else self.layers[layer][choice_index(op)]

    def latency_ms(self, ops: Sequence[str]) -> float:
        """Predicted latency of an architecture given as one choice per layer."""
        if len(ops) != self.num_layers:
            raise ConfigError(f"the latency table {self.source or ''} has {self.num_layers} layers, the "
                              f"architecture {len(ops)}")
        return self.fixed_ms + sum(self.layer_ms(i, op) for i, op in enumerate(ops))

    def expected_ms(self, kernel5: Any, expand6: Any, keep: Any) -> Any:
        """The latency as a function of per-layer indicators (tensors or arrays of length ``num_layers``).

        ``kernel5``, ``expand6``, ``keep`` are 1 for kernel 5, expansion 6, and a layer that is not
        skipped. The result is multilinear in them and equals :meth:`latency_ms` at every 0/1 point.
        """
        import torch

        table = torch.as_tensor(self.layers, dtype=kernel5.dtype, device=kernel5.device)
        k, e = kernel5, expand6
        layer = ((1 - k) * (1 - e) * table[:, 0] + (1 - k) * e * table[:, 1] + k * (1 - e) * table[:, 2]
                 + k * e * table[:, 3])
        return self.fixed_ms + (keep * layer + (1 - keep) * self.skip_ms).sum()

    # ------------------------------------------------------------------------------------- files
    def to_json(self) -> dict[str, Any]:
        """The Pixel-1 layout (layer -> choice -> ms) plus ``_meta`` with the fixed and skip costs."""
        doc: dict[str, Any] = {str(i): {str(c): ms for c, ms in enumerate(row)} for i, row in enumerate(self.layers)}
        doc[META_KEY] = {**self.meta, "fixed_ms": self.fixed_ms, "skip_ms": self.skip_ms}
        return doc

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (atomically) and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        os.replace(tmp, path)
        return path


def table_from_json(doc: Mapping[str, Any], source: str = "") -> LatencyTable:
    """Read a table in the Pixel-1 layout; every layer needs all four choices as positive numbers."""
    if not isinstance(doc, Mapping):
        raise ConfigError(f"latency table {source}: expected a JSON object of layers, got {type(doc).__name__}")
    meta = dict(doc.get(META_KEY) or {})
    keys = sorted((k for k in doc if k != META_KEY), key=lambda k: int(k) if str(k).isdigit() else -1)
    if not keys or keys != [str(i) for i in range(len(keys))]:
        raise ConfigError(f"latency table {source}: layer keys must be '0'..'N-1', got {keys}")
    layers = []
    for key in keys:
        row = doc[key]
        try:
            values = tuple(float(row[str(c)]) for c in range(len(CHOICES)))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"latency table {source}: layer {key} needs choices '0'..'3' in ms, "
                              f"got {row!r}") from None
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ConfigError(f"latency table {source}: layer {key} has a negative or non-finite latency {values}")
        layers.append(values)
    fixed = float(meta.pop("fixed_ms", PIXEL1_FIXED_MS))
    skip = float(meta.pop("skip_ms", PIXEL1_SKIP_MS))
    return LatencyTable(tuple(layers), fixed, skip, source, meta)


def table_locations(spec: str | Path) -> list[Path]:
    """Where a table named ``spec`` is looked for: a path as given, or ``pixel1`` under the data roots.

    ``pixel1`` is read from ``$NNB_DATA_ROOT``, the project's ``../shared/data`` and
    ``~/.cache/nni_nas_bench/data`` (each + ``single-path-nas/pixel1_runtime_model.json``), in that order.
    """
    if str(spec) != PIXEL1:
        return [Path(spec).expanduser()]
    from nni_nas_bench.data.lookup import DATA_ROOT_ENV

    roots = [Path(os.environ[DATA_ROOT_ENV])] if os.environ.get(DATA_ROOT_ENV) else []
    roots += [Path(__file__).resolve().parents[2] / "shared" / "data",
              Path.home() / ".cache" / "nni_nas_bench" / "data"]
    return [root / PIXEL1_FILE for root in roots]


@functools.lru_cache(maxsize=16)
def _load(path: Path) -> LatencyTable:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"latency table {path} is not valid JSON: {exc}") from None
    return table_from_json(doc, str(path))


def load_latency_table(spec: str | Path = PIXEL1) -> LatencyTable:
    """The table ``spec`` (``pixel1`` or a JSON path), read once per process."""
    candidates = table_locations(spec)
    for path in candidates:
        if path.is_file():
            return _load(path.resolve())
    looked = ", ".join(str(p) for p in candidates)
    raise ConfigError(
        f"latency table {str(spec)!r} not found (looked at {looked}); set the space's latency_table to a JSON "
        f"file in the Pixel-1 layout (measure one with benchmarks/measure_latency.py), or put "
        f"{PIXEL1_FILE} under $NNB_DATA_ROOT"
    )
