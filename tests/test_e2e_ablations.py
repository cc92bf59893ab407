"""The DARTS-space studies (SPEC experiments 1-4) run end to end under nnictl in tiny versions, and
`nas-bench report` produces each study's section from the resulting DBs.

The tiny versions are the preview YAMLs of experiments/ablations/preview with a CPU-sized protocol and
fewer architectures: same tuner, same variants, same study labels, the real trial entry point.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analysis import read_experiments
from analysis.report import report_command
from tests.conftest import REPO, trial_command

pytestmark = pytest.mark.slow

TINY = {"preset": "darts", "epochs": 2, "channels": 4, "layers": 3, "batch_size": 50, "subset": None,
        "eval_batch_size": 100, "seed": 0}
# study -> architectures: one architecture shows that every protocol trains the same one (tricks); the
# rank and epoch statistics need 3 per group (seeds, depth); two op sets need one pair (operations).
STUDIES = {"tricks": 1, "seeds": 3, "operations": 2, "depth": 3}
# Of the tricks study's 10 protocols, two train here: the plain one (a named preset) and `all` (a dict over a
# preset, every trick at once). The other eight differ from these only in settings (trick flags, channels,
# epochs) that the training tests cover; tests/test_experiments.py builds every YAML's tuner, and with it every
# variant's protocol and space.
TRICKS_TRAINED = {"base", "all"}


def _name(variant: dict) -> str:
    protocol = variant.get("protocol")
    return protocol["preset"] if isinstance(protocol, dict) else protocol


def _tiny(study: str, archs: int, data: Path, cache: Path, workdir: Path) -> dict:
    config = yaml.safe_load((REPO / "experiments" / "ablations" / "preview" / f"{study}.yml").read_text())
    args = config["tuner"]["classArgs"]
    args["num_archs"], args["protocol"] = archs, TINY
    if study == "tricks":
        args["variants"] = [v for v in args["variants"] if _name(v) in TRICKS_TRAINED]
    for variant in args["variants"]:
        changes = variant.get("protocol")
        if isinstance(changes, dict):  # keep what the variant is about, at CPU size
            changes.update({k: min(v, 4) if k in ("epochs", "channels") else v for k, v in changes.items()})
            if "layers" in changes:
                changes["layers"] = 3 if changes["layers"] < 8 else 5
    config.update({
        "trialCommand": trial_command(data, cache, workdir / "checkpoints"),
        # One trial at a time per study: the four studies run side by side (four trials on two cores).
        "trialCodeDirectory": str(workdir), "trialConcurrency": 1, "maxTrialNumber": archs * len(args["variants"]),
    })
    config["tuner"]["codeDirectory"] = str(workdir)
    return config


def test_ablation_studies_end_to_end(nnictl_runner, synthetic_root: Path, cache_dir: Path,
                                     tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run(study: str) -> Path:  # separate managers and ports: the studies share nothing but the cores
        workdir = tmp_path / study
        workdir.mkdir()
        return nnictl_runner(_tiny(study, STUDIES[study], synthetic_root, cache_dir, workdir), workdir, 900)

    with ThreadPoolExecutor(len(STUDIES)) as pool:
        experiments = list(pool.map(run, STUDIES))

    df = read_experiments(experiments)
    assert (df["status"] == "SUCCEEDED").all(), df[df["status"] != "SUCCEEDED"][["trial_id", "error"]]
    counts = df.groupby("study").size().to_dict()
    assert counts == {"tricks": len(TRICKS_TRAINED), "seeds": 6, "operations": 4, "depth": 6}
    tricks = df[df["study"] == "tricks"]
    assert tricks.groupby("arch_index")["genotype"].nunique().eq(1).all()  # same architectures in every protocol
    assert set(tricks["protocol_name"]) == TRICKS_TRAINED

    files = report_command([str(e) for e in experiments], tmp_path / "report", n_boot=200)
    text = (tmp_path / "report" / "report.md").read_text()
    for section in ("Training protocols", "Ranking stability", "Operation sets", "Ranking at epoch e vs final"):
        assert section in text, section
    assert "training seed" in text and "cells" in text
    assert all(Path(f).stat().st_size > 0 for f in files)
