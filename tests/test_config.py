"""Config validation and config groups (GitHub issue 12): every value is checked before any work,
with one line naming the key and exit code 2; schema nodes are not options; task options come from
the task registry (issue 11 item 4); an unusable results_root is one line before anything is written.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore

from harness.config import ConfigError, validate
from harness.models import FAMILY_REGISTRY
from harness.tasks import TASK_REGISTRY
from tests.helpers import CONFIGS, ROOT, TINY, compose_config, run_cli

ERROR = "kanscale: config error: "

# ---- the table: one CLI probe per row ---------------------------------------------------
# Launched together (they only compose and validate), so the rows cost about one interpreter start.
ROWS: Dict[str, List[str]] = {
    "log_every": ["train.log_every=0"],
    "checkpoint_every": ["train.checkpoint_every=0"],
    "weight_decay": ["optim=adam", "optim.weight_decay=-1"],
    "shrinking_grid": ["train.grid_schedule=[10,5]"],
    "max_iter": ["optim.max_iter=0"],
    "schema_node": ["model=base_kan"],
}
SWEEP = ["-m", "seed=0,1"]


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[bool]:
    """Make `path` a folder this process cannot write; yields False where that is impossible.
    chmod for a normal user; root ignores modes, so for root a read-only tmpfs is mounted on it."""
    path.mkdir(parents=True)
    path.chmod(0o555)
    mounted = False
    if os.access(path, os.W_OK):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                                 capture_output=True).returncode == 0
    try:
        yield not os.access(path, os.W_OK)
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)
        path.chmod(0o755)


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("probes")
    a_file = root / "results.txt"
    a_file.write_text("not a folder")
    return {"root": root, "file": a_file, "ro": root / "ro"}


@pytest.fixture(scope="module")
def probes(paths) -> Dict[str, subprocess.CompletedProcess]:
    root, a_file, ro = paths["root"], paths["file"], paths["ro"]
    argvs = {"help": ["--help"]}
    for name, args in ROWS.items():
        argvs[name] = [*TINY, f"results_root={root / name}", *args]
    for label, results_root in [("file", a_file), ("below_file", a_file / "sub"),
                                ("read_only", ro / "results")]:
        argvs[label] = [*TINY, f"results_root={results_root}"]
        if label != "below_file":
            argvs[f"{label}_sweep"] = [*SWEEP, *TINY, f"results_root={results_root}"]
    argvs["bad_point"] = [*SWEEP, *TINY, f"results_root={root / 'ok'},{a_file}"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    done = {}
    with read_only_dir(ro) as read_only:
        if not read_only:
            for name in ("read_only", "read_only_sweep"):
                del argvs[name]
        running = {name: subprocess.Popen([sys.executable, "-m", "harness.run", *argv], cwd=ROOT,
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True)
                   for name, argv in argvs.items()}
        for name, process in running.items():
            out, err = process.communicate(timeout=600)
            done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    for name in ROWS:
        assert not (root / name).exists(), f"{name}: something was written before the error"
    assert a_file.read_text() == "not a folder"
    return done


def assert_one_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [ERROR + message]


def test_log_every_zero_is_one_line(probes):
    assert_one_line(probes["log_every"], "train.log_every=0 must be >= 1 (log the loss every N steps)")


def test_checkpoint_every_zero_is_one_line(probes):
    assert_one_line(probes["checkpoint_every"],
                    "train.checkpoint_every=0 must be >= 1 (checkpoint every N steps; every stage "
                    "end checkpoints anyway, so a large value means stage ends only)")


def test_negative_weight_decay_is_one_line(probes):
    assert_one_line(probes["weight_decay"], "optim.weight_decay=-1.0 must be >= 0 (0 = none)")


def test_shrinking_grid_schedule_is_refused(probes):
    assert_one_line(probes["shrinking_grid"],
                    "train.grid_schedule=[10, 5] shrinks at stage 1 (10 -> 5); grid extension only "
                    "refines: make it non-decreasing")


def test_max_iter_zero_is_one_line(probes):
    assert_one_line(probes["max_iter"], "optim.max_iter=0 must be >= 1 (L-BFGS iterations per "
                                        "step; 0 would train nothing; pykan: 20)")


def test_schema_nodes_are_not_options(probes):
    """Hydra's own compose error (exit 1, like any unknown option): it names the option and lists
    only the real ones."""
    result = probes["schema_node"]
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "In 'config': Could not find 'model/base_kan'"
    listed = lines[lines.index("Available options in 'model':") + 1:]
    n_models = len(FAMILY_REGISTRY)  # one YAML per registered family, no schema nodes
    assert [line.strip() for line in listed[:n_models]] == sorted(FAMILY_REGISTRY)
    assert not listed[n_models].startswith("\t")


def test_help_lists_only_real_options(probes):
    result = probes["help"]
    assert result.returncode == 0
    groups = dict(re.findall(r"^(model|optim|task): (.*)$", result.stdout, re.MULTILINE))
    assert groups["model"] == ", ".join(sorted(FAMILY_REGISTRY))
    assert groups["optim"] == "adam, adamw, lbfgs"
    assert groups["task"].split(", ") == sorted(TASK_REGISTRY)  # every registered task, no more
    section = result.stdout.split("== Config groups")[1].split("== Defaults")[0]
    options = [o for line in section.splitlines()[1:] if ": " in line
               for o in line.split(": ", 1)[1].split(", ")]
    assert len(options) > 60 and not [o for o in options if o.startswith(("base_", "schema_"))]


@pytest.mark.parametrize("sweep", [False, True], ids=["single", "sweep"])
def test_read_only_results_root_is_one_line(probes, paths, sweep):
    name = "read_only_sweep" if sweep else "read_only"
    if name not in probes:
        pytest.skip("cannot make a read-only folder here (root without mount)")
    assert_one_line(probes[name], f"results_root='{paths['ro'] / 'results'}': {paths['ro']} is not "
                                  f"writable (read-only); set results_root to a writable folder")


@pytest.mark.parametrize("name", ["file", "file_sweep", "below_file"])
def test_results_root_that_is_a_file_is_one_line(probes, paths, name):
    root = paths["file"] / "sub" if name == "below_file" else paths["file"]
    assert_one_line(probes[name], f"results_root='{root}': {paths['file']} is a file, not a folder; "
                                  f"set results_root to a folder (it is created if missing)")


def test_sweep_point_with_a_bad_results_root_stops_the_sweep(probes, paths):
    """A point's own results_root is checked with every point, before any point runs."""
    result = probes["bad_point"]
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"{ERROR}sweep point #1 ")
    assert not list((paths["root"] / "ok").glob("*/result.json"))


# ---- validate(): every field has a check --------------------------------------------------------

BAD_VALUES = [
    ("model.grid_range=[1.0,-1.0]", "model.grid_range=[1.0, -1.0] must be finite and increasing"),
    ("model.grid_range=[-1.0,0.0,1.0]", "model.grid_range=[-1.0, 0.0, 1.0] must be two numbers"),
    ("model.noise_scale=-0.1", "model.noise_scale=-0.1 must be >= 0"),
    ("model.grid_eps=1.5", "model.grid_eps=1.5 must be in [0, 1]"),
    ("model.base_activation=relu", "model.base_activation='relu': choose silu or none"),
    ("model.implementation=cuda", "model.implementation='cuda': choose reference or fast"),
    ("task.n_train=0", "task.n_train=0 must be positive"),
    ("task.n_test=-1", "task.n_test=-1 must be positive"),
    ("optim.lr=0", "optim.lr=0.0 must be positive"),
    ("optim.weight_decay=0.1", "optim.weight_decay=0.1 is not applied by lbfgs"),
    ("optim.batch_size=0", "optim.batch_size=0 must be positive, or -1 for full batch"),
    ("optim.history_size=0", "optim.history_size=0 must be >= 1"),
    ("optim.line_search=armijo", "optim.line_search='armijo': choose strong_wolfe or none"),
    ("optim.tolerance_grad=-1", "optim.tolerance_grad=-1.0 must be >= 0"),
    ("optim.tolerance_change=-1", "optim.tolerance_change=-1.0 must be >= 0"),
    ("train.steps_per_stage=0", "train.steps_per_stage=0 must be >= 1"),
    ("train.grid_schedule=[3,0]", "train.grid_schedule[1]=0 must be >= 1"),
    ("train.update_grid_every=-1", "train.update_grid_every=-1 must be >= 0 (0 = no grid updates)"),
    ("train.update_grid_until=-1", "train.update_grid_until=-1 must be >= 0"),
    ("train.max_loss=0", "train.max_loss=0.0 must be positive"),
    ("train.max_loss=nan", "train.max_loss=nan must be positive"),
    ("experiment_name=a/b", "experiment_name='a/b' must be a non-empty name without '/'"),
    ("experiment_name=''", "experiment_name='' must be a non-empty name without '/'"),
    ("dtype=float16", "dtype='float16': choose float32 or float64"),
    ("device=tpu", "device='tpu': choose cpu, cuda or auto"),
    ("num_threads=-1", "num_threads=-1 must be >= 0"),
    ("wandb.mode=cloud", "wandb.mode='cloud': choose offline, online or disabled"),
]


def test_wandb_mode_defaults_to_the_environment(monkeypatch):
    """configs/config.yaml: wandb.mode is ${oc.env:WANDB_MODE,offline}; an override still wins."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        plain = compose(config_name="config")
        overridden = compose(config_name="config", overrides=["wandb.mode=online"])
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert plain.wandb.mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert plain.wandb.mode == "disabled" and overridden.wandb.mode == "online"
    monkeypatch.setenv("WANDB_MODE", "cloud")
    with pytest.raises(ConfigError, match=r"^wandb.mode='cloud' \(from the WANDB_MODE environment "
                                          r"variable\): choose offline, online or disabled$"):
        validate(plain)


@pytest.mark.parametrize("override,message", BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_validate_refuses_with_one_line(tmp_path, override, message):
    cfg = compose_config([override], tmp_path)
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("overrides", [
    [],
    ["train.grid_schedule=[3,3,5]"],  # equal neighbours: a stage on the same grid
    ["optim=adamw"], ["optim=adam", "optim.weight_decay=0.01"],
    ["train.update_grid_every=0", "train.update_grid_until=0"],
    ["model.noise_scale=0"],
    ["model=mlp", "model.widths=[2,4,1]", "train.grid_schedule=[1,2]"],
])
def test_validate_accepts_good_values(tmp_path, overrides):
    validate(compose_config(overrides, tmp_path))


# ---- task options come from the task registry ---------------------------------------------------

def test_every_registered_task_is_a_task_option():
    stored = {name.removesuffix(".yaml") for name in ConfigStore.instance().list("task")}
    assert stored == set(TASK_REGISTRY)


def test_no_task_yaml_duplicates_the_registry():
    """configs/task/ is gone: a YAML file there would shadow the registry's option."""
    yamls = {p.stem for p in (CONFIGS / "task").glob("*.yaml")} if (CONFIGS / "task").exists() else set()
    assert not yamls & set(TASK_REGISTRY)


@pytest.mark.parametrize("name,n_train", [("special_jv", 1000), ("pde_poisson", 10000),
                                          ("continual_peaks", 500)])
def test_task_option_composes_with_its_sizes(name, n_train):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"task={name}"])
    assert (cfg.task.name, cfg.task.n_train, cfg.task.n_test, cfg.task.seed) == (name, n_train, 1000, 0)


def test_task_option_runs_end_to_end(tmp_path):
    """`task=special_jv` from the registry, no YAML: a tiny real run."""
    result = run_cli([*TINY, "task=special_jv", "model.widths=[2,2,1]", "train.steps_per_stage=2",
                      f"results_root={tmp_path}"])
    assert result.returncode == 0, result.stderr
    (record,) = list(tmp_path.glob("*/result.json"))
    data = json.loads(record.read_text())
    assert data["task"] == "special_jv" and data["status"] == "done"
