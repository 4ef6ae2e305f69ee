"""One measured GRPO run in a fresh process: our recipe or the bare script, with the same timers.

    python benchmarks/_worker.py ours|bare OUT.json CONFIG.yaml [--key value ...]

Used by recipe_overhead.py and startup.py; not meant to be run by hand. Both variants get exactly
the same instrumentation: a trainer subclass that appends one TrainerCallback timing every
`on_step_begin` (the interval between two of them is one full optimizer step: generation,
rewards, forward/backward, optimizer, every callback's hooks, logging) and times
`_generate_and_score_completions` and `_calculate_rewards`; for our recipe it also times the time
spent inside rl-math's own callbacks. Wall-clock marks (time.time(), comparable with the parent
process) split the start-up.
"""

from __future__ import annotations

import time

MARKS: dict[str, float] = {"interpreter_ready": time.time()}

import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

LOGGED = ("loss", "reward", "step_time", "completions/mean_length", "grad_norm")


def load_variant(variant: str):
    """Import the recipe module (its imports are the 'imports' phase) and return it."""
    if variant == "ours":
        spec = importlib.util.spec_from_file_location("rl_math_recipe_grpo", ROOT / "recipes" / "grpo.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        # the recipe is a few lines; the method module builds the trainer (through its GRPOTrainer name)
        return sys.modules[module.main.__module__]
    if variant == "bare":
        import bare_grpo

        return bare_grpo
    raise SystemExit(f"unknown variant {variant!r}")


def instrument(trainer_class, sections: dict, marks: dict):
    """`trainer_class` with the benchmark's timers; identical for both variants."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.begins: list[float] = []
            self.ends: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            now = time.perf_counter()
            if not self.begins:
                marks["first_step_begin"] = time.time()
            self.begins.append(now)

        def on_step_end(self, args, state, control, **kwargs):
            if not self.ends:
                marks["first_step_end"] = time.time()
            self.ends.append(time.perf_counter())

    def step_of(timer) -> int:
        return max(0, len(timer.begins) - 1)

    class Timed(trainer_class):
        def __init__(self, *args, callbacks=None, **kwargs):
            marks["trainer_init_start"] = time.time()
            self.bench_timer = StepTimer()
            super().__init__(*args, callbacks=[*(callbacks or []), self.bench_timer], **kwargs)
            for callback in self.callback_handler.callbacks:
                if type(callback).__module__.startswith("rl_math"):
                    _time_hooks(callback, lambda: step_of(self.bench_timer), sections)
            marks["trainer_init_end"] = time.time()

        def _generate_and_score_completions(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super()._generate_and_score_completions(*args, **kwargs)
            finally:
                sections[step_of(self.bench_timer)]["generate_and_score"] += time.perf_counter() - start

        def _calculate_rewards(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super()._calculate_rewards(*args, **kwargs)
            finally:
                sections[step_of(self.bench_timer)]["rewards"] += time.perf_counter() - start

    Timed.__name__ = Timed.__qualname__ = trainer_class.__name__
    return Timed


def _time_hooks(callback, step, sections) -> None:
    """Accumulate the time spent in every on_* hook of `callback` under 'rl_math_callbacks'."""
    for name in dir(callback):
        if not name.startswith("on_"):
            continue
        hook = getattr(callback, name)

        def timed(*args, _hook=hook, **kwargs):
            start = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                sections[step()]["rl_math_callbacks"] += time.perf_counter() - start

        setattr(callback, name, timed)


def _time_model_load(marks: dict) -> None:
    import trl.trainer.grpo_trainer as grpo_module

    original = grpo_module.create_model_from_path

    def timed(*args, **kwargs):
        marks.setdefault("model_load_start", time.time())
        try:
            return original(*args, **kwargs)
        finally:
            marks.setdefault("model_load_end", time.time())

    grpo_module.create_model_from_path = timed


def fingerprint(dataset) -> str:
    text = json.dumps([[row["prompt"], row["answer"]] for row in dataset], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main(argv: list[str]) -> int:
    variant, out_path, *recipe_argv = argv
    module = load_variant(variant)
    MARKS["imports_done"] = time.time()

    import torch

    torch.set_num_threads(1)
    sections: dict = defaultdict(lambda: defaultdict(float))
    timed_class = instrument(module.GRPOTrainer, sections, MARKS)
    module.GRPOTrainer = timed_class  # the recipe module builds the trainer through this name
    _time_model_load(MARKS)
    MARKS["main_start"] = time.time()
    trainer = module.main(recipe_argv, trainer_class=timed_class) if variant == "bare" else module.main(recipe_argv)
    MARKS["main_end"] = time.time()

    timer = trainer.bench_timer
    result = {
        "variant": variant,
        "marks": MARKS,
        "step_begins": timer.begins,
        "step_ends": timer.ends,
        "sections": {str(k): dict(v) for k, v in sections.items()},
        "log": [{k: e[k] for k in LOGGED if k in e} | {"step": e.get("step")} for e in trainer.state.log_history if "loss" in e],
        "data_fingerprint": fingerprint(trainer.train_dataset),
        "callbacks": [type(c).__name__ for c in trainer.callback_handler.callbacks],
        "torch_threads": torch.get_num_threads(),
    }
    Path(out_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
