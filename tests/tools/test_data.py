"""`rl-math data CONFIG --split S [--jsonl FILE]`: the rows a run with that config would use."""

import json

from rl_math.cli import main
from rl_math.tasks.loading import load_problems

CONFIG = """\
dataset_name: rl-math:arithmetic?worked=true&train_size=30&validation_size=5&test_size=8
prompt_format: boxed
learning_rate: 1.0e-4
max_train_samples: 10
seed: 3
"""


def test_writes_the_split_a_run_would_use_with_question_and_gold(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "test.jsonl"
    assert main(["data", str(config), "--split", "test", "--jsonl", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = load_problems("rl-math:arithmetic?worked=true&train_size=30&validation_size=5&test_size=8", "test")
    assert [r["question"] for r in rows] == expected["question"]
    assert [r["answer"] for r in rows] == [a.rsplit("#### ", 1)[1] for a in expected["answer"]]


def test_the_train_split_is_the_sampled_subset_the_config_asks_for(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    assert main(["data", str(config)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 10 and all(r["solution"].endswith(f"#### {r['answer']}") for r in rows)


def test_never_overwrites_and_names_a_bad_split(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    existing = tmp_path / "rows.jsonl"
    existing.write_text("keep me\n")
    assert main(["data", str(config), "--jsonl", str(existing)]) == 2
    assert existing.read_text() == "keep me\n" and "never overwrites" in capsys.readouterr().err
    assert main(["data", str(config), "--split", "tset"]) == 2
    assert "not 'tset'" in capsys.readouterr().err
