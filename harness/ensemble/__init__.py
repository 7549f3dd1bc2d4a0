"""Many small models at once (GitHub issues 6 and 11): model stacks with a leading model axis
(`stacked`, `stacked_mlp`: fused KAN and MLP stacks; `member_stack`: any family, a loop over its
solo modules), batched Adam and L-BFGS whose members follow their own trajectories
(`batched_adam`, `batched_lbfgs`), and `run_many.run_many`, which packs sweep points of one shape
into one stack of the training loop (`harness.train.StackTrainer`; `run` is a stack of one)."""
