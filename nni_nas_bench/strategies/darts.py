"""DARTS: differentiable architecture search (Liu, Simonyan, Yang, ICLR 2019), first and second order.

A supernet (:class:`~search_spaces.supernet.DartsSupernet`) mixes every candidate op on every edge with
softmax weights of α. Each step updates α on a batch of the validation half of the search split, then
the weights w on a batch of the training half (SPEC: search trains on one half, validates on the other):

- first order: ∇α L_val(w, α);
- second order (unrolled): ∇α L_val(w', α) with w' = w − ξ ∇w L_train(w, α) one virtual SGD step ahead
  (momentum and weight decay included, ξ = the current weight learning rate), i.e.
  ∇α L_val(w', α) − ξ ∇²α,w L_train(w, α) · ∇w' L_val(w', α). The Hessian-vector product is the
  central finite difference (∇α L_train(w⁺) − ∇α L_train(w⁻)) / (2ε), w± = w ± ε v, ε = 0.01 / ‖v‖.
  The benchmark's DARTS search (DARTS/architect.py line 108) divides by 2ε too; the copy in its
  Augmentation/ folder divided by 2 and multiplied by ε (SPEC "Known defects"). A test checks the
  division against an exact autograd Hessian-vector product.

Defaults are SPEC's DARTS search protocol (CIFAR): 50 epochs, batch 64, 8 cells, 16 channels;
w: SGD lr 0.025 cosine → 0.001 (per epoch), momentum 0.9, weight decay 3e-4, gradient clip 5;
α: Adam 3e-4, betas (0.5, 0.999), weight decay 1e-3. ``order`` defaults to 2: the benchmark's DARTS
code (a fork of pt.darts) always ran the unrolled step.

Where the benchmark's DARTS code (antoyang/NAS-Benchmark DARTS/, a fork of khanrc/pt.darts) differs from
quark0's DARTS, a setting keeps both and defaults to the benchmark: ``edge_ranking`` ('raw': a node's two
edges are the ones with the largest raw α, as DARTS/genotypes.py ``parse``; 'softmax': the largest
softmax(α), quark0's rule); ``max_skip_connect`` (2: after the search, the normal cell's skip-dominated
edges are cut to 2 by zeroing the weakest skip α, DARTS/search.py lines 112-133; None: no cap);
``lr_epoch_offset`` (1: the scheduler is stepped at the start of each epoch, so epoch e trains at the
cosine value of e + 1 and the last epoch at ``w_lr_min``; 0: epoch e at e). Variants built on this class
keep the earlier behaviour (softmax, no cap, offset 0) unless they set :attr:`DartsStrategy.reference_defaults`.

After every epoch the strategy evaluates the supernet on the validation half (without augmentation),
derives the genotype, and appends α, the genotype and the epoch's numbers to ``alpha_history``, which
is written to ``<output_dir>/darts_search.json`` at once, so a killed search still leaves its history;
with ``checkpoint_dir`` the supernet and optimizers are saved too, and a restarted search resumes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn
from torch.func import functional_call

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.one_shot import OneShotStrategy, SearchResult
from nni_nas_bench.training.epoch import run_epoch
from search_spaces.genotype import Genotype
from search_spaces.supernet import DartsSupernet, EdgeOps, derive_genotype, edge_offsets

Batch = tuple[torch.Tensor, torch.Tensor]
LossAt = Callable[[dict[str, torch.Tensor], Batch], torch.Tensor]
RESULT_FILE = "darts_search.json"


@dataclass
class SearchRun:
    """What the phases of one search share: space, data, device, where to write, and the whole history."""

    space: Any
    info: Any
    device: torch.device
    w_loader: Any
    a_loader: Any
    eval_loader: Any
    output_dir: Path | None
    checkpoint_dir: Path | None
    log: Callable[[str], None]
    report_epoch: Callable[[dict[str, Any]], None] | None
    history: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------- the maths
def finite_difference_hvp(alpha_grad_at: Callable[[list[torch.Tensor]], Sequence[torch.Tensor]],
                          weights: Sequence[torch.Tensor], vector: Sequence[torch.Tensor],
                          r: float = 0.01) -> list[torch.Tensor]:
    """∇²α,w L · v ≈ (∇α L(w + εv) − ∇α L(w − εv)) / (2ε) with ε = r / ‖v‖ (DARTS's choice of ε).

    ``alpha_grad_at(ws)`` returns ∇α L at weights ``ws``. Central differences have error O(ε²); the
    division is by 2ε (the original benchmark code's ``/ 2. * eps`` multiplied instead).
    """
    norm = torch.sqrt(sum((v.detach().double() ** 2).sum() for v in vector))
    eps = (r / norm.clamp_min(1e-12)).to(vector[0].dtype)  # a tensor: no host synchronisation
    with torch.no_grad():
        plus = [w.detach() + eps * v.detach() for w, v in zip(weights, vector)]
        minus = [w.detach() - eps * v.detach() for w, v in zip(weights, vector)]
    grad_plus = alpha_grad_at(plus)
    grad_minus = alpha_grad_at(minus)
    return [(p - m) / (2 * eps) for p, m in zip(grad_plus, grad_minus)]


def unrolled_alpha_gradient(loss_at: LossAt, weights: dict[str, torch.Tensor], alphas: Sequence[torch.Tensor],
                            train_batch: Batch, valid_batch: Batch, *, lr: float, weight_decay: float = 0.0,
                            momentum: float = 0.0, momentum_buffers: dict[str, torch.Tensor | None] | None = None,
                            r: float = 0.01) -> list[torch.Tensor]:
    """DARTS's second-order approximation of ∇α L_val(w − ξ∇w L_train(w, α), α) (ξ = ``lr``).

    ``loss_at(ws, batch)`` is the loss of the model with weights ``ws`` (a name → tensor dict) and its
    own α; ``momentum_buffers`` are the weight optimizer's (SGD) buffers by name, so the virtual step
    is the step SGD would take: w' = w − ξ (μ·buf + ∇w L_train + λ w).
    """
    names = list(weights)
    w = [weights[n] for n in names]
    grads = torch.autograd.grad(loss_at(weights, train_batch), w)
    buffers = momentum_buffers or {}
    with torch.no_grad():
        virtual = []
        for name, wi, gi in zip(names, w, grads):
            step = gi + weight_decay * wi
            buf = buffers.get(name)
            if buf is not None:
                step = step + momentum * buf
            virtual.append((wi - lr * step).requires_grad_())
    valid_loss = loss_at(dict(zip(names, virtual)), valid_batch)
    out = torch.autograd.grad(valid_loss, [*alphas, *virtual])
    d_alpha, v = out[: len(alphas)], out[len(alphas):]

    def alpha_grad_at(ws: list[torch.Tensor]) -> Sequence[torch.Tensor]:
        return torch.autograd.grad(loss_at(dict(zip(names, ws)), train_batch), list(alphas))

    hvp = finite_difference_hvp(alpha_grad_at, w, v, r)
    return [da - lr * h for da, h in zip(d_alpha, hvp)]


def cap_skip_connects(alpha: torch.Tensor, candidate_ops: Sequence[str], limit: int) -> tuple[torch.Tensor, list[int]]:
    """The benchmark DARTS's skip-connect cap: a copy of the normal cell's ``alpha`` and the rows it zeroed.

    The rule of antoyang/NAS-Benchmark DARTS/search.py lines 112-131: count the edges (every edge of the
    cell, not just the kept ones) whose largest raw α over *all* ops, ``none`` included, is skip_connect;
    while more than ``limit`` remain, set the skip α of the one with the smallest skip α to 0 (the first
    such edge in edge order on ties) and drop it from the count. The value is 0, not −∞: an edge whose
    other α are all negative keeps its skip, as in the reference.
    """
    alpha = alpha.detach().clone()
    if "skip_connect" not in candidate_ops:
        return alpha, []
    skip = list(candidate_ops).index("skip_connect")
    rows = [r for r in range(alpha.shape[0]) if int(torch.argmax(alpha[r])) == skip]
    zeroed = []
    while len(rows) > limit:
        weakest = min(rows, key=lambda r: (float(alpha[r, skip]), rows.index(r)))
        alpha[weakest, skip] = 0.0
        rows.remove(weakest)
        zeroed.append(weakest)
    return alpha, zeroed


def raw_alpha_genotype(space: Any, alpha_normal: torch.Tensor, alpha_reduce: torch.Tensor) -> Genotype:
    """The genotype that ranks edges by raw α (DARTS/genotypes.py ``parse`` of the benchmark).

    Per node: each edge's op is its largest raw α other than ``none`` (as with softmax, which is monotone
    within an edge), and the two edges kept are those with the largest such raw α. Softmax ranking
    (quark0's) compares the edges' softmax weights instead, which normalise each edge by all its ops.
    """
    return derive_genotype(space, alpha_normal.detach(), alpha_reduce.detach())


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """Per-epoch cosine annealing from ``lr`` (epoch 0) towards ``lr_min`` (as DARTS steps it)."""
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs))


# ----------------------------------------------------------------------------------- the strategy
class DartsStrategy(OneShotStrategy):
    """DARTS as an NNI strategy that also runs in-process.

    In-process (tests, notebooks, the search trial of a benchmark experiment)::

        result = DartsStrategy(order=2, seed=0).search(space, data_root=..., dataset="cifar10")

    Under NNI's own API it is a :class:`nni.nas.strategy.Strategy`: ``strategy(model_space, engine)``
    (or ``NasExperiment(CellModelSpace(...), evaluator, strategy)``) searches the cell space behind the
    model space, then submits the derived architecture to the engine, so the experiment's evaluator
    trains it; this is how NNI's one-shot strategies hand over their result. That route needs the search
    data, so ``dataset``/``data_root``/``device``/``output_dir`` may be given here too (``search()``'s
    arguments override them). NNI's ``OneShotStrategy`` base is not used: it requires a Lightning
    evaluator and NNI's own mutable supernet, while this strategy must train the project's supernet on
    the project's data pipeline.

    ``state_dict`` records the seed and the result (genotype, accuracy, α history). Mid-search
    checkpoints are files: with ``checkpoint_dir`` set, every epoch saves the phase's state there and a
    new search with the same settings and directory resumes from it (the search trial keys the directory
    by the trial's parameters, as final trainings key theirs).

    Variants (CNAS, PDARTS, StacNAS, DARTS-PT) override :meth:`_search` and reuse
    :meth:`build_supernet` (a supernet over per-edge op subsets) and :meth:`train_supernet` (the
    epoch loop with its history, reporting and checkpoints).
    """

    setting_names: ClassVar[tuple[str, ...]] = (
        "order", "epochs", "batch_size", "layers", "channels", "w_lr", "w_lr_min", "w_momentum", "w_weight_decay",
        "grad_clip", "alpha_lr", "alpha_betas", "alpha_weight_decay", "unroll_r", "edge_ranking", "max_skip_connect",
        "lr_epoch_offset", "cutout", "subset", "eval_batch_size", "seed")
    repr_names: ClassVar[tuple[str, ...]] = ("order", "epochs", "layers", "channels", "batch_size", "seed")

    name = "darts"
    # The reference values of the settings where the benchmark's DARTS code and quark0's DARTS differ.
    # A subclass that does not set its own gets EARLIER_DEFAULTS (see __init_subclass__), so the variants
    # built on this class keep their behaviour until their own reference is checked.
    reference_defaults: ClassVar[dict[str, Any]] = {"edge_ranking": "raw", "max_skip_connect": 2, "lr_epoch_offset": 1}
    EARLIER_DEFAULTS: ClassVar[dict[str, Any]] = {"edge_ranking": "softmax", "max_skip_connect": None,
                                                  "lr_epoch_offset": 0}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "reference_defaults" not in cls.__dict__ and cls.reference_defaults is DartsStrategy.reference_defaults:
            cls.reference_defaults = dict(DartsStrategy.EARLIER_DEFAULTS)  # (a subclass of CNAS keeps CNAS's)

    def __init__(self, *, order: int = 2, epochs: int = 50, batch_size: int = 64, layers: int = 8,
                 channels: int = 16, w_lr: float = 0.025, w_lr_min: float = 0.001, w_momentum: float = 0.9,
                 w_weight_decay: float = 3e-4, grad_clip: float = 5.0, alpha_lr: float = 3e-4,
                 alpha_betas: Sequence[float] = (0.5, 0.999), alpha_weight_decay: float = 1e-3,
                 unroll_r: float = 0.01, edge_ranking: str | None = None,
                 max_skip_connect: int | str | None = "reference", lr_epoch_offset: int | None = None,
                 cutout: int = 0, subset: int | None = None, eval_batch_size: int = 256, seed: int = 0,
                 dataset: str | None = None, data_root: str | Path | None = None,
                 device: str = "auto", output_dir: str | Path | None = None,
                 checkpoint_dir: str | Path | None = None):
        super().__init__()
        if order not in (1, 2) or isinstance(order, bool):
            raise ConfigError(f"darts.order must be 1 (first order) or 2 (unrolled), got {order!r}")
        self.order = order
        self.epochs = check_int("darts", "epochs", epochs)
        self.batch_size = check_int("darts", "batch_size", batch_size)
        self.layers = check_int("darts", "layers", layers)
        if layers < 3:
            raise ConfigError(f"darts.layers must be >= 3 (the supernet has two reduction cells), got {layers}")
        self.channels = check_int("darts", "channels", channels)
        self.eval_batch_size = check_int("darts", "eval_batch_size", eval_batch_size)
        self.w_lr = check_number("darts", "w_lr", w_lr)
        self.w_lr_min = check_number("darts", "w_lr_min", w_lr_min)
        self.w_momentum = check_number("darts", "w_momentum", w_momentum)
        self.w_weight_decay = check_number("darts", "w_weight_decay", w_weight_decay)
        self.grad_clip = check_number("darts", "grad_clip", grad_clip)
        self.alpha_lr = check_number("darts", "alpha_lr", alpha_lr)
        self.alpha_weight_decay = check_number("darts", "alpha_weight_decay", alpha_weight_decay)
        betas = tuple(alpha_betas)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ConfigError(f"darts.alpha_betas must be two numbers in [0, 1), got {alpha_betas!r}")
        self.alpha_betas = (float(betas[0]), float(betas[1]))
        self.unroll_r = check_number("darts", "unroll_r", unroll_r)
        self._set_reference_settings(edge_ranking, max_skip_connect, lr_epoch_offset)
        self._set_common(cutout=cutout, subset=subset, seed=seed, dataset=dataset, data_root=data_root, device=device,
                         output_dir=output_dir)
        self.checkpoint_dir = checkpoint_dir  # per-epoch search checkpoints (None: none); not a setting

    def _set_reference_settings(self, edge_ranking: str | None, max_skip_connect: int | str | None,
                                lr_epoch_offset: int | None) -> None:
        """The settings whose default is this method's reference value (:attr:`reference_defaults`)."""
        ref = type(self).reference_defaults
        self.edge_ranking = ref["edge_ranking"] if edge_ranking is None else edge_ranking
        if self.edge_ranking not in ("raw", "softmax"):
            raise ConfigError(f"{self.name}.edge_ranking must be 'raw' (the benchmark's DARTS) or 'softmax' "
                              f"(quark0's DARTS), got {self.edge_ranking!r}")
        cap = ref["max_skip_connect"] if max_skip_connect == "reference" else max_skip_connect
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
            raise ConfigError(f"{self.name}.max_skip_connect must be a number of skip-connects >= 0 or null "
                              f"(no cap), got {max_skip_connect!r}")
        self.max_skip_connect = cap
        offset = ref["lr_epoch_offset"] if lr_epoch_offset is None else lr_epoch_offset
        if offset not in (0, 1) or isinstance(offset, bool):
            raise ConfigError(f"{self.name}.lr_epoch_offset must be 0 (epoch e at cosine(e)) or 1 (the scheduler "
                              f"stepped before each epoch: cosine(e + 1)), got {lr_epoch_offset!r}")
        self.lr_epoch_offset = offset

    # ------------------------------------------------------------------------------- description
    def check_space(self, space: Any) -> None:
        """DARTS mixes ops on the edges of cells: the space must list its ``candidate_ops`` (cell spaces, NB201)."""
        if not hasattr(space, "candidate_ops"):
            raise ConfigError(f"{self.name} searches a space with mixed-op edges (darts, nb201 ...), got {space!r}: "
                              "choose such a space or another method")

    # ------------------------------------------------------------------------------ the search
    def search(self, space: Any, *, data_root: str | Path | None = None, dataset: str | None = None,
               device: str | torch.device | None = None, output_dir: str | Path | None = None,
               log: Callable[[str], None] = print,
               report_epoch: Callable[[dict[str, Any]], None] | None = None) -> SearchResult:
        """Run the search on ``space`` with the search split of ``dataset``; return the result.

        ``report_epoch`` gets one dict per epoch (``default`` = the supernet's validation accuracy).
        The caller's global torch RNG is left as it was: the supernet's initialisation is drawn from
        this strategy's seed inside a forked RNG, and the loaders have their own generators.
        """
        from nni_nas_bench.data import load_split, make_loaders
        from nni_nas_bench.data._seeding import derive_seed

        self.check_space(space)
        inputs = self.search_inputs(data_root, dataset, device, output_dir)
        info, device_ = inputs.info, inputs.device
        tic = time.perf_counter()
        split = load_split(info.name, inputs.data_root, "search", seed=self.seed, subset=self.subset)
        split = self.search_split(split)
        w_loader, eval_loader = make_loaders(split, batch_size=self.batch_size, device=device_, cutout=self.cutout,
                                             seed=derive_seed("darts", "w", self.seed),
                                             eval_batch_size=self.eval_batch_size)
        a_loader = _valid_train_loader(split, batch_size=self.batch_size, device=device_, cutout=self.cutout,
                                       seed=derive_seed("darts", "alpha", self.seed))
        run = SearchRun(space, info, device_, w_loader, a_loader, eval_loader,
                        inputs.output_dir,
                        None if self.checkpoint_dir is None else Path(self.checkpoint_dir), log, report_epoch)
        log(f"{self.name}: {self.extra_repr()}, {info.name} on {device_}")

        fork_devices = [device_] if device_.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(derive_seed("darts", "init", self.seed))
            genotype, valid_acc = self._search(run)
        self._result = SearchResult(genotype, valid_acc, time.perf_counter() - tic, run.history)
        self._save(run, genotype)
        log(f"{self.name}: {genotype} (valid acc {valid_acc:.2f}, {self._result.search_seconds:.0f}s)")
        return self._result

    def search_split(self, split: Any) -> Any:
        """The search split the loaders are built from (a variant's hook; DARTS: the 50/50 split as loaded).

        StacNAS's one-level search trains on the whole training set: its train side is both halves.
        """
        return split

    def _search(self, run: SearchRun) -> tuple[Genotype, float]:
        """The method proper (a subclass's hook): DARTS trains one supernet and reads the last genotype.

        With ``max_skip_connect`` the final genotype is read after the normal cell's skip cap
        (:func:`cap_skip_connects`), as the benchmark's search writes it; the per-epoch history is uncapped.
        """
        net = self.build_supernet(run, layers=self.layers)
        rows = self.train_supernet(net, run, epochs=self.epochs)
        return self.final_genotype(net, run, rows[-1]["genotype"]), rows[-1]["valid_acc"]

    def final_genotype(self, net: Any, run: SearchRun, last: str) -> Genotype:
        """The last epoch's genotype ``last``, after the skip cap where it applies (DARTS cell supernets)."""
        if self.max_skip_connect is None or hasattr(run.space, "build_supernet"):
            return run.space.parse(last)  # NB201's supernet keeps every edge: no edges to cap
        alpha, zeroed = cap_skip_connects(net.alpha_normal, run.space.candidate_ops, self.max_skip_connect)
        if not zeroed:
            return run.space.parse(last)
        offsets = edge_offsets(int(run.space.n_nodes))
        edges = [(node + 2, row - offsets[node]) for row in zeroed for node in range(len(offsets))
                 if offsets[node] <= row < offsets[node] + node + 2]
        run.log(f"{self.name}: normal cell capped at {self.max_skip_connect} skip-connects: skip α zeroed on "
                f"edges (node, input) {edges}")
        return self.genotype_of(net, alpha_normal=alpha)

    def genotype_of(self, net: Any, alpha_normal: torch.Tensor | None = None) -> Genotype:
        """The supernet's genotype with this strategy's ``edge_ranking`` (optionally with another normal α)."""
        if alpha_normal is None and (self.edge_ranking == "softmax" or not isinstance(net, DartsSupernet)):
            return net.genotype()  # NB201's supernet keeps every edge: the ranking does not matter there
        normal = net.alpha_normal if alpha_normal is None else alpha_normal
        reduce = net.alpha_reduce
        if net._restricted:  # ops an edge does not hold never win (PDARTS-style pruned edges)
            normal = normal.detach().masked_fill(~net.mask_normal, float("-inf"))
            reduce = reduce.detach().masked_fill(~net.mask_reduce, float("-inf"))
        if self.edge_ranking == "softmax":
            return derive_genotype(net.space, torch.softmax(normal.detach(), -1), torch.softmax(reduce.detach(), -1))
        return raw_alpha_genotype(net.space, normal, reduce)

    def build_supernet(self, run: SearchRun, *, layers: int, edge_ops: EdgeOps | None = None,
                       skip_dropout: bool = False, stage: int = 0) -> Any:
        """A supernet of ``run.space`` with this strategy's width; α drawn from (seed, stage)."""
        from nni_nas_bench.data._seeding import derive_seed
        from search_spaces.supernet import DartsSupernet

        key = "alpha-init" if stage == 0 else f"alpha-init-{stage}"
        generator = torch.Generator().manual_seed(derive_seed("darts", key, self.seed))
        stem = "cifar" if run.info.image_size == 32 else "imagenet"
        if hasattr(run.space, "build_supernet"):
            # A space with its own supernet (NB201: fixed reduction blocks, one α shared by all cells).
            if edge_ops is not None or skip_dropout:
                raise ConfigError(f"{self.name} prunes or drops edges of the DARTS cell supernet; space "
                                  f"{run.space.name!r} builds its own supernet: search it with darts")
            return run.space.build_supernet(C=self.channels, num_classes=run.info.num_classes, layers=layers,
                                            stem=stem, generator=generator).to(run.device)
        return DartsSupernet(run.space, C=self.channels, num_classes=run.info.num_classes, layers=layers,
                             stem=stem, generator=generator, edge_ops=edge_ops,
                             skip_dropout=skip_dropout).to(run.device)

    def train_supernet(self, net: Any, run: SearchRun, *, epochs: int, phase: str = "search",
                       alpha_from: int = 0, before_epoch: Callable[[Any, int], None] | None = None,
                       lr_range: tuple[float, float] | None = None) -> list[dict[str, Any]]:
        """Train ``net`` for ``epochs`` (α steps from epoch ``alpha_from`` on); return this phase's rows.

        Each epoch: the cosine learning rate of this phase (``lr_range`` = (start, end), default
        (``w_lr``, ``w_lr_min``); epoch e at cosine(e + ``lr_epoch_offset``)), ``before_epoch(net, epoch)`` (a method's
        per-epoch schedule, e.g. PDARTS's skip dropout), α step and w step per batch, evaluation on the
        validation half, the genotype, one history row (appended to ``run.history`` and reported), the
        history JSON and, with a ``checkpoint_dir``, a checkpoint of the phase. A phase whose checkpoint
        exists resumes after its last saved epoch (a finished phase is only reloaded): a killed search
        trial restarts where it stopped and gives the same α history as an uninterrupted one.
        """
        weights = dict(net.named_weight_parameters())
        w_opt, a_opt = self.make_optimizers(net)
        criterion = nn.CrossEntropyLoss()
        rows: list[dict[str, Any]] = []
        start_epoch = self._resume(run, phase, net, w_opt, a_opt, rows)
        for epoch in range(start_epoch, epochs):
            lr = self.epoch_lr(epoch, epochs, lr_range)
            for group in w_opt.param_groups:
                group["lr"] = lr
            if before_epoch is not None:
                before_epoch(net, epoch)
            update_alpha = epoch >= alpha_from
            run.w_loader.set_epoch(epoch)
            start = time.perf_counter()
            net.train()
            valid_stream = _epoch_stream(run.a_loader, epoch, epochs)
            step = partial(self._batch_step, net=net, weights=weights, lr=lr, w_opt=w_opt, a_opt=a_opt,
                           criterion=criterion, valid_stream=valid_stream if update_alpha else None)
            totals = run_epoch(run.w_loader, step, run.device).finite_or_fail(
                f"{self.name} search loss", f"in epoch {epoch + 1}", "lower w_lr or check the input data")
            train_loss = totals.loss
            valid_acc = self.evaluate_supernet(net, run)
            seconds = time.perf_counter() - start
            genotype = self.genotype_of(net)
            row = {
                "epoch": len(run.history) + 1, "phase": phase, "phase_epoch": epoch + 1, "alpha_step": update_alpha,
                "valid_acc": valid_acc, "train_acc": totals.accuracy,
                "train_loss": train_loss, "lr": lr, "epoch_seconds": seconds, "genotype": genotype.to_text(),
                "alpha": {"normal": net.alpha_normal.detach().cpu().tolist(),
                          "reduce": net.alpha_reduce.detach().cpu().tolist()},
            }
            rows.append(row)
            run.history.append(row)
            label = self.name if phase == "search" else f"{self.name} {phase}"
            run.log(f"{label} epoch {epoch + 1}/{epochs} lr {lr:.4g} train_loss {train_loss:.4f} "
                    f"train_acc {row['train_acc']:.2f} valid_acc {valid_acc:.2f} ({seconds:.1f}s)\n  {genotype}")
            self._save(run)
            self._checkpoint(run, phase, net, w_opt, a_opt, rows, epoch + 1)
            if run.report_epoch is not None:
                run.report_epoch({"default": valid_acc, "epoch": row["epoch"], "train_loss": train_loss,
                                  "train_acc": row["train_acc"], "lr": lr, "epoch_seconds": seconds})
        return rows

    def _batch_step(self, x: torch.Tensor, y: torch.Tensor, *, net: Any, weights: dict[str, nn.Parameter], lr: float,
                    w_opt: torch.optim.Optimizer, a_opt: torch.optim.Optimizer, criterion: nn.Module,
                    valid_stream: Iterator[Any] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of :meth:`train_supernet`: :meth:`step` with the next validation batch when α steps."""
        valid_batch = next(valid_stream) if valid_stream is not None else None
        return self.step(net, weights, (x, y), valid_batch, lr, w_opt, a_opt, criterion)

    def epoch_lr(self, epoch: int, epochs: int, lr_range: tuple[float, float] | None = None) -> float:
        """The weight learning rate of (0-based) ``epoch`` of a phase: cosine at ``epoch + lr_epoch_offset``.

        Offset 1 is the reference scripts' ``scheduler.step()`` before each epoch (PyTorch ≤ 1.0's
        ``get_lr``): epoch e trains at η(e + 1), so the first epoch is already below ``w_lr`` and the last
        one trains at ``w_lr_min``.
        """
        return cosine_lr(epoch + self.lr_epoch_offset, epochs, *(lr_range or (self.w_lr, self.w_lr_min)))

    def evaluate_supernet(self, net: Any, run: SearchRun) -> float:
        """Accuracy (%) of the supernet on the validation half, in eval mode (GDAS first recalibrates its BN)."""
        from nni_nas_bench.training.protocol import Protocol
        from nni_nas_bench.training.trainer import evaluate

        return evaluate(net, run.eval_loader, Protocol(precision="fp32", channels_last=False), run.device)

    def step(self, net: Any, weights: dict[str, torch.Tensor], train_batch: Batch, valid_batch: Batch | None,
             lr: float, w_opt: torch.optim.Optimizer, a_opt: torch.optim.Optimizer,
             criterion: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """One search step: the α step on ``valid_batch`` (skipped when None), then the w step; (logits, loss).

        Public because it is the unit ``benchmarks/supernet_step.py`` times against NNI's DARTS step.
        """
        alphas = net.arch_parameters()
        if valid_batch is not None:
            grads = self.alpha_gradient(net, weights, train_batch, valid_batch, lr, w_opt, criterion)
            for a, g in zip(alphas, grads):
                a.grad = g
            a_opt.step()
        return self.w_step(net, weights, alphas, train_batch, w_opt, criterion)

    def w_step(self, net: Any, weights: dict[str, torch.Tensor], alphas: Sequence[torch.Tensor], batch: Batch,
               w_opt: torch.optim.Optimizer, criterion: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of the weights on ``batch`` with α frozen (its gradient from the training loss would be
        computed for nothing), gradients clipped to ``grad_clip``; returns (logits, loss)."""
        x, y = batch
        for a in alphas:
            a.requires_grad_(False)
        try:
            logits = net(x)
            loss = criterion(logits, y)
            w_opt.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            for a in alphas:
                a.requires_grad_(True)
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(weights.values(), self.grad_clip)
        w_opt.step()
        return logits, loss

    def make_optimizers(self, net: Any) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """The weight optimizer (SGD with momentum and weight decay) and the α optimizer (Adam)."""
        w_opt = torch.optim.SGD(net.weight_parameters(), lr=self.w_lr, momentum=self.w_momentum,
                                weight_decay=self.w_weight_decay)
        a_opt = torch.optim.Adam(net.arch_parameters(), lr=self.alpha_lr, betas=self.alpha_betas,
                                 weight_decay=self.alpha_weight_decay)
        return w_opt, a_opt

    # --------------------------------------------------------------------------------- checkpoints
    def _checkpoint(self, run: SearchRun, phase: str, net: nn.Module, w_opt: torch.optim.Optimizer,
                    a_opt: torch.optim.Optimizer, rows: list[dict[str, Any]], epochs_done: int) -> None:
        """Save the phase after an epoch: supernet (α, masks, fixed rows), optimizers, rows, RNG."""
        if run.checkpoint_dir is None:
            return
        from nni_nas_bench.training.checkpoint import CheckpointStore

        state = {"settings": self.settings, "phase": phase, "epochs_done": epochs_done, "net": net.state_dict(),
                 "w_opt": w_opt.state_dict(), "a_opt": a_opt.state_dict(), "rows": rows,
                 "rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None}
        CheckpointStore(run.checkpoint_dir, _phase_file(phase)).save(state)

    def _resume(self, run: SearchRun, phase: str, net: nn.Module, w_opt: torch.optim.Optimizer,
                a_opt: torch.optim.Optimizer, rows: list[dict[str, Any]]) -> int:
        """Load the phase's checkpoint if there is one; return the first epoch still to train."""
        if run.checkpoint_dir is None:
            return 0
        from nni_nas_bench.training.checkpoint import CheckpointStore

        state = CheckpointStore(run.checkpoint_dir, _phase_file(phase)).load()
        if state is None:
            return 0
        if state["settings"] != self.settings:
            raise ConfigError(f"checkpoint {run.checkpoint_dir} belongs to a search with other settings "
                              f"({state['settings']}); use another checkpoint_dir or delete it")
        net.load_state_dict(state["net"])
        w_opt.load_state_dict(state["w_opt"])
        a_opt.load_state_dict(state["a_opt"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], run.device)
        rows.extend(state["rows"])
        run.history.extend(state["rows"])
        run.log(f"{self.name}: resumed {phase} after epoch {state['epochs_done']} from {run.checkpoint_dir}")
        return int(state["epochs_done"])

    def alpha_gradient(self, net: Any, weights: dict[str, torch.Tensor], train_batch: Batch, valid_batch: Batch,
                       lr: float, w_opt: torch.optim.Optimizer, criterion: nn.Module) -> list[torch.Tensor]:
        """∇α of this step: first order, or the unrolled second-order approximation.

        The virtual weights are passed with ``torch.func.functional_call``, so the supernet is never
        copied or modified in place. These forwards run in training mode on the supernet's own BN
        buffers, as DARTS's architecture steps do (BN statistics only matter for the reported
        validation accuracy; copying some thousand buffers per step would cost more than it is worth).
        """
        alphas = net.arch_parameters()

        def loss_at(ws: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
            x, y = batch
            return criterion(functional_call(net, ws, (x,)), y)

        if self.order == 1:
            return list(torch.autograd.grad(loss_at(weights, valid_batch), alphas))
        momentum_buffers = {name: w_opt.state.get(p, {}).get("momentum_buffer") for name, p in weights.items()}
        return unrolled_alpha_gradient(loss_at, weights, alphas, train_batch, valid_batch, lr=lr,
                                       weight_decay=self.w_weight_decay, momentum=self.w_momentum,
                                       momentum_buffers=momentum_buffers, r=self.unroll_r)

    def _save(self, run: SearchRun, genotype: Genotype | None = None) -> None:
        """Write the α history (and each epoch's genotype) to ``darts_search.json``; at the end, the result.

        The result's ``genotype`` can differ from the last epoch's (DARTS's skip-connect cap, CNAS's
        genotype of the last epoch's start), so it is written on its own.
        """
        result = {} if genotype is None else {"genotype": genotype.to_text()}
        self.write_trace(run.output_dir, RESULT_FILE, {"space": repr(run.space),
                                                       "candidate_ops": list(run.space.candidate_ops),
                                                       **result, "epochs": run.history})


# --------------------------------------------------------------------------------------- data
def _valid_train_loader(split: Any, *, batch_size: int, device: torch.device, cutout: int, seed: int) -> Any:
    """A shuffled, augmented loader over the *validation* half: the batches of the α steps.

    DARTS draws its architecture batches from the validation half with the training augmentation;
    ``make_loaders`` only augments the train side, so this builds the same kind of loader on the other half.
    """
    from nni_nas_bench.data import DeviceDataLoader, FolderSplit, GpuBatchLoader, TensorSplit, train_transform

    if isinstance(split, TensorSplit):
        return GpuBatchLoader(split.eval_x, split.eval_y, batch_size=batch_size, device=device, mean=split.info.mean,
                              std=split.info.std, train=True, cutout=cutout, seed=seed)
    if isinstance(split, FolderSplit):
        dataset = split.eval.with_transform(train_transform(split.info, cutout=cutout))
        return DeviceDataLoader(dataset, batch_size=batch_size, device=device, train=True, seed=seed)
    raise ConfigError(f"DARTS needs a TensorSplit or FolderSplit, got {type(split).__name__}")


def _epoch_stream(loader: Any, epoch: int, epochs: int) -> Iterator[Batch]:
    """The α batches of one epoch: pass ``epoch`` of ``loader``, then passes ``epoch + k·epochs`` if needed.

    Each epoch's batches depend on the epoch alone (not on what earlier epochs consumed), so a resumed
    search draws exactly the batches the uninterrupted one would; the extra passes (when the validation
    half has fewer batches than the training half) never repeat another epoch's first pass.
    """
    k = 0
    while True:
        loader.set_epoch(epoch + k * epochs)
        yield from loader
        k += 1


def _phase_file(phase: str) -> str:
    """Checkpoint file name (without .pt) of a search phase."""
    return "search-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in phase)
