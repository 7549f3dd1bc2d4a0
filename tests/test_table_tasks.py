"""Tasks from tables (issue 13 item 3): scikit-learn's tables, MNIST-1D, a user's CSV/parquet file,
and the classification hooks (cross-entropy, accuracy, softmax RMSE) through real runs."""
from __future__ import annotations

import math
import random
import socket
import urllib.request

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from harness.config import ConfigError, TaskConfig, resolve, validate
from harness.tasks import TASK_REGISTRY, task_of
from harness.tasks.mnist1d import generate
from harness.tasks.tabular import ClassificationTable, cached_split, seeded_split, standardisation
from harness.train import run
from tests.helpers import compose_config

QUIET = dict(log=lambda *_: None)
# name: (rows, features, classes or 0 for regression) of the files sklearn ships
SKLEARN = {"table_diabetes": (442, 10, 0), "table_breast_cancer": (569, 30, 2),
           "table_wine": (178, 13, 3), "table_digits": (1797, 64, 10)}


def raw_table(name):
    import sklearn.datasets
    loader = {"table_diabetes": lambda: sklearn.datasets.load_diabetes(return_X_y=True, scaled=False)}
    x, y = loader.get(name, lambda: getattr(sklearn.datasets, "load_" + name[6:])(return_X_y=True))()
    return x, y


def full(task, seed=0):
    return task.make_dataset(task.n_rows_train, task.n_rows_test, seed, torch.float64, None)


@pytest.mark.parametrize("name", sorted(SKLEARN))
def test_sklearn_table_sizes_split_and_standardisation(name):
    task = TASK_REGISTRY[name]
    rows, features, classes = SKLEARN[name]
    n_test = math.ceil(0.25 * rows)
    assert (task.d_in, task.d_out) == (features, classes or 1)
    assert (task.n_rows_train, task.n_rows_test) == (rows - n_test, n_test)
    data = full(task)
    assert data.train_input.shape == (rows - n_test, features)
    assert data.test_input.shape == (n_test, features)
    assert data.train_label.shape == (rows - n_test, classes or 1)
    # standardised with the training rows: mean 0, std 1 (constant pixels of digits stay 0)
    std = data.train_input.std(dim=0, correction=0)
    constant = std == 0
    assert torch.all(data.train_input[:, constant] == 0)
    assert torch.allclose(data.train_input.mean(dim=0), torch.zeros(features, dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.allclose(std[~constant], torch.ones(int((~constant).sum()), dtype=torch.float64), atol=1e-12, rtol=0)
    # the two parts are a partition of the file's rows, and the test rows use the TRAIN statistics
    split = cached_split(task, 0)
    x, y = raw_table(name)
    together = np.concatenate([split.x_train, split.x_test])
    assert np.array_equal(np.unique(together, axis=0), np.unique(x, axis=0)) and len(together) == rows
    mean, scale = standardisation(split.x_train)
    assert torch.allclose(data.test_input, torch.as_tensor((split.x_test - mean) / scale), atol=1e-12)
    if classes:
        counts = np.bincount(y, minlength=classes)
        test_counts = data.test_label.sum(dim=0).numpy()
        assert np.all(test_counts >= 1)  # every class in the test part ...
        assert np.all(np.abs(test_counts - n_test * counts / rows) < 1)  # ... in proportion
        assert torch.all(data.test_label.sum(dim=1) == 1)  # one-hot rows
    else:
        assert torch.allclose(data.train_label.mean(), torch.zeros((), dtype=torch.float64), atol=1e-12)
        assert torch.allclose(data.train_label.std(correction=0), torch.ones((), dtype=torch.float64), atol=1e-12)
        assert torch.allclose(data.extras["target_scale"],
                              torch.as_tensor(split.y_train.std(axis=0)), rtol=1e-14)


def test_split_is_fixed_by_the_seed_and_changes_with_it():
    task = TASK_REGISTRY["table_wine"]
    first, again, other = task.load(0), task.load(0), task.load(1)
    assert np.array_equal(first.x_train, again.x_train) and np.array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_train, other.x_train)
    x = np.arange(40.0).reshape(20, 2)
    # regression split: ceil(0.25 * 20) = 5 test rows, the same ones for the same seed
    a, b = seeded_split(x, x[:, :1], 3), seeded_split(x, x[:, :1], 3)
    assert a.x_test.shape == (5, 2) and np.array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, seeded_split(x, x[:, :1], 4).x_test)


def test_n_train_takes_the_first_training_rows_and_is_refused_above_the_table(tmp_path):
    task = TASK_REGISTRY["table_wine"]
    small = task.make_dataset(40, 10, 0, torch.float64, None)
    split = cached_split(task, 0)
    mean, scale = standardisation(split.x_train[:40])  # the statistics of the rows trained on
    assert torch.allclose(small.train_input, torch.as_tensor((split.x_train[:40] - mean) / scale))
    assert torch.allclose(small.test_input, torch.as_tensor((split.x_test[:10] - mean) / scale))
    cfg = compose_config(["task=table_wine", "task.n_train=500", "model.hidden=[2]"], tmp_path)
    with pytest.raises(ConfigError, match=r"^task.n_train=500 is more than the 133 training rows "
                                          r".*set task.n_train<=133$"):
        run(cfg, **QUIET)
    cfg = compose_config(["task=table_wine", "task.n_train=133", "task.n_test=46",
                          "model.hidden=[2]"], tmp_path)
    with pytest.raises(ConfigError, match=r"set task.n_test<=45"):
        validate(resolve(cfg))
    assert not any(tmp_path.iterdir())  # refused before any work


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    import requests
    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)


def test_mnist1d_is_generated_locally_reproducibly_and_leaves_global_rngs_alone(monkeypatch, tmp_path):
    _no_network(monkeypatch)
    monkeypatch.chdir(tmp_path)
    np.random.seed(123)
    random.seed(123)
    numpy_next, python_next = np.random.get_state()[1][:5].copy(), random.getstate()
    first, again, other = generate(0, num_samples=200), generate(0, num_samples=200), generate(1, 200)
    assert first.x_train.shape == (160, 40) and first.x_test.shape == (40, 40)
    for a, b in zip((first.x_train, first.y_train, first.x_test, first.y_test),
                    (again.x_train, again.y_train, again.x_test, again.y_test)):
        assert np.array_equal(a, b)
    assert not np.array_equal(first.x_train, other.x_train)
    assert set(np.unique(first.y_train)) == set(range(10))  # 20 per class before the split
    assert np.bincount(np.concatenate([first.y_train, first.y_test])).tolist() == [20] * 10
    assert np.array_equal(np.random.get_state()[1][:5], numpy_next)
    assert random.getstate() == python_next
    assert not any(tmp_path.iterdir())  # no cache file written (the package's get_dataset would)
    task = TASK_REGISTRY["mnist1d"]
    assert (task.d_in, task.d_out, task.n_rows_train, task.n_rows_test) == (40, 10, 4000, 1000)


@pytest.mark.slow
def test_mnist1d_full_task(monkeypatch):
    _no_network(monkeypatch)
    data = full(TASK_REGISTRY["mnist1d"], seed=42)
    assert data.train_input.shape == (4000, 40) and data.test_label.shape == (1000, 10)
    assert torch.allclose(data.train_input.mean(dim=0), torch.zeros(40, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(data.train_input.std(dim=0, correction=0), torch.ones(40, dtype=torch.float64), atol=1e-12)
    assert torch.all(data.test_label.sum(dim=0) > 50)  # every digit in the test part


def _frame(n=40):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n), rng.uniform(size=n)
    return pd.DataFrame({"a": a, "b": b, "noise": rng.normal(size=n), "y": 3 * a - b,
                         "y2": a * b, "kind": np.where(a > 0, "pos", "neg")})


def test_table_file_reads_csv_and_parquet(tmp_path):
    frame = _frame()
    csv, parquet = tmp_path / "data.csv", tmp_path / "data.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    regression = task_of(TaskConfig(name="table_file", path=str(csv), target_columns=["y", "y2"],
                                    feature_columns=["a", "b"], n_train=30, n_test=10))
    assert (regression.d_in, regression.d_out) == (2, 2)
    assert (regression.n_rows_train, regression.n_rows_test) == (30, 10)
    data = regression.make_dataset(30, 10, 0, torch.float64, None)
    split = cached_split(regression, 0)
    assert np.array_equal(np.sort(np.concatenate([split.x_train[:, 0], split.x_test[:, 0]])),
                          np.sort(frame["a"].to_numpy()))
    assert torch.allclose(data.train_input.std(dim=0, correction=0), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(data.train_label.mean(dim=0), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    classification = task_of(TaskConfig(name="table_file", path=str(parquet), kind="classification",
                                        target_columns=["kind"], n_train=30, n_test=10))
    assert isinstance(classification, ClassificationTable)
    assert (classification.d_in, classification.d_out) == (5, 2)  # a, b, noise, y, y2; neg/pos
    data = classification.make_dataset(30, 10, 0, torch.float64, None)
    # class 1 = "pos" (sorted names) = a > 0; a is feature 0, standardised but same sign order
    split = cached_split(classification, 0)
    assert np.array_equal(split.y_train, (split.x_train[:, 0] > 0).astype(np.int64))
    assert torch.all(data.test_label.sum(dim=0) >= 1)
    # the same file and fields give an equal task, so the split is read from the cache
    again = task_of(TaskConfig(name="table_file", path=str(parquet), kind="classification",
                               target_columns=["kind"], n_train=30, n_test=10))
    assert again == classification


def test_table_file_errors_are_one_line_and_name_the_column(tmp_path):
    csv = tmp_path / "data.csv"
    _frame().to_csv(csv, index=False)

    def error(**fields):
        fields = {"name": "table_file", "path": str(csv), "target_columns": ["y"], "n_train": 30,
                  "n_test": 10, **fields}
        with pytest.raises(ConfigError) as info:
            task_of(TaskConfig(**fields))
        assert "\n" not in str(info.value)
        return str(info.value)

    message = error(feature_columns=["a", "wrong"])
    assert message.startswith("task.feature_columns: column 'wrong' is not in ")
    assert message.endswith("available columns: ['a', 'b', 'noise', 'y', 'y2', 'kind']")
    assert "column 'nope'" in error(target_columns=["nope"])
    assert "does not exist" in error(path=str(tmp_path / "missing.csv"))
    assert "must end in one of" in error(path=str(tmp_path / "data.xlsx"))
    assert "task.target_columns is empty" in error(target_columns=[])
    assert "'kind' of" in error() and "is not numeric" in error()  # string feature column
    assert "set task.kind=classification" in error(target_columns=["kind"], feature_columns=["a"])
    assert "one target column" in error(kind="classification", target_columns=["y", "kind"],
                                        feature_columns=["a"])
    assert "task.n_train<=30" in error(feature_columns=["a"], n_train=31)
    # through the composed config: refused by validate, before any work
    cfg = compose_config(["task=table_file", f"task.path={csv}", "task.target_columns=[nope]",
                          "model=mlp", "model.hidden=[4]"], tmp_path / "results")
    with pytest.raises(ConfigError, match="column 'nope' is not in"):
        run(cfg, **QUIET)
    assert not (tmp_path / "results").exists()
    cfg = compose_config(["task=toy_xy", f"task.path={csv}"], tmp_path / "results")
    with pytest.raises(ConfigError, match="read only by task=table_file"):
        validate(resolve(cfg))


class Fixed(nn.Module):
    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def test_classification_loss_metrics_and_probabilities():
    task = TASK_REGISTRY["table_wine"]
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    label = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)
    model = Fixed(logits)
    log_z = torch.log(torch.exp(logits).sum(dim=1))
    # -mean log softmax(z)_class: row 0 class 0, row 1 class 2
    expected = -((2.0 - log_z[0]) + (0.0 - log_z[1])) / 2
    assert float(task.loss(model, torch.zeros(2, 13, dtype=torch.float64), label, None)) == pytest.approx(float(expected), rel=1e-14)
    probabilities = task.predict(model, None)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(probabilities[0], torch.exp(logits[0] - log_z[0]))
    from harness.tasks.base import Dataset
    data = Dataset(label, label, label, label)
    metrics = task.metrics(model, data)
    assert metrics["test_accuracy"] == 0.5 and metrics["train_accuracy"] == 0.5
    assert metrics["test_loss"] == pytest.approx(float(expected), rel=1e-14)


ADAM = ["optim=adam", "optim.lr=0.01", "train.steps_per_stage=25", "train.grid_schedule=[]"]


@pytest.mark.parametrize("family,hidden", [("mlp", "[16]"), ("kan", "[4]")])
def test_tiny_runs_on_wine_and_diabetes_learn(tmp_path, family, hidden):
    wine = run(compose_config([f"model={family}", f"model.hidden={hidden}", "task=table_wine",
                               "task.n_train=133", "task.n_test=45", *ADAM], tmp_path), **QUIET)
    assert wine.status == "done", wine.error
    assert wine.widths == [13, *eval(hidden), 3]
    assert 0.8 < wine.metrics["test_accuracy"] <= 1  # chance is 1/3
    assert wine.metrics["train_accuracy"] > 0.8 and wine.metrics["test_loss"] < math.log(3)
    assert wine.stages[-1]["metrics"] == wine.metrics
    # test_rmse: softmax probabilities against one-hot labels, so at most 1
    assert 0 < wine.test_rmse < wine.test_target_std
    diabetes = run(compose_config([f"model={family}", f"model.hidden={hidden}",
                                   "task=table_diabetes", "task.n_train=331", "task.n_test=111",
                                   *ADAM], tmp_path), **QUIET)
    assert diabetes.status == "done", diabetes.error
    assert math.isfinite(diabetes.test_rmse) and diabetes.test_rmse < 0.9 * diabetes.test_target_std
    assert diabetes.metrics["target_scale"] == pytest.approx(
        float(cached_split(TASK_REGISTRY["table_diabetes"], 0).y_train.std()), rel=1e-12)
    assert diabetes.metrics["test_rmse_original_units"] == pytest.approx(
        diabetes.test_rmse * diabetes.metrics["target_scale"], rel=1e-9)


def test_table_tasks_compose_from_the_registry_with_every_row():
    from hydra import compose, initialize_config_dir
    from tests.helpers import CONFIGS
    for name in [*SKLEARN, "mnist1d"]:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"task={name}", "model.hidden=[3]"])
        task = TASK_REGISTRY[name]
        assert (cfg.task.n_train, cfg.task.n_test) == (task.n_rows_train, task.n_rows_test)
        validate(resolve(cfg))


def test_regression_tables_stack_and_classification_runs_solo(tmp_path):
    """run_many stacks regression tables (plain MSE) with records equal to a solo run's; a
    classification table (its own loss) and a user's file go to the solo trainer."""
    from harness.ensemble.run_many import groupable, run_many
    common = ["model=mlp", "model.hidden=[8]", *ADAM]
    diabetes = ["task=table_diabetes", "task.n_train=331", "task.n_test=111"]
    cfgs = [compose_config([*common, *diabetes, f"seed={seed}"], tmp_path / "many") for seed in (0, 1)]
    wine = compose_config([*common, "task=table_wine", "task.n_train=133", "task.n_test=45"],
                          tmp_path / "many")
    assert groupable(cfgs[0]) and not groupable(wine)
    assert not groupable(compose_config([*common, "task=table_file"]))
    stacked = run_many([*cfgs, wine], **QUIET)
    assert [r.status for r in stacked] == ["done"] * 3
    assert stacked[0].test_rmse != stacked[1].test_rmse
    assert 0.8 < stacked[2].metrics["test_accuracy"] <= 1
    solo = run(compose_config([*common, *diabetes, "seed=0"], tmp_path / "solo"), **QUIET)
    assert stacked[0].test_rmse == pytest.approx(solo.test_rmse, rel=1e-9)
    assert stacked[0].metrics == pytest.approx(solo.metrics, rel=1e-9)
