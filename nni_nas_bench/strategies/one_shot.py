"""What every one-shot (weight-sharing) strategy shares: its result, NNI's entry point, its inputs, its trace file.

DARTS and its variants, ENAS/NAO/MANAS and Single-Path NAS differ in how they search, not in how they
are driven: each is an NNI :class:`~nni.nas.strategy.Strategy` that also runs in-process
(``strategy.search(space, data_root=..., dataset=...)`` returns a :class:`SearchResult`), resolves the
same inputs the same way (arguments of ``search()`` override those given to the constructor), writes
its per-epoch trace as one JSON file that a killed search still leaves behind, and hands its result to
NNI's engine as a frozen architecture. Keeping that here means a new method is only its search.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from nni.nas.strategy.base import Strategy

from nni_nas_bench.errors import ConfigError
from search_spaces.genotype import Genotype


@dataclass
class SearchResult:
    """What a search returns: the architecture, how good the supernet was, what it cost, and its trace.

    ``genotype`` is an architecture of the searched space (a :class:`Genotype` for cell spaces, the
    space's own type otherwise); ``alpha_history`` has one entry per epoch (``epoch``, ``valid_acc``,
    ``genotype`` text and the method's own numbers, e.g. α for DARTS, thresholds for Single-Path NAS).
    """

    genotype: Any
    valid_acc: float
    search_seconds: float
    alpha_history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SearchInputs:
    """The inputs of one search, resolved once (``search()``'s arguments over the constructor's)."""

    data_root: Path
    info: Any  # nni_nas_bench.data.DatasetInfo
    device: torch.device
    output_dir: Path | None


class OneShotStrategy(Strategy):
    """Base of the one-shot strategies; subclasses implement ``search`` (and ``check_space`` if narrower).

    Subclasses set ``self.data_root``, ``self.dataset``, ``self.device``, ``self.output_dir`` and
    ``self.seed`` in their constructor. ``architecture_type`` reads a result's architecture text back
    (``from_text``) when NNI restores the strategy's state.
    """

    architecture_type: Any = Genotype
    _result: SearchResult | None = None
    # The method's settings, declared once: everything that changes the result (seed included), in the
    # order traces and checkpoints record them. Each is read from the attribute of its name
    # (``setting_attributes`` maps a setting to another attribute); a subclass extends its parent's tuple.
    # ``settings`` and ``extra_repr`` both come from these, so a new setting is listed in one place besides
    # the constructor that validates it.
    setting_names: ClassVar[tuple[str, ...]] = ()
    setting_attributes: ClassVar[dict[str, str]] = {}
    repr_names: ClassVar[tuple[str, ...]] = ()  # the settings a one-line description shows

    @property
    def settings(self) -> dict[str, Any]:
        """The search protocol (everything that changes the result, seed included), JSON-ready."""
        return {name: _json_ready(self._setting(name)) for name in self.setting_names}

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={self._setting(name)!r}" for name in self.repr_names)

    def _setting(self, name: str) -> Any:
        return getattr(self, self.setting_attributes.get(name, name))

    # ------------------------------------------------------------------------------------ result
    @property
    def result(self) -> SearchResult | None:
        """The result of the last search (None before one finished)."""
        return self._result

    def state_dict(self) -> dict[str, Any]:
        """The seed and the result (architecture, accuracy, trace); not a mid-search checkpoint."""
        result = self._result
        return {"seed": self.seed, "result": None if result is None else {
            "genotype": result.genotype.to_text(), "valid_acc": result.valid_acc,
            "search_seconds": result.search_seconds, "alpha_history": result.alpha_history}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seed = int(state_dict.get("seed", self.seed))
        r = state_dict.get("result")
        self._result = None if r is None else SearchResult(
            self.read_architecture(r["genotype"]), float(r["valid_acc"]), float(r["search_seconds"]),
            list(r.get("alpha_history", [])))

    def read_architecture(self, text: str) -> Any:
        """A result's architecture from its text (``architecture_type.from_text``)."""
        return self.architecture_type.from_text(text)

    def _set_common(self, *, cutout: Any, subset: Any, seed: Any, dataset: str | None,
                    data_root: str | Path | None, device: str, output_dir: str | Path | None) -> None:
        """Validate and keep the settings every one-shot method has (data, augmentation, seed, where to run)."""
        from nni_nas_bench.strategies.checks import check_int

        self.cutout = check_int(self.name, "cutout", cutout, 0)
        self.subset = None if subset is None else check_int(self.name, "subset", subset)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{self.name}.seed must be an integer, got {seed!r}")
        self.seed = seed
        self.dataset, self.data_root, self.device, self.output_dir = dataset, data_root, device, output_dir

    # --------------------------------------------------------------------------- NNI's entry point
    def _run(self) -> None:
        """Search the space behind NNI's model space, then submit the found architecture.

        This is how NNI's own one-shot strategies hand over their result: the experiment's evaluator
        trains the submitted architecture. The model space must wrap one of this project's spaces
        (:class:`search_spaces.model_space.CellModelSpace`).
        """
        executable = self.model_space
        inner = getattr(executable, "model_space", executable)
        space = getattr(inner, "space", None)
        if space is None:
            raise ConfigError(f"{self.name} searches one of this project's spaces: use "
                              "search_spaces.model_space.CellModelSpace(<space>) as the model space "
                              f"(got {type(inner).__name__})")
        self.check_space(space)
        result = self.search(space)
        self.engine.submit_models(executable.freeze(space.to_sample(result.genotype)))

    def check_space(self, space: Any) -> None:
        """Raise :class:`ConfigError` if this method cannot search ``space`` (tuners call it at start)."""

    # ------------------------------------------------------------------------------------ inputs
    def search_inputs(self, data_root: str | Path | None, dataset: str | None, device: str | torch.device | None,
                      output_dir: str | Path | None) -> SearchInputs:
        """Resolve the search's data, device and output folder; one clear error when data is not named."""
        from nni_nas_bench.data import get_dataset_info
        from nni_nas_bench.training.trainer import resolve_device

        data_root = data_root if data_root is not None else self.data_root
        dataset = dataset or self.dataset
        if data_root is None or dataset is None:
            raise ConfigError(f"{self.name} needs data: pass data_root=... and dataset=... (to search() or the "
                              "strategy)")
        output_dir = output_dir if output_dir is not None else self.output_dir
        return SearchInputs(Path(data_root), get_dataset_info(dataset),
                            resolve_device(device if device is not None else self.device),
                            None if output_dir is None else Path(output_dir))

    def write_trace(self, output_dir: Path | None, filename: str, doc: dict[str, Any]) -> None:
        """Write the search's trace as JSON, atomically (a reader never sees half a file; a killed
        search still leaves every finished epoch)."""
        if output_dir is None:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        tmp = output_dir / f".{filename}.tmp"
        tmp.write_text(json.dumps({"method": self.name, "settings": self.settings, **doc}, indent=1))
        os.replace(tmp, output_dir / filename)


def _json_ready(value: Any) -> Any:
    """A setting as JSON reads it back (tuples, e.g. Adam's betas, become lists), so a trace, a checkpoint's
    recorded settings and a resumed search's own compare equal."""
    return list(value) if isinstance(value, tuple) else value
