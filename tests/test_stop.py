"""A stop request is a value passed into run() (harness.stop): training installs no signal
handlers, and a request set from another thread stops a run at the end of its step with a
checkpoint that resumes to the same numbers."""
from __future__ import annotations

import signal
import threading

import pytest

import harness.faults
from harness.checkpoint import load_checkpoint
from harness.ensemble.run_many import run_many
from harness.stop import StopRequest, on_signals
from harness.train import RunInterrupted, run
from tests.helpers import compose_config

ARGS = ["train.grid_schedule=[3,5]", "train.steps_per_stage=4", "train.checkpoint_every=100",
        "model.widths=[2,2,1]"]
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def handlers():
    return {signum: signal.getsignal(signum) for signum in SIGNALS}


def only_run_dir(root):
    dirs = [d for d in root.iterdir() if not d.name.startswith(".")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_stop_request_keeps_the_first_reason():
    stop = StopRequest()
    assert not stop.requested and stop.reason is None
    stop.request("signal 15")
    stop.request("signal 10")
    assert stop.requested and stop.reason == "signal 15"


def test_on_signals_only_sets_the_request_and_puts_the_handlers_back():
    before = handlers()
    with on_signals(StopRequest()) as stop:
        assert handlers() != before
        signal.raise_signal(signal.SIGUSR1)
        assert stop.requested and stop.reason == f"signal {int(signal.SIGUSR1)}"
    assert handlers() == before


@pytest.mark.parametrize("trainer", ["run", "run_many"])
def test_training_installs_no_signal_handler(tmp_path, monkeypatch, trainer):
    """The SIGTERM/SIGUSR1 handlers seen from a step hook equal those before and after."""
    before, seen = handlers(), []
    original = harness.faults.before_step

    def hook(step, config=None):
        seen.append(handlers())
        return original(step, config)

    monkeypatch.setattr(harness.faults, "before_step", hook)
    cfgs = [compose_config([*ARGS, f"seed={seed}"], tmp_path) for seed in (0, 1)]
    if trainer == "run":
        assert run(cfgs[0], log=lambda *_: None).status == "done"
    else:
        assert [r.status for r in run_many(cfgs, log=lambda *_: None)] == ["done", "done"]
    assert seen and all(during == before for during in seen)
    assert handlers() == before


def test_stop_from_another_thread_checkpoints_at_the_step_end_and_resumes_exactly(tmp_path,
                                                                                  monkeypatch):
    reference = run(compose_config(ARGS, tmp_path / "reference"), log=lambda *_: None)
    stop, at_step = StopRequest(), threading.Event()
    original = harness.faults.before_step

    def hook(step, config=None):
        if step == 5:  # the 6th step, in the second stage: let the other thread stop the run
            at_step.set()
            assert stop.wait(timeout=30)
        return original(step, config)

    requester = threading.Thread(target=lambda: at_step.wait(30) and stop.request("test stop"))
    requester.start()
    monkeypatch.setattr(harness.faults, "before_step", hook)
    cfg = compose_config(ARGS, tmp_path / "interrupted")
    with pytest.raises(RunInterrupted, match="test stop at step 6"):
        run(cfg, log=lambda *_: None, stop=stop)
    requester.join()
    run_dir = only_run_dir(tmp_path / "interrupted")
    assert not (run_dir / "result.json").exists()
    assert load_checkpoint(run_dir).progress["global_step"] == 6  # the end of the step it was in

    monkeypatch.setattr(harness.faults, "before_step", original)
    resumed = run(cfg, log=lambda *_: None)
    assert resumed.status == "done" and resumed.run_id == reference.run_id
    assert resumed.test_rmse == reference.test_rmse
    assert (resumed.n_evals, resumed.train_flops) == (reference.n_evals, reference.train_flops)


def test_a_stop_request_stops_a_stack_at_the_end_of_its_step(tmp_path, monkeypatch):
    """run_many checks the request where run() does: every member checkpoints at the end of the
    step (its model and its slice of the optimizer state), and the re-run resumes each alone to
    the numbers of an uninterrupted packed run."""
    cfgs = [compose_config([*ARGS, f"seed={seed}"], tmp_path / "reference") for seed in (0, 1)]
    reference = run_many(cfgs, log=lambda *_: None)
    stop = StopRequest()
    original = harness.faults.before_step

    def hook(step, config=None):
        if step == 5:  # the 6th step, in the second stage
            stop.request("test stop")
        return original(step, config)

    monkeypatch.setattr(harness.faults, "before_step", hook)
    cfgs = [compose_config([*ARGS, f"seed={seed}"], tmp_path / "stopped") for seed in (0, 1)]
    with pytest.raises(RunInterrupted, match="test stop at step 6"):
        run_many(cfgs, log=lambda *_: None, stop=stop)
    run_dirs = [d for d in (tmp_path / "stopped").iterdir() if not d.name.startswith(".")]
    assert len(run_dirs) == 2 and not any((d / "result.json").exists() for d in run_dirs)
    checkpoints = [load_checkpoint(d) for d in run_dirs]
    assert [c.progress["global_step"] for c in checkpoints] == [6, 6]  # the end of the step
    assert all(c.optimizer is not None for c in checkpoints)

    monkeypatch.setattr(harness.faults, "before_step", original)
    results = run_many(cfgs, log=lambda *_: None)
    assert [(r.status, r.steps) for r in results] == [("done", 8), ("done", 8)]
    for resumed, packed in zip(results, reference):
        assert resumed.run_id == packed.run_id and resumed.test_rmse == packed.test_rmse
        assert (resumed.n_evals, resumed.train_flops) == (packed.n_evals, packed.train_flops)
        assert resumed.stack_size == 2 and resumed.time_measure == "share"
