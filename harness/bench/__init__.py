"""Benchmarks: timing only, apart from the training code they time (nothing imports them).

    python -m harness.bench.layers     # one layer, forward + backward: fast/reference KAN, pykan, MLPs
    python -m harness.bench.ensemble   # many small runs: stacked ensembles vs one after another
"""
