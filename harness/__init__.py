"""kanscale: KAN vs MLP scaling harness (models, tasks, counting, training runs)."""
