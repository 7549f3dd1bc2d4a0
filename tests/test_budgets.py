"""Equal budgets and equal ranges (issues 9 and 10): in every experiment, per task, KANs and MLPs get
the same seeds and the same optimizer steps; the claims experiments include the paper's KAN shapes
and MLPs down to the paper's smallest KANs' parameter counts."""
from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Set, Tuple

import pytest
from hydra import compose, initialize_config_dir

from harness.config import KANConfig, MLPConfig
from harness.counting import n_params
from harness.tasks import TASK_REGISTRY
from harness.tasks.feynman_dimensionless import FEYNMAN_DIMENSIONLESS_EQUATIONS
from harness.tasks.special import PAPER_KAN_SHAPES
from tests.helpers import CONFIGS
from tests.test_experiments import EXPERIMENTS, compose_point, sweep_blocks

Shape = Tuple[int, ...]
# The paper's §3.1 KAN shapes (Fig. 3.1).
TOY_SHAPES: Dict[str, Tuple[Shape, ...]] = {
    "toy_bessel": ((1, 1),), "toy_exp_sin": ((2, 1, 1),), "toy_xy": ((2, 2, 1),),
    "toy_exp_sin100": ((100, 1, 1),), "toy_exp_sin4": ((4, 4, 2, 1), (4, 2, 2, 1)),
}
# Per claims experiment: the paper's shapes every task's KANs must include (any one of them for the
# quick sizes when the paper lists alternatives).
FEYNMAN_FULL = {e.task_name: (e.human_shape, e.minimal_shape, e.best_shape)
                for e in FEYNMAN_DIMENSIONLESS_EQUATIONS}
FEYNMAN_MINIMAL = {e.task_name: (e.minimal_shape,) for e in FEYNMAN_DIMENSIONLESS_EQUATIONS}
SPECIAL_FULL = {name: shapes for name, shapes in PAPER_KAN_SHAPES.items()}
SPECIAL_MINIMAL = {name: (shapes[0],) for name, shapes in PAPER_KAN_SHAPES.items()}
PAPER_SHAPES = {
    "toy_scaling": (TOY_SHAPES, all), "toy_scaling_quick": (TOY_SHAPES, any),
    "toy_scaling_medium": (TOY_SHAPES, all),
    "special_functions": (SPECIAL_FULL, all), "special_functions_quick": (SPECIAL_MINIMAL, all),
    "special_functions_medium": (SPECIAL_MINIMAL, all),
    "feynman": (FEYNMAN_FULL, all), "feynman_quick": (FEYNMAN_MINIMAL, all),
    "feynman_medium": (FEYNMAN_MINIMAL, all),
}
# Run counts of each sweep, stated in the experiment files' opening comments.
SWEEP_SIZES = {"toy_scaling": 243, "toy_scaling_quick": 65, "toy_scaling_medium": 944,
               "special_functions": 747, "special_functions_quick": 75,
               "special_functions_medium": 270, "feynman": 1392, "feynman_quick": 135,
               "feynman_medium": 486}
IDENTITY_KEYS = ("model", "task", "seed")


@dataclass(frozen=True)
class Point:
    family: str
    task: str
    seed: int
    steps: int  # optimizer steps of the whole run: stages x steps_per_stage
    widths: Shape


@lru_cache(maxsize=None)
def defaults(experiment: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="config", overrides=[f"experiment={experiment}"])


@lru_cache(maxsize=None)
def total_steps(experiment: str, other: Tuple[str, ...]) -> int:
    """Optimizer steps of a run, composed with the point's overrides other than its identity."""
    train = compose_point(experiment, list(other)).train
    return train.steps_per_stage * max(1, len(train.grid_schedule))


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def sweep_points(experiment: str) -> List[Point]:
    """Every point of the experiment's sweep, by family, task, seed, steps and widths."""
    base = defaults(experiment)
    points = []
    for block in sweep_blocks(experiment):
        for overrides in block:
            assigned = dict(o.split("=", 1) for o in overrides)
            other = tuple(o for o in overrides if o.split("=", 1)[0] not in IDENTITY_KEYS
                          and not o.startswith(("model.", "task.")))
            family = assigned.get("model", base.model.family)
            task = assigned.get("task", base.task.name)
            hidden = _value(assigned["model.hidden"]) if "model.hidden" in assigned else None
            if hidden is None and "model.widths" not in assigned:
                hidden = base.model.get("hidden")
            if hidden is not None:
                spec = TASK_REGISTRY[task]
                widths = (spec.d_in, *hidden, spec.d_out)
            else:
                widths = tuple(_value(assigned.get("model.widths", str(list(base.model.widths)))))
            points.append(Point(family, task, int(assigned.get("seed", base.seed)),
                                total_steps(experiment, other), widths))
    return points


def parameters_at_first_grid(point: Point) -> int:
    if point.family == "kan":
        return n_params(KANConfig(widths=list(point.widths)), grid=3)  # G = 3: the paper's first stage
    return n_params(MLPConfig(widths=list(point.widths)))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_family_gets_the_same_seeds_and_steps_per_task(experiment):
    """Every family on a task (kan and mlp at least; the other registered families where the
    experiment has them) gets the same seeds and the same optimizer steps."""
    seeds: Dict[Tuple[str, str], Set[int]] = defaultdict(set)
    steps: Dict[Tuple[str, str], Set[int]] = defaultdict(set)
    for point in sweep_points(experiment):
        seeds[point.task, point.family] |= {point.seed}
        steps[point.task, point.family] |= {point.steps}
    tasks = {task for task, _ in seeds}
    for task in sorted(tasks):
        families = sorted(f for t, f in seeds if t == task)
        assert {"kan", "mlp"} <= set(families), f"{experiment}: {task} lacks a family ({families})"
        assert len({frozenset(seeds[task, f]) for f in families}) == 1, (
            f"{experiment}: {task} seeds " + "; ".join(f"{f} {sorted(seeds[task, f])}" for f in families))
        assert len(set().union(*(steps[task, f] for f in families))) == 1, (
            f"{experiment}: {task} steps " + "; ".join(f"{f} {steps[task, f]}" for f in families))


@pytest.mark.parametrize("experiment", sorted(PAPER_SHAPES))
def test_claims_sweeps_cover_the_papers_shapes_and_the_same_sizes(experiment):
    shapes, quantifier = PAPER_SHAPES[experiment]
    points = sweep_points(experiment)
    assert len(points) == SWEEP_SIZES[experiment]
    assert f"{SWEEP_SIZES[experiment]:,} runs" in (CONFIGS / "experiment" / f"{experiment}.yaml").read_text()
    kan_widths: Dict[str, Set[Shape]] = defaultdict(set)
    smallest: Dict[Tuple[str, str], int] = {}
    for point in points:
        if point.family == "kan":
            kan_widths[point.task].add(point.widths)
        size = parameters_at_first_grid(point)
        smallest[point.task, point.family] = min(size, smallest.get((point.task, point.family), size))
    assert set(kan_widths) == set(shapes), experiment
    for task, paper in shapes.items():
        assert quantifier(shape in kan_widths[task] for shape in paper), (task, paper, kan_widths[task])
        # MLPs reach down to the smallest KAN's parameter count at the paper's first grid (G = 3).
        assert smallest[task, "mlp"] <= smallest[task, "kan"], (task, smallest[task, "mlp"],
                                                               smallest[task, "kan"])


def test_paper_minimal_kans_are_as_small_as_the_paper_says():
    # 8 parameters per edge at G = 3 (G + k coefficients, w_b, w_s): [2,1,1] 3 edges, [2,2,1] 6,
    # [2,2,1,1] 7, [2,3,1] 9, [2,4,1] 12, iv's [2,4,3,2,1,1] 8 + 12 + 6 + 2 + 1 = 29.
    sizes = {n_params(KANConfig(widths=list(shapes[0])), grid=3) for shapes in PAPER_KAN_SHAPES.values()}
    assert sizes == {8 * edges for edges in (3, 6, 7, 9, 12, 29)}
