"""Many small models at once (GitHub issue 6): stacked ensembles with a leading model axis
(`stacked`), batched Adam and L-BFGS whose members follow their own trajectories
(`batched_adam`, `batched_lbfgs`), and `run_many.run_many`, which trains sweep points of one
shape together and records each as `harness.train.run` would."""
