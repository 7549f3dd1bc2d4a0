"""Every experiment file composes, every point of its quick size validates, and one tiny point of
each sweep block runs end to end."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Dict, List

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from harness.config import resolve, validate
from harness.run import job_config
from harness.train import run
from tests.helpers import CONFIGS, TINY

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def launch_overrides(experiment: str) -> List[str]:
    """What the experiment's launch command adds: the tune_* recipes run Hydra's Optuna sweeper
    (configs/hydra/sweeper/tune.yaml), once per model family (README "Tuning")."""
    return ["hydra/sweeper=tune"] if experiment.startswith("tune_") else []


def tuned_families() -> str:
    return ",".join(sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml")))


def sweep_blocks(experiment: str) -> List[List[List[str]]]:
    """The experiment's sweep as blocks (one per grid, or one for params alone) of override lists.
    A search range (Optuna's interval) stands for its two ends; a tune_* recipe sweeps every
    model family."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}",
                                                       *launch_overrides(experiment)],
                      return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    params: Dict[str, str] = dict(sweeper.params or {})
    if experiment.startswith("tune_"):
        params["model"] = tuned_families()
    grids = [dict(g) for g in sweeper.get("grids", [])] or [{}]
    parser = OverridesParser.create()
    blocks = []
    for grid in grids:
        assignments = [f"{k}={v}" for k, v in {**grid, **params}.items()]
        axes = []
        for override in parser.parse_overrides(assignments):
            key = override.get_key_element()
            if override.is_interval_sweep():
                values = [str(override.value().start), str(override.value().end)]
            elif override.is_sweep_override():
                values = list(override.sweep_string_iterator())
            else:
                values = [override.get_value_element_as_str()]
            axes.append([f"{key}={v}" for v in values])
        blocks.append([list(point) for point in itertools.product(*axes)])
    return blocks


def compose_point(experiment: str, overrides: List[str], extra: List[str] = (), opened: bool = False):
    """The resolved config of one sweep point; `opened`: inside initialize_config_dir already."""
    if not opened:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            return compose_point(experiment, overrides, extra, opened=True)
    cfg = compose(config_name="config", overrides=[f"experiment={experiment}", *overrides, *extra])
    return resolve(job_config(cfg))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_opens_with_its_command_and_expectation(experiment):
    text = (CONFIGS / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_")
    assert f"python -m harness.run -m experiment={experiment}" in text
    assert "Expect" in text
    assert f"experiment_name: {experiment}" in text


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_sweep_block_validates(experiment):
    blocks = sweep_blocks(experiment)
    assert sum(len(b) for b in blocks) >= 2
    quick = ((experiment.endswith("_quick") or experiment == "quickstart")
             and experiment not in FAIR_COMPARISONS)  # those: every point below, faster
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        for block in blocks:
            for overrides in (block if quick else block[:1] + block[-1:]):
                cfg = compose_point(experiment, overrides, opened=True)
                validate(cfg)
                assert cfg.experiment_name == experiment


@pytest.mark.slow
@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e.endswith("_quick") or e == "quickstart"])
def test_one_tiny_point_per_block_runs(experiment, tmp_path):
    for block in sweep_blocks(experiment):
        # table tasks hold fewer rows than TINY's n_train/n_test: they keep their own sizes
        table = any(o.startswith("task=") and not o.startswith(("task=toy", "task=feynman"))
                    for o in block[0])
        tiny = [o for o in TINY if not (table and o.startswith("task."))]
        cfg = compose_point(experiment, block[0], [*tiny, "train.steps_per_stage=1",
                                                   f"results_root={tmp_path}"])
        result = run(cfg, log=lambda *_: None)
        assert result.status == "done", result.error
        assert len(result.stages) == max(1, len(cfg.train.grid_schedule))
        assert result.experiment == experiment


FAIR_COMPARISONS = ("fair_comparison", "fair_comparison_quick")
# Keys a fair_comparison point varies without changing what Hydra composes: set on one composed
# config per group of the other keys, then resolved (harness/matching.py) and validated.
VARIED = ("seed", "match.by", "match.reference.hidden", "model.hidden")


@pytest.mark.parametrize("experiment", FAIR_COMPARISONS)
def test_fair_comparison_every_point_matches_its_kan_within_tolerance(experiment):
    """Every point composes, resolves and validates; every family with a YAML in configs/model is
    swept; every matched model is within match.tolerance of its reference KAN, by parameters and
    by forward FLOPs, at every KAN size the KANs themselves are run at."""
    from omegaconf import OmegaConf

    groups: Dict[tuple, List[Dict[str, str]]] = {}
    for block in sweep_blocks(experiment):
        for overrides in block:
            assigned = dict(o.split("=", 1) for o in overrides)
            fixed = tuple(sorted((k, v) for k, v in assigned.items() if k not in VARIED))
            groups.setdefault(fixed, []).append({k: v for k, v in assigned.items() if k in VARIED})
    matched, kan_sizes = {}, {}
    for fixed, points in groups.items():
        base = compose_point(experiment, [f"{k}={v}" for k, v in fixed])
        for varied in points:
            cfg = OmegaConf.merge(base, OmegaConf.from_dotlist([f"{k}={v}" for k, v in varied.items()]))
            cfg = resolve(cfg)
            validate(cfg)
            family, task = cfg.model.family, cfg.task.name
            if cfg.match.by == "none":
                kan_sizes.setdefault(task, set()).add(tuple(cfg.model.widths[1:-1]))
                continue
            assert abs(cfg.match.ratio - 1) <= cfg.match.tolerance, (family, task, varied)
            assert cfg.match.reference.family == "kan" and len(cfg.model.widths) == 3
            matched.setdefault((family, task, cfg.match.by), set()).add(tuple(cfg.match.reference.hidden))
    families = {p.stem for p in (CONFIGS / "model").glob("*.yaml")} - {"kan"}
    assert {family for family, _, _ in matched} == families
    for (family, task, by), references in matched.items():
        assert references == kan_sizes[task], (family, task, by)  # the KAN sizes that were run
        assert len(references) >= 4  # a verdict needs 4 sizes
    assert {by for _, _, by in matched} == {"params", "flops"}
