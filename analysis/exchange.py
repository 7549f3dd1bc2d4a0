"""Exchange rates between two fitted families (e.g. MLP vs KAN) on the same task and x.

At a target loss L*: X_ref(L*) / X_other(L*), each X from inverting its family's fit
(X = ((L* - E) / A)^(-1/alpha)). At a budget X: L_ref(X) / L_other(X). Intervals come from
pairing the i-th bootstrap sample of one fit with the i-th of the other (the resamples are of
independent data, so the pairs are draws from the joint sampling distribution).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from analysis.fit import FitResult


@dataclass(frozen=True)
class ExchangeRate:
    quantity: str  # "x_ratio_at_loss" (X_ref / X_other) or "loss_ratio_at_x" (L_ref / L_other)
    at: float  # the target loss or the budget x
    reference: str  # family in the numerator, e.g. "mlp"
    other: str  # family in the denominator, e.g. "kan"
    estimate: float
    ci_low: float  # 2.5th percentile over bootstrap pairs
    ci_high: float  # 97.5th percentile
    n_pairs: int  # bootstrap pairs with a finite ratio (a target below a floor E gives none)
    keys: Dict[str, Any]  # the other group keys (task, ...) and x
    x: str = ""

    @property
    def straddles_one(self) -> bool:
        """True when the interval contains 1: the data cannot say which family is ahead."""
        return bool(self.ci_low <= 1.0 <= self.ci_high) or not np.isfinite(self.ci_low)

    def describe(self) -> str:
        if self.quantity == "x_ratio_at_loss":
            what = f"{self.x}_{self.reference}/{self.x}_{self.other} at loss {self.at:.3g}"
        else:
            what = f"loss_{self.reference}/loss_{self.other} at {self.x}={self.at:.3g}"
        verdict = "straddles 1: no clear winner" if self.straddles_one else (
            f"{self.other} ahead" if self.estimate > 1 else f"{self.reference} ahead")
        return (f"{what}: {self.estimate:.3g} [{self.ci_low:.3g}, {self.ci_high:.3g}] "
                f"({self.n_pairs} pairs; {verdict})")

    def to_dict(self) -> Dict[str, Any]:
        return {**self.keys, "x": self.x, "quantity": self.quantity, "at": self.at,
                "reference": self.reference, "other": self.other, "estimate": self.estimate,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "n_pairs": self.n_pairs,
                "straddles_one": self.straddles_one}


def _interval(ratios: np.ndarray) -> Tuple[float, float, int]:
    finite = ratios[np.isfinite(ratios) & (ratios > 0)]
    if len(finite) < 2:
        return float("nan"), float("nan"), len(finite)
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high), len(finite)


def _paired(ref: FitResult, other: FitResult) -> Tuple[np.ndarray, np.ndarray]:
    m = min(len(ref.boot_theta), len(other.boot_theta))
    return ref.boot_theta[:m], other.boot_theta[:m]


def x_ratio_at_loss(ref: FitResult, other: FitResult, target_loss: float, reference: str = "mlp",
                    other_name: str = "kan", keys=None, x: str = "") -> ExchangeRate:
    """X_ref / X_other needed to reach target_loss (>1: `other` needs less)."""
    estimate = float(ref.inverse(target_loss) / other.inverse(target_loss))
    ref_theta, other_theta = _paired(ref, other)
    ratios = ref.inverse(target_loss, theta=ref_theta) / other.inverse(target_loss, theta=other_theta)
    low, high, n = _interval(np.asarray(ratios).ravel())
    return ExchangeRate("x_ratio_at_loss", float(target_loss), reference, other_name, estimate,
                        low, high, n, dict(keys or {}), x)


def loss_ratio_at_x(ref: FitResult, other: FitResult, budget: float, reference: str = "mlp",
                    other_name: str = "kan", keys=None, x: str = "") -> ExchangeRate:
    """L_ref(budget) / L_other(budget) (>1: `other` reaches a lower loss)."""
    estimate = float(ref.predict([budget])[0] / other.predict([budget])[0])
    ref_theta, other_theta = _paired(ref, other)
    ratios = ref.predict([budget], theta=ref_theta)[:, 0] / other.predict([budget], theta=other_theta)[:, 0]
    low, high, n = _interval(ratios)
    return ExchangeRate("loss_ratio_at_x", float(budget), reference, other_name, estimate,
                        low, high, n, dict(keys or {}), x)


def default_targets(ref_x, ref_loss, other_x, other_loss) -> Tuple[float, float]:
    """A target loss both families reached (the larger of their best losses) and a budget both
    measured (the smaller of their largest x), so neither ratio extrapolates both fits."""
    return (float(max(np.min(ref_loss), np.min(other_loss))),
            float(min(np.max(ref_x), np.max(other_x))))


def exchange_table(group_fits: Sequence, reference: str = "mlp") -> List[ExchangeRate]:
    """Both exchange rates for every fitted non-reference family against the reference family,
    matching groups (analysis.fit_table.GroupFit) on their other keys and x, at default_targets."""
    fitted = [g for g in group_fits if g.fit is not None and "family" in g.keys]

    def match_key(g):
        return (g.x, tuple(sorted((k, str(v)) for k, v in g.keys.items() if k != "family")))

    refs = {match_key(g): g for g in fitted if g.keys["family"] == reference}
    out = []
    for group in fitted:
        ref = refs.get(match_key(group))
        if ref is None or group.keys["family"] == reference or ref.fit.form == "two_var":
            continue
        keys = {k: v for k, v in group.keys.items() if k != "family"}
        target_loss, budget = default_targets(ref.data[ref.x], ref.data[ref.loss],
                                              group.data[group.x], group.data[group.loss])
        common = dict(reference=reference, other_name=group.keys["family"], keys=keys, x=group.x)
        out.append(x_ratio_at_loss(ref.fit, group.fit, target_loss, **common))
        out.append(loss_ratio_at_x(ref.fit, group.fit, budget, **common))
    return out
