"""Write the per-dataset experiment YAMLs from one template per method and dataset family.

The benchmark's table has five datasets in two families: CIFAR (``cifar10``, ``cifar100``: 32 px) and 224 px
(``flowers102``, ``mit67``, ``sport8``). Within a family a method's experiment differs by the dataset's name,
and by the few settings the references set per dataset, listed in :data:`SETTINGS` (CNAS's channels on
CIFAR-100, PDARTS's skip-connect dropout, MANAS's variant and bandit schedule). So a change is made once, in
``experiments/templates/<family>/<method>.yml.in`` (``.in``: not a runnable YAML), and this script writes
``experiments/<dataset>/<method>.yml``; researchers still read and run the plain files.
``tests/test_experiments.py`` checks that the committed files are what this script writes.

Templates use ``{{name}}``: ``dataset`` (the key, ``cifar100``), ``NAME`` (``CIFAR100``) and the names of
:data:`SETTINGS`. A line that is only a placeholder takes the value's lines, none for an empty value.

    python experiments/generate.py           # write every file
    python experiments/generate.py --check   # exit 1 naming the files that differ
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAMILIES: dict[str, tuple[str, ...]] = {"cifar": ("cifar10", "cifar100"), "px224": ("flowers102", "mit67", "sport8")}
# Methods a family's template exists for but a dataset of it has no experiment of.
ONLY: dict[str, tuple[str, ...]] = {"single_path": ("cifar10", "flowers102", "mit67", "sport8")}

_MANAS_LS_HEADER = """\
#   MANAS-LS here (variant: ls), the variant of the paper's CIFAR-10 result: the agents play uniformly and the
#   final cell takes each agent's best action by least squares (gamma and temperatures apply to variant: exp3)."""
_MANAS_LS = """\
      variant: ls               # MANAS-LS, the paper's CIFAR-10 entry (least-squares credit, uniform play);
                                # variant: exp3 for MANAS (gamma and temperatures then apply)
      final: sample             # unused by ls (it picks by its estimates)"""
_MANAS_EXP3 = """\
      variant: exp3             # MANAS; variant: ls for MANAS-LS
      final: sample             # the final architecture is drawn from the final policy (paper); or argmax"""

# method -> dataset -> placeholder values: the settings the references (and SPEC) give per dataset.
SETTINGS: dict[str, dict[str, dict[str, str]]] = {
    "cnas": {  # CNAS's script (_init_hyperparam) forces 24 channels and 50 epochs on CIFAR-100
        "cifar10": {"channels_text": "16 ch", "search_note": "", "channels": "16",
                    "epochs_note": "the benchmark README's --epochs 50 (the script's default is 60)"},
        "cifar100": {"channels_text": "24 ch as its script forces on CIFAR-100", "search_note": " (but CIFAR-100's)",
                     "channels": "24   # CIFAR-100: 24 (the script's _init_hyperparam)",
                     "epochs_note": "CIFAR-100: CNAS's script forces 50 (_init_hyperparam)"},
    },
    "pdarts": {  # SPEC: PDARTS's skip-connect dropout per dataset
        "cifar10": {"skip_dropout": "[0.0, 0.4, 0.7]", "skip_dropout_note": ""},
        "cifar100": {"skip_dropout": "[0.1, 0.2, 0.3]", "skip_dropout_note": "   # CIFAR100's rates (SPEC)"},
    },
    "manas": {  # the paper's CIFAR-10 entry is MANAS-LS; SPEC's bandit schedule per 224-px dataset
        "cifar10": {"variant_header": _MANAS_LS_HEADER, "variant_block": _MANAS_LS},
        "cifar100": {"variant_header": "", "variant_block": _MANAS_EXP3},
        "flowers102": {"gamma": "0.05", "t_start": "1000", "t_end": "200"},
        "mit67": {"gamma": "0.01", "t_start": "5000", "t_end": "2000"},
        "sport8": {"gamma": "0.07", "t_start": "300", "t_end": "100"},
    },
}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def render(template: str, values: dict[str, str], where: str) -> str:
    """``template`` with every ``{{name}}`` replaced; a line that is only a placeholder becomes its value's lines."""
    def value(name: str) -> str:
        if name not in values:
            raise KeyError(f"{where}: no value for {{{{{name}}}}} (add it to SETTINGS)")
        return values[name]

    lines = []
    for line in template.splitlines(keepends=True):
        alone = _PLACEHOLDER.fullmatch(line.strip())
        if alone:
            text = value(alone.group(1))
            lines.extend(f"{part}\n" for part in text.splitlines())
        else:
            lines.append(_PLACEHOLDER.sub(lambda m: value(m.group(1)), line))
    return "".join(lines)


def generated() -> dict[Path, str]:
    """Every generated file's path and text."""
    out = {}
    for family, datasets in FAMILIES.items():
        for template in sorted((HERE / "templates" / family).glob("*.yml.in")):
            name = template.name.removesuffix(".in")
            method = name.removesuffix(".yml")
            for dataset in datasets:
                if dataset not in ONLY.get(method, datasets):
                    continue
                values = {"dataset": dataset, "NAME": dataset.upper(), **SETTINGS.get(method, {}).get(dataset, {})}
                out[HERE / dataset / name] = render(template.read_text(), values, f"{family}/{template.name}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    files = generated()
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"differs from its template: {path.relative_to(HERE.parent)} (run python experiments/generate.py)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
    print(f"{len(files)} experiment files, {len(stale)} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
