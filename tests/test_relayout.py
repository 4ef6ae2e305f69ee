"""scripts/relayout.py: code written against the flat layout, rewritten to the package layout."""

import importlib.util
import textwrap

import pytest
from recipe_runs import REPO_ROOT

_spec = importlib.util.spec_from_file_location("relayout", REPO_ROOT / "scripts" / "relayout.py")
relayout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(relayout)


@pytest.fixture(scope="module")
def rewrite():
    rewriter = relayout.Rewriter({"rewards": relayout.reexported_names(REPO_ROOT, "rewards")})
    return lambda text, markdown=False: rewriter.rewrite(textwrap.dedent(text), markdown)


def test_a_moved_module_import_gets_the_new_path(rewrite):
    assert rewrite("from rl_math.training import load_tokenizer\n") == "from rl_math.train.lifecycle import load_tokenizer\n"


def test_names_split_out_of_a_module_are_imported_from_their_new_module(rewrite):
    assert rewrite("from rl_math.generation import save_for_generation, stop_token_ids\n") == (
        "from rl_math.train.export import save_for_generation\nfrom rl_math.train.generation import stop_token_ids\n"
    )


def test_a_parenthesised_import_keeps_its_indentation(rewrite):
    code = """\
    def f():
        from rl_math.evaluation import (
            plot_evaluation,
            summarize,
        )
    """
    assert rewrite(code) == textwrap.dedent("""\
    def f():
        from rl_math.eval.figures import plot_evaluation
        from rl_math.eval.evaluate import summarize
    """)


def test_the_documented_rewards_import_stays(rewrite):
    line = "from rl_math.rewards import get_reward, build_rewards\n"
    assert rewrite(line) == line


def test_a_private_rewards_name_is_imported_from_the_functions_module(rewrite):
    assert rewrite("from rl_math.rewards import _texts, get_reward\n") == (
        "from rl_math.rewards.functions import _texts\nfrom rl_math.rewards import get_reward\n"
    )


def test_a_patch_target_names_the_module_that_defines_the_name(rewrite):
    assert rewrite('mock.patch("rl_math.rewards.grade")') == 'mock.patch("rl_math.rewards.functions.grade")'
    assert rewrite('monkeypatch.setattr("rl_math.plotting.shorten", f)') == (
        'monkeypatch.setattr("rl_math.tools.samples.shorten", f)'
    )


def test_a_module_imported_as_an_object_keeps_its_local_name(rewrite):
    assert rewrite("from rl_math import evaluation, preflight\n") == (
        "from rl_math import preflight\nfrom rl_math.eval import evaluate as evaluation\n"
    )
    assert rewrite("from rl_math import rewards\n") == "from rl_math.rewards import functions as rewards\n"


def test_a_renamed_function_is_renamed_where_it_is_used(rewrite):
    code = "from rl_math.tiny import resolve_model_path\npath = resolve_model_path(name)\n"
    assert rewrite(code) == "from rl_math.testing import resolve_model\npath = resolve_model(name)\n"


def test_paths_and_module_mentions_in_docs(rewrite):
    text = "See `src/rl_math/memory_plan.py`, `tests/test_training.py` and :mod:`rl_math.in_run_eval`.\n"
    assert rewrite(text, markdown=True) == (
        "See `src/rl_math/tools/memory_plan.py`, `tests/train/test_lifecycle.py` and :mod:`rl_math.eval.in_run`.\n"
    )


def test_a_recipe_logger_name_is_not_a_module_path(rewrite):
    line = 'logger = logging.getLogger("rl_math.expert_iteration")\n'
    assert rewrite(line) == line


@pytest.mark.parametrize("code", [
    "from rl_math.generation import save_for_generation, stop_token_ids\n",
    "from rl_math import rewards, grader\nfrom rl_math.rewards import _texts, get_reward\n",
    'x = "rl_math.rewards.functions:correctness"  # rl_math.rewards.grader\n',
    "from rl_math.tiny import TINY_MODEL_NAME, resolve_model_path\n",
])
def test_rewriting_twice_changes_nothing_more(rewrite, code):
    once = rewrite(code)
    assert rewrite(once) == once


def test_the_tree_is_already_in_the_new_layout(capsys):
    assert relayout.main(["--check"]) == 0
    assert "nothing to do" in capsys.readouterr().out
