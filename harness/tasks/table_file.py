"""A user's own CSV or parquet file as a task: `task=table_file task.path=FILE ...`.

Config keys (harness.config.TaskConfig): task.path (.csv, or .parquet / .pq), task.target_columns
(one or more for regression, exactly one for classification), task.feature_columns (empty = every
other column), task.kind (regression or classification). Feature columns must be numeric and no
used cell may be empty; classification targets may be any values (classes are their sorted
distinct values, each needing 2 rows). Every problem is one ConfigError line naming the key and
the column, raised when the config is validated, before any work.

The split and standardisation are `tabular`'s (25% held out, stratified for classification); d_in
= number of feature columns, d_out = number of targets or of classes. The file is read once per
process (keyed by its path, size and modification time).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, List, Tuple

import numpy as np
import pandas as pd
import torch

from harness.config import ConfigError
from harness.tasks import register
from harness.tasks.tabular import (ClassificationTable, RegressionTable, Split, TableTask,
                                   n_test_rows, seeded_split)

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}
KINDS = ("regression", "classification")


@functools.lru_cache(maxsize=8)
def read_frame(path: str, size: int, mtime_ns: int) -> pd.DataFrame:
    """The file as a DataFrame; size and mtime_ns key the cache so an edited file is read again."""
    return READERS[os.path.splitext(path)[1].lower()](path)


def frame_of(path: str) -> pd.DataFrame:
    stat = os.stat(path)
    return read_frame(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class FileTable:
    """Loader of a checked file (hashable: the split cache keys on it)."""
    path: str
    size: int
    mtime_ns: int
    features: Tuple[str, ...]
    targets: Tuple[str, ...]
    classes: Tuple[Any, ...]  # () for regression

    def __call__(self, seed: int) -> Split:
        frame = read_frame(self.path, self.size, self.mtime_ns)
        x = frame[list(self.features)].to_numpy(dtype=np.float64)  # (n, d_in)
        if not self.classes:
            return seeded_split(x, frame[list(self.targets)].to_numpy(dtype=np.float64), seed)
        codes = pd.Categorical(frame[self.targets[0]], categories=list(self.classes)).codes
        return seeded_split(x, np.asarray(codes, dtype=np.int64), seed, classes=len(self.classes))


def _columns(key: str, names: List[str], frame: pd.DataFrame, path: str) -> None:
    for name in names:
        if name not in frame.columns:
            raise ConfigError(f"{key}: column {name!r} is not in {path}; available columns: "
                              f"{[str(c) for c in frame.columns]}")


@dataclass(frozen=True)
class TableFileTask(TableTask):
    """The registry entry: `specialise` reads the file named by the config into a table task."""

    def specialise(self, task_cfg: Any) -> TableTask:
        path, kind = getattr(task_cfg, "path", None), getattr(task_cfg, "kind", "regression")
        targets = list(getattr(task_cfg, "target_columns", None) or [])
        features = list(getattr(task_cfg, "feature_columns", None) or [])
        if not path:
            raise ConfigError("task.path is not set: task=table_file needs task.path=FILE (.csv, "
                              ".parquet or .pq) and task.target_columns=[COLUMN]")
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in READERS:
            raise ConfigError(f"task.path={path!r}: the file must end in one of {sorted(READERS)}")
        if not os.path.isfile(path):
            raise ConfigError(f"task.path={path!r} does not exist (relative paths start at "
                              f"{os.getcwd()})")
        if kind not in KINDS:
            raise ConfigError(f"task.kind={kind!r}: choose regression or classification")
        frame = frame_of(path)
        if not targets:
            raise ConfigError(f"task.target_columns is empty: name the column(s) to predict; "
                              f"available columns: {[str(c) for c in frame.columns]}")
        _columns("task.target_columns", targets, frame, path)
        _columns("task.feature_columns", features, frame, path)
        features = features or [c for c in frame.columns if c not in targets]
        for name in features:
            if name in targets:
                raise ConfigError(f"task.feature_columns: column {name!r} is also a target")
            if not pd.api.types.is_numeric_dtype(frame[name]):
                raise ConfigError(f"task.feature_columns: column {name!r} of {path} is not numeric "
                                  f"({frame[name].dtype}); drop it from the features")
        for name in [*features, *targets]:
            missing = int(frame[name].isna().sum())
            if missing:
                raise ConfigError(f"column {name!r} of {path} has {missing} empty cells; fill or "
                                  f"drop those rows")
        classes: Tuple[Any, ...] = ()
        if kind == "classification":
            if len(targets) != 1:
                raise ConfigError(f"task.target_columns={targets}: classification takes one target "
                                  f"column (the class)")
            counts = frame[targets[0]].value_counts()
            if len(counts) < 2 or counts.min() < 2:
                raise ConfigError(f"task.target_columns: column {targets[0]!r} needs at least 2 "
                                  f"classes of at least 2 rows each (counts: {counts.to_dict()})")
            classes = tuple(sorted(counts.index))
        else:
            for name in targets:
                if not pd.api.types.is_numeric_dtype(frame[name]):
                    raise ConfigError(f"task.target_columns: column {name!r} is not numeric "
                                      f"({frame[name].dtype}); set task.kind=classification")
        stat = os.stat(path)
        loader = FileTable(os.path.abspath(path), stat.st_size, stat.st_mtime_ns, tuple(features),
                           tuple(targets), classes)
        n_test = n_test_rows(len(frame))
        table = ClassificationTable if classes else RegressionTable
        task = table(self.name, len(features), len(classes) or len(targets),
                     description=f"{kind} of {targets} from {len(features)} columns of {path}",
                     load=loader, n_rows_train=len(frame) - n_test, n_rows_test=n_test)
        return task.specialise(task_cfg)

    def member_losses(self, stacked, x, y, data) -> torch.Tensor:
        raise TypeError("task table_file is trained through task_of(cfg.task), which reads the file")


TABLE_FILE = register(TableFileTask(
    "table_file", 0, 0, description="a user's CSV or parquet file: task.path, task.target_columns, "
    "task.feature_columns, task.kind"))
