"""What one NNI trial runs: build the architecture it is given, train it, report.

    python -m nni_nas_bench.trial --data-root DIR                   # inside an NNI experiment
    python -m nni_nas_bench.trial --data-root DIR --params P.json   # standalone (tests, debugging)

Parameters with ``role: search`` run a NAS method's search instead (:mod:`nni_nas_bench.search_trial`).

The parameters (from the tuner, or a JSON file/string) name the dataset, the space and its settings,
the genotype in DARTS notation, the full training protocol, and who the trial is (role, method,
architecture index and seed). Paths are never parameters: the data root, cache and checkpoint folders
are settings of the machine that runs the trial (flags or ``NNB_*`` environment variables), so the
same experiment runs on machines whose folders differ.

Every final metric dict repeats the trial's identity (role, method, genotype, seeds, protocol, code
version): NNI 3.0 can record another trial's parameters for a trial when several run at once
(upstream #5726), and the metrics are what the analysis trusts.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, Callable

from nni_nas_bench.contract import Role, identity, parameters_line, with_arch_id
from nni_nas_bench.errors import ConfigError, NasBenchError, OneLineArgumentParser, TrialFailedError
from nni_nas_bench.provenance import code_version

REQUIRED = ("dataset", "space", "genotype", "protocol")


def run_trial(params: dict[str, Any], *, data_root: str | Path, device: str = "auto",
              checkpoint_root: str | Path | None = None, experiment_id: str | None = None,
              download: bool = False, report_epoch: Callable[[dict[str, Any]], None] | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the architecture of ``params`` and return its final metrics (identity included)."""
    # torch (through these) only here and in the search branch: a tabular trial (a table lookup) must not
    # pay its import.
    from nni_nas_bench.data import load_split, make_loaders
    from nni_nas_bench.training.checkpoint import CheckpointStore, checkpoint_key
    from nni_nas_bench.training.trainer import resolve_device, train
    from nni_nas_bench.trial_network import TrialNetwork

    missing = [k for k in REQUIRED if k not in params]
    if missing:
        raise ConfigError(f"trial parameters miss {missing}; got keys {sorted(params)}")
    network = TrialNetwork.of(params)
    protocol, info, space, genotype = network.protocol, network.info, network.space, network.genotype
    # Spaces with a hardware model (Single-Path NAS's) predict the latency; computed before training, so a
    # missing latency table fails the trial at once.
    hardware = {"latency_ms": space.latency_ms(genotype)} if hasattr(space, "latency_ms") else {}
    device_ = resolve_device(device)
    log(f"trial: {params.get('role', '?')} {params.get('method', '?')} on {info.name}, protocol "
        f"{protocol.name}, seed {protocol.seed}, device {device_}\n  {genotype}")
    # Where this machine's code and data are: on a remote worker both differ from the submitting machine.
    log(f"  code {Path(__file__).resolve().parent}, data root {Path(data_root).resolve()}")

    # A multi-trial search's candidate is judged on the search split's validation half, never on the test set.
    phase = "search" if params.get("role") == Role.CANDIDATE else "final"
    split = load_split(info.name, data_root, phase, seed=protocol.seed, subset=protocol.subset,
                       download=download)
    train_loader, eval_loader = make_loaders(
        split, batch_size=protocol.batch_size, device=device_, cutout=protocol.cutout,
        autoaugment=protocol.autoaugment, seed=protocol.seed, eval_batch_size=protocol.eval_batch_size,
    )
    model = network.build(auxiliary=protocol.auxiliary_weight > 0)  # weights and DropPath follow the seed
    store = None
    if checkpoint_root is not None:
        store = CheckpointStore(checkpoint_root, checkpoint_key(params, experiment_id))
    metrics = train(model, train_loader, eval_loader, protocol, image_size=info.image_size, device=device_,
                    report=report_epoch, checkpoint=store, log=log)
    return with_arch_id({
        **metrics, **identity(params), **hardware,
        "genotype": genotype.to_text(),
        "train_seed": protocol.seed,
        "protocol_name": protocol.name,
        # JSON text, not a nested dict: NNI's web UI shows flat metric values only.
        "protocol": json.dumps(protocol.to_dict(), sort_keys=True),
        "space_args": json.dumps(space.settings, sort_keys=True),
        "code_version": code_version(),
    })


def missing_data_root_message(data_root: Path, from_flag: bool) -> str:
    """Why a data root is missing, said in the first seconds of the trial and naming the machine.

    On a remote worker the data root is that machine's setting, so the message names the host and where
    the path came from; a YAML copied from the submitting machine is the usual cause.
    """
    from nni_nas_bench.data import DATA_ROOT_ENV

    source = ("--data-root in the trial command" if from_flag
              else f"${DATA_ROOT_ENV}" if os.environ.get(DATA_ROOT_ENV) else "the default (no --data-root, no "
              f"${DATA_ROOT_ENV})")
    state = "is a file, not a folder" if Path(data_root).exists() else "does not exist"
    return (f"data root {data_root} (from {source}) {state} on this machine ({socket.gethostname()}): "
            f"set {DATA_ROOT_ENV} in the environment of the machine that runs the trials (remote workers: see "
            "experiments/remote/README.md) or pass an existing folder as --data-root")


def out_of_memory_message(exc: BaseException, params: dict[str, Any]) -> str:
    """One line for a CUDA out-of-memory error: what ran out, at which size, and the three fixes.

    OOM is the failure GPU packing causes (several trials per GPU, or a GPU shared with other jobs), so
    the message names the NNI settings that control packing beside the protocol's batch size.
    """
    protocol = params.get("protocol") if isinstance(params.get("protocol"), dict) else {}
    size = ", ".join(f"{k} {protocol[k]}" for k in ("batch_size", "channels", "layers") if k in protocol)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"out of GPU memory ({params.get('role', 'trial')}{', ' + size if size else ''}): {first}; "
            "lower protocol.batch_size, pack fewer trials per GPU (maxTrialNumberPerGpu, trialConcurrency), "
            "or set useActiveGpu: false so trials do not share a GPU with other jobs")


def _is_out_of_memory(exc: BaseException) -> bool:
    """A torch out-of-memory error; without importing torch (a trial that never imported it has none)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.OutOfMemoryError)


def _load_params(text: str) -> dict[str, Any]:
    """``--params``: a JSON file's path, or JSON text (anything that is no existing file is read as JSON,
    so ``'[1,2]'`` is a wrong JSON value, not a missing file)."""
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # a name too long to be a path: JSON text
        is_file = False
    try:
        params = json.loads(path.read_text() if is_file else text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--params file {text} is unreadable: {exc}") from None
    except json.JSONDecodeError as exc:
        where = f"file {text}" if is_file else "text (no such file either)"
        raise ConfigError(f"--params must be a JSON object or a JSON file; the {where} is not JSON: {exc}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"--params must be a JSON object ({{...}}), got a JSON {type(params).__name__}")
    return params


def argument_parser() -> OneLineArgumentParser:
    """The trial's command line (``nas-bench check`` parses a YAML's trialCommand with it too)."""
    parser = OneLineArgumentParser(prog="python -m nni_nas_bench.trial", description=__doc__.split("\n\n")[0],
                                   error_name="nni-nas-bench")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder holding the datasets (default: $NNB_DATA_ROOT or ~/.cache/nni_nas_bench/data)")
    parser.add_argument("--params", default=None,
                        help="JSON object or file with the trial parameters (default: ask NNI)")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="where per-epoch checkpoints live (default: $NNB_CHECKPOINT_DIR or ~/.cache/...)")
    parser.add_argument("--download", action="store_true", help="let torchvision download missing CIFAR data")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (non-zero makes NNI mark the trial FAILED)."""
    from nni_nas_bench.known_warnings import silence_known_warnings

    silence_known_warnings()
    args = argument_parser().parse_args(argv)

    in_nni = "NNI_PLATFORM" in os.environ
    params: dict[str, Any] = {}
    try:
        if args.params is not None:
            params = _load_params(args.params)
        elif in_nni:
            import nni

            params = nni.get_next_parameter()
            if not params:
                raise ConfigError("NNI gave this trial no parameters (the tuner has no more architectures)")
        else:
            raise ConfigError("not running inside NNI: pass --params JSON (see --help)")
        # First line of the trial log: what this trial really runs (the analysis reads it for failed trials).
        print(parameters_line(params), flush=True)
        role = params.get("role")
        if role is not None and role not in {r.value for r in Role}:
            raise ConfigError(f"trial role {role!r} is not one of {', '.join(r.value for r in Role)}")
        report_epoch = report_final = None
        if in_nni:
            import nni

            report_epoch, report_final = nni.report_intermediate_result, nni.report_final_result
        if params.get("search_failed"):
            # A benchmark tuner's stand-in for the final training of a search that failed: it ends FAILED
            # at once, so the experiment completes and the DB shows which search seed has no result.
            raise TrialFailedError(f"nothing to train: {params['search_failed']}")
        from nni_nas_bench.data.lookup import default_data_root

        data_root = args.data_root or default_data_root()
        if not args.download and not Path(data_root).is_dir():
            raise ConfigError(missing_data_root_message(data_root, from_flag=args.data_root is not None))
        if args.checkpoint_dir is not None and args.checkpoint_dir.exists() and not args.checkpoint_dir.is_dir():
            raise ConfigError(f"--checkpoint-dir {args.checkpoint_dir} is a file: pass a folder (it is created "
                              "if missing)")
        if params.get("zero_cost") is not None and params.get("role") == Role.CANDIDATE:
            # A training-free search's candidate: scored by a proxy on one batch, also in tabular mode.
            from nni_nas_bench.zero_cost import score_candidate

            metrics = score_candidate(params, data_root=data_root, device=args.device, download=args.download)
        elif params.get("tabular") is not None and params.get("role") != Role.SEARCH:
            # NAS-Bench-201 tabular mode: look the cell up in the table instead of training it.
            from nni_nas_bench.tabular.trial import run_tabular_trial

            metrics = run_tabular_trial(params, data_root=data_root)
        elif params.get("role") == Role.SEARCH:
            from nni_nas_bench.search_trial import run_search
            from nni_nas_bench.training.checkpoint import checkpoint_key, default_checkpoint_root

            # A restarted search trial has a new id and output folder: its checkpoints are keyed by what it
            # searches (experiment + parameters), like final trainings'.
            search_checkpoints = Path(args.checkpoint_dir or default_checkpoint_root()) / checkpoint_key(
                params, os.environ.get("NNI_EXP_ID"))
            metrics = run_search(params, data_root=data_root, device=args.device,
                                 output_dir=os.environ.get("NNI_OUTPUT_DIR"), report_epoch=report_epoch,
                                 checkpoint_dir=search_checkpoints)
        else:
            from nni_nas_bench.training.checkpoint import default_checkpoint_root

            metrics = run_trial(
                params, data_root=data_root, device=args.device,
                checkpoint_root=args.checkpoint_dir or default_checkpoint_root(),
                experiment_id=os.environ.get("NNI_EXP_ID"), download=args.download, report_epoch=report_epoch,
            )
    except TrialFailedError as exc:
        print(f"nni-nas-bench: trial failed: {exc}", file=sys.stderr, flush=True)
        return 3
    except NasBenchError as exc:
        print(f"nni-nas-bench: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:
        if not _is_out_of_memory(exc):
            raise
        print(f"nni-nas-bench: trial failed: {out_of_memory_message(exc, params)}", file=sys.stderr, flush=True)
        return 3
    print("final: " + json.dumps(metrics, sort_keys=True), flush=True)
    if report_final is not None:
        report_final(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
