"""`rl-math regrade`: saved completions re-scored under every convention, agreeing row by row with
lm-eval's own task pipeline (its filter ensemble and registered exact_match, built from the pinned
YAMLs) and with math-verify's own call."""

import json
from pathlib import Path

import pytest

from rl_math.cli import main
from rl_math.eval.conventions import LM_EVAL_FILTERS, lm_eval_task_config

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "regrade" / "gsm8k_conventions.jsonl"
pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra; pip install -e .[dev]")


def lm_eval_reference(convention: str, completions: list[str], golds: list[str]) -> list[bool]:
    """What lm-eval's evaluator computes: the task's FilterEnsemble on Instances, then process_results's
    call of the registered exact_match with the YAML's arguments."""
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import get_metric
    from lm_eval.filters import build_filter_ensemble

    task_file, filter_name = LM_EVAL_FILTERS[convention]
    config = lm_eval_task_config(task_file)
    steps = next(f["filter"] for f in config["filter_list"] if f["name"] == filter_name)
    ensemble = build_filter_ensemble(filter_name, [(s["function"], {k: v for k, v in s.items() if k != "function"})
                                                   for s in steps])
    instances = [Instance("generate_until", {}, ("", {}), i) for i in range(len(completions))]
    for instance, completion in zip(instances, completions):
        instance.resps = [completion]
    ensemble.apply(instances)
    metric = next(m for m in config["metric_list"] if m["metric"] == "exact_match")
    kwargs = {k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better")}
    exact_match = get_metric("exact_match")
    return [exact_match(references=[gold], predictions=[inst.filtered_resps[filter_name]], **kwargs)["exact_match"] == 1.0
            for inst, gold in zip(instances, golds)]


def math_verify_reference(completions: list[str], golds: list[str]) -> list[bool]:
    from math_verify import parse, verify

    return [bool(verify(parse(gold), parse(completion))) for completion, gold in zip(completions, golds)]


def regrade_rows(tmp_path, path, *extra) -> dict:
    out = tmp_path / "regrade.json"
    assert main(["regrade", str(path), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def check_parity(result: dict, completions: list[str], golds: list[str]) -> None:
    rows = result["rows"]
    assert len(rows) == len(completions)
    for convention in LM_EVAL_FILTERS:
        assert [row[convention] for row in rows] == lm_eval_reference(convention, completions, golds), convention
    assert [row["math_verify"] for row in rows] == math_verify_reference(completions, golds)


def test_regrade_agrees_with_lm_eval_and_math_verify_on_the_fixture_and_with_the_hand_expectations(tmp_path, capsys):
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    result = regrade_rows(tmp_path, FIXTURE, "--task", "gsm8k")
    check_parity(result, [r["completion"] for r in records], [r["gold"] for r in records])
    for record, row in zip(records, result["rows"]):
        for convention, expected in record["expected"].items():
            assert row[convention] is expected, (record["source"], convention)
    printed = capsys.readouterr().out
    assert "strict_match" in printed and "disagreements by kind" in printed
    summary = result["summary"]["models"][str(FIXTURE)]
    assert summary["conventions_disagree"] == sum(len(set(row.values())) > 1 for row in result["rows"])


def test_regrade_agrees_with_lm_eval_on_real_gsm8k_solutions(tmp_path, gsm8k_dir):
    """GSM8K's own solutions (read from ../shared at test time, never copied in) as completions, and their
    last lines rewritten as 'The answer is N.' and as a box, against the gold solutions."""
    golds = [json.loads(line)["answer"] for line in (gsm8k_dir / "test.jsonl").read_text().splitlines()[:60]]
    completions = []
    for gold in golds:
        reasoning, answer = gold.rsplit("####", 1)
        completions += [gold, f"{reasoning}The answer is {answer.strip()}.", f"{reasoning}So \\boxed{{{answer.strip()}}}"]
    golds = [gold for gold in golds for _ in range(3)]
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps({"completion": c, "gold": g}) + "\n" for c, g in zip(completions, golds)))
    result = regrade_rows(tmp_path, path, "--task", "gsm8k")
    check_parity(result, completions, golds)
    assert all(row["strict_match"] for row in result["rows"][::3])  # a gold solution passes lm-eval's strict filter


def test_regrade_reads_lm_evals_log_samples_once_per_document_and_checks_its_recorded_scores(tmp_path, capsys):
    samples = []
    for doc_id, (response, target) in enumerate([("so 9 * 2 = 18\n#### 18", "x\n#### 18"),
                                                 ("The answer is \\boxed{18}.", "x\n#### 18")]):
        for filter_name, score in (("strict-match", float("####" in response)), ("flexible-extract", 1.0)):
            samples.append({"doc_id": doc_id, "doc": {"question": "q", "answer": target}, "target": target,
                            "resps": [[response]], "filtered_resps": ["?"], "filter": filter_name,
                            "metrics": ["exact_match"], "exact_match": score})
    path = tmp_path / "samples_gsm8k_2026-01-01T00-00-00.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    result = regrade_rows(tmp_path, path)
    assert [row["rl_math"] for row in result["rows"]] == [False, True]
    recorded = result["summary"]["models"][str(path)]["lm_eval_recorded"]
    assert recorded == {"flexible_extract": {"accuracy": 1.0, "rows_differing": 0},
                        "strict_match": {"accuracy": 0.5, "rows_differing": 0}}
    assert "lm-eval recorded strict_match 50.0%" in capsys.readouterr().out


def test_regrade_reports_each_model_of_an_evaluation_separately(tmp_path):
    rows = [{"model": m, "question_index": q, "completion": c, "gold": "18"}
            for m, c in (("base", "#### 18"), ("trained", r"\boxed{18}")) for q in range(2)]
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    models = regrade_rows(tmp_path, path)["summary"]["models"]
    assert models["base"]["conventions"]["strict_match"]["accuracy"] == 1.0
    assert models["trained"]["conventions"]["strict_match"]["accuracy"] == 0.0
    assert models["trained"]["conventions"]["rl_math"]["accuracy"] == 1.0


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("{not json\n", "line 1 is not JSON"),
    ('{"text": "x"}\n', "has no 'completion' and 'gold'"),
])
def test_a_file_regrade_cannot_read_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "c.jsonl"
    if content is not None:
        path.write_text(content)
    assert main(["regrade", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
