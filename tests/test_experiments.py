"""Every YAML under experiments/ passes NNI's own config validation and builds its tuner."""

from __future__ import annotations

from pathlib import Path

import pytest

from nni_nas_bench.cli import main
from nni_nas_bench.errors import ConfigError
from nni_nas_bench.experiment_config import check_experiment
from tests.conftest import REPO

YAMLS = sorted((REPO / "experiments").rglob("*.yml"))


def test_there_are_experiments_for_every_dataset() -> None:
    names = {p.relative_to(REPO / "experiments").as_posix() for p in YAMLS}
    assert {f"{d}/random.yml" for d in ("cifar10", "cifar100", "sport8", "mit67", "flowers102")} <= names
    assert "quickstart.yml" in names


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.relative_to(REPO / "experiments").as_posix())
def test_experiment_yaml_passes_nni_validation(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nni_nas_bench.strategies import list_strategies

    if path.parent.name == "remote":
        # NNI checks that sshKeyFile exists on the submitting machine; the examples name ~/.ssh/id_ed25519.
        (tmp_path / ".ssh").mkdir()
        (tmp_path / ".ssh" / "id_ed25519").touch()
        monkeypatch.setenv("HOME", str(tmp_path))
    tuner = check_experiment(path)
    params = tuner.generate_parameters(0)
    if params["role"] in ("search", "candidate"):  # a one-shot search, or a multi-trial search's first candidate
        assert params["method"] in list_strategies()
    else:
        assert params["role"] == "random" and params["genotype"].startswith("Genotype(")
    assert "nni_nas_bench.trial" in path.read_text()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yml"
    path.write_text(text)
    return path


GOOD = (REPO / "experiments" / "quickstart.yml").read_text().replace("codeDirectory: ..", f"codeDirectory: {REPO}")


@pytest.mark.parametrize("text, message", [
    ("tuner: [unclosed\n", "is not valid YAML"),
    (GOOD.replace("trialConcurrency: 1", "trialConcurrency: many"), "NNI rejects this config"),
    (GOOD.replace("RandomBaselineTuner", "RandomBaselineTunr"), "cannot be imported"),
    (GOOD.replace("dataset: cifar10", "dataset: cifar11"), "unknown dataset 'cifar11'"),
    (GOOD.replace("num_archs: 3", "num_archs: 3\n    spaces: darts"), "bad settings .* for tuner.classArgs"),
    (GOOD.replace("space: darts", "space: nasnet"), "unknown search space 'nasnet'"),
    (GOOD.replace("preset: quick", "preset: quik"), "unknown protocol preset 'quik'"),
    (GOOD.replace("maxTrialNumber: 3", "maxTrialNumber: 2"), "maxTrialNumber is 2 but the tuner submits 3"),
])
def test_bad_experiment_yaml_gets_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_experiment(_write(tmp_path, text))


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", str(REPO / "experiments" / "quickstart.yml")]) == 0
    assert main(["check", str(_write(tmp_path, "a: [\n"))]) == 1
    assert "FAIL" in capsys.readouterr().err


def test_committed_experiments_are_what_their_templates_generate() -> None:
    """experiments/generate.py writes the per-dataset YAMLs from one template per method and family: a change
    made to one file only would be lost at the next generation (issue 16)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(REPO / "experiments" / "generate.py"), "--check"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("generate", REPO / "experiments" / "generate.py")
    generate = module_from_spec(spec)
    spec.loader.exec_module(generate)
    files = generate.generated()
    assert len(files) == 74 and all(path in YAMLS for path in files)
    assert "{{" not in "".join(files.values())
