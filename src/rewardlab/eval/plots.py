"""The evaluation report's figures, drawn with matplotlib and returned as PNG data URIs (the HTML stays one file).

Each function takes plain arrays or the numbers of `rewardlab.metrics.pair_evaluation.evaluate_pairs` and returns a
`data:image/png;base64,...` string. The Agg backend is used so that reports render on machines without a display.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CHOSEN_COLOR, REJECTED_COLOR = "#1b9e77", "#d95f02"
MODEL_COLORS = ("#1f77b4", "#9467bd")


def _figure(width: float = 6.0, height: float = 3.6, rows: int = 1, cols: int = 1):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(width, height), dpi=100, layout="constrained")


def to_data_uri(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def reward_distributions(rewards_chosen: Sequence[float], rewards_rejected: Sequence[float]) -> str:
    """Overlaid histograms of chosen and rejected rewards: a good model separates the two."""
    chosen, rejected = _finite(rewards_chosen), _finite(rewards_rejected)
    fig, ax = _figure()
    both = np.concatenate([chosen, rejected])
    bins = np.histogram_bin_edges(both, bins=40) if both.size else 10
    ax.hist(chosen, bins=bins, alpha=0.6, color=CHOSEN_COLOR, label=f"chosen (mean {np.mean(chosen):.3g})")
    ax.hist(rejected, bins=bins, alpha=0.6, color=REJECTED_COLOR, label=f"rejected (mean {np.mean(rejected):.3g})")
    ax.set_xlabel("reward")
    ax.set_ylabel("responses")
    ax.set_title("Reward of chosen vs rejected responses")
    ax.legend()
    return to_data_uri(fig)


def margin_histogram(margins: Sequence[float]) -> str:
    """Histogram of r_chosen - r_rejected; the mass left of 0 is the pairs the model gets wrong."""
    values = _finite(margins)
    fig, ax = _figure()
    bins = np.histogram_bin_edges(values, bins=40) if values.size else 10
    ax.hist(values[values >= 0], bins=bins, color=CHOSEN_COLOR, label="correct (margin > 0)")
    ax.hist(values[values < 0], bins=bins, color=REJECTED_COLOR, label="wrong (margin < 0)")
    ax.axvline(0, color="black", linewidth=1)
    ax.set_xlabel("margin  r_chosen - r_rejected")
    ax.set_ylabel("pairs")
    ax.set_title("Margin per pair")
    ax.legend()
    return to_data_uri(fig)


def reliability_diagram(bins: Sequence[Mapping[str, float]], ece: float | None = None) -> str:
    """Observed frequency vs predicted P(first response preferred), per probability bin; the diagonal is perfect.

    `bins`: dicts with `mean_predicted`, `observed_frequency` and `count` (empty bins are skipped).
    """
    used = [b for b in bins if b.get("count")]
    fig, ax = _figure(4.6, 4.2)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    if used:
        counts = np.array([b["count"] for b in used], dtype=float)
        ax.scatter(
            [b["mean_predicted"] for b in used],
            [b["observed_frequency"] for b in used],
            s=20 + 180 * counts / counts.max(),
            color=MODEL_COLORS[0],
            label="bins (size = pairs)",
            zorder=3,
        )
        ax.plot([b["mean_predicted"] for b in used], [b["observed_frequency"] for b in used], color=MODEL_COLORS[0])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P = sigmoid(margin)")
    ax.set_ylabel("observed frequency")
    title = "Reliability diagram"
    if ece is not None and np.isfinite(ece):
        title += f" (ECE {ece:.3f})"
    ax.set_title(title)
    ax.legend(loc="upper left")
    return to_data_uri(fig)


def reward_vs_length(
    rewards_chosen: Sequence[float],
    rewards_rejected: Sequence[float],
    chosen_lengths: Sequence[float],
    rejected_lengths: Sequence[float],
    correlation: float | None = None,
) -> str:
    """Reward against response length: a rising cloud means the model prefers longer answers."""
    fig, ax = _figure()
    ax.scatter(chosen_lengths, rewards_chosen, s=6, alpha=0.5, color=CHOSEN_COLOR, label="chosen")
    ax.scatter(rejected_lengths, rewards_rejected, s=6, alpha=0.5, color=REJECTED_COLOR, label="rejected")
    ax.set_xlabel("response length (tokens)")
    ax.set_ylabel("reward")
    title = "Reward vs response length"
    if correlation is not None and np.isfinite(correlation):
        title += f" (Pearson r = {correlation:.2f})"
    ax.set_title(title)
    ax.legend()
    return to_data_uri(fig)


def category_chart(per_category: Mapping[str, Mapping[str, float]]) -> str:
    """Accuracy per category (horizontal bars, with pair counts), worst first."""
    items = sorted(per_category.items(), key=lambda kv: kv[1]["accuracy"])
    fig, ax = _figure(6.4, max(2.4, 0.32 * len(items) + 1.2))
    names = [f"{name} (n={int(stats['count'])})" for name, stats in items]
    ax.barh(names, [stats["accuracy"] for _, stats in items], color=MODEL_COLORS[0])
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title("Accuracy per category")
    return to_data_uri(fig)


def training_curves(log_history: Sequence[Mapping[str, Any]]) -> str | None:
    """Loss, accuracy, margin and learning rate against the step, training and evaluation; None without logs."""
    panels = (("loss", "loss"), ("accuracy", "accuracy"), ("margin", "margin"), ("learning_rate", "learning rate"))
    fig, grid = _figure(9.0, 5.6, rows=2, cols=2)
    drawn = False
    for ax, (key, label) in zip(grid.ravel(), panels, strict=True):
        for prefix, style in (("", "-"), ("eval_", "o-")):
            points = [(e["step"], e[prefix + key]) for e in log_history if prefix + key in e and "step" in e]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, style, markersize=3, label="evaluation" if prefix else "training")
                drawn = True
        ax.set_title(label)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=8)
    if not drawn:
        import matplotlib.pyplot as plt

        plt.close(fig)
        return None
    return to_data_uri(fig)
