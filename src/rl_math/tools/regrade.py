"""`rl-math regrade COMPLETIONS.jsonl`: re-score saved completions under every convention, no model needed.

It reads either file a user has at hand:

* rl-math's ``completions.jsonl`` (``recipes/evaluate.py``): one row per completion with at least
  ``completion`` and ``gold`` (and ``model``, ``question_index`` when there);
* lm-evaluation-harness's ``--log_samples`` output (``samples_gsm8k_*.jsonl``): one row per
  document *and filter*; each document is read once (``resps[0][0]`` against ``target``) and the
  ``exact_match`` lm-eval recorded per filter is compared with the one recomputed here.

It prints, per model, each convention's accuracy with its 95 % interval and the disagreements by
kind (which conventions said right, which wrong, how often), so a number can be reconciled with a
paper's. ``--json FILE`` writes ``{"rows": [one dict of booleans per completion, in input order],
"summary": {...}}``. The conventions: :mod:`rl_math.eval.conventions`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_math.eval.conventions import (
    LM_EVAL_MISSING,
    conventions_for,
    disagreements,
    lm_eval_left_out,
    score_all,
)
from rl_math.eval.intervals import accuracy_interval, format_interval
from rl_math.tasks import get_task
from rl_math.tasks.loading import task_name_for

LM_EVAL_FILTER_COLUMNS = {"strict-match": "strict_match", "flexible-extract": "flexible_extract"}


class RegradeError(ValueError):
    """A completions file that cannot be read; one line for the user."""


@dataclass
class Row:
    """One completion to score: its text, its gold, and where it came from."""

    completion: str
    gold: str
    model: str
    question: Any
    recorded: dict[str, bool]  # lm-eval's own exact_match per convention, when the file holds it


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a .jsonl file; a RegradeError naming the line that is not one."""
    path = Path(path)
    if not path.is_file():
        raise RegradeError(f"no such file: {path}")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise RegradeError(f"{path} line {number} is not JSON ({err.msg}); give a .jsonl file") from None
        if not isinstance(row, dict):
            raise RegradeError(f"{path} line {number} is not a JSON object")
        rows.append(row)
    if not rows:
        raise RegradeError(f"{path} has no rows")
    return rows


def is_lm_eval_samples(row: Mapping[str, Any]) -> bool:
    """Whether a row is lm-eval's `--log_samples` output (it has `resps` and `doc_id`)."""
    return "resps" in row and "doc_id" in row


def rows_from_records(records: Sequence[Mapping[str, Any]], source: str) -> list[Row]:
    """The completions of either file format, in input order (an lm-eval document once)."""
    if is_lm_eval_samples(records[0]):
        return _lm_eval_rows(records, source)
    rows = []
    for number, record in enumerate(records, 1):
        if "completion" not in record or "gold" not in record:
            raise RegradeError(
                f"{source} row {number} has no 'completion' and 'gold' (it has {sorted(record)[:8]}); give rl-math's "
                "completions.jsonl or lm-eval's --log_samples output"
            )
        rows.append(Row(str(record["completion"]), str(record["gold"]), str(record.get("model", source)),
                        record.get("question_index", number - 1), {}))
    return rows


def _lm_eval_rows(records: Sequence[Mapping[str, Any]], source: str) -> list[Row]:
    by_doc: dict[Any, Row] = {}
    for number, record in enumerate(records, 1):
        try:
            completion = record["resps"][0][0]
        except (IndexError, KeyError, TypeError):
            raise RegradeError(f"{source} row {number} has no response in 'resps'") from None
        doc_id = record["doc_id"]
        if doc_id not in by_doc:
            gold = record.get("target", (record.get("doc") or {}).get("answer"))
            by_doc[doc_id] = Row(str(completion), str(gold), source, doc_id, {})
        column = LM_EVAL_FILTER_COLUMNS.get(record.get("filter", ""))
        if column is not None and record.get("exact_match") is not None:
            by_doc[doc_id].recorded[column] = float(record["exact_match"]) == 1.0
    return list(by_doc.values())


def regrade(rows: Sequence[Row], task: str | None = None) -> dict[str, Any]:
    """`{"rows": [verdicts per completion], "summary": {...}}` for rows of one task."""
    conventions = conventions_for(task)
    verdicts = [score_all(row.completion, row.gold, conventions) for row in rows]
    summary: dict[str, Any] = {"task": get_task(task).name, "n_completions": len(rows),
                               "conventions": [c.name for c in conventions], "models": {}}
    if lm_eval_left_out(task):
        summary["left_out"] = LM_EVAL_MISSING
    for model in dict.fromkeys(row.model for row in rows):
        chosen = [i for i, row in enumerate(rows) if row.model == model]
        summary["models"][model] = summarize_model([rows[i] for i in chosen], [verdicts[i] for i in chosen])
    return {"rows": verdicts, "summary": summary}


def summarize_model(rows: Sequence[Row], verdicts: Sequence[Mapping[str, bool]]) -> dict[str, Any]:
    """Each convention's accuracy and interval (over questions), the disagreements, lm-eval's recorded check."""
    questions: dict[Any, list[int]] = {}
    for index, row in enumerate(rows):
        questions.setdefault(row.question, []).append(index)
    names = list(verdicts[0]) if verdicts else []
    result: dict[str, Any] = {"n_completions": len(rows), "n_questions": len(questions), "conventions": {}}
    for name in names:
        per_question = [sum(verdicts[i][name] for i in group) / len(group) for group in questions.values()]
        result["conventions"][name] = {
            "accuracy": sum(v[name] for v in verdicts) / len(verdicts),
            "interval": accuracy_interval(per_question),
        }
    kinds = disagreements(verdicts)
    result["conventions_disagree"] = sum(kinds.values())
    result["disagreements"] = kinds
    checked = {name for row in rows for name in row.recorded if name in names}
    if checked:
        result["lm_eval_recorded"] = {
            name: {
                "accuracy": sum(row.recorded[name] for row in rows if name in row.recorded)
                / sum(name in row.recorded for row in rows),
                "rows_differing": sum(row.recorded[name] != verdict[name]
                                      for row, verdict in zip(rows, verdicts) if name in row.recorded),
            }
            for name in sorted(checked)
        }
    return result


def _column_name(model: str, width: int = 28) -> str:
    """A model's name as a column header: its end, marked with … when cut.

    >>> _column_name("rl-math:tiny-qwen2"), _column_name("tests/fixtures/regrade/gsm8k_conventions.jsonl")
    ('rl-math:tiny-qwen2', '…ade/gsm8k_conventions.jsonl')
    """
    return model if len(model) <= width else "…" + model[-(width - 1):]


def format_report(result: Mapping[str, Any], source: str) -> str:
    """The table (conventions × models) and the disagreements by kind, as text."""
    summary = result["summary"]
    models = summary["models"]
    lines = [f"{source}: {summary['n_completions']} completions, task {summary['task']}"]
    if "left_out" in summary:
        lines.append(summary["left_out"])
    width = max(len(name) for name in [*summary["conventions"], "convention"]) + 2
    lines.append("convention".ljust(width) + "".join(_column_name(model).rjust(30) for model in models))
    for name in summary["conventions"]:
        cells = [format_interval(m["conventions"][name]["accuracy"], m["conventions"][name]["interval"])
                 for m in models.values()]
        lines.append(name.ljust(width) + "".join(cell.rjust(30) for cell in cells))
    lines.append("disagree on".ljust(width) + "".join(str(m["conventions_disagree"]).rjust(30) for m in models.values()))
    for model, m in models.items():
        for name, check in m.get("lm_eval_recorded", {}).items():
            lines.append(f"{model}: lm-eval recorded {name} {100 * check['accuracy']:.1f}%; "
                         f"rows where rl-math's recomputation differs: {check['rows_differing']}")
        if m["disagreements"]:
            lines.append(f"{model}: disagreements by kind (right | wrong: completions)")
            lines.extend(f"  {kind}: {count}" for kind, count in m["disagreements"].items())
    return "\n".join(lines)


def task_beside(path: str | Path) -> str | None:
    """The task named in a metrics.json next to a completions.jsonl (recipes/evaluate.py writes both)."""
    metrics = Path(path).with_name("metrics.json")
    try:
        config = json.loads(metrics.read_text()).get("config", {})
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(config, dict):
        return None
    return task_name_for(config.get("task"), str(config.get("dataset_name", "")))


def run(path: str | Path, task: str | None = None, json_path: str | Path | None = None) -> tuple[str, dict[str, Any]]:
    """Regrade a file: (the printed report, the JSON result)."""
    task = task or task_beside(path)
    try:
        get_task(task)
    except ValueError as err:
        raise RegradeError(str(err)) from None
    result = regrade(rows_from_records(read_jsonl(path), str(path)), task)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=1))
    return format_report(result, str(path)), result

