"""Budget-matched baselines: the hidden width at which a model has a reference model's budget.

Yu et al. 2024 ("KAN or MLP: A Fairer Comparison", arXiv 2407.16674) compare families at equal
parameters or equal FLOPs. Here that is configuration: the run config's `match` block
(harness.config.MatchConfig) names a reference model of any family and what to match (`by`), and
harness.config.resolve calls `apply_match`, which gives every hidden layer of the model one width
w (the depth stays the configured one; a family with a grid keeps its grid) and records the two
budgets and their ratio in the match block, before the run id is computed. The record's `matched`
field (harness.results.RunResult) repeats them.

Budgets are the families' own exact counts (family_of(model).n_params / flops_forward /
flops_forward_yu2024) at the configured grid (model.grid), not at the later stages of
train.grid_schedule. Every count grows with w, so the search is a doubling then a bisection for
the first w whose budget reaches the reference's, and the closer (in |log ratio|) of w and w - 1.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Dict, List

from omegaconf import DictConfig, OmegaConf

from harness.config import ConfigError

MAX_WIDTH = 1 << 16  # a hidden width beyond this is not a baseline anyone will train


def _budget_functions() -> Dict[str, Callable[[Any], int]]:
    from harness.models import family_of
    return {
        "params": lambda m: int(family_of(m).n_params(m)),
        "flops": lambda m: int(family_of(m).flops_forward(m).total),
        "flops_yu2024": lambda m: int(family_of(m).flops_forward_yu2024(m)),
    }


MATCH_BY = ("params", "flops", "flops_yu2024")  # `none` switches matching off
BY_WORDS = {"params": "parameters", "flops": "forward FLOPs",
            "flops_yu2024": "forward FLOPs (Yu et al.)"}


@dataclass(frozen=True)
class Match:
    """The matched hidden width and the two budgets (value / reference_value = ratio)."""
    by: str
    widths: List[int]
    reference_value: int
    value: int

    @property
    def ratio(self) -> float:
        return self.value / self.reference_value


def budget(model_cfg: Any, by: str) -> int:
    """The model's parameters or forward FLOPs per example (`by` one of MATCH_BY)."""
    if by not in MATCH_BY:
        raise ConfigError(f"match.by={by!r}: choose none, {', '.join(MATCH_BY)}")
    return _budget_functions()[by](model_cfg)


def reference_config(reference: Any, d_in: int, d_out: int) -> Any:
    """The reference model's full config (reference: harness.config.ReferenceConfig or its node):
    its family's dataclass defaults, then widths [d_in, *hidden, d_out] (or `widths` as written),
    grid, k and `options` where given."""
    from harness.models import FAMILY_REGISTRY
    given = dict(OmegaConf.to_container(OmegaConf.create(reference), resolve=True))
    family = given.get("family")
    if family not in FAMILY_REGISTRY:
        raise ConfigError(f"match.reference.family={family!r}: choose one of {sorted(FAMILY_REGISTRY)}")
    if given.get("hidden") is None and given.get("widths") is None:
        raise ConfigError("match.reference needs hidden (e.g. [5]) or widths")
    fields = {key: given[key] for key in ("family", "widths", "grid", "k") if given.get(key) is not None}
    if given.get("hidden") is not None:
        fields["widths"] = [d_in, *list(given["hidden"]), d_out]
    fields.update(given.get("options") or {})
    try:
        return OmegaConf.merge(OmegaConf.structured(FAMILY_REGISTRY[family].config_cls), fields)
    except Exception as exc:  # a knob the family lacks, or a wrong type
        raise ConfigError(f"match.reference ({family}): {str(exc).splitlines()[0]}") from None


def with_hidden_width(model_cfg: Any, width: int, depth: int) -> Any:
    """A copy of the model config (a plain object: see `plain`) with `depth` hidden layers of
    `width` units."""
    sized = copy.copy(model_cfg)
    widths = list(model_cfg.widths)
    sized.widths = [widths[0], *[width] * depth, widths[-1]]
    return sized


def plain(model_cfg: Any) -> Any:
    """The model config as a plain object (its family's dataclass, or a namespace), so the width
    search does not pay OmegaConf's merge at every step."""
    if isinstance(model_cfg, (DictConfig, dict)):
        model_cfg = OmegaConf.to_object(OmegaConf.create(model_cfg) if isinstance(model_cfg, dict)
                                        else model_cfg)
    return SimpleNamespace(**model_cfg) if isinstance(model_cfg, dict) else model_cfg


def match_width(model_cfg: Any, target: int, by: str, tolerance: float) -> Match:
    """The common hidden width w (depth = the model's) whose budget `by` is closest to `target`;
    ConfigError naming the closest achievable ratio when it is not within `tolerance`."""
    model_cfg = plain(model_cfg)
    widths = list(model_cfg.widths)
    depth = len(widths) - 2

    def measure(w: int) -> Match:
        sized = with_hidden_width(model_cfg, w, depth)
        return Match(by, list(sized.widths), target, budget(sized, by))

    if depth == 0:
        best = measure(1)
    else:
        high = 1
        while measure(high).value < target and high < MAX_WIDTH:
            high *= 2
        low = high // 2 + 1 if high > 1 else 1
        while low < high:  # first w in [low, high] with budget >= target
            mid = (low + high) // 2
            low, high = (mid + 1, high) if measure(mid).value < target else (low, mid)
        candidates = [measure(w) for w in {high, max(1, high - 1)}]
        best = min(candidates, key=lambda m: (abs(math.log(m.ratio)), m.widths[1]))
    if abs(best.ratio - 1.0) > tolerance:
        what = (f"{depth} hidden layer(s) of one width" if depth else "no hidden layer to size")
        raise ConfigError(
            f"match.by={by}: {model_cfg.family} with {what} cannot come within "
            f"{tolerance:.0%} of the reference's {target} {BY_WORDS[by]}; closest is widths "
            f"{best.widths} with {best.value} (ratio {best.ratio:.3f}); change the depth, the "
            f"reference or match.tolerance")
    return best


def apply_match(cfg: Any) -> Match:
    """Set cfg.model.widths to the matched hidden width and fill cfg.match's reference_value,
    value and ratio (cfg: a run config whose model.widths already hold the task's d_in/d_out;
    harness.config.resolve calls this on its own copy)."""
    match = cfg.match
    tolerance = float(match.tolerance)
    if not (math.isfinite(tolerance) and 0 < tolerance < 1):
        raise ConfigError(f"match.tolerance={match.tolerance} must be in (0, 1) (0.05 = within 5%)")
    widths = list(cfg.model.widths)
    reference = reference_config(match.reference, widths[0], widths[-1])
    ref_widths = list(reference.widths)
    if (ref_widths[0], ref_widths[-1]) != (widths[0], widths[-1]):
        raise ConfigError(f"match.reference widths {ref_widths} must start with d_in={widths[0]} "
                          f"and end with d_out={widths[-1]} as the model's (give hidden instead)")
    found = match_width(cfg.model, budget(reference, match.by), match.by, tolerance)
    cfg.model.widths = list(found.widths)
    match.reference_value, match.value, match.ratio = (found.reference_value, found.value,
                                                       round(found.ratio, 6))
    return found
