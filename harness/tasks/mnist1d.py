"""MNIST-1D (Greydanus & Kobak 2024, arXiv 2011.14439) generated locally: the vision-like task.

Ten 1-D digit templates, each randomly padded, translated, scaled, sheared and noised into a
40-sample signal. We call the `mnist1d` package's generator `mnist1d.data.make_dataset(args)` with
its default arguments (5000 examples, the first 80% for training) and args.seed = task.seed; its
download path (`get_dataset`, which fetches a pickle from a URL) is never used. The generator seeds
numpy's and Python's global random state, which we restore afterwards. With seed 42 (the package's
default) the arrays are the ones its authors published; other seeds are fresh draws.

Split: the generator's own (4000 train / 1000 test), then the standardisation of `tabular`.
"""
from __future__ import annotations

import random

import numpy as np

from harness.tasks import register
from harness.tasks.tabular import ClassificationTable, Split

NUM_SAMPLES = 5000  # the package's default (get_dataset_args)
TRAIN_SPLIT = 0.8  # the package's default: first 80% train
SEQUENCE_LENGTH = 40  # final_seq_length: d_in
N_CLASSES = 10


def generate(seed: int, num_samples: int = NUM_SAMPLES) -> Split:
    """MNIST-1D from the package's generator with args.seed = seed; no file or network access.
    x: (0.8 num_samples, 40) float64 train, the rest test; y: int64 classes 0..9."""
    from mnist1d.data import get_dataset_args, make_dataset
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, TRAIN_SPLIT, seed
    assert args.final_seq_length == SEQUENCE_LENGTH
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return Split(np.asarray(data["x"], dtype=np.float64), np.asarray(data["y"], dtype=np.int64),
                 np.asarray(data["x_test"], dtype=np.float64),
                 np.asarray(data["y_test"], dtype=np.int64))


N_TRAIN = int(NUM_SAMPLES * TRAIN_SPLIT)  # the generator's split index
MNIST1D = register(ClassificationTable(
    "mnist1d", SEQUENCE_LENGTH, N_CLASSES, description="MNIST-1D: 10 classes of 40-sample 1-D "
    "signals made by the mnist1d package's generator (seeded by task.seed, nothing downloaded)",
    load=generate, n_rows_train=N_TRAIN, n_rows_test=NUM_SAMPLES - N_TRAIN))
