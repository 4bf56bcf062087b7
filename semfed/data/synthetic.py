"""A small, learnable, class-dependent image dataset for fast tests and demos.

Each class owns a template: an oriented sinusoidal grating (its own angle and
spatial frequency) drawn between a bright and a dark shade of its own hue. A
sample is its class template with a random phase, contrast and brightness, a
slight hue jitter and pixel noise. The mean colour alone separates the classes
linearly, so even logistic regression on downsampled images beats chance by far;
the orientation and frequency give a CNN more to use.
"""

from __future__ import annotations

import numpy as np

from semfed.data.dataset import ImageDataset


def _hue_to_rgb(hue: np.ndarray) -> np.ndarray:
    """Smooth colour wheel: hue in [0, 1) -> RGB in [0, 1], shape ``hue.shape + (3,)``."""
    shifts = np.array([0.0, 1.0 / 3.0, 2.0 / 3.0])
    return 0.5 + 0.5 * np.cos(2.0 * np.pi * (hue[..., None] - shifts))


def _render(
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    hues: np.ndarray,
    angles: np.ndarray,
    freqs: np.ndarray,
    image_size: int,
    channels: int,
) -> np.ndarray:
    """Draw one uint8 ``[len(labels), S, S, channels]`` image per label."""
    n, num_classes = len(labels), len(hues)
    coords = np.arange(image_size, dtype=np.float64) / image_size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    angle = angles[labels][:, None, None]
    phase = rng.uniform(0.0, 2.0 * np.pi, n)[:, None, None]
    wave = np.cos(
        2.0 * np.pi * freqs[labels][:, None, None] * (xx * np.cos(angle) + yy * np.sin(angle))
        + phase
    )
    contrast = rng.uniform(0.6, 1.0, n)[:, None, None]
    mix = 0.5 + 0.5 * contrast * wave  # [n, S, S] in [0, 1]

    # Jitter stays well inside half the hue spacing so mean colours do not overlap.
    hue = hues[labels] + rng.normal(0.0, 0.08 / num_classes, n)
    if channels == 3:
        bright = 0.15 + 0.8 * _hue_to_rgb(hue)  # [n, 3]
    else:
        # Without colour, the hue's rank sets an evenly spaced brightness instead.
        level = 0.3 + 0.65 * (hue - hues.min()) / max(np.ptp(hues), 1e-9)
        bright = np.repeat(level[:, None], channels, axis=1)
    dark = 0.35 * bright
    gain = rng.uniform(0.95, 1.05, n)[:, None, None, None]
    images = gain * (dark[:, None, None, :] + (bright - dark)[:, None, None, :] * mix[..., None])
    images += rng.normal(0.0, 0.06, images.shape)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def make_synthetic(
    num_classes: int = 10,
    train_per_class: int = 200,
    test_per_class: int = 50,
    image_size: int = 32,
    channels: int = 3,
    seed: int = 0,
) -> ImageDataset:
    """Build the synthetic dataset; the same arguments always give the same arrays.

    Returns an :class:`ImageDataset` named ``synthetic`` with
    ``x_train`` uint8 ``[num_classes * train_per_class, S, S, channels]``,
    ``x_test`` uint8 ``[num_classes * test_per_class, S, S, channels]``
    (``S = image_size``), int64 labels in shuffled order with exactly
    ``train_per_class`` / ``test_per_class`` samples per class, and class names
    ``class_0`` ... ``class_{num_classes-1}``.
    """
    if num_classes < 2 or train_per_class < 1 or test_per_class < 1:
        raise ValueError("need num_classes >= 2 and at least one train and test sample per class")
    if image_size < 4 or channels < 1:
        raise ValueError("need image_size >= 4 and channels >= 1")
    rng = np.random.default_rng(seed)
    hues = (np.arange(num_classes) + rng.uniform()) / num_classes
    angles = rng.permutation(num_classes) * np.pi / num_classes
    freqs = rng.uniform(1.0, 3.0, num_classes)  # cycles per image: survives downsampling

    splits = []
    for per_class in (train_per_class, test_per_class):
        labels = rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int64), per_class))
        images = _render(
            labels,
            rng,
            hues=hues,
            angles=angles,
            freqs=freqs,
            image_size=image_size,
            channels=channels,
        )
        splits.append((images, labels))
    (x_train, y_train), (x_test, y_test) = splits
    return ImageDataset(
        name="synthetic",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(f"class_{i}" for i in range(num_classes)),
        source="synthetic",
    )
