"""Budget-matched baselines (issue 13 item 2, harness/matching.py): a model sized to a reference
model's parameters or forward FLOPs within 5%, resolved before the run id, and said in the record."""
from __future__ import annotations

import math

import pytest

from harness import counting
from harness.config import ConfigError, resolve, validate
from harness.matching import match_width
from harness.models import build_model
from harness.results import load_record, result_of, run_id_of, write_result
from harness.train import resolved_dict, run
from tests.helpers import compose_config, valid_record

KAN_2_5_1 = "match.reference={family: kan, hidden: [5], grid: 5}"


def matched(overrides, tmp_path=None):
    return resolve(compose_config(["task=toy_exp_sin", *overrides], tmp_path))


def numel(model_cfg) -> int:
    return sum(p.numel() for p in build_model(model_cfg).parameters())


def test_mlp_matched_to_a_kan_by_parameters():
    # KAN [2,5,1], G=5, k=3: 15 edges x (G + k coefficients + w_b + w_s) = 150 parameters.
    # MLP [2,w,1] has 4w + 1: w = 37 gives 149 (ratio 0.993), the closest.
    cfg = matched(["model=mlp", "model.hidden=[1]", "match.by=params", KAN_2_5_1])
    validate(cfg)
    assert list(cfg.model.widths) == [2, 37, 1]
    assert (cfg.match.reference_value, cfg.match.value) == (150, 149)
    assert cfg.match.ratio == pytest.approx(149 / 150, abs=1e-6)
    assert numel(cfg.model) == 149  # the built model, not only the formula


def test_mlp_matched_to_a_kan_by_forward_flops_keeps_the_depth():
    cfg = matched(["model=mlp", "model.hidden=[1]", "match.by=flops", KAN_2_5_1])
    assert list(cfg.model.widths) == [2, 149, 1]
    assert (cfg.match.reference_value, cfg.match.value) == (1788, 1789)
    assert counting.flops_forward(cfg.model).total == 1789
    deep = matched(["model=mlp", "model.hidden=[1,1]", "match.by=flops",
                    "match.reference={family: kan, hidden: [5,5], grid: 10}"])
    assert list(deep.model.widths) == [2, 46, 46, 1]  # depth from the model's own hidden
    assert (deep.match.reference_value, deep.match.value) == (5103, 5061)
    assert abs(deep.match.ratio - 1) <= 0.05


def test_kan_matched_to_an_mlp_keeps_its_grid():
    # MLP [2,40,1]: 161 parameters; KAN [2,w,1] at G=3 has 3w x (3+3+2) = 24w: w = 7 gives 168.
    cfg = matched(["model=kan", "model.grid=3", "model.hidden=[1]", "match.by=params",
                   "match.reference={family: mlp, hidden: [40]}"])
    assert (list(cfg.model.widths), cfg.model.grid) == ([2, 7, 1], 3)
    assert (cfg.match.reference_value, cfg.match.value) == (161, 168)
    assert numel(cfg.model) == 168


def test_the_width_search_finds_the_closest_width_by_brute_force():
    cfg = compose_config(["model=mlp", "task=toy_exp_sin", "model.widths=[2,1,1,1]"])
    size = lambda w: w * w + 5 * w + 1  # MLP [2,w,w,1]: 2w+w + w*w+w + w+1
    for target in (30, 200, 1234, 9999, 123457):
        found = match_width(cfg.model, target, "params", tolerance=0.5)
        best = min(range(1, 1000), key=lambda w: abs(math.log(size(w) / target)))
        assert found.widths == [2, best, best, 1] and found.value == size(best), target


def test_an_unreachable_match_is_one_line_naming_the_closest_ratio():
    # KAN [2,w,1] at G=5 costs 30 parameters per unit of width: 257 (MLP [2,64,1]) lies between
    # w = 8 (240, ratio 0.934) and w = 9 (270, ratio 1.051).
    with pytest.raises(ConfigError) as error:
        matched(["model=kan", "model.hidden=[1]", "match.by=params",
                 "match.reference={family: mlp, hidden: [64]}"])
    message = str(error.value)
    assert "\n" not in message and "ratio 1.051" in message and "[2, 9, 1]" in message
    assert "257 parameters" in message
    with pytest.raises(ConfigError, match="tolerance"):
        matched(["model=mlp", "model.hidden=[1]", "match.by=params", "match.tolerance=0", KAN_2_5_1])
    with pytest.raises(ConfigError, match="Key 'grid' not in 'MLPConfig'"):
        matched(["model=kan", "model.hidden=[1]", "match.by=params",
                 "match.reference={family: mlp, hidden: [64], grid: 5}"])
    with pytest.raises(ConfigError, match="match.by='weights'"):
        matched(["model=mlp", "model.hidden=[1]", "match.by=weights", KAN_2_5_1])


def test_matched_widths_are_in_the_run_id_and_resolving_twice_changes_nothing():
    by_params = matched(["model=mlp", "model.hidden=[1]", "match.by=params", KAN_2_5_1])
    by_flops = matched(["model=mlp", "model.hidden=[1]", "match.by=flops", KAN_2_5_1])
    again = resolve(by_params)
    assert resolved_dict(again) == resolved_dict(by_params)
    assert run_id_of(resolved_dict(by_params)) != run_id_of(resolved_dict(by_flops))
    # the objective only picks what the task function returns: not part of the run id
    other = resolved_dict(by_params)
    other["objective"] = "test_rmse"
    assert run_id_of(other) == run_id_of(resolved_dict(by_params))


def test_runs_without_a_match_keep_the_run_id_they_had_before_matching_existed():
    cfg = resolved_dict(resolve(compose_config(["model=mlp", "task=toy_exp_sin"])))
    before = {key: value for key, value in cfg.items() if key != "match"}
    before["optim"] = {key: value for key, value in cfg["optim"].items() if key != "lr_scale"}
    assert run_id_of(cfg) == run_id_of(before)


def test_lr_scale_is_folded_into_lr():
    cfg = resolve(compose_config(["model=mlp", "optim=adam", "optim.lr_scale=3.0"]))
    assert (cfg.optim.lr, cfg.optim.lr_scale) == (pytest.approx(3e-3), 1.0)
    with pytest.raises(ConfigError, match="lr_scale"):
        resolve(compose_config(["model=mlp", "optim=adam", "optim.lr_scale=-1.0"]))


def test_the_record_says_what_the_run_was_matched_to(tmp_path):
    cfg = matched(["model=mlp", "model.hidden=[1]", "match.by=params", KAN_2_5_1], tmp_path)
    result = run(cfg, log=lambda *_: None)
    assert result.status == "done", result.error
    assert result.matched == {"by": "params", "reference_value": 150, "value": 149,
                              "ratio": pytest.approx(0.993333),
                              "reference": {"family": "kan", "hidden": [5], "widths": None,
                                            "grid": 5, "k": None, "options": {}}}
    assert result.n_params == result.matched["value"]
    record = load_record(tmp_path / result.run_id)
    assert record["matched"]["reference_value"] == 150
    plain = run(compose_config(["model=mlp", "task=toy_exp_sin"], tmp_path), log=lambda *_: None)
    assert plain.matched is None


def test_records_without_the_field_stay_valid(tmp_path):
    record = valid_record()
    assert "matched" not in record
    write_result(tmp_path, result_of(record))
    loaded = load_record(tmp_path)
    assert isinstance(loaded, dict) and loaded["matched"] is None
