"""The per-model report's figures: ROC, precision-recall, calibration, gains and lift, feature
importance, as PNG files and as markdown for the Dagster UI.

Figures are drawn on matplotlib `Figure` objects with the Agg canvas, never through pyplot, so
nothing needs a display and no figure outlives the call that drew it. Each figure's title (and the
model it describes) is a figure title above the plots, so it is never wider than the figure.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from PIL import Image
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay, precision_score, recall_score

from leadscore_assets.defs.training.calibration import expected_calibration_error
from leadscore_assets.defs.training.evaluation import (
    DEFAULT_ROUTING_THRESHOLD,
    cumulative_gains,
    outcomes_and_scores,
    score_deciles,
)
from leadscore_core.features import FEATURES_BY_NAME

FIGURE_DPI = 100
RELIABILITY_BINS = 10

FIGURE_CAPTIONS: dict[str, tuple[str, str]] = {
    "roc": (
        "ROC curve",
        "How well the score ranks converting leads above the rest; AUC 0.5 is a coin toss.",
    ),
    "precision_recall": (
        "Precision–recall curve",
        "Share of flagged leads that convert against share of conversions flagged; the marker is "
        "the routing threshold.",
    ),
    "calibration": (
        "Calibration (reliability) curve",
        "Observed conversion rate against predicted probability; on the diagonal a score of 0.3 "
        "means 30 in 100 such leads convert.",
    ),
    "gains": (
        "Cumulative gains and lift",
        "Share of all conversions reached by following up the top-scored leads first, and how "
        "much better than random each score decile converts.",
    ),
    "feature_importance": (
        "Feature importance",
        "How much each feature contributes to the model's splits.",
    ),
}


def _new_figure(width: float, height: float, title: str, suffix: str) -> Figure:
    """A figure titled `title`, with `suffix` (which model, which split) on a second line."""
    figure = Figure(figsize=(width, height), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{title}\n{suffix}" if suffix else title, wrap=True)
    return figure


def _curve_names(raw_scores: np.ndarray | None) -> tuple[str, str]:
    """Legend names for the served scores and, when given, the raw model output."""
    return ("calibrated", "raw model") if raw_scores is not None else ("model", "")


def _curve_figure(
    display: type[RocCurveDisplay] | type[PrecisionRecallDisplay],
    title: str,
    suffix: str,
    outcomes: np.ndarray,
    raw_scores: np.ndarray | None,
) -> tuple[Figure, Axes, str]:
    """A figure for one kind of curve, with the raw model's curve dashed when given; returns it,
    its axes and the legend name for the served scores' curve."""
    figure = _new_figure(6.4, 5.6, title, suffix)
    axes = figure.add_subplot()
    served, raw = _curve_names(raw_scores)
    if raw_scores is not None:
        display.from_predictions(
            outcomes, raw_scores, name=raw, ax=axes, curve_kwargs={"linestyle": "--"}
        )
    return figure, axes, served


def _plot_roc(
    outcomes: np.ndarray, scores: np.ndarray, raw_scores: np.ndarray | None, suffix: str
) -> Figure:
    figure, axes, served = _curve_figure(RocCurveDisplay, "ROC curve", suffix, outcomes, raw_scores)
    RocCurveDisplay.from_predictions(outcomes, scores, name=served, ax=axes, plot_chance_level=True)
    axes.set_xlabel("False positive rate (share of non-converting leads flagged)")
    axes.set_ylabel("True positive rate (share of conversions flagged)")
    axes.legend(loc="lower right")
    return figure


def _plot_precision_recall(
    outcomes: np.ndarray,
    scores: np.ndarray,
    raw_scores: np.ndarray | None,
    threshold: float,
    suffix: str,
) -> Figure:
    figure, axes, served = _curve_figure(
        PrecisionRecallDisplay, "Precision–recall", suffix, outcomes, raw_scores
    )
    PrecisionRecallDisplay.from_predictions(
        outcomes,
        scores,
        name=served,
        ax=axes,
        plot_chance_level=True,
        chance_level_kw={"label": f"base rate ({outcomes.mean():.3f})"},
    )
    routed = scores > threshold
    if routed.any():
        precision = precision_score(outcomes, routed)
        recall = recall_score(outcomes, routed)
        axes.plot(
            [recall],
            [precision],
            marker="o",
            markersize=9,
            color="crimson",
            linestyle="none",
            label=f"score > {threshold:g}: precision {precision:.2f}, recall {recall:.2f}",
        )
    else:
        axes.plot([], [], linestyle="none", label=f"no lead scores above {threshold:g}")
    axes.set_xlabel("Recall (share of conversions flagged)")
    axes.set_ylabel("Precision (share of flagged leads that convert)")
    axes.set_ylim(0, 1.02)
    axes.legend(loc="upper right")
    return figure


def _plot_calibration(
    outcomes: np.ndarray, scores: np.ndarray, raw_scores: np.ndarray | None, suffix: str
) -> Figure:
    figure = _new_figure(6.4, 7.0, "Calibration", suffix)
    curve_axes, histogram_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)}
    )
    served, raw = _curve_names(raw_scores)
    shown = [(served, scores)] if raw_scores is None else [(raw, raw_scores), (served, scores)]
    for name, values in shown:
        ece = expected_calibration_error(outcomes, values, n_bins=RELIABILITY_BINS)
        CalibrationDisplay.from_predictions(
            outcomes,
            values,
            n_bins=RELIABILITY_BINS,
            strategy="uniform",
            name=f"{name} (ECE = {ece:.3f})",
            ax=curve_axes,
            ref_line=name == shown[-1][0],
            linestyle="--" if name == raw else "-",
        )
        histogram_axes.hist(
            values, bins=RELIABILITY_BINS, range=(0, 1), histtype="step", linewidth=1.5, label=name
        )
    curve_axes.set_xlabel("")
    curve_axes.set_ylabel("Observed conversion rate")
    curve_axes.legend(loc="upper left")
    histogram_axes.set_yscale("log")
    histogram_axes.set_xlabel("Predicted probability of closed-won")
    histogram_axes.set_ylabel("Leads")
    histogram_axes.legend(loc="upper right")
    return figure


def _plot_gains(outcomes: np.ndarray, scores: np.ndarray, suffix: str) -> Figure:
    figure = _new_figure(10.0, 5.0, "Cumulative gains and lift", suffix)
    gains_axes, lift_axes = figure.subplots(1, 2)
    share_of_leads, share_of_conversions = cumulative_gains(outcomes, scores)
    deciles = score_deciles(outcomes, scores)
    base_rate = outcomes.mean()
    top = deciles[0]
    gains_axes.plot(
        share_of_leads,
        share_of_conversions,
        label=f"model (top 10% of leads: {top['cumulative_recall']:.0%} of conversions)",
    )
    gains_axes.plot(
        [0, *(d["decile"] / 10 for d in deciles)],
        [0, *(d["cumulative_recall"] for d in deciles)],
        marker="o",
        linestyle="none",
        color="tab:blue",
        label="decile edges",
    )
    gains_axes.plot([0, base_rate, 1], [0, 1, 1], color="tab:green", linestyle=":", label="perfect")
    gains_axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="random order")
    gains_axes.set_xlabel("Share of leads followed up (highest scores first)")
    gains_axes.set_ylabel("Share of all conversions reached")
    gains_axes.set_title("Cumulative gains")
    gains_axes.legend(loc="lower right", fontsize="small")
    lifts = [d["lift"] if d["lift"] is not None else 0.0 for d in deciles]
    bars = lift_axes.bar([d["decile"] for d in deciles], lifts, color="tab:blue")
    lift_axes.bar_label(bars, fmt="%.1f×", padding=2)
    lift_axes.axhline(1.0, color="grey", linestyle="--", label="random order (lift 1)")
    lift_axes.set_xticks(range(1, 11))
    lift_axes.set_xlabel("Score decile (1 = highest scores)")
    lift_axes.set_ylabel("Lift (decile conversion rate / base rate)")
    lift_axes.set_title("Lift by decile")
    lift_axes.legend(loc="upper right")
    return figure


def _feature_display_name(name: str) -> str:
    feature = FEATURES_BY_NAME.get(name)
    return f"{feature.label} ({name})" if feature is not None else name


def _plot_feature_importance(
    importance: Mapping[str, float], importance_type: str, suffix: str
) -> Figure:
    ranked = sorted(importance.items(), key=lambda item: item[1])
    figure = _new_figure(9.0, max(3.5, 1.5 + 0.4 * len(ranked)), "Feature importance", suffix)
    axes = figure.add_subplot()
    bars = axes.barh([_feature_display_name(n) for n, _ in ranked], [v for _, v in ranked])
    axes.bar_label(bars, fmt="%.3g", padding=2)
    axes.set_xlabel(f"Importance ({importance_type})")
    axes.margins(x=0.15)
    return figure


def report_figures(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    raw_scores: ArrayLike | None = None,
    feature_importance: Mapping[str, float] | None = None,
    title_suffix: str = "",
    threshold: float = DEFAULT_ROUTING_THRESHOLD,
    importance_type: str = "gain",
) -> dict[str, Figure]:
    """The report's figures by name: always roc, precision_recall, calibration and gains;
    feature_importance when importances are given. `scores` are the served probabilities;
    `raw_scores`, the model's output before calibration, adds a dashed comparison curve.
    `title_suffix` (e.g. "lead_scoring/3, full features, time split") is each figure's second
    title line."""
    outcomes, served = outcomes_and_scores(y_true, scores)
    raw = None if raw_scores is None else outcomes_and_scores(outcomes, raw_scores)[1]
    suffix = title_suffix.strip()
    figures = {
        "roc": _plot_roc(outcomes, served, raw, suffix),
        "precision_recall": _plot_precision_recall(outcomes, served, raw, threshold, suffix),
        "calibration": _plot_calibration(outcomes, served, raw, suffix),
        "gains": _plot_gains(outcomes, served, suffix),
    }
    if feature_importance:
        figures["feature_importance"] = _plot_feature_importance(
            feature_importance, importance_type, suffix
        )
    return figures


def plot_report(
    y_true: ArrayLike, scores: ArrayLike, out_dir: str | Path, **options
) -> dict[str, Path]:
    """Write the report's PNGs into `out_dir` and return figure name -> path (options: those of
    `report_figures`)."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, figure in report_figures(y_true, scores, **options).items():
        paths[name] = directory / f"{name}.png"
        figure.savefig(paths[name], format="png", dpi=FIGURE_DPI)
    return paths


def _png_no_wider_than(path: Path, max_width: int) -> bytes:
    """The PNG's bytes, scaled down (aspect kept) when it is wider than `max_width` pixels."""
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        if image.width <= max_width:
            return data
        image.thumbnail((max_width, image.height), Image.Resampling.LANCZOS)
        scaled = io.BytesIO()
        image.save(scaled, format="PNG")
    return scaled.getvalue()


def figures_markdown(paths: Mapping[str, Path], max_width: int = 1000) -> str:
    """Markdown embedding each PNG as a base64 data URI, with a title and a caption.

    Dagster renders this in an asset's markdown metadata, so the figures show in the UI without
    a file server. Images wider than `max_width` pixels are scaled down, which also keeps the
    metadata small.
    """
    sections = []
    for name, path in paths.items():
        title, caption = FIGURE_CAPTIONS.get(name, (name.replace("_", " ").capitalize(), ""))
        encoded = base64.b64encode(_png_no_wider_than(Path(path), max_width)).decode("ascii")
        section = f"#### {title}\n\n![{title}](data:image/png;base64,{encoded})\n"
        sections.append(f"{section}\n*{caption}*\n" if caption else section)
    return "\n".join(sections)
