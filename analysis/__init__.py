"""Analysis of a kanscale results folder: tables, scaling-law fits, exchange rates, figures, report.

Reads only result.json records (or the same records from wandb summaries); imports no torch.

    python -m analysis.collect RESULTS_ROOT [--out runs.parquet]   # run table + counts
    python -m analysis.fit RESULTS_ROOT --x n_params --json        # fit table per family x task
    python -m analysis.plots RESULTS_ROOT --out DIR                # figures
    python -m analysis.report RESULTS_ROOT --out DIR               # report.md + report.html
"""
