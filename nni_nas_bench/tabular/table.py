"""NAS-Bench-201's tables as numpy arrays indexed by NB201's architecture index (its table row).

Files (``<root>/nas-bench-201/``, read where they are, never copied; ``../shared/data/README.md``):

- ``nasbench201_cifar10.csv`` (the ``cifar10-valid`` setting), ``nasbench201_cifar100.csv``,
  ``nasbench201_ImageNet16-120.csv``: train / validation / test accuracy, 200 epochs, mean over seeds;
- ``nasbench201_cifar10_trainval_test.csv``: test accuracy of the ``cifar10`` setting (train+valid 50k);
- ``nasbench201_per_seed_valid.csv``: each seed's validation accuracy (2 or 3 seeds per cell), the cell's
  training seconds and its size in MB (millions of parameters).

What a table holds (:class:`NB201Table`): ``valid`` / ``test`` accuracy per index (``cifar10`` has no
validation column), ``seconds`` (training time of one 200-epoch run), ``params_m``, the per-seed
*deviations* ``seed_dev`` (a seed's validation accuracy minus the mean over that cell's seeds, NaN
padded) and the mapping between NB201 indices and the space's base-5 codes
(:attr:`search_spaces.nb201.NB201Arch.code`). A seeded draw adds one seed's deviation to the tabulated
mean, so a noisy query keeps the table's value as its expectation and has a real seed-to-seed spread.

Two facts of the per-seed file decide the cost model: it records the ``cifar10-valid`` setting (25k
training images) under ``cifar10``, and its CIFAR-100 seconds (50k images) are exactly twice those, cell
by cell. The ``cifar10`` setting trains on 50k images too, so it is charged twice the ``cifar10-valid``
seconds, and it reuses the ``cifar10-valid`` seed deviations (the only CIFAR-10 seeds the file has).

Sources: ``source="csv"`` (default) reads the files above; ``source="nni"`` reads NNI's own converted
NB201 database (``nni.nas.benchmark.nasbench201``, needs ``peewee<4`` and the downloaded DB) and takes
the NB201 index order from the CSV's ``arch str`` column when it is present (else the base-5 code).

Parsed CSV tables are kept as ``.npz`` files in the cache folder (``$NNB_CACHE_DIR``, default
``~/.cache/nni_nas_bench``), keyed by the CSV files' path, size and modification time: a tabular trial
is one table lookup, and parsing 7 MB of CSV with pandas was most of its CPU time (each of an
experiment's hundreds of trials is a new process). A changed CSV gets a new key; an unwritable cache
folder only costs the parse.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nni_nas_bench.errors import ConfigError, DatasetNotFoundError, unknown_name_error
from search_spaces.nb201_arch import NUM_ARCHS, NB201Arch

TABLE_DIR = "nas-bench-201"
ROOT_ENV = "NNB_NB201_ROOT"  # a folder holding the CSV files directly (overrides <data root>/nas-bench-201)
# dataset -> (file, per-seed dataset name, seconds factor vs the per-seed file)
DATASETS: dict[str, tuple[str, str, float]] = {
    "cifar10-valid": ("nasbench201_cifar10.csv", "cifar10", 1.0),
    "cifar10": ("nasbench201_cifar10_trainval_test.csv", "cifar10", 2.0),
    "cifar100": ("nasbench201_cifar100.csv", "cifar100", 1.0),
    "ImageNet16-120": ("nasbench201_ImageNet16-120.csv", "imagenet", 1.0),
}
SEED_FILE = "nasbench201_per_seed_valid.csv"
METRICS = ("valid", "test")
_NNI_DATASETS = {"cifar10-valid": "cifar10-valid", "cifar10": "cifar10", "cifar100": "cifar100",
                 "ImageNet16-120": "imagenet16-120"}
_CACHE: dict[tuple[str, str, str], NB201Table] = {}
_LOCK = threading.Lock()


def dataset_name(name: str) -> str:
    """The canonical dataset name (case-insensitive; ``imagenet16-120`` → ``ImageNet16-120``)."""
    for known in DATASETS:
        if known.lower() == str(name).lower():
            return known
    raise unknown_name_error("NAS-Bench-201 dataset", name, list(DATASETS))


def default_root() -> Path:
    """``$NNB_NB201_ROOT``, else ``<data root>/nas-bench-201`` (the trial's data root: ``$NNB_DATA_ROOT`` ...)."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env)
    from nni_nas_bench.data.lookup import default_data_root

    return default_data_root() / TABLE_DIR


def resolve_root(root: str | Path | None) -> Path:
    """A folder holding the tables: ``root`` itself, or its ``nas-bench-201`` subfolder (a data root)."""
    if root is None:
        return default_root()
    path = Path(root).expanduser()
    return path / TABLE_DIR if (path / TABLE_DIR).is_dir() else path


@dataclass
class NB201Table:
    """One dataset's NB201 table; arrays are indexed by NB201 index (0..15624)."""

    dataset: str
    arch_str: np.ndarray                 # object array of NB201 strings
    test: np.ndarray
    valid: np.ndarray | None             # None for 'cifar10' (no validation column)
    seconds: np.ndarray
    params_m: np.ndarray
    seed_dev: np.ndarray                 # (n, max seeds) deviation of each seed from its cell's mean, NaN padded
    seed_count: np.ndarray               # seeds per cell
    source: str = "csv"
    # The base-5 code of each index; computed from ``arch_str`` unless given (the ``.npz`` cache keeps it:
    # parsing 15,625 cell strings was most of a cached load).
    index_to_code: np.ndarray | None = None
    code_to_index: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        codes = self.index_to_code
        if codes is None:
            codes = np.array([NB201Arch.from_text(s).code for s in self.arch_str], dtype=np.int64)
        if len(codes) != NUM_ARCHS or len(np.unique(codes)) != NUM_ARCHS:
            raise ConfigError(f"the {self.dataset} table has {len(codes)} rows / {len(np.unique(codes))} distinct "
                              f"cells; NAS-Bench-201 has {NUM_ARCHS}: the file is incomplete or not NB201's")
        self.index_to_code = codes
        self.code_to_index = np.empty(NUM_ARCHS, dtype=np.int64)
        self.code_to_index[codes] = np.arange(NUM_ARCHS)

    def __len__(self) -> int:
        return len(self.arch_str)

    def metric(self, name: str) -> np.ndarray:
        """Accuracy per index of metric ``valid`` or ``test``; a setting without it gets one clear error."""
        if name not in METRICS:
            raise unknown_name_error("NB201 metric", name, METRICS)
        values = self.valid if name == "valid" else self.test
        if values is None:
            raise ConfigError(f"NB201 {self.dataset!r} has no {name} accuracy (its file only has test accuracy); "
                              "search on 'cifar10-valid' with metric 'valid' and report the test accuracy")
        return values

    def index_of(self, arch: NB201Arch | str) -> int:
        """NB201's index of a cell (an :class:`NB201Arch` or its string)."""
        arch = arch if isinstance(arch, NB201Arch) else NB201Arch.from_text(arch)
        return int(self.code_to_index[arch.code])

    def arch(self, index: int) -> NB201Arch:
        """The cell at NB201 index ``index``."""
        return NB201Arch.from_code(int(self.index_to_code[index]))


def load_table(dataset: str = "cifar10-valid", root: str | Path | None = None, source: str = "csv") -> NB201Table:
    """Load (once per process) the table of ``dataset`` from ``root`` (a table folder or a data root).

    A missing file raises :class:`DatasetNotFoundError` naming the path and the fix.
    """
    dataset = dataset_name(dataset)
    if source not in ("csv", "nni"):
        raise unknown_name_error("NB201 table source", source, ["csv", "nni"])
    folder = resolve_root(root)
    key = (str(folder.resolve()), dataset, source)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load_csv(folder, dataset) if source == "csv" else _load_nni(folder, dataset)
        return _CACHE[key]


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(
            f"NAS-Bench-201 table not found: {path}. Put the NB201 CSV files (see ../shared/data/README.md) in "
            f"{path.parent}, or point to their folder with --data-root / ${ROOT_ENV} (a data root holding "
            f"{TABLE_DIR}/ works too)"
        )
    return path


def _read_seeds(folder: Path, dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-seed deviations, seed counts, seconds and parameters (millions) of one dataset, by NB201 index."""
    import pandas as pd

    _, seed_name, factor = DATASETS[dataset]
    seeds = pd.read_csv(_require(folder / SEED_FILE))
    seeds = seeds[seeds["dataset"] == seed_name]
    if seeds["file id"].nunique() != NUM_ARCHS:
        raise ConfigError(f"{folder / SEED_FILE} has {seeds['file id'].nunique()} {seed_name} cells, "
                          f"expected {NUM_ARCHS}")
    wide = seeds.pivot(index="file id", columns="seed index", values="validation accuracy").sort_index()
    acc = wide.to_numpy(dtype=float)
    dev = acc - np.nanmean(acc, axis=1, keepdims=True)
    per_cell = seeds.groupby("file id").first().sort_index()
    return (dev, (~np.isnan(acc)).sum(axis=1), factor * per_cell["train seconds"].to_numpy(float),
            per_cell["size mb"].to_numpy(float))


_NPZ_FORMAT = 2  # bump when the cached arrays change meaning
_NPZ_FIELDS = ("arch_str", "test", "valid", "seconds", "params_m", "seed_dev", "seed_count", "index_to_code")


def _load_csv(folder: Path, dataset: str) -> NB201Table:
    """The CSV table of ``dataset``: from its ``.npz`` cache when the CSVs are unchanged, else parsed (and cached)."""
    file, _, _ = DATASETS[dataset]
    sources = [_require(folder / file), _require(folder / SEED_FILE)]
    cache = _npz_path(dataset, sources)
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as arrays:
                values = {name: arrays[name] for name in _NPZ_FIELDS}
            valid = values["valid"] if values["valid"].size else None
            return NB201Table(dataset, values["arch_str"].astype(object), values["test"], valid, values["seconds"],
                              values["params_m"], values["seed_dev"], values["seed_count"], source="csv",
                              index_to_code=values["index_to_code"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file: parse the CSVs again and rewrite it
    table = _parse_csv(folder, dataset)
    if cache is not None:
        _write_npz(cache, table)
    return table


def _npz_path(dataset: str, sources: list[Path]) -> Path | None:
    """Where the parsed table of ``dataset`` is cached, keyed by its source files (None: no cache folder)."""
    import hashlib

    from nni_nas_bench.data.lookup import default_cache_dir

    key = [str(_NPZ_FORMAT), dataset]
    for path in sources:
        stat = path.stat()
        key += [str(path.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
    digest = hashlib.sha256("\0".join(key).encode()).hexdigest()[:16]
    return default_cache_dir() / "nb201" / f"{dataset}-{digest}.npz"


def _write_npz(path: Path, table: NB201Table) -> None:
    """Write the cache atomically (concurrent trials may race: each writes its own file, the last rename wins);
    a folder that cannot be written is skipped."""
    arrays = {name: getattr(table, name) for name in _NPZ_FIELDS}
    arrays["arch_str"] = np.asarray(table.arch_str, dtype=str)
    arrays["valid"] = np.empty(0) if table.valid is None else table.valid
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def _parse_csv(folder: Path, dataset: str) -> NB201Table:
    import pandas as pd

    file, _, _ = DATASETS[dataset]
    frame = pd.read_csv(_require(folder / file))
    if len(frame) != NUM_ARCHS or not (frame["file id"].to_numpy() == np.arange(len(frame))).all():
        raise ConfigError(f"{folder / file} has {len(frame)} rows (not in index order 0..{NUM_ARCHS - 1}): "
                          "it is not a complete NAS-Bench-201 table")
    dev, count, seconds, params = _read_seeds(folder, dataset)
    valid = frame["validation accuracy"].to_numpy(float) if "validation accuracy" in frame else None
    return NB201Table(dataset, frame["arch str"].to_numpy(object), frame["test accuracy"].to_numpy(float), valid,
                      seconds, params, dev, count, source="csv")


def _load_nni(folder: Path, dataset: str) -> NB201Table:
    """NNI's NB201 database (200-epoch runs, mean over seeds); seeds and per-seed spread from its rows."""
    try:
        from nni.nas.benchmark.nasbench201 import query_nb201_trial_stats
    except Exception as exc:  # nni's package raises NameError, not ImportError, when peewee is missing
        raise ConfigError(f"NNI's NAS-Bench-201 database is not usable here ({type(exc).__name__}: {exc}); "
                          "install peewee<4 and run nni.nas.benchmark.download_benchmark('nasbench201'), "
                          "or use source='csv'") from None
    from search_spaces.nb201_arch import EDGES

    order = None
    csv = folder / DATASETS["cifar10-valid"][0]
    if csv.is_file():
        import pandas as pd

        order = pd.read_csv(csv, usecols=["arch str"])["arch str"].tolist()
    rows: dict[str, list[dict]] = {}
    try:
        for row in query_nb201_trial_stats(None, 200, _NNI_DATASETS[dataset]):
            arch = row["config"]["arch"]
            text = NB201Arch(tuple(arch[f"{i}_{j}"] for j, i in EDGES)).to_text()
            rows.setdefault(text, []).append(row)
    except FileNotFoundError as exc:
        raise DatasetNotFoundError(f"NNI's NAS-Bench-201 database is missing: {exc}") from None
    texts = order or [NB201Arch.from_code(c).to_text() for c in range(NUM_ARCHS)]
    missing = [t for t in texts if t not in rows]
    if missing:
        raise ConfigError(f"NNI's NAS-Bench-201 database lacks {len(missing)} cells of {dataset} (e.g. {missing[0]})")
    width = max(len(r) for r in rows.values())

    def stat(name: str) -> np.ndarray:
        return np.array([np.mean([r[name] for r in rows[t]]) for t in texts])

    valid = np.full((len(texts), width), np.nan)
    for k, t in enumerate(texts):
        valid[k, : len(rows[t])] = [r["valid_acc"] for r in rows[t]]
    dev = valid - np.nanmean(valid, axis=1, keepdims=True)
    return NB201Table(dataset, np.array(texts, dtype=object), stat("test_acc"),
                      None if dataset == "cifar10" else stat("valid_acc"), stat("training_time"), stat("parameters"),
                      dev, (~np.isnan(valid)).sum(axis=1), source="nni")
