"""Shared fixtures: synthetic data, the real-data location, and a runner for real nnictl experiments."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR10_JPEG = SHARED_DATA / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
# With NNB_REQUIRE_DATA=1 (CI, .ci/run) a test that skips because shared data is missing fails instead:
# a CI machine without ../shared/data would otherwise pass while running none of the real-data tests.
REQUIRE_DATA_ENV = "NNB_REQUIRE_DATA"
# Per-test limit of end-to-end tests (marked slow), above pyproject's 900 s for the others: one nnictl run
# may wait 600 s for DONE after 120 s to create and before 120 s to stop, and some tests run two; the
# runner's own timeout fires first and prints the trial logs, this one catches a hang anywhere else.
E2E_TIMEOUT_S = 1500


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every slow (end-to-end) test its timeout, unless it sets its own with ``@pytest.mark.timeout``,
    and run the slow tests first (in file order): pytest-xdist's workers then start the minutes-long nnictl
    experiments at once and fill the rest of the run with second-long unit tests, instead of ending on one
    long test while the other workers idle."""
    for item in items:
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_S))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order within each


def _missing_data(report: pytest.TestReport) -> str | None:
    """The skip reason of a test skipped because data under the shared data folder is missing, else None.

    Tests say which file or folder they miss in the reason (``skipif(not X.exists(), reason=f"... {X}")``),
    so a reason naming a path under SHARED_DATA is a missing-data skip; other skips (no chromium, no sshd,
    an optional package) stay skips.
    """
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason if str(SHARED_DATA) in reason else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Under NNB_REQUIRE_DATA=1, a skip for missing shared data becomes a failure that says what to do."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get(REQUIRE_DATA_ENV) == "1" and not hasattr(report, "wasxfail"):
        reason = _missing_data(report)
        if reason is not None:
            report.outcome = "failed"
            report.longrepr = (f"{REQUIRE_DATA_ENV}=1 but this test's data is missing ({reason}): put the shared "
                               f"data at {SHARED_DATA} (see its README), or unset {REQUIRE_DATA_ENV} to skip")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Every test computes with one torch thread.

    Tests run hundreds of tiny ops per step: on a shared 2-core machine, 2 OpenMP threads wait on each
    other at every op (seen: 40 s steps instead of 0.4 s); one thread is also what a busy CI box can give.
    Trials that nnictl starts are other processes and set their own (``OMP_NUM_THREADS=1`` in
    ``trial_command``).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding a small learnable CIFAR10-shaped ImageFolder tree (real loaders read it)."""
    from nni_nas_bench.data import write_synthetic_image_folder

    root = tmp_path_factory.mktemp("data")
    write_synthetic_image_folder(root, "CIFAR10", num_classes=10, train_per_class=20, test_per_class=10)
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session, so the CIFAR-10 archive is decoded once."""
    return tmp_path_factory.mktemp("cache")


# NNI keeps one registry of experiments per user (~/nni-experiments/.experiment), rewritten whole by each
# `nnictl create`/`resume`/`stop`: two at once (pytest-xdist workers, or threads of one test) can lose an
# entry, and `nnictl stop/resume <id>` then finds nothing. Every nnictl call of the tests holds this
# cross-process lock (filelock, which NNI itself depends on).
NNICTL_LOCK = Path(tempfile.gettempdir()) / "nni-nas-bench-tests-nnictl.lock"


def nnictl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``nnictl ARGS`` (from the repository root) while no other test process runs nnictl."""
    from filelock import FileLock

    with FileLock(str(NNICTL_LOCK)):
        return subprocess.run([sys.executable, "-m", "nni.tools.nnictl.nnictl", *args], capture_output=True,
                              text=True, timeout=timeout, cwd=REPO)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for an NNI manager, sshd, ...)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/check-status", timeout=5) as r:
        return json.load(r)["status"]


def stop_experiment(port: int) -> None:
    """Stop the experiment whose manager serves ``port``; return once its REST API no longer answers.

    Through NNI's REST API (``DELETE /experiment``, what ``nni.experiment.Experiment.stop`` sends), not
    ``nnictl stop <id>``, which finds the manager through NNI's experiment registry, costs a Python start
    and then waits ~8 s for the manager's process to exit. Both start the same shutdown; closing the REST
    server is its first step, and the manager then ends its dispatcher and trials and closes the DB by itself
    within seconds.
    """
    from nni.experiment import rest

    try:
        rest.delete(port, "/experiment")
    except Exception:  # already shutting down: the wait below tells
        pass
    if not _wait_closed(port, 60):
        raise RuntimeError(f"the NNI manager on port {port} still answers 60 s after it was asked to stop")


# Experiments that reached DONE are stopped in the background while the test reads their DB;
# `stopped_experiments` (session scope) waits for every stop at the end and fails on a manager that stays.
_STOPPING: list[Future] = []
_STOPPER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="nnictl-stop")


@pytest.fixture(scope="session", autouse=True)
def stopped_experiments() -> Iterator[None]:
    """At the end of the session, every experiment that :func:`run_nnictl` started has stopped."""
    yield
    errors = []
    for future in _STOPPING:
        try:
            future.result(timeout=120)
        except Exception as exc:  # a manager left running would keep 1 GB and a port after the tests
            errors.append(str(exc))
    _STOPPER.shutdown()
    assert not errors, errors


def _wait_closed(port: int, seconds: float) -> bool:
    """Whether the REST API on ``port`` stops answering within ``seconds``."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            _status(port)
        except OSError:
            return True
        time.sleep(0.5)
    return False


def run_nnictl(config: dict[str, Any], workdir: Path, timeout: float = 600) -> Path:
    """Run ``nnictl create`` on ``config``, wait until the experiment is DONE, stop it; return its folder.

    The experiment folder (with ``db/nni.sqlite``) lives under ``workdir``; on a timeout or an
    experiment error the trial logs are printed to make CI failures readable.
    """
    config = {**config, "experimentWorkingDirectory": str(workdir / "nni-experiments")}
    path = workdir / "experiment.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    out = nnictl("create", "--config", str(path), "--port", str(port))
    assert out.returncode == 0, out.stdout + out.stderr
    experiments = [p for p in (workdir / "nni-experiments").iterdir() if p.is_dir() and not p.name.startswith("_")]
    assert len(experiments) == 1, experiments
    experiment = experiments[0]
    status, deadline = "?", time.time() + timeout
    try:
        while time.time() < deadline:
            status = _status(port)
            if status in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(0.5)
    except BaseException:
        stop_experiment(port)
        raise
    if status != "DONE":
        stop_experiment(port)  # the logs are complete once the manager is gone
        for log in sorted(experiment.rglob("*.log")) + sorted(experiment.rglob("trial.stderr")):
            print(f"==== {log}\n{log.read_text()[-3000:]}")
        pytest.fail(f"experiment {experiment.name} ended as {status} (see logs above)")
    # DONE: every trial's end and metrics are in the DB (NNI writes each before it reports DONE), so the test
    # reads it while the manager shuts down.
    _STOPPING.append(_STOPPER.submit(stop_experiment, port))
    return experiment


@pytest.fixture
def nnictl_runner() -> Any:
    """The :func:`run_nnictl` function, for tests that launch real NNI experiments."""
    return run_nnictl


def trial_command(data_root: Path, cache: Path, checkpoints: Path) -> str:
    """The trial command of test experiments: the real entry point, test folders for data and cache.

    One thread per trial: two concurrent trials on two cores would otherwise oversubscribe them.
    """
    return (f"OMP_NUM_THREADS=1 NNB_CACHE_DIR={cache} {sys.executable} -m nni_nas_bench.trial --data-root {data_root} "
            f"--checkpoint-dir {checkpoints} --device cpu")


# The random baseline at CPU size: what tests/test_e2e_random_baseline.py and tests/test_analysis_nnictl.py read.
RANDOM_BASELINE_TINY = {"preset": "quick", "epochs": 2, "channels": 4, "layers": 3, "batch_size": 50, "subset": None,
                        "eval_batch_size": 100, "seed": 1}
# lr 1e30 without gradient clipping: the first epoch's loss is NaN, the trainer raises, the trial exits 3.
DIVERGING = {**RANDOM_BASELINE_TINY, "lr": 1.0e30, "grad_clip": 0.0}


@pytest.fixture(scope="session")
def random_baseline_experiments(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path,
                                cache_dir: Path) -> dict[str, Path]:
    """Two real random-baseline experiments, run side by side once per session for every test that reads one:
    ``ok`` (3 architectures of seed 5 that train and succeed, 2 at a time) and ``failed`` (1 architecture whose
    protocol makes the loss NaN, so its trial exits 3 and NNI records it FAILED)."""
    jobs = {"ok": (RANDOM_BASELINE_TINY, 3, 2), "failed": (DIVERGING, 1, 1)}
    configs = {}
    for name, (protocol, trials, concurrency) in jobs.items():
        workdir = tmp_path_factory.mktemp(f"nnictl-{name}")
        configs[name] = (local_experiment(
            f"random-baseline-{name}", "RandomBaselineTuner",
            {"dataset": "cifar10", "num_archs": trials, "seed": 5, "protocol": protocol}, workdir=workdir,
            command=trial_command(synthetic_root, cache_dir, workdir / "checkpoints"), concurrency=concurrency,
            max_trials=trials), workdir)
    with ThreadPoolExecutor(len(configs)) as pool:
        futures = {name: pool.submit(run_nnictl, config, workdir, 600) for name, (config, workdir) in configs.items()}
        return {name: future.result() for name, future in futures.items()}


def local_experiment(name: str, tuner: str, class_args: dict[str, Any], *, workdir: Path, command: str,
                     concurrency: int = 2, max_trials: int = 3) -> dict[str, Any]:
    """The config of an end-to-end test experiment: one of the suite's tuners (``tuner``, a class name in
    ``nni_nas_bench.tuners``) with ``class_args`` on NNI's local training service, code from ``workdir``.

    The tests differ only in these arguments; ``concurrency`` and ``max_trials`` are usually what a test
    is about (which trial the tuner has to hold back), so the callers say why they chose them.
    """
    return {
        "experimentName": name,
        "searchSpace": {},  # unused: the space is the tuner's; NNI requires the key
        "trialCommand": command,
        "trialCodeDirectory": str(workdir),
        "trialConcurrency": concurrency,
        "maxTrialNumber": max_trials,
        "tuner": {"className": f"nni_nas_bench.tuners.{tuner}", "codeDirectory": str(workdir),
                  "classArgs": class_args},
        "trainingService": {"platform": "local"},
    }


os.environ.setdefault("OMP_NUM_THREADS", "2")
