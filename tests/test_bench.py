"""python -m harness.bench.layers on a tiny size: the JSON carries harness.counting's figures (no timing
assertions: speed is measured by the bench itself, not tested)."""
from __future__ import annotations

import json

import pytest

from harness.bench.layers import LayerSize, basis_kan_configs, main, parse_sizes
from harness.config import KANConfig, MLPConfig, SplineMLPConfig
from harness.counting import flops_forward, n_params


def test_parse_sizes():
    assert parse_sizes("tiny") == [LayerSize(4, 3, 5, 3, 16)]
    assert parse_sizes("8:2:7:2:32,3:3:3:1:4") == [LayerSize(8, 2, 7, 2, 32),
                                                    LayerSize(3, 3, 3, 1, 4)]
    assert len(parse_sizes("default")) == 3


def test_bench_tiny_json_matches_counting(tmp_path, capsys):
    out = tmp_path / "bench.json"
    report = main(["--sizes", "tiny", "--repeats", "2", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(report))
    assert "fast/mlp_matched" in capsys.readouterr().out
    (entry,) = data["sizes"]
    size = LayerSize(**entry["size"])
    results = entry["results"]
    kan = KANConfig(widths=[size.in_features, size.out_features], grid=size.grid, k=size.k)
    # forward + backward = 3x forward (Kaplan et al. 2020), per example x batch
    kan_flops = 3 * flops_forward(kan).total * size.batch
    for name in ("fast", "fast_general", "reference"):
        assert results[name]["flops_fwd_bwd"] == kan_flops
        assert results[name]["n_params"] == n_params(kan)
    if "pykan" in results:
        assert results["pykan"]["flops_fwd_bwd"] == kan_flops
    same_io = MLPConfig(widths=[size.in_features, size.out_features], activation="silu")
    assert results["mlp_same_io"]["flops_fwd_bwd"] == 3 * flops_forward(same_io).total * size.batch
    matched = MLPConfig(widths=[size.in_features, entry["mlp_matched_hidden"], size.out_features],
                        activation="silu")
    assert results["mlp_matched"]["flops_fwd_bwd"] == 3 * flops_forward(matched).total * size.batch
    assert results["mlp_matched"]["n_params"] == n_params(matched)
    # nearest hidden width: within half a hidden unit's parameters of the KAN layer
    assert abs(n_params(matched) - n_params(kan)) <= (size.in_features + size.out_features + 1) / 2
    # the other families' rows: one layer each, charged harness.counting's figures
    for name, cfg in basis_kan_configs(size).items():
        assert results[name]["flops_fwd_bwd"] == 3 * flops_forward(cfg).total * size.batch
        assert results[name]["n_params"] == n_params(cfg)
        assert entry["ratios"][f"{name}_over_fast"] > 0
    # the spline MLP's hidden layer is its [in, out, 1] network without the output Linear
    spline = SplineMLPConfig(widths=[size.in_features, size.out_features, 1], grid=size.grid, k=size.k)
    output_layer = MLPConfig(widths=[size.out_features, 1], activation="silu")
    assert results["spline_mlp"]["n_params"] == n_params(spline) - n_params(output_layer)
    assert results["spline_mlp"]["flops_fwd_bwd"] == \
        3 * (flops_forward(spline).total - flops_forward(output_layer).total) * size.batch
    for res in results.values():
        assert res["gflops_per_s"] == pytest.approx(res["flops_fwd_bwd"] / res["median_ms"] / 1e6)
        assert res["peak_memory_bytes"] >= 0
    assert set(entry["ratios"]) >= {"fast_over_mlp_matched", "reference_over_fast"}
    assert set(data["malloc"]) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}
