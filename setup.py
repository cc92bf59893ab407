"""Install nni-nas-bench: ``pip install -e ".[dev]"``.

Lower bounds, not pins, except where a real incompatibility forces an upper bound; each one says why.
"""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version: dict = {}
exec((ROOT / "nni_nas_bench" / "_version.py").read_text(), version)

setup(
    name="nni-nas-bench",
    version=version["__version__"],
    description="Fair evaluation of NAS methods (Yang et al., ICLR 2020) as NNI strategies, experiments and analysis",
    long_description=(ROOT / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["nni_nas_bench*", "search_spaces*", "analysis*"]),
    include_package_data=True,
    install_requires=[
        # nni 3.0 is the last release; its own pins (typeguard<4.1.3, filelock<3.12) come with it.
        "nni==3.0",
        # No CPU build of torchvision exists on PyPI: the newest torch + torchvision pair (CUDA build,
        # runs on CPU) imports together; an older CPU-only torch with the newest torchvision does not.
        "torch>=2.6",
        "torchvision>=0.21",
        # nni.nas imports pytorch_lightning.
        "pytorch-lightning>=2.0",
        # nnictl does `import pkg_resources`, removed in setuptools 81.
        "setuptools<81",
        "pandas>=1.5",
        "pyyaml>=6.0",
        "seaborn>=0.12",
        "matplotlib>=3.6",
        "numpy>=1.23",
        # analysis.stats: Mann-Whitney U and Kendall tau (scipy.stats).
        "scipy>=1.15",  # scipy.stats.bootstrap(rng=...): the RI's BCa interval
        "statsmodels>=0.14",  # analysis.stats.holm: Holm-adjusted p-values of the RI table (multipletests)
        # NSGA-Net is pymoo's NSGA-II (the reference search is built on pymoo).
        "pymoo>=0.6",
        # WeakNAS's MLP / gradient-boosted-tree predictors are scikit-learn's, as in the reference.
        "scikit-learn>=1.2",
        # Worker processes pin BLAS/OpenMP threads, not only torch's.
        "threadpoolctl>=3.1",
        # Progress bars on long runs.
        "tqdm>=4.60",
    ],
    extras_require={
        # nbclient/nbformat/ipykernel: the tests execute analysis/notebooks/*.ipynb.
        # pytest-xdist: the suite runs on every core (pyproject's addopts), nnictl experiments beside unit tests.
        "dev": ["pytest>=7", "pytest-timeout>=2", "pytest-xdist>=3.5", "ruff>=0.4", "nbclient>=0.7", "nbformat>=5.7",
                "ipykernel>=6",
                # `jupyter nbconvert --execute` runs the figures notebook (README)
                "nbconvert>=7"],
    },
    entry_points={
        "console_scripts": [
            "nas-bench=nni_nas_bench.cli:main",
        ],
    },
)
