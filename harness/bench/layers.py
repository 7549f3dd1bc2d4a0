"""Forward+backward time of one layer: fast KAN, reference KAN, pykan, two MLP baselines, and one
layer of each other family (spline-activation MLP, RBF, Chebyshev and Fourier KANs).

    python -m harness.bench.layers [--device cpu|cuda] [--dtype float32|float64] [--sizes default]
                            [--repeats 40] [--json out.json] [--compile]

Implementations are timed interleaved (A B C A B C ...) so that load from other processes hits all
of them alike; the table reports medians. Every step is the forward, a backward with a fixed
cotangent, and gradients for all parameters and for the input (a hidden layer's work; an input
layer's with --no-input-grad). --threads sets torch.set_num_threads (default: torch's choice).

The other families' rows get the B-spline layer's G + k functions per edge (per unit for the
spline MLP): RBF G + k centres, Chebyshev degree G + k - 1, Fourier K = (G + k) // 2 frequencies
(2K functions), so their rows compare layers of (nearly) the same parameter count.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from harness.config import ChebyKANConfig, FourierKANConfig, KANConfig, MLPConfig, RBFKANConfig
from harness.counting import (BACKWARD_FACTOR, flops_train_evaluation, n_params,
                              spline_mlp_layer_flops)
from harness.models import build_model
from harness.models.fast_kan import FastKANLayer
from harness.models.kan import KANLayer
from harness.models.spline_mlp import SplineActivation


@dataclass(frozen=True)
class LayerSize:
    in_features: int
    out_features: int
    grid: int
    k: int
    batch: int

    @property
    def label(self) -> str:
        return f"({self.in_features},{self.out_features},G={self.grid},k={self.k}) B={self.batch}"


SIZE_SETS: Dict[str, Sequence[LayerSize]] = {
    # The three sizes of issue 6, with its reference figures.
    "default": (LayerSize(100, 100, 5, 3, 1024), LayerSize(256, 256, 10, 3, 512),
                LayerSize(784, 64, 5, 3, 256)),
    "tiny": (LayerSize(4, 3, 5, 3, 16),),
}

MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
MALLOC_HINT = ("glibc returns big CPU buffers to the OS after each step; "
               "MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 keeps them "
               "and stabilises timings")
GOAL_VS_MATCHED_MLP = 1.2  # issue 6: fast fwd+bwd <= 1.2x the parameter-matched MLP
GOAL_VS_REFERENCE = 3.0  # issue 6: fast >= 3x faster than the reference


def parse_sizes(spec: str) -> List[LayerSize]:
    """A size-set name (default, tiny) or 'in:out:G:k:batch[,in:out:G:k:batch...]'."""
    if spec in SIZE_SETS:
        return list(SIZE_SETS[spec])
    return [LayerSize(*(int(v) for v in item.split(":"))) for item in spec.split(",")]


def matched_hidden_width(size: LayerSize) -> int:
    """h such that MLP in->h->out (with biases) has the KAN layer's parameter count, nearest."""
    target = n_params(kan_config(size))
    return max(1, round((target - size.out_features) / (size.in_features + 1 + size.out_features)))


def kan_config(size: LayerSize) -> KANConfig:
    return KANConfig(widths=[size.in_features, size.out_features], grid=size.grid, k=size.k)


def mlp_config(widths: List[int]) -> MLPConfig:
    return MLPConfig(widths=widths, activation="silu", bias=True)


class _PykanAdapter(nn.Module):
    """pykan's layer returns (y, preacts, postacts, postspline); keep y."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)[0]


def _pykan_layer(size: LayerSize, device, dtype) -> nn.Module:
    from kan.KANLayer import KANLayer as PykanLayer  # optional dependency (test extra)
    layer = PykanLayer(in_dim=size.in_features, out_dim=size.out_features, num=size.grid, k=size.k,
                       device=str(device))
    nn.Module.to(layer, dtype=dtype)  # pykan overrides .to() to store its argument as the device
    return _PykanAdapter(layer)


def basis_kan_configs(size: LayerSize) -> Dict[str, object]:
    """One layer of each other-basis KAN with the B-spline layer's G + k functions per edge
    (Fourier: the nearest 2K), each family's default options."""
    widths, n = [size.in_features, size.out_features], size.grid + size.k
    return {"rbf_kan": RBFKANConfig(widths=widths, grid=n),
            "cheby_kan": ChebyKANConfig(widths=widths, grid=n - 1),
            "fourier_kan": FourierKANConfig(widths=widths, grid=max(1, n // 2))}


@dataclass
class Candidate:
    name: str
    model: nn.Module
    flops_cfg: object  # config whose harness.counting FLOPs this model is charged
    note: str = ""
    flops_forward: Optional[int] = None  # per example, for a block no config describes alone


def build_candidates(size: LayerSize, device, dtype, compile_fast: bool) -> tuple:
    """The models timed at one size, and notes on any that were skipped."""
    torch.manual_seed(0)
    kan_cfg = kan_config(size)
    fast = FastKANLayer(size.in_features, size.out_features, grid=size.grid, k=size.k)
    reference = KANLayer(size.in_features, size.out_features, grid=size.grid, k=size.k)
    reference.load_state_dict(fast.state_dict())
    # The general (non-uniform) path, as after update_grid_from_samples in training.
    fast_general = FastKANLayer(size.in_features, size.out_features, grid=size.grid, k=size.k)
    fast_general.update_grid_from_samples(torch.rand(4 * size.grid + 64, size.in_features) * 2 - 1)
    hidden = matched_hidden_width(size)
    widths = [size.in_features, hidden, size.out_features]
    mlp_matched = nn.Sequential(nn.Linear(widths[0], hidden), nn.SiLU(),
                                nn.Linear(hidden, widths[2]))
    candidates = [
        Candidate("fast", fast, kan_cfg, "FastKANLayer, uniform grid (closed form)"),
        Candidate("fast_general", fast_general, kan_cfg,
                  "FastKANLayer after update_grid_from_samples (binary search + de Boor)"),
        Candidate("reference", reference, kan_cfg, "KANLayer (Cox-de Boor + one GEMM)"),
        Candidate("mlp_same_io", nn.Linear(size.in_features, size.out_features),
                  mlp_config([size.in_features, size.out_features]), "nn.Linear(in, out)"),
        Candidate("mlp_matched", mlp_matched, mlp_config(widths),
                  f"Linear(in,{hidden}) SiLU Linear({hidden},out): same parameter count"),
    ]
    # the spline MLP's hidden layer: Linear(in, out), then a B-spline (+ w_b silu) per unit
    spline_layer = nn.Sequential(nn.Linear(size.in_features, size.out_features),
                                 SplineActivation(size.out_features, grid=size.grid, k=size.k))
    spline_flops = spline_mlp_layer_flops(size.in_features, size.out_features, size.grid, size.k,
                                          "silu", True).total
    candidates.append(Candidate("spline_mlp", spline_layer, None,
                                f"Linear(in,out) + B-spline per unit (G={size.grid}, k={size.k})",
                                flops_forward=spline_flops))
    for name, cfg in basis_kan_configs(size).items():
        layer = build_model(cfg).layers[0]
        candidates.append(Candidate(name, layer, cfg, f"{type(layer.basis).__name__}, "
                                                      f"grid={cfg.grid}"))
    skipped = []
    try:
        candidates.insert(3, Candidate("pykan", _pykan_layer(size, device, dtype), kan_cfg,
                                       "pykan 0.2.8 KANLayer"))
    except Exception as exc:  # noqa: BLE001 - pykan is optional; say why it is missing
        skipped.append(f"pykan skipped: {type(exc).__name__}: {exc}")
    for cand in candidates:
        cand.model.to(device=device, dtype=dtype)
    if compile_fast:
        compiled = FastKANLayer(size.in_features, size.out_features, grid=size.grid, k=size.k)
        compiled.load_state_dict(fast.state_dict())
        compiled.to(device=device, dtype=dtype)
        candidates.insert(1, Candidate("fast_compiled", torch.compile(compiled), kan_cfg,
                                       "torch.compile(FastKANLayer)"))
    return candidates, skipped


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _step_fn(model: nn.Module, x: torch.Tensor, cotangent: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None
        model(x).backward(cotangent)
    return step


def peak_memory_bytes(step: Callable[[], None], device) -> int:
    """Peak bytes allocated during one step above what was allocated before it.

    CUDA: torch.cuda.max_memory_allocated. CPU: the torch profiler's allocation records (each op's
    net allocation at its start time, plus frees), summed in time order; an estimate, since an op's
    own transient buffers are netted out.
    """
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (e.time_range.start,
         e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage)
        for e in prof.events())
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return int(peak)


@dataclass
class SizeReport:
    size: LayerSize
    mlp_matched_hidden: int
    results: Dict[str, Dict[str, float]] = field(default_factory=dict)
    ratios: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def bench_size(size: LayerSize, device, dtype, repeats: int, compile_fast: bool,
               input_grad: bool = True, warmup: int = 3) -> SizeReport:
    candidates, skipped = build_candidates(size, device, dtype, compile_fast)
    report = SizeReport(size, matched_hidden_width(size), notes=list(skipped))
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(size.batch, size.in_features, generator=gen) * 2 - 1).to(device, dtype)
    x.requires_grad_(input_grad)
    cotangent = torch.randn(size.batch, size.out_features, generator=gen).to(device, dtype)
    steps = {c.name: _step_fn(c.model, x, cotangent) for c in candidates}
    for cand in candidates:
        if cand.name == "fast_compiled":  # first call compiles forward and backward
            _sync(device)
            start = time.perf_counter()
            steps[cand.name]()
            _sync(device)
            report.results.setdefault(cand.name, {})["compile_cold_s"] = time.perf_counter() - start
    for _ in range(warmup):
        for cand in candidates:
            steps[cand.name]()
    times: Dict[str, List[float]] = {c.name: [] for c in candidates}
    for _ in range(repeats):
        for cand in candidates:  # interleaved: A B C A B C ...
            _sync(device)
            start = time.perf_counter()
            steps[cand.name]()
            _sync(device)
            times[cand.name].append(time.perf_counter() - start)
    for cand in candidates:
        median_s = statistics.median(times[cand.name])
        if cand.flops_forward is not None:  # 3x forward, x batch
            flops = (1 + BACKWARD_FACTOR) * cand.flops_forward * size.batch
        else:
            flops = flops_train_evaluation(cand.flops_cfg, size.batch)
        entry = report.results.setdefault(cand.name, {})
        entry.update({
            "median_ms": 1e3 * median_s,
            "min_ms": 1e3 * min(times[cand.name]),
            "flops_fwd_bwd": flops,
            "gflops_per_s": flops / median_s / 1e9,
            "peak_memory_bytes": peak_memory_bytes(steps[cand.name], device),
            "n_params": sum(p.numel() for p in cand.model.parameters() if p.requires_grad),
            "note": cand.note,
        })
    med = {name: entry["median_ms"] for name, entry in report.results.items()}
    report.ratios["fast_over_mlp_matched"] = med["fast"] / med["mlp_matched"]
    report.ratios["fast_general_over_mlp_matched"] = med["fast_general"] / med["mlp_matched"]
    report.ratios["reference_over_fast"] = med["reference"] / med["fast"]
    if "pykan" in med:
        report.ratios["pykan_over_fast"] = med["pykan"] / med["fast"]
    if "fast_compiled" in med:
        report.ratios["fast_compiled_over_mlp_matched"] = med["fast_compiled"] / med["mlp_matched"]
    for name in ("spline_mlp", *basis_kan_configs(size)):
        report.ratios[f"{name}_over_fast"] = med[name] / med["fast"]
    return report


def malloc_settings() -> Dict[str, Optional[str]]:
    return {name: os.environ.get(name) for name in MALLOC_VARIABLES}


def run(sizes: Sequence[LayerSize], device: str = "cpu", dtype: str = "float32", repeats: int = 40,
        compile_fast: bool = False, input_grad: bool = True, threads: int = 0) -> Dict:
    """Benchmark every size; returns the JSON-ready report."""
    if threads > 0:
        torch.set_num_threads(threads)
    torch_dtype = getattr(torch, dtype)
    load_before = os.getloadavg()[0]  # other processes' load makes CPU timings meaningless
    reports = [bench_size(size, device, torch_dtype, repeats, compile_fast, input_grad)
               for size in sizes]
    return {
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "device": device,
        "dtype": dtype,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "input_grad": input_grad,
        "malloc": malloc_settings(),
        "memory_method": ("torch.cuda.max_memory_allocated" if device.startswith("cuda")
                          else "torch profiler allocation records (estimate)"),
        "flop_convention": "harness.counting.flops_train_evaluation: 3x forward FLOPs x batch",
        "goals": {"fast_over_mlp_matched_max": GOAL_VS_MATCHED_MLP,
                  "reference_over_fast_min": GOAL_VS_REFERENCE},
        "sizes": [asdict(r) for r in reports],
    }


def format_table(report: Dict) -> str:
    lines = [f"device={report['device']} dtype={report['dtype']} torch={report['torch']} "
             f"threads={report['threads']} repeats={report['repeats']} input_grad="
             f"{report['input_grad']} (median of interleaved fwd+bwd steps)",
             "malloc: " + ", ".join(f"{k}={v}" for k, v in report["malloc"].items()),
             f"memory: {report['memory_method']}",
             "1-min load average before/after: {:.2f} / {:.2f} (on {} CPUs; above the torch "
             "threads in use means contended timings)".format(*report["load_average_1min"],
                                                             os.cpu_count())]
    if not all(report["malloc"].values()):
        lines.append(f"hint: {MALLOC_HINT}")
    header = f"{'layer':34} {'impl':14} {'ms':>9} {'GFLOP/s':>8} {'peak MB':>8} {'params':>9}"
    for entry in report["sizes"]:
        size = LayerSize(**entry["size"])
        lines += ["", header]
        for name, res in entry["results"].items():
            lines.append(f"{size.label:34} {name:14} {res['median_ms']:9.2f} "
                         f"{res['gflops_per_s']:8.1f} {res['peak_memory_bytes'] / 2**20:8.1f} "
                         f"{res['n_params']:9d}")
        ratios = entry["ratios"]
        verdict_mlp = "met" if ratios["fast_over_mlp_matched"] <= GOAL_VS_MATCHED_MLP else "NOT met"
        verdict_ref = "met" if ratios["reference_over_fast"] >= GOAL_VS_REFERENCE else "NOT met"
        lines.append(f"  fast/mlp_matched = {ratios['fast_over_mlp_matched']:.2f} "
                     f"(goal <= {GOAL_VS_MATCHED_MLP}: {verdict_mlp}); reference/fast = "
                     f"{ratios['reference_over_fast']:.2f} (goal >= {GOAL_VS_REFERENCE}: "
                     f"{verdict_ref})")
        extra = {k: v for k, v in ratios.items()
                 if k not in ("fast_over_mlp_matched", "reference_over_fast")}
        if extra:
            lines.append("  " + "; ".join(f"{k} = {v:.2f}" for k, v in extra.items()))
        if "fast_compiled" in entry["results"]:
            lines.append(f"  torch.compile cold: "
                         f"{entry['results']['fast_compiled']['compile_cold_s']:.1f} s")
        lines += [f"  mlp_matched hidden width = {entry['mlp_matched_hidden']}"]
        lines += [f"  note: {n}" for n in entry["notes"]]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.layers",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--sizes", default="default",
                        help="default, tiny, or in:out:G:k:batch[,in:out:G:k:batch...]")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile(FastKANLayer) and its cold compile")
    parser.add_argument("--no-input-grad", dest="input_grad", action="store_false",
                        help="no gradient for the layer input (an input layer)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 = default")
    args = parser.parse_args(argv)
    report = run(parse_sizes(args.sizes), args.device, args.dtype, args.repeats, args.compile,
                 args.input_grad, args.threads)
    print(format_table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
