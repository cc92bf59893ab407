"""The ``nas-bench`` command.

    nas-bench check experiments/cifar10/random.yml [...]   # NNI's validation + the tuner's settings
    nas-bench report ~/nni-experiments --out report/        # RI, baseline, figures, provenance from trial DBs
"""

from __future__ import annotations

import argparse
import sys

from nni_nas_bench.errors import NasBenchError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nas-bench`` console script."""
    parser = argparse.ArgumentParser(prog="nas-bench", description="nni-nas-bench command line")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate experiment YAMLs before `nnictl create`")
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
    report.add_argument("--no-progress", action="store_true", help="never print read progress")
    args = parser.parse_args(argv)

    if args.command == "report":
        from analysis.report import report_command

        try:
            files = report_command(args.experiments, args.out, args.metric, published=args.published,
                                   experiments_dir=args.experiments_dir, n_boot=args.bootstrap, seed=args.seed,
                                   progress=False if args.no_progress else None)
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
                print(f"ok   {path} ({type(tuner).__name__})")
        return 1 if failed else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
