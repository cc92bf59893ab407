"""Synthetic NNI trial databases: the exact ``nni.sqlite`` schema NNI 3.0 writes, filled with made-up trials.

For tests, benchmarks and notebook CI only — nothing here is a result. Real experiments take minutes
per trial; the analysis must also be exercised on what does not exist yet (search methods, 600-epoch
curves, 10,000 trials, every study of SPEC), so this module writes DBs that the reader cannot tell from
NNI's own: same tables and indexes, metric data JSON-encoded twice, ``TrialJobEvent`` rows carrying the
parameters the manager recorded.

The accuracies follow a toy model (an architecture quality drawn per architecture, a saturating
learning curve, Gaussian noise), seeded, so tests can assert on what the analysis recovers.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nni_nas_bench.contract import Role

_SCHEMA = """
CREATE TABLE ExperimentProfile (params text, id text, execDuration integer, startTime integer, endTime integer,
    logDir text, nextSequenceId integer, revision integer);
CREATE INDEX ExperimentProfile_id on ExperimentProfile(id);
CREATE TABLE TrialJobEvent (timestamp integer, trialJobId text, event text, data text, logPath text,
    sequenceId integer, message text, environmentId text);
CREATE INDEX TrialJobEvent_trialJobId on TrialJobEvent(trialJobId);
CREATE INDEX TrialJobEvent_event on TrialJobEvent(event);
CREATE TABLE MetricData (timestamp integer, trialJobId text, parameterId text, type text, sequence integer,
    data text);
CREATE INDEX MetricData_trialJobId on MetricData(trialJobId);
CREATE INDEX MetricData_type on MetricData(type);
"""


@dataclass
class FakeTrial:
    """One trial as NNI would have recorded it."""

    trial_id: str
    parameters: dict[str, Any]
    final: dict[str, Any] | None          # the FINAL metric dict (None: the trial never reported one)
    curve: Sequence[float] = ()           # per-epoch accuracies (PERIODICAL metrics)
    status: str = "SUCCEEDED"
    parameter_id: int = 0
    start_ms: int = 1_700_000_000_000
    epoch_seconds: float = 1.0


def write_trial_db(path: str | Path, trials: Iterable[FakeTrial], experiment_id: str = "synthetic",
                   experiment_name: str = "synthetic") -> Path:
    """Write ``trials`` into a new ``nni.sqlite`` at ``path`` (a ``.sqlite`` file, or an experiment folder)."""
    path = Path(path)
    if path.suffix != ".sqlite":
        path = path / "db" / "nni.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    try:
        conn.executescript(_SCHEMA)
        profile = json.dumps({"experimentName": experiment_name, "experimentType": "hpo", "synthetic": True})
        conn.execute("INSERT INTO ExperimentProfile VALUES (?, ?, 0, 0, NULL, ?, 0, 1)",
                     (profile, experiment_id, str(path.parent.parent)))
        events, metrics = [], []
        for t in trials:
            ts = t.start_ms
            data = json.dumps({"parameter_id": t.parameter_id, "parameter_source": "algorithm",
                               "parameters": t.parameters})
            events.append((ts, t.trial_id, "WAITING", data))
            events.append((ts + 1, t.trial_id, "RUNNING", data))
            for epoch, acc in enumerate(t.curve, 1):
                inner = (f'{{"default": {float(acc)!r}, "epoch": {epoch}, "train_loss": 1.0, "train_acc": 50.0, '
                         f'"lr": 0.025, "epoch_seconds": {t.epoch_seconds!r}}}')
                ts += max(1, int(t.epoch_seconds * 1000))
                metrics.append((ts, t.trial_id, str(t.parameter_id), "PERIODICAL", epoch - 1, json.dumps(inner)))
            if t.final is not None:
                ts += 1
                metrics.append((ts, t.trial_id, str(t.parameter_id), "FINAL", 0, json.dumps(json.dumps(t.final))))
            if t.status not in ("RUNNING", "WAITING"):
                events.append((ts + 1, t.trial_id, t.status, None))
        conn.executemany("INSERT INTO TrialJobEvent (timestamp, trialJobId, event, data) VALUES (?, ?, ?, ?)",
                         events)
        conn.executemany("INSERT INTO MetricData VALUES (?, ?, ?, ?, ?, ?)", metrics)
        conn.commit()
    finally:
        conn.close()
    return path


_GENOTYPE_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3",
                 "avg_pool_3x3", "skip_connect")


def _genotype(rng: np.random.Generator) -> str:
    """A DARTS-notation genotype string (shape right, not validated against a space)."""
    def cell() -> str:
        edges = []
        for node in range(4):
            for _ in range(2):
                edges.append(f"('{_GENOTYPE_OPS[rng.integers(len(_GENOTYPE_OPS))]}', {rng.integers(node + 2)})")
        return "[" + ", ".join(edges) + "]"
    return f"Genotype(normal={cell()}, normal_concat=range(2, 6), reduce={cell()}, reduce_concat=range(2, 6))"


def _curve(final: float, epochs: int, rng: np.random.Generator, noise: float) -> list[float]:
    """A saturating learning curve that ends at ``final``."""
    e = np.arange(1, epochs + 1)
    shape = 1 - np.exp(-4.0 * e / epochs)
    curve = 10 + (final - 10) * shape / shape[-1] + rng.normal(0, noise, epochs) * (1 - e / epochs)
    curve[-1] = final
    return [round(float(v), 3) for v in curve]


@dataclass
class _Builder:
    """Collects fake trials per experiment, numbering trial ids and parameter ids like NNI does."""

    rng: np.random.Generator
    epochs: int
    experiments: dict[str, list[FakeTrial]] = field(default_factory=dict)
    clock: int = 1_700_000_000_000

    def add(self, experiment: str, params: dict[str, Any], acc: float, *, seconds: float,
            status: str = "SUCCEEDED", extra_final: dict[str, Any] | None = None) -> None:
        trials = self.experiments.setdefault(experiment, [])
        protocol = params["protocol"]
        epochs = protocol.get("epochs", self.epochs)
        curve = _curve(acc, epochs, self.rng, noise=1.0) if status == "SUCCEEDED" else []
        final = None
        if status == "SUCCEEDED":
            best = int(np.argmax(curve))
            final = {
                "default": curve[-1], "best_acc": curve[best], "best_epoch": best + 1, "epochs": epochs,
                "params": round(float(self.rng.uniform(2, 4)), 3), "flops": round(float(self.rng.uniform(300, 600)), 1),
                "train_seconds": seconds, "device": "synthetic", "code_version": "synthetic",
                **{k: v for k, v in params.items() if k not in ("protocol", "space_args")},
                "train_seed": protocol["seed"], "protocol_name": protocol["name"],
                "protocol": json.dumps(protocol, sort_keys=True),
                "space_args": json.dumps(params.get("space_args", {}), sort_keys=True),
                **(extra_final or {}),
            }
        self.clock += 1000
        trials.append(FakeTrial(f"T{len(trials):05d}", params, final, curve, status, parameter_id=len(trials),
                                start_ms=self.clock, epoch_seconds=seconds / max(epochs, 1)))


def _protocol(name: str = "darts", *, epochs: int, seed: int = 0, layers: int = 20, **over: Any) -> dict[str, Any]:
    return {"name": name, "epochs": epochs, "seed": seed, "layers": layers, "channels": 36, **over}


def make_benchmark(root: str | Path, *, seed: int = 0, datasets: Sequence[str] = ("cifar10", "sport8"),
                   methods: Sequence[str] = ("darts", "enas"), runs: int = 4, epochs: int = 12,
                   studies: bool = True, failed: int = 1) -> list[Path]:
    """Write a folder of synthetic experiments covering every analysis of SPEC; return the DBs.

    Per method x dataset: ``runs`` search trials (role 'search'), ``runs`` final trainings of what they
    found (role 'searched'), ``runs`` random architectures of the method's space (role 'random'). With
    ``studies``: training tricks (3 protocols on the same architectures), two training seeds, two depths,
    the poor op set, a depth sweep. ``failed`` trials end FAILED without metrics.
    """
    rng = np.random.default_rng(seed)
    b = _Builder(rng, epochs)
    space_of = {m: ("enas" if m in ("enas", "nao") else "darts") for m in methods}
    base = {"cifar10": 94.0, "cifar100": 76.0, "sport8": 85.0, "mit67": 60.0, "flowers102": 88.0}
    for d_i, dataset in enumerate(datasets):
        for m_i, method in enumerate(methods):
            exp = f"{method}-{dataset}"
            shift = 0.6 * math.sin(d_i + 2 * m_i)  # some methods help on some datasets, hurt on others
            for run in range(runs):
                common = {"method": method, "dataset": dataset, "space": space_of[method], "space_args": {}}
                genotype = _genotype(rng)
                hours = float(rng.uniform(0.5, 1.5)) * (4 if method == "enas" else 1)
                b.add(exp, {**common, "role": Role.SEARCH.value, "search_seed": run, "genotype": genotype,
                            "protocol": _protocol("search", epochs=epochs, seed=run)},
                      base.get(dataset, 80) - 5 + rng.normal(0, 1), seconds=hours * 3600,
                      extra_final={"search_seconds": hours * 3600})
                b.add(exp, {**common, "role": Role.SEARCHED.value, "search_seed": run, "genotype": genotype,
                            "source_trial": f"{exp}/search/{run}", "protocol": _protocol(epochs=epochs)},
                      base.get(dataset, 80) + shift + rng.normal(0, 0.3), seconds=float(rng.uniform(20, 30)) * 3600)
            for k in range(runs):
                b.add(f"random-{space_of[method]}-{dataset}",
                      {"role": Role.RANDOM.value, "method": "random", "dataset": dataset, "space": space_of[method],
                       "space_args": {}, "arch_index": k, "arch_seed": 1, "genotype": _genotype(rng),
                       "protocol": _protocol(epochs=epochs)},
                      base.get(dataset, 80) + rng.normal(0, 0.4), seconds=float(rng.uniform(20, 30)) * 3600)
    if studies:
        # Labelled like the ablation YAMLs (experiments/ablations/*.yml): study + variant on every trial.
        dataset = datasets[0]
        archs = [(k, _genotype(rng), rng.normal()) for k in range(8)]

        def study(name: str, variant: str, protocol: dict[str, Any], gain: float,
                  space_args: dict[str, Any] | None = None) -> None:
            for k, g, q in archs:
                b.add(f"ablation-{name}",
                      {"role": Role.RANDOM.value, "method": "random", "dataset": dataset, "space": "darts",
                       "space_args": space_args or {}, "arch_index": k, "arch_seed": 7, "genotype": g,
                       "protocol": protocol, "study": name, "variant": variant},
                      92 + gain + 0.5 * q + rng.normal(0, 0.3), seconds=3600.0)

        for gain, name in ((0.0, "base"), (1.5, "cutout"), (3.0, "all")):
            study("tricks", name, _protocol(name, epochs=epochs), gain)
        for seed_ in (0, 1):
            study("seeds", f"seed{seed_}", _protocol(epochs=epochs, seed=seed_), 2.0)
        for layers in (8, 20):
            study("depth", f"cells{layers}", _protocol(epochs=epochs, layers=layers), 0.1 * layers)
        for layers in (4, 8, 20):
            study("depth_sweep", f"cells{layers}", _protocol(epochs=epochs, layers=layers), 0.1 * layers)
        for op_set, gain in (("darts", 2.0), ("poor", 1.8)):
            study("operations", op_set, _protocol(epochs=epochs), gain, {"op_set": op_set})
    first = next(iter(b.experiments))
    for i in range(failed):
        b.add(first, {"role": Role.RANDOM.value, "method": "random", "dataset": datasets[0], "space": "darts",
                      "space_args": {}, "arch_index": 1000 + i, "arch_seed": 1, "genotype": _genotype(rng),
                      "protocol": _protocol(epochs=epochs)}, 0.0, seconds=0.0, status="FAILED")
    root = Path(root)
    return [write_trial_db(root / name, trials, experiment_id=name, experiment_name=name)
            for name, trials in b.experiments.items()]


def make_large_db(path: str | Path, *, trials: int = 10_000, epochs: int = 600, seed: int = 0) -> Path:
    """One experiment of ``trials`` random-baseline trials with ``epochs``-long curves (speed benchmark)."""
    rng = np.random.default_rng(seed)
    protocol = _protocol(epochs=epochs)
    fake = []
    finals = rng.normal(94, 0.5, trials)
    for i in range(trials):
        curve = np.round(10 + (finals[i] - 10) * (1 - np.exp(-4.0 * np.arange(1, epochs + 1) / epochs)), 3)
        curve[-1] = round(float(finals[i]), 3)
        params = {"role": Role.RANDOM.value, "method": "random", "dataset": "cifar10", "space": "darts",
                  "space_args": {}, "arch_index": i, "arch_seed": 0, "genotype": f"g{i}", "protocol": protocol}
        final = {"default": float(curve[-1]), "best_acc": float(curve.max()), "best_epoch": int(curve.argmax()) + 1,
                 "epochs": epochs, "params": 3.0, "flops": 500.0, "train_seconds": 36000.0, "device": "synthetic",
                 "code_version": "synthetic", **{k: v for k, v in params.items() if k != "protocol"},
                 "train_seed": 0, "protocol_name": "darts", "protocol": json.dumps(protocol), "space_args": "{}"}
        fake.append(FakeTrial(f"L{i:06d}", params, final, curve.tolist(), parameter_id=i,
                              start_ms=1_700_000_000_000 + i, epoch_seconds=60.0))
    return write_trial_db(path, fake, experiment_id="large", experiment_name="large")
