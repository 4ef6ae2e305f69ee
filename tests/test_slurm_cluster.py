"""slurm/train.sbatch on a real one-node SLURM (Debian's slurm-wlm, run as root on localhost).

tests/test_slurm.py checks the script's commands under stub binaries; here sbatch, srun, scancel
and the requeue are SLURM's own: the smoke GRPO run is preempted (SIGUSR1 to the batch script, as
at a time limit), checkpoints, is requeued and resumes to the end; a run whose step hangs is
ended by the watchdog (status 4) and requeued a bounded number of times. The cluster's
credential lifetime is 10 s (tests/slurm_cluster.sh), so a requeued job restarts in ~12 s
instead of SLURM's default ~2-3 min. Both tests together take ~4 min on a shared 2-core CPU
machine (preempt/requeue/resume 113 s, stall requeue 119 s, cluster start 1.3 s); without
slurm-wlm or root they skip and say why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from recipe_runs import REPO_ROOT, offline_env

pytestmark = pytest.mark.slow
CLUSTER_SCRIPT = REPO_ROOT / "tests" / "slurm_cluster.sh"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = [exe for exe in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(exe) is None]
    if missing:
        pytest.skip(f"SLURM not installed ({', '.join(missing)} missing): apt-get install -y slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("the one-node SLURM cluster runs its daemons as root")
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(state)], capture_output=True, text=True,
                             timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        yield offline_env(SLURM_CONF=str(state / "slurm.conf"), PYTHON=sys.executable)
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(state)], timeout=60)


def _submit(env: dict, logs: Path, *args: str, **extra: str) -> str:
    logs.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["sbatch", "--parsable", "--gpus-per-node=0", f"--output={logs}/%x-%j.out",
         "slurm/train.sbatch", "recipes/grpo.py", *args],
        cwd=REPO_ROOT, env={**env, "GPUS_PER_NODE": "0", "LOG_DIR": str(logs), **extra},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(";")[0]


def _wait_for(condition, timeout_s: float, what: str, logs: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            text = "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.out")))
            pytest.fail(f"{what} did not happen within {timeout_s:.0f} s\n{text}")
        time.sleep(1)


def _job_done(env: dict, job: str) -> bool:
    queue = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], env=env, capture_output=True, text=True)
    return queue.stdout.strip() == ""


def test_a_preempted_job_checkpoints_requeues_and_resumes_to_the_end(cluster, tmp_path):
    out, logs = tmp_path / "run", tmp_path / "logs"
    # a paced reward (1 s a step) keeps the run going until the signal arrives, even on an idle machine
    job = _submit(cluster, logs, "configs/smoke.yaml", "--output_dir", str(out), "--max_steps", "6",
                  "--save_steps", "2", "--eval_accuracy_steps", "0",
                  "--rewards", "[{name: correctness}, {name: 'scripted_rewards:paced', weight: 0.0}]")
    _wait_for(lambda: (out / "checkpoint-2").is_dir(), 300, "a first checkpoint", logs)
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], env=cluster, check=True, timeout=30)
    _wait_for(lambda: _job_done(cluster, job), 400, "the requeued job's end", logs)

    batch_log = (logs / f"rl-math-train-{job}.out").read_text()
    assert "received SIGUSR1" in batch_log and f"requeueing job {job}" in batch_log
    assert f"job {job} restart 1:" in batch_log  # SLURM ran it again
    first_run = (logs / f"rl-math-train-{job}-r0-{os.uname().nodename.split('.')[0]}.out").read_text()
    saved = int(re.search(r"saving a checkpoint at step (\d+)", first_run).group(1))
    second_run = next(logs.glob(f"rl-math-train-{job}-r1-*.out")).read_text()
    assert f"resuming from {out}/checkpoint-{saved}" in second_run
    state = yaml.safe_load((out / "trainer_state.json").read_text())
    assert state["global_step"] == 6 and (out / "model.safetensors").is_file()


def test_a_stalled_job_is_requeued_on_the_watchdogs_status_a_bounded_number_of_times(cluster, tmp_path):
    config = yaml.safe_load((REPO_ROOT / "configs" / "smoke.yaml").read_text())
    config.update(output_dir=str(tmp_path / "run"), max_steps=3, eval_accuracy_steps=0, save_strategy="no",
                  step_timeout_s=10,
                  rewards=[{"name": "correctness"}, {"name": "broken_rewards:hanging_reward", "timeout": 1000}])
    (tmp_path / "stuck.yaml").write_text(yaml.safe_dump(config))
    logs = tmp_path / "logs"
    job = _submit(cluster, logs, str(tmp_path / "stuck.yaml"), MAX_STALL_REQUEUES="1")
    _wait_for(lambda: _job_done(cluster, job), 400, "the stalled job's end", logs)

    batch_log = (logs / f"rl-math-train-{job}.out").read_text()
    assert "training stalled: no progress within step_timeout_s" in batch_log
    assert "(stall requeue 1 of 1)" in batch_log
    assert "training stalled again after 1 stall requeue(s) (MAX_STALL_REQUEUES=1): not requeueing" in batch_log
    assert batch_log.count("training step exited with status 4") == 2
    for run in logs.glob(f"rl-math-train-{job}-r*-*.out"):
        assert "Timeout (0:00:10)!" in run.read_text()  # every attempt logged its stacks
