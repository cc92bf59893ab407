"""CNAS (Weng et al. 2019), as benchmarked by Yang et al. 2020: first-order DARTS with its own cell.

What differs from DARTS is the space (the ``cnas`` op set: SE-style channel weighting and a ShuffleNet
unit instead of the 5×5 convolutions, and 6 nodes per cell: ``space_args: {op_set: cnas, n_nodes: 6}``)
and the search protocol of the code the benchmark ran (antoyang/NAS-Benchmark CNAS/run/train_search.py
and the README's command): first order, 50 epochs (the README's ``--epochs 50``; the script's default is
60), 6 cells, 16 channels, batch 64, cutout 16; weights SGD 0.025 cosine → 0.003 (``--learning-rate-min``
0.003, not DARTS's 0.001), the scheduler stepped before each epoch (``lr_epoch_offset`` 1, so the last
epoch trains at 0.003); α Adam 3e-4, betas (0.5, 0.999), weight decay 1e-3; clip 5. On CIFAR-100 the
script forces 50 epochs and 24 channels (``_init_hyperparam``): experiments/cifar100/cnas.yml sets them.

Two details of CNAS's search network and genotype are settings here, defaulting to its code:

- ``stem_affine`` (False): the CIFAR search stem's BN has no affine parameters (CNAS/darts/model_search.py,
  ``reduce_level == 0`` stem); the 224-px stems keep theirs, as there;
- ``genotype_at`` ('last_epoch_start'): the genotype the script writes is the one it derived at the
  *start* of the last epoch (train_search.py ``run``: ``genotype = self.model.genotype()`` before
  ``self.train()``, written after the loop), i.e. α after ``epochs − 1`` epochs; 'end' reads it after
  the last epoch, as DARTS does.

CNAS ranks edges by softmax(α) (model_search.py ``genotype``), has no skip-connect cap, and its search is
otherwise DARTS's, so it is inherited, not rewritten.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.darts import DartsStrategy, SearchRun
from search_spaces.genotype import Genotype

GENOTYPE_AT = ("last_epoch_start", "end")


class CnasStrategy(DartsStrategy):
    """DARTS with CNAS's search defaults; every DARTS setting can still be given."""

    setting_names = (*DartsStrategy.setting_names, "stem_affine", "genotype_at")

    name = "cnas"

    reference_defaults: ClassVar[dict[str, Any]] = {"edge_ranking": "softmax", "max_skip_connect": None,
                                                    "lr_epoch_offset": 1}

    def __init__(self, *, order: int = 1, epochs: int = 50, layers: int = 6, batch_size: int = 64,
                 cutout: int = 16, w_lr_min: float = 0.003, stem_affine: bool = False,
                 genotype_at: str = "last_epoch_start", **settings: Any):
        super().__init__(order=order, epochs=epochs, layers=layers, batch_size=batch_size, cutout=cutout,
                         w_lr_min=w_lr_min, **settings)
        if not isinstance(stem_affine, bool):
            raise ConfigError(f"cnas.stem_affine must be true or false, got {stem_affine!r}")
        if genotype_at not in GENOTYPE_AT:
            raise ConfigError(f"cnas.genotype_at must be one of {list(GENOTYPE_AT)}, got {genotype_at!r}")
        self.stem_affine = stem_affine
        self.genotype_at = genotype_at

    def build_supernet(self, run: SearchRun, *, layers: int, **kwargs: Any) -> Any:
        """DARTS's supernet; on 32-px data its stem BN is non-affine unless ``stem_affine``."""
        net = super().build_supernet(run, layers=layers, **kwargs)
        stem = getattr(getattr(net, "network", None), "stem0", None)
        if not self.stem_affine and run.info.image_size == 32 and stem is not None:
            bn = stem[1]
            stem[1] = nn.BatchNorm2d(bn.num_features, affine=False).to(run.device)
        return net

    def _search(self, run: SearchRun) -> tuple[Genotype, float]:
        """Train the supernet; the genotype of the last epoch's start or end (``genotype_at``)."""
        net = self.build_supernet(run, layers=self.layers)
        initial = self.genotype_of(net)  # the start of epoch 1: what a 1-epoch CNAS search writes
        rows = self.train_supernet(net, run, epochs=self.epochs)
        if self.genotype_at == "end":
            return run.space.parse(rows[-1]["genotype"]), rows[-1]["valid_acc"]
        # α does not change between the end of an epoch and the start of the next
        genotype = run.space.parse(rows[-2]["genotype"]) if len(rows) > 1 else initial
        return genotype, rows[-1]["valid_acc"]
