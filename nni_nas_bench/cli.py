"""The ``nas-bench`` command.

    nas-bench check experiments/cifar10/random.yml [...]   # NNI's validation + the tuner's settings
    nas-bench report ~/nni-experiments --out report/        # RI, baseline, figures, provenance from trial DBs
    nas-bench tabular --out tabular/ --data-root ../shared/data  # multi-trial strategies on NAS-Bench-201
"""

from __future__ import annotations

import argparse
import sys

from nni_nas_bench.errors import NasBenchError, OneLineArgumentParser


def _json_arg(text: str) -> dict:
    """A JSON object given on the command line (one clear error otherwise)."""
    import json

    from nni_nas_bench.errors import ConfigError

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--settings must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--settings must be a JSON object, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nas-bench`` console script."""
    from nni_nas_bench.known_warnings import silence_known_warnings

    silence_known_warnings()
    parser = OneLineArgumentParser(prog="nas-bench", description="nni-nas-bench command line")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check", help="validate experiment YAMLs before `nnictl create`",
        description="NNI's validation, then the tuner's: its classArgs, maxTrialNumber against its trial count, "
                    "GPU settings NNI 3.0 can never schedule. `nnictl create` cannot reject a bad tuner setting "
                    "(NNI builds the tuner after create returned; nni_nas_bench/tuners/validators.py): the "
                    "experiment turns ERROR seconds later, with the reason at the end of its dispatcher log.")
    check.add_argument("configs", nargs="+")
    report = sub.add_parser(
        "report", help="write report.md/.html, figures and tables (CSV, LaTeX) from NNI trial databases",
        description="Experiments: an experiment folder (holding db/nni.sqlite), an nni.sqlite file, an "
                    "experiment id (under --experiments-dir) or a folder of experiments.")
    report.add_argument("experiments", nargs="*", help="experiments to read (see above)")
    report.add_argument("--out", required=True, help="folder to write the report into")
    report.add_argument("--metric", choices=["final", "best"], default="final",
                        help="accuracy: 'final' = last epoch (default), 'best' = best epoch")
    report.add_argument("--published", action="append", default=[], metavar="DATASET=CSV",
                        help="also include published results in the original benchmark's CSV layout, "
                             "read as the --metric accuracy")
    report.add_argument("--experiments-dir", default=None,
                        help="where experiment ids are looked up (default: $NNI_EXPERIMENTS_DIR or ~/nni-experiments)")
    report.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples for the RI interval")
    report.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    report.add_argument("--interval", choices=["BCa", "percentile"], default="BCa",
                        help="bootstrap interval of RI (default: BCa, scipy.stats.bootstrap)")
    report.add_argument("--no-progress", action="store_true", help="never print read progress")
    tabular = sub.add_parser(
        "tabular", help="every multi-trial strategy on NAS-Bench-201's tables, R seeded runs each",
        description="Runs every multi-trial strategy (or --methods) R times per dataset against NAS-Bench-201's "
                    "tabulated accuracies (no training: about a minute on 2 CPU cores) and writes, per method and "
                    "dataset, the picked cells' test accuracy, RI against K random cells and anytime curves (CSV, "
                    "figures, settings.json). Same seeds, same numbers.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tabular.add_argument("--out", required=True, help="folder for the CSV tables, figures and settings.json")
    tabular.add_argument("--methods", nargs="*", default=None, help="strategies (None: every multi-trial one)")
    tabular.add_argument("--datasets", nargs="*", default=["cifar10-valid", "cifar100", "ImageNet16-120"],
                         help="NB201 datasets to search on")
    tabular.add_argument("--runs", type=int, default=100, help="seeded runs per method and dataset (R)")
    tabular.add_argument("--budget", type=int, default=1000, help="queries per run")
    tabular.add_argument("--metric", choices=["valid", "test"], default="valid", help="the search signal")
    tabular.add_argument("--no-noise", action="store_true", help="search on the seed-mean instead of a seed draw")
    tabular.add_argument("--num-random", type=int, default=100, help="K random cells per dataset for RI")
    tabular.add_argument("--seed", type=int, default=0, help="run r uses seed + r")
    tabular.add_argument("--data-root", default=None,
                         help="folder holding nas-bench-201/ (None: $NNB_DATA_ROOT or ~/.cache/...)")
    tabular.add_argument("--workers", type=int, default=None, help="worker processes (None: CPU count)")
    tabular.add_argument("--settings", default="{}", metavar="JSON",
                         help='strategy settings per method, e.g. \'{"weaknas": {"hidden": 64}}\'')
    args = parser.parse_args(argv)

    if args.command == "tabular":
        from nni_nas_bench.tabular.runner import run_tabular, write_outputs

        try:
            result = run_tabular(args.methods, args.datasets, runs=args.runs, budget=args.budget, metric=args.metric,
                                 noise=not args.no_noise, num_random=args.num_random, seed=args.seed,
                                 root=args.data_root, workers=args.workers, settings=_json_arg(args.settings))
            files = write_outputs(result, args.out)
        except NasBenchError as exc:
            print(f"nas-bench tabular: error: {exc}", file=sys.stderr)
            return 1
        print(result.summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        for path in files:
            print(path)
        return 0

    if args.command == "report":
        from analysis.report import report_command

        try:
            files = report_command(args.experiments, args.out, args.metric, published=args.published,
                                   experiments_dir=args.experiments_dir, n_boot=args.bootstrap, seed=args.seed,
                                   progress=False if args.no_progress else None, interval=args.interval)
        except NasBenchError as exc:
            print(f"nas-bench report: error: {exc}", file=sys.stderr)
            return 1
        for path in files:
            print(path)
        return 0

    if args.command == "check":
        from nni_nas_bench.experiment_config import check_experiment

        failed = 0
        for path in args.configs:
            try:
                tuner = check_experiment(path)
            except NasBenchError as exc:
                print(f"FAIL {exc}", file=sys.stderr)
                failed += 1
            else:
                what = type(tuner).__name__ if tuner is not None else "NNI fields only: foreign tuner not checked"
                print(f"ok   {path} ({what})")
        return 1 if failed else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
