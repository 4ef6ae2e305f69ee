"""The evaluation figure: its PNG text chunks name the models drawn and their accuracy."""

from PIL import Image

from rl_math.eval.evaluate import ModelEvaluation, SampleResult, summarize
from rl_math.eval.figures import plot_evaluation


def _evaluation(name: str, correct: bool) -> ModelEvaluation:
    """Two questions x two samples, all right or all wrong, the second sample truncated."""
    results = [
        SampleResult(q, s, correct, True, "1", {"correctness": float(correct)}, float(correct), 3 + 5 * s, s == 0, s == 1)
        for q in range(2)
        for s in range(2)
    ]
    return ModelEvaluation(name, f"path/{name}", summarize(results, ["1", "1"], 2), results, [])


def test_the_figure_names_the_models_and_their_accuracy(tmp_path):
    png = plot_evaluation([_evaluation("base", False), _evaluation("trained", True)], tmp_path / "evaluation.png",
                          "test", max_new_tokens=8)
    image = Image.open(png)
    assert image.text["rl_math:models"] == "base,trained"
    assert image.text["rl_math:accuracy"] == "0.0000,1.0000"
    assert image.size[0] > 1000
