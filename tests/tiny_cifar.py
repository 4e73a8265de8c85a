"""A tiny CIFAR-10 in torchvision's on-disk format, for tests: ``cifar-10-batches-py/`` with
``data_batch_1..5``, ``test_batch`` and ``batches.meta``, each a pickled dict as the authors' archive holds
them (``data``: uint8 [N, 3072], rows of 1024 red, green, blue values; ``labels``: a list of ints;
``batch_label``, ``filenames``), and the SHA-256 record that ``tradeoffs.data.fetch_cifar10`` writes for the
real archive. ``load_cifar10`` reads it exactly as it reads the real one."""

import pickle
from pathlib import Path

import numpy as np
from tradeoffs import data

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_tiny_cifar10(data_root: Path, per_batch: int = 10, test: int = 10, seed: int = 0) -> Path:
    """Write a tiny CIFAR-10 under ``<data_root>/torchvision/cifar-10-batches-py``; return that folder. The
    images are random, each class with its own mean colour (so a model can learn something); labels cycle over
    0..9."""
    folder = Path(data_root) / "torchvision" / data.CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = {name: per_batch for name in data.CIFAR10_FILES["train"]} | {"test_batch": test}
    for i, (name, n) in enumerate(sizes.items()):
        labels = [(i + j) % 10 for j in range(n)]
        colour = np.repeat(np.array(labels)[:, None] * 20 + 30, 3072, axis=1)
        pixels = np.clip(colour + rng.integers(-30, 31, (n, 3072)), 0, 255).astype(np.uint8)
        batch = {"batch_label": f"tiny {name}", "labels": labels, "data": pixels,
                 "filenames": [f"tiny_{name}_{j}.png" for j in range(n)]}
        # protocol 4: bytes pickled as bytes (protocol 2 would name _codecs.encode, which the loader refuses)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    meta = {"num_cases_per_batch": per_batch, "label_names": LABEL_NAMES, "num_vis": 3072}
    (folder / data.CIFAR10_META).write_bytes(pickle.dumps(meta, protocol=4))
    data.write_cifar10_checksums(folder)
    return folder
