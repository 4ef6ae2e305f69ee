"""Our recipe and the bare script training side by side in ONE process, taking turns step by step.

    python benchmarks/_interleaved.py OUT.json CONFIG.yaml STEPS [--aa] [-- --key value ...]

Used by recipe_overhead.py (its default mode); not meant to be run by hand. Each participant runs
in its own thread (ours in the main thread, so that its preemption callback installs its signal
handlers as in a real run) with a baton callback: at every `on_step_begin` a participant records
the step it just finished, hands the baton to the next participant and waits for it to come back.
So only one participant runs at a time, and consecutive steps of ours and of the bare script are
a fraction of a second apart: a change in the machine's load hits both alike, which separate
processes minutes apart cannot promise. Each participant keeps its own RNG streams (saved and
restored at every hand-over, seeded identically when training starts), so both do exactly the
computation they would do alone. The baton's own cost (a condition variable and RNG state
copies, tens of µs) is paid equally by every participant.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

TIMEOUT = 900


class Baton:
    """Whose turn it is, among participants that have not finished."""

    def __init__(self, names: list[str]):
        self.order = list(names)
        self.turn = self.order[0]
        self.done: set[str] = set()
        self.failed: BaseException | None = None
        self.cond = threading.Condition()
        self.barrier = threading.Barrier(len(names), timeout=TIMEOUT)
        # set-ups run one at a time: loading models from several threads at once is not safe in transformers
        self.setup_lock = threading.Lock()
        self.setting_up: str | None = None

    def begin_setup(self, name: str) -> None:
        if not self.setup_lock.acquire(timeout=TIMEOUT):
            raise RuntimeError(f"{name}: timed out waiting to set up")
        self.setting_up = name

    def end_setup(self, name: str) -> None:
        if self.setting_up == name:
            self.setting_up = None
            self.setup_lock.release()

    def wait_turn(self, name: str) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.failed is not None or self.turn == name, timeout=TIMEOUT):
                raise RuntimeError(f"{name}: timed out waiting for its turn")
            if self.failed is not None:
                raise RuntimeError(f"{name}: another participant failed") from self.failed

    def pass_on(self, name: str) -> None:
        with self.cond:
            index = self.order.index(name)
            for k in range(1, len(self.order) + 1):
                candidate = self.order[(index + k) % len(self.order)]
                if candidate not in self.done or candidate == name:
                    self.turn = candidate
                    break
            self.cond.notify_all()

    def finish(self, name: str) -> None:
        with self.cond:
            self.done.add(name)
        self.pass_on(name)

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.failed = error
            self.cond.notify_all()
        self.barrier.abort()


def baton_callback(name: str, baton: Baton):
    import numpy as np
    import torch
    from transformers import TrainerCallback, set_seed

    class BatonCallback(TrainerCallback):
        def __init__(self):
            self.busy: list[float] = []
            self.start: float | None = None
            self.rng = None

        def _save(self):
            self.rng = (torch.get_rng_state(), random.getstate(), np.random.get_state())

        def _restore(self):
            torch.set_rng_state(self.rng[0])
            random.setstate(self.rng[1])
            np.random.set_state(self.rng[2])

        def on_train_begin(self, args, state, control, **kwargs):
            baton.end_setup(name)
            baton.barrier.wait()  # every participant has finished its set-up: nothing else runs from here
            baton.wait_turn(name)
            set_seed(args.seed)  # identical RNG streams for every participant

        def on_step_begin(self, args, state, control, **kwargs):
            now = time.perf_counter()
            if self.start is not None:
                self.busy.append(now - self.start)
                self._save()
                baton.pass_on(name)
                baton.wait_turn(name)
                self._restore()
            self.start = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            if self.start is not None:
                self.busy.append(time.perf_counter() - self.start)
            baton.finish(name)

    return BatonCallback()


def main(argv: list[str]) -> int:
    out_path, config, steps, *rest = argv
    aa = "--aa" in rest
    extra = rest[rest.index("--") + 1 :] if "--" in rest else []
    import _worker

    ours_module = _worker.load_variant("ours")
    bare_module = _worker.load_variant("bare")
    import torch

    torch.set_num_threads(1)
    names = ["ours", "bare", "bare again"] if aa else ["ours", "bare"]
    baton = Baton(names)
    workdir = Path(out_path).parent
    trainers: dict[str, object] = {}
    callbacks: dict[str, object] = {}
    sections: dict = {}

    def trainer_class_for(name: str, base):
        from collections import defaultdict

        sections[name] = defaultdict(lambda: defaultdict(float))
        timed = _worker.instrument(base, sections[name], {})
        callback = baton_callback(name, baton)
        callbacks[name] = callback

        class WithBaton(timed):
            def __init__(self, *args, callbacks=None, **kwargs):
                super().__init__(*args, callbacks=[*(callbacks or []), callback], **kwargs)

        WithBaton.__name__ = WithBaton.__qualname__ = base.__name__
        return WithBaton

    def argv_for(name: str) -> list[str]:
        return [
            config, "--max_steps", str(steps), "--output_dir", str(workdir / f"out-{name.replace(' ', '-')}"),
            "--save_strategy", "no", "--logging_steps", "1", "--report_to", "none",
            "--eval_accuracy_steps", "0",  # in-run evaluation is a feature with its own cost, not recipe overhead
            *extra,
        ]

    def run_bare(name: str) -> None:
        try:
            baton.begin_setup(name)
            trainers[name] = bare_module.main(argv_for(name), trainer_class=trainer_class_for(name, bare_module.GRPOTrainer))
        except BaseException as error:  # noqa: BLE001 - hand it to the others and to the main thread
            baton.end_setup(name)
            baton.fail(error)
            trainers[name] = error

    threads = [threading.Thread(target=run_bare, args=(name,), daemon=True) for name in names[1:]]
    ours_module.GRPOTrainer = trainer_class_for("ours", ours_module.GRPOTrainer)
    for thread in threads:
        thread.start()
    try:
        baton.begin_setup("ours")
        trainers["ours"] = ours_module.main(argv_for("ours"))
    except BaseException as error:
        baton.end_setup("ours")
        baton.fail(error)
        raise
    for thread in threads:
        thread.join(TIMEOUT)
    for name in names:
        if isinstance(trainers.get(name), BaseException):
            raise RuntimeError(f"{name} failed") from trainers[name]

    result = {}
    for name in names:
        trainer = trainers[name]
        result[name] = {
            "busy": callbacks[name].busy,
            "sections": {str(k): dict(v) for k, v in sections[name].items()},
            "log": [{k: e[k] for k in _worker.LOGGED if k in e} | {"step": e.get("step")} for e in trainer.state.log_history if "loss" in e],
            "data_fingerprint": _worker.fingerprint(trainer.train_dataset),
            "callbacks": [type(c).__name__ for c in trainer.callback_handler.callbacks],
        }
    Path(out_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
