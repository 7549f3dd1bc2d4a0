"""scikit-learn's bundled tables as tasks (files shipped inside the package: nothing downloads).

The real-data tasks of Yu et al. 2024 ("KAN or MLP: A Fairer Comparison", arXiv 2407.16674) are
tables of this kind; these four are the ones that need no download. Row counts (split 75/25 by
`tabular.seeded_split`, stratified for classification):

    table_diabetes       regression     442 rows, 10 features, 1 target   (331 train / 111 test)
    table_breast_cancer  2 classes      569 rows, 30 features             (426 / 143)
    table_wine           3 classes      178 rows, 13 features             (133 / 45)
    table_digits         10 classes    1797 rows, 64 features (8x8 px)    (1347 / 450)
"""
from __future__ import annotations

import numpy as np

from harness.tasks import register
from harness.tasks.tabular import (ClassificationTable, RegressionTable, Split, n_test_rows,
                                   seeded_split)


def _diabetes(seed: int) -> Split:
    from sklearn.datasets import load_diabetes
    # scaled=False: the raw features (age, sex, bmi, bp, s1..s6); we standardise on the train rows
    x, y = load_diabetes(return_X_y=True, scaled=False)
    return seeded_split(x.astype(np.float64), y.astype(np.float64).reshape(-1, 1), seed)


def _classes(loader_name: str, n_classes: int):
    def load(seed: int) -> Split:
        import sklearn.datasets
        x, y = getattr(sklearn.datasets, loader_name)(return_X_y=True)
        return seeded_split(x.astype(np.float64), y.astype(np.int64), seed, classes=n_classes)
    load.__name__ = f"_{loader_name}"
    return load


def _sizes(n_rows: int):
    n_test = n_test_rows(n_rows)
    return {"n_rows_train": n_rows - n_test, "n_rows_test": n_test}


TABLE_DIABETES = register(RegressionTable(
    "table_diabetes", 10, 1, description="scikit-learn diabetes: disease progression after one "
    "year from 10 baseline variables (Efron et al. 2004)", load=_diabetes, **_sizes(442)))
TABLE_BREAST_CANCER = register(ClassificationTable(
    "table_breast_cancer", 30, 2, description="scikit-learn breast cancer Wisconsin (diagnostic): "
    "malignant/benign from 30 cell-nucleus features", load=_classes("load_breast_cancer", 2),
    **_sizes(569)))
TABLE_WINE = register(ClassificationTable(
    "table_wine", 13, 3, description="scikit-learn wine: 3 cultivars from 13 chemical measurements",
    load=_classes("load_wine", 3), **_sizes(178)))
TABLE_DIGITS = register(ClassificationTable(
    "table_digits", 64, 10, description="scikit-learn digits: 8x8 images of handwritten digits, 10 "
    "classes", load=_classes("load_digits", 10), **_sizes(1797)))
