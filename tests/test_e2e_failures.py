"""End to end, failures: trials that crash, run out of memory, diverge (NaN) or are SIGKILLed in a real
nnictl experiment end as FAILED with their reason, the experiment goes on, the killed trial re-submitted
(NNI's customized trial, as the web UI's "Customized trial" does) continues from its checkpoint, and a
stopped experiment resumed with ``nnictl resume`` continues its interrupted trial from its checkpoint and
then trains the architectures it had not started, each exactly once (and, beside it, a tabular
MultiTrialTuner experiment resumes its search: tests/test_tuner_resume.py).

While the first experiment runs, the web UI's data is read back through NNI's REST API and the trial list
is screenshotted with headless Chromium.
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
from pathlib import Path

import pytest

from analysis import read_experiments
from nni_nas_bench.contract import arch_id
from tests.conftest import REPO
from tests.nnictl_session import ENDED, Session, create
from tests.webui_screenshot import trial_list_screenshot

pytestmark = pytest.mark.slow

TINY = {"preset": "quick", "epochs": 2, "channels": 4, "layers": 3, "batch_size": 50, "subset": None,
        "eval_batch_size": 100, "seed": 1}
ARTIFACTS = REPO / ".pytest_cache" / "artifacts"


def fault_command(data: Path, cache: Path, work: Path, faults: dict[str, str]) -> str:
    """The real trial entry point behind tests/fault_trial.py (faults strike in epoch 2)."""
    (work / "faults").mkdir(parents=True, exist_ok=True)
    return (f"OMP_NUM_THREADS=1 PYTHONPATH={REPO} NNB_CACHE_DIR={cache} NNB_TEST_FAULT_DIR={work / 'faults'} "
            f"NNB_TEST_FAULTS='{json.dumps(faults, separators=(',', ':'))}' {sys.executable} -m tests.fault_trial "
            f"--data-root {data} --checkpoint-dir {work / 'checkpoints'} --device cpu")


def experiment_config(name: str, command: str, work: Path, class_args: dict, concurrency: int, max_trials: int) -> dict:
    return {
        "experimentName": name, "searchSpace": {}, "trialCommand": command, "trialCodeDirectory": str(work),
        "trialConcurrency": concurrency, "maxTrialNumber": max_trials,
        "tuner": {"className": "nni_nas_bench.tuners.RandomBaselineTuner", "codeDirectory": str(REPO),
                  "classArgs": {"dataset": "cifar10", "protocol": TINY, **class_args}},
        "trainingService": {"platform": "local"},
    }


def trial_stdout(session: Session, trial_id: str) -> str:
    """What the trial printed: NNI's local service moves a trial's prints to trial.log once it imports nni."""
    files = ("trial.stdout", "trial.log")
    return "\n".join(p.read_text() for f in files for p in session.folder.glob(f"environments/*/trials/{trial_id}/{f}"))


VARIANTS = [
    {"name": "nan", "protocol": {"lr": 1.0e30, "grad_clip": 0.0}},
    {"name": "crash"},
    {"name": "kill"},
]


def test_failed_trials_are_recorded_and_a_killed_trial_resumes(synthetic_root: Path, cache_dir: Path,
                                                                tmp_path: Path) -> None:
    command = fault_command(synthetic_root, cache_dir, tmp_path, {"crash": "crash", "kill": "kill"})
    # maxTrialNumber = the tuner's 3 trials: the re-submission below needs the README's `nnictl update trialnum`.
    config = experiment_config("test-failures", command, tmp_path, {"num_archs": 1, "seed": 3, "variants": VARIANTS},
                               concurrency=3, max_trials=3)
    out, session = create(config, tmp_path / "submitter")
    assert out.returncode == 0 and session is not None, out.stdout + out.stderr
    try:
        session.wait("the three trials to end", lambda: len(session.trials()) == 3
                     and all(t["status"] in ENDED for t in session.trials()))
        # Which trial ran what: from the trials' own log lines (NNI's record can swap parameters, #5726).
        ended = read_experiments([session.folder])
        status = dict(zip(ended.variant, ended.status))
        # NNI 3.0 records a trial that died from a signal as USER_CANCELED (exit code null); the analysis
        # tells it from a real cancel (see analysis/trial_db.py).
        assert status == {"nan": "FAILED", "crash": "FAILED", "kill": "USER_CANCELED"}, ended
        recorded = [json.loads(t["hyperParameters"][0])["parameters"] for t in session.trials()]

        # ---- re-submit the killed trial with its own parameters (the web UI's "customized trial"), as the
        # README says: NNI refuses it while every slot of maxTrialNumber is used, so raise it by one first
        killed = next(p for p in recorded if p["variant"] == "kill")
        with pytest.raises(urllib.error.HTTPError):
            session.post("trial-jobs", killed)  # "reach maxTrialNum"
        updated = session.update_trialnum(4)
        assert updated.returncode == 0, updated.stdout + updated.stderr
        session.post("trial-jobs", killed)
        # The experiment was DONE before the update: wait for the 4th trial itself, not for DONE.
        session.wait("the re-submitted trial", lambda: len(session.trials()) == 4
                     and all(t["status"] in ENDED for t in session.trials()) and session.status()["status"] == "DONE")

        # ---- the web UI's data, read back through the REST API of the running experiment
        trials = session.trials()
        assert len(trials) == 4
        for t in trials:
            params = json.loads(t["hyperParameters"][0])["parameters"]
            assert params["role"] == "random" and params["method"] == "random"
            assert params["genotype"].startswith("Genotype(") and params["variant"] in ("nan", "crash", "kill")
        metrics = session.get("metric-data")
        finals = [json.loads(json.loads(m["data"])) for m in metrics if m["type"] == "FINAL"]
        assert len(finals) == 1 and finals[0]["variant"] == "kill" and finals[0]["role"] == "random"
        assert finals[0]["method"] == "random" and finals[0]["genotype"] == killed["genotype"]
        assert 0 <= finals[0]["default"] <= 100 and finals[0]["epochs"] == 2
        curve = [json.loads(json.loads(m["data"])) for m in metrics if m["type"] == "PERIODICAL"]
        assert {c["epoch"] for c in curve} >= {1, 2}
        # The trial list as the README's "Add/Remove columns" step leaves it: role, variant, arch_id beside NNI's.
        assert finals[0]["arch_id"] == arch_id("darts", finals[0]["space_args"], finals[0]["genotype"])
        if not (shutil.which("chromium") or shutil.which("chromium-browser")):
            pytest.skip("chromium not installed (apt-get install chromium; .ci/run does)")
        png = trial_list_screenshot(f"{session.url}/detail", session.id, ARTIFACTS / "webui-trials.png")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, len(png)
    finally:
        session.stop()

    df = read_experiments([session.folder])
    assert len(df) == 4, df[["trial_id", "status", "variant", "error"]]
    rows = {(r.variant, r.status): r for r in df.itertuples()}
    assert "nni-nas-bench: trial failed: training loss became nan" in rows[("nan", "FAILED")].error
    assert "RuntimeError: injected crash in epoch 2" in rows[("crash", "FAILED")].error
    killed_row = rows[("kill", "USER_CANCELED")]
    assert killed_row.failed and "killed" in killed_row.error
    resumed = rows[("kill", "SUCCEEDED")]
    assert resumed.complete and len(resumed.curve) == 2
    log = trial_stdout(session, resumed.trial_id)
    assert "after epoch 1" in log and "epoch 2/2" in log and "epoch 1/2" not in log, log
    assert int(df.failed.sum()) == 3 and int(df.complete.sum()) == 1

    # ---- the report counts and lists them
    from analysis.report import write_report

    write_report(df, tmp_path / "report", n_boot=50, formats=("png",))
    text = (tmp_path / "report" / "report.md").read_text()
    assert "4 trials, 1 complete, 3 failed, 0 unfinished or cancelled" in text
    assert "3 trial(s) did not complete (3 failed)" in text and "killed by a signal" in text


def test_nnictl_resume_continues_the_interrupted_trial_and_the_tuner(synthetic_root: Path, cache_dir: Path,
                                                                     tmp_path: Path) -> None:
    """Stop the experiment while architecture 0 is in epoch 2; resume: it continues after epoch 1 (its
    checkpoint), and the tuner hands out architecture 1, not 0 again (before the fix: 0 twice, 1 never).
    Beside it, the same for a tabular MultiTrialTuner experiment (tests/nnictl_session.py: TabularResume)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.nnictl_session import TabularResume

    command = fault_command(synthetic_root, cache_dir, tmp_path, {"arch0": "hang"})
    config = experiment_config("test-resume", command, tmp_path, {"num_archs": 2, "seed": 6}, concurrency=1,
                               max_trials=2)
    out, session = create(config, tmp_path / "submitter")
    assert out.returncode == 0 and session is not None, out.stdout + out.stderr
    tabular = TabularResume(tmp_path / "tabular") if TabularResume.available() else None
    sessions = [session] + ([tabular.session] if tabular else [])
    marker = tmp_path / "faults" / "hang-None-0"
    try:
        session.wait("architecture 0 to hang in epoch 2", marker.exists)
        if tabular:
            tabular.session.wait("tabular candidate 1 to hang", tabular.hanging)
        with ThreadPoolExecutor(len(sessions)) as pool:
            list(pool.map(lambda s: s.stop(), sessions))
            for resumed in pool.map(lambda s: s.resume(), sessions):
                assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        session.wait("the resumed experiment", lambda: session.status()["status"] in ("DONE", "TUNER_NO_MORE_TRIAL")
                     and all(t["status"] in ENDED for t in session.trials()))
        if tabular:
            tabular.session.wait("the resumed tabular experiment", tabular.done)
    finally:
        with ThreadPoolExecutor(len(sessions)) as pool:
            list(pool.map(lambda s: s.stop(), sessions))
    if tabular:
        tabular.check()

    df = read_experiments([session.folder])
    done = df[df.complete]
    assert len(df) == 2 and sorted(done.arch_index.astype(int)) == [0, 1], df[["trial_id", "status", "arch_index"]]
    first = done[done.arch_index.astype(int) == 0].iloc[0]
    log = trial_stdout(session, first.trial_id)
    assert "after epoch 1" in log and "epoch 1/2" not in log.split("after epoch 1")[-1], log
