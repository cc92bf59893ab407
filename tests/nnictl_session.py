"""A running nnictl experiment a test can drive step by step: create, poll its REST API, stop, resume.

``tests.conftest.run_nnictl`` runs an experiment to the end in one call; failure and resume tests need
to act while it runs (kill a trial, read the web UI, stop it mid-trial and resume it), so this keeps
the experiment's id, port and folder and talks to NNI's REST API (``/api/v1/nni/...``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from nni_nas_bench.tuners.journal import Journal
from nni_nas_bench.tuners.ledger import Resume, Wasted
from tests.conftest import REPO, free_port, nnictl

ENDED = ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED")


@dataclass
class Session:
    """One experiment: ``folder`` holds db/nni.sqlite and the trial folders; ``port`` serves its REST API."""

    id: str
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/v1/nni/{path}", timeout=10) as r:
            return json.load(r)

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(f"{self.url}/api/v1/nni/{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)

    def status(self) -> dict[str, Any]:
        return self.get("check-status")

    def trials(self) -> list[dict[str, Any]]:
        return self.get("trial-jobs")

    def wait(self, what: str, done: Callable[[], bool], timeout: float = 300) -> None:
        """Poll ``done`` until it holds; on a timeout or an experiment ERROR, fail with the logs."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if done():
                return
            status = self.status()
            if status["status"] == "ERROR":
                raise AssertionError(f"experiment error while waiting for {what}: {status}\n{self.logs()}")
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}; status {self.status()}\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for log in sorted(self.folder.rglob("*.log")) + sorted(self.folder.rglob("trial.stderr")):
            parts.append(f"==== {log}\n{log.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        # Plain `nnictl stop`: the resume tests depend on NNI's own shutdown timing (conftest.stop_experiment
        # waits for the manager to go, which changes what NNI re-runs at `nnictl resume`).
        nnictl("stop", self.id)

    def update_trialnum(self, value: int) -> subprocess.CompletedProcess:
        """``nnictl update trialnum``: the README's step before re-submitting a trial (it needs a free slot)."""
        return nnictl("update", "trialnum", self.id, "--value", str(value))

    def resume(self) -> subprocess.CompletedProcess:
        """``nnictl resume`` on a fresh port; ``--experiment_dir`` is the folder holding experiment folders."""
        self.port = free_port()
        return nnictl("resume", self.id, "--port", str(self.port), "--experiment_dir", str(self.folder.parent))


def create(config: dict[str, Any], workdir: Path) -> tuple[subprocess.CompletedProcess, Session | None]:
    """``nnictl create``: its output, and the session (None when nnictl made no experiment folder)."""
    config = {**config, "experimentWorkingDirectory": str(workdir / "nni-experiments")}
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "experiment.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    out = nnictl("create", "--config", str(path), "--port", str(port))
    folders = [p for p in (workdir / "nni-experiments").glob("*") if p.is_dir() and not p.name.startswith("_")]
    session = Session(folders[0].name, port, folders[0]) if len(folders) == 1 else None
    return out, session


class TabularResume:
    """A real experiment for ``nnictl resume`` of MultiTrialTuner: NB201 tabular evolution, two trials at a
    time, candidate 1 hangs once (tests/hang_trial.py), so ``nnictl stop`` comes while it runs. After ``nnictl
    resume`` NNI re-runs it, or (as seen in most runs here: #5726) candidate 0 under its record; the tuner
    replays its journal, serves candidate 1 again in the latter case and raises maxTrialNumber for NNI's
    duplicate, and hands out the rest. tests/test_e2e_failures.py drives it beside the random baseline's
    resume (both mostly wait on NNI), so it costs no experiment of its own."""

    def __init__(self, folder: Path) -> None:

        import yaml

        from tests.conftest import SHARED_DATA

        self.marker = folder / "hang-marker"
        config = yaml.safe_load((REPO / "experiments" / "nb201" / "evolution.yml").read_text())
        config["tuner"]["classArgs"].update(num_searches=1, num_random=0,
                                            search={"budget": 3, "population": 2, "sample_size": 2})
        config["tuner"]["codeDirectory"] = str(REPO)
        config.update(experimentName="test-resume-tabular", trialCodeDirectory=str(REPO), trialConcurrency=2,
                      maxTrialNumber=3 + 1,
                      trialCommand=f"OMP_NUM_THREADS=1 PYTHONPATH={REPO} NNB_TEST_HANG={self.marker} "
                                   f"{sys.executable} -m tests.hang_trial --data-root {SHARED_DATA}")
        out, session = create(config, folder / "submitter")
        assert out.returncode == 0 and session is not None, out.stdout + out.stderr
        self.session = session

    @staticmethod
    def available() -> bool:
        from tests.conftest import SHARED_DATA

        return (SHARED_DATA / "nas-bench-201").is_dir()

    def hanging(self) -> bool:
        """Candidate 1 runs (and hangs), candidate 0 ended: the moment to stop."""
        return self.marker.exists() and any(t["status"] in ENDED for t in self.session.trials())

    def done(self) -> bool:
        return self.session.status()["status"] == "DONE"

    def check(self) -> None:
        """Every candidate index ran, the re-run one included, and only NNI's duplicates (as many as slots the
        tuner added) ran twice; the pick is the best candidate."""
        from analysis import read_experiment

        df = read_experiment(self.session.folder)
        events = Journal(self.session.folder / "checkpoint", "MultiTrialTuner").load()
        assert sum(isinstance(event, Resume) for event in events) == 1
        added = sum(event.slots for event in events if isinstance(event, Wasted))
        shown = df[["trial_id", "status", "role", "candidate_index", "error"]]
        with sqlite3.connect(self.session.folder / "db" / "nni.sqlite") as db:  # the profile's last revision
            profile = db.execute("SELECT params FROM ExperimentProfile ORDER BY revision DESC LIMIT 1").fetchone()
        assert json.loads(profile[0])["maxTrialNumber"] == 4 + added
        assert list(df.status) == ["SUCCEEDED"] * (4 + added), (added, shown)
        candidates = df[df.role == "candidate"]
        assert sorted(set(candidates.candidate_index.astype(int))) == [0, 1, 2] and len(candidates) == 3 + added
        assert sorted(df.role) == ["candidate"] * (3 + added) + ["searched"]
        searched = df[df.role == "searched"].iloc[0]
        best = candidates[candidates.final_acc == candidates.final_acc.max()]
        assert searched.genotype in set(best.genotype) and searched.source_trial in set(best.trial_id), shown
