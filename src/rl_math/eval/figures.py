"""The evaluation figure: answer buckets per model and completion-length histograms, one PNG.

`recipes/evaluate.py` draws it from :func:`rl_math.eval.evaluate.evaluate_model`'s results next to
``metrics.json``; its text chunks name what was drawn, so a test can check it without pixels.
"""

from collections.abc import Sequence
from pathlib import Path

from rl_math.eval.evaluate import BUCKETS, ModelEvaluation

MODEL_COLORS = ("tab:blue", "tab:orange", "tab:cyan", "tab:brown", "tab:pink", "tab:olive", "tab:gray", "navy")
BUCKET_COLORS = {"correct": "#2e7d32", "correct_malformed": "#9ccc65", "wrong": "#e53935", "malformed": "#9e9e9e"}


def plot_evaluation(
    evaluations: Sequence[ModelEvaluation], path: str | Path, title: str, max_new_tokens: int | None = None
) -> Path:
    """Stacked answer-bucket bars per model and completion-length histograms, as one PNG.

    The PNG's text chunks `rl_math:models` and `rl_math:accuracy` name what was drawn, so scripts
    and tests can check a figure without reading pixels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    names = [e.name for e in evaluations]
    n = len(evaluations)
    fig = plt.figure(figsize=(14, 1.2 + 1.25 * max(2, n)))
    grid = fig.add_gridspec(n, 2, width_ratios=[1.2, 1], hspace=0.15, wspace=0.3)
    bars = fig.add_subplot(grid[:, 0])
    y = list(range(n))[::-1]
    left = [0.0] * n
    for bucket in BUCKETS:
        widths = [100 * e.metrics["buckets"][bucket] for e in evaluations]
        bars.barh(y, widths, left=left, color=BUCKET_COLORS[bucket], label=bucket.replace("_", " "),
                  edgecolor="white", height=0.6)
        for yi, start, width in zip(y, left, widths):
            if width >= 6:
                bars.text(start + width / 2, yi, f"{width:.0f}%", ha="center", va="center", fontsize=9,
                          color="black" if bucket == "correct_malformed" else "white")
        left = [a + b for a, b in zip(left, widths)]
    k = max(e.metrics["num_samples"] for e in evaluations)
    labels = []
    for e in evaluations:
        summary = f"accuracy {100 * e.metrics['accuracy']:.1f}%"
        if k > 1:
            summary += f"\npass@{k} {100 * e.metrics[f'pass@{k}']:.0f}%  maj@{k} {100 * e.metrics[f'maj@{k}']:.0f}%"
        labels.append(f"{e.name}\n{summary}")
    bars.set_yticks(y)
    bars.set_yticklabels(labels, fontsize=9)
    bars.set_ylim(-0.6, n - 0.4)
    bars.set_xlim(0, 100)
    bars.set_xlabel("% of completions")
    bars.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=9, frameon=False)

    all_lengths = [r.n_tokens for e in evaluations for r in e.results]
    top = max(all_lengths + [max_new_tokens or 1])
    step = max(1, -(-top // 40))
    bins = list(range(0, top + 2 * step, step))
    first = None
    for i, e in enumerate(evaluations):
        ax = fig.add_subplot(grid[i, 1], sharex=first)
        first = first or ax
        finished = [r.n_tokens for r in e.results if not r.truncated]
        cut = [r.n_tokens for r in e.results if r.truncated]
        ax.hist([finished, cut], bins=bins, stacked=True, color=[MODEL_COLORS[i % len(MODEL_COLORS)], "#6a1b9a"],
                label=["ended", f"truncated ({100 * e.metrics['truncation_rate']:.0f}%)"])
        if max_new_tokens:
            ax.axvline(max_new_tokens, color="black", linestyle="--", linewidth=0.8)
        ax.set_ylabel(e.name if len(e.name) <= 24 else "…" + e.name[-23:], fontsize=8)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
        mean = e.metrics["mean_completion_tokens"]
        ax.axvline(mean, color="grey", linewidth=0.8)
        ax.text(mean, ax.get_ylim()[1] * 0.9, f" mean {mean:.0f}", fontsize=7, color="grey", va="top")
        if i == 0:
            ax.set_title("completion length (tokens; dashed: max_new_tokens)", fontsize=10)
        if i < n - 1:
            ax.tick_params(labelbottom=False)
        else:
            ax.set_xlabel("completion tokens")
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.16, right=0.98, top=0.84, bottom=0.12 if n > 2 else 0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={
        "rl_math:models": ",".join(names),
        "rl_math:accuracy": ",".join(f"{e.metrics['accuracy']:.4f}" for e in evaluations),
    })
    plt.close(fig)
    return path
