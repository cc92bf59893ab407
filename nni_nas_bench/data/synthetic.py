"""A small, learnable stand-in dataset in the ImageFolder layout.

Unit and end-to-end tests must run without the real data and fast, yet still show that training
learns something. Each class gets its own colour and stripe orientation/frequency, with a random phase
and pixel noise per image, so a tiny CNN separates the classes within a couple of epochs while no two
images are identical.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np


def write_synthetic_image_folder(
    root: str | Path,
    name: str = "CIFAR10",
    num_classes: int = 10,
    train_per_class: int = 20,
    test_per_class: int = 10,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """Write ``root/<name>/{train,test}/class_<i>/<n>.png`` and return ``root/<name>``.

    Class folders are zero-padded (``class_000``) so that ImageFolder's sorted order equals the class
    number. The same arguments always write the same pixels.
    """
    from PIL import Image

    if num_classes < 1 or train_per_class < 0 or test_per_class < 0 or size < 4:
        raise ValueError("need num_classes >= 1, non-negative counts and size >= 4")
    tree = Path(root) / name
    rng = np.random.default_rng(seed)
    coords = np.mgrid[0:size, 0:size].astype(np.float64) / size  # 2×H×W, (y, x) in [0, 1)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label in range(num_classes):
            folder = tree / split / f"class_{label:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            colour, angle, frequency = _class_style(label, num_classes)
            direction = coords[1] * math.cos(angle) + coords[0] * math.sin(angle)
            for index in range(count):
                phase = rng.uniform(0.0, 2.0 * math.pi)
                stripes = 0.55 + 0.35 * np.sin(2.0 * math.pi * frequency * direction + phase)
                pixels = stripes[..., None] * colour[None, None, :] + rng.normal(0.0, 0.06, (size, size, 3))
                image = np.clip(pixels * 255.0, 0, 255).astype(np.uint8)
                Image.fromarray(image).save(folder / f"{index:04d}.png")
    return tree


def _class_style(label: int, num_classes: int) -> tuple[np.ndarray, float, float]:
    """Colour (evenly spaced hues), stripe angle and frequency of one class."""
    red, green, blue = colorsys.hsv_to_rgb(label / num_classes, 0.75, 0.95)
    angle = (label * 0.618034 % 1.0) * math.pi  # golden-ratio spacing: neighbouring classes differ most
    frequency = 2.0 + label % 3
    return np.array([red, green, blue]), angle, frequency
