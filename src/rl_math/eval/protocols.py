r"""Evaluation protocols: how a published number was made (prompt, shots, sampling, stops), as presets.

``eval_protocol:`` in the evaluation YAML (or ``--eval_protocol``) picks one:

=================  ===========================================================================
protocol           what it sets
=================  ===========================================================================
``lm-eval-gsm8k``  lm-evaluation-harness ``gsm8k`` (task version 3.0 of lm-eval 0.4.13), the Open
                   LLM Leaderboard's: 5 shots from the train split (lm-eval's sampler, seed 1234),
                   the plain-text prompt ``Question: …\nAnswer:``, greedy, the stop strings
                   ``Question:``, ``</s>``, ``<|im_end|>``, no chat template (``apply_chat_template:
                   true`` puts the same text in one user message, as lm-eval's
                   ``--apply_chat_template`` does); 256 new tokens unless the config says otherwise
``qwen-math-cot``  Qwen2.5-Math's evaluation: zero-shot chat, system prompt "Please reason step by
                   step, and put your final answer within \boxed{}." (the ``boxed`` format's),
                   greedy
``sampled``        RL papers' sampled evaluation (SimpleRL-Zoo and others): temperature 1.0,
                   top_p 0.95, k samples (``num_samples``, 8 unless set); report the mean
                   (``accuracy``) and ``pass@k``
=================  ===========================================================================

A field the protocol fixes and the config also sets, to another value, is a ConfigError (exit 2);
a protocol default yields to the config. Generation is cut at the first stop string afterwards
(the text is what lm-eval keeps; generation itself stops at EOS or ``max_new_tokens``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rl_math.errors import ConfigError

LM_EVAL_FEWSHOT_SEED = 1234  # lm-eval's simple_evaluate(fewshot_random_seed=1234)


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    fixed: Mapping[str, Any]  # fields it sets; the config may not set them to something else
    defaults: Mapping[str, Any] = field(default_factory=dict)  # fields it sets unless the config does
    tasks: tuple[str, ...] | None = None  # the tasks it is defined for (None: any)
    num_fewshot: int = 0
    fewshot_split: str = "train"
    question_template: str | None = None  # a plain-text prompt; None: the prompt format's chat prompt
    target_delimiter: str = " "  # lm-eval's between a shot's question and its answer
    fewshot_delimiter: str = "\n\n"  # ... and after each shot
    stop_strings: tuple[str, ...] = ()
    chat_template: bool = True  # the default of apply_chat_template


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="lm-eval-gsm8k",
            description="lm-evaluation-harness 0.4.13 gsm8k (task version 3.0): 5-shot, greedy, strict-match/flexible-extract",
            fixed={"num_samples": 1, "temperature": 0.0, "top_p": 1.0},
            defaults={"max_new_tokens": 256},  # lm-eval's HF model: max_gen_toks=256
            tasks=("gsm8k",),
            num_fewshot=5,
            question_template="Question: {question}\nAnswer:",
            stop_strings=("Question:", "</s>", "<|im_end|>"),
            chat_template=False,
        ),
        Protocol(
            name="qwen-math-cot",
            description="Qwen2.5-Math evaluation (qwen25-math-cot): zero-shot chat, boxed answer, greedy",
            fixed={"prompt_format": "boxed", "system_prompt": None, "num_samples": 1, "temperature": 0.0, "top_p": 1.0},
        ),
        Protocol(
            name="sampled",
            description="sampled evaluation (SimpleRL-Zoo and others): T=1.0, top_p=0.95, mean and pass@k over k samples",
            fixed={"temperature": 1.0, "top_p": 0.95},
            defaults={"num_samples": 8},
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`; a ConfigError listing the known ones otherwise."""
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown eval_protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def apply_protocol(values: dict[str, Any], explicit: set[str]) -> Protocol | None:
    """Set the fields of `values["eval_protocol"]` in place; a conflicting explicit field is a ConfigError.

    >>> values = {"eval_protocol": "sampled", "temperature": 0.0, "top_p": 1.0, "num_samples": 4}
    >>> apply_protocol(values, explicit={"num_samples"}).name, values["temperature"], values["num_samples"]
    ('sampled', 1.0, 4)
    >>> apply_protocol({"eval_protocol": "sampled", "temperature": 0.0}, explicit={"temperature"})
    Traceback (most recent call last):
    rl_math.errors.ConfigError: eval_protocol sampled sets temperature to 1.0, but the config sets it to 0.0; remove one of the two
    """
    name = values.get("eval_protocol")
    if values.get("apply_chat_template") is not None and (name is None or get_protocol(name).question_template is None):
        raise ConfigError(
            "apply_chat_template applies to a plain-text protocol (eval_protocol: lm-eval-gsm8k); other prompts are "
            "always chat prompts: remove it"
        )
    if name is None:
        return None
    protocol = get_protocol(name)
    for key, value in protocol.fixed.items():
        if key in explicit and values.get(key) != value:
            raise ConfigError(
                f"eval_protocol {name} sets {key} to {value}, but the config sets it to {values.get(key)}; "
                "remove one of the two"
            )
        values[key] = value
    for key, value in protocol.defaults.items():
        if key not in explicit:
            values[key] = value
    if values.get("apply_chat_template") is None:
        values["apply_chat_template"] = protocol.chat_template
    return protocol


def check_protocol_task(protocol: Protocol | None, task: str) -> None:
    """A protocol defined for some tasks only (lm-eval-gsm8k: GSM8K) refuses the others."""
    if protocol is not None and protocol.tasks is not None and task not in protocol.tasks:
        raise ConfigError(
            f"eval_protocol {protocol.name} is defined for task {', '.join(protocol.tasks)}, not {task!r}; "
            "pick a GSM8K dataset or another protocol"
        )


# --------------------------------------------------------------------------------------------
# Few-shot plain-text prompts (lm-eval's layout)


def fewshot_indices(n_questions: int, n_shots: int, pool_size: int, seed: int = LM_EVAL_FEWSHOT_SEED) -> list[list[int]]:
    """The shots of each question, in question order, as lm-eval's default sampler draws them.

    lm-eval keeps one `random.Random(seed)` per task and calls `sample(train_docs, n)` for each test
    document in order (the eval document is excluded only when shots come from the test split);
    `random.sample` depends only on the pool's size, so indices are the same draws.

    >>> fewshot_indices(2, 3, pool_size=10)
    [[7, 1, 0], [1, 0, 9]]
    """
    rnd = random.Random(seed)
    return [rnd.sample(range(pool_size), n_shots) for _ in range(n_questions)]


def fewshot_prompt(protocol: Protocol, question: str, shots: Sequence[tuple[str, str]]) -> str:
    """The plain-text prompt: each shot's question and worked answer, then the question.

    >>> print(fewshot_prompt(PROTOCOLS["lm-eval-gsm8k"], "What is 2+3?", [("What is 1+1?", "1+1=2\\n#### 2")]))
    Question: What is 1+1?
    Answer: 1+1=2
    #### 2
    <BLANKLINE>
    Question: What is 2+3?
    Answer:
    """
    template = protocol.question_template or "{question}"
    text = "".join(
        template.format(question=q) + protocol.target_delimiter + answer + protocol.fewshot_delimiter for q, answer in shots
    )
    return text + template.format(question=question)


def protocol_prompts(protocol: Protocol, questions: Sequence[str], pool_questions: Sequence[str],
                     pool_answers: Sequence[str], chat: bool) -> list[Any]:
    """Each question's prompt under a plain-text protocol: a string, or one user message when `chat`."""
    shots = fewshot_indices(len(questions), protocol.num_fewshot, len(pool_questions)) if protocol.num_fewshot else []
    prompts: list[Any] = []
    for index, question in enumerate(questions):
        chosen = [(pool_questions[j], pool_answers[j]) for j in shots[index]] if shots else []
        text = fewshot_prompt(protocol, question, chosen)
        prompts.append([{"role": "user", "content": text}] if chat else text)
    return prompts


def cut_at_stop_strings(text: str, stops: Sequence[str]) -> str | None:
    """The text before the first stop string (lm-eval's `until`), or None when none occurs.

    >>> cut_at_stop_strings("18.\\n#### 18\\n\\nQuestion: next", ["Question:", "</s>"])
    '18.\\n#### 18\\n\\n'
    >>> cut_at_stop_strings("no stop", ["Question:"]) is None
    True
    """
    positions = [text.find(stop) for stop in stops if stop and stop in text]
    return text[: min(positions)] if positions else None


def apply_stop_strings(generations, stops: Sequence[str]) -> int:
    """Cut every completion of a :class:`rl_math.sampling.Generations` at its first stop string,
    in place; a cut completion ended (eos, not truncated). Returns how many were cut."""
    cut = 0
    for index, text in enumerate(generations.texts):
        shorter = cut_at_stop_strings(text, stops)
        if shorter is not None:
            generations.texts[index] = shorter
            generations.eos[index] = True
            generations.truncated[index] = False
            cut += 1
    return cut


def protocol_record(protocol: Protocol | None, chat: bool, first_prompt: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What metrics.json says about how the numbers were made: protocol, an example prompt, generation."""
    record: dict[str, Any] = {"name": protocol.name if protocol else None, "example_prompt": first_prompt,
                              "generation": dict(settings)}
    if protocol is not None:
        record.update(description=protocol.description, num_fewshot=protocol.num_fewshot, chat_template=chat,
                      stop_strings=list(protocol.stop_strings))
        if protocol.num_fewshot:
            record.update(fewshot_split=protocol.fewshot_split, fewshot_seed=LM_EVAL_FEWSHOT_SEED)
    return record


def with_protocol_prompts(dataset, protocol: Protocol, chat: bool, pool=None):
    """A prompt dataset (`prompt` chat messages whose last holds the question, `answer`, `task`) with the
    protocol's plain-text prompts; `pool` is the raw few-shot split (question/answer columns)."""
    from datasets import Dataset

    questions = [messages[-1]["content"] for messages in dataset["prompt"]]
    pool_questions = list(pool["question"]) if pool is not None else []
    pool_answers = list(pool["answer"]) if pool is not None else []
    columns = {name: list(dataset[name]) for name in dataset.column_names if name != "prompt"}
    columns["prompt"] = protocol_prompts(protocol, questions, pool_questions, pool_answers, chat)
    return Dataset.from_dict(columns)
