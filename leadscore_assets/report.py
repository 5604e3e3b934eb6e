"""The per-model report: plots people look at, and a model card they can read in two minutes.

Figures are drawn on matplotlib `Figure` objects with the Agg canvas, never through pyplot, so
nothing needs a display and no figure outlives the call that drew it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from PIL import Image
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay, precision_score, recall_score

from leadscore_assets.calibration import expected_calibration_error
from leadscore_assets.evaluation import (
    DEFAULT_ROUTING_THRESHOLD,
    cumulative_gains,
    outcomes_and_scores,
    score_deciles,
)
from leadscore_core.features import FALLBACK_CHANNEL, FEATURES_BY_NAME

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


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png", dpi=FIGURE_DPI)
    return path


def _curve_names(raw_scores: np.ndarray | None) -> tuple[str, str]:
    """Legend names for the served scores and, when given, the raw model output."""
    return ("calibrated", "raw model") if raw_scores is not None else ("model", "")


def _plot_roc(
    outcomes: np.ndarray, scores: np.ndarray, raw_scores: np.ndarray | None, suffix: str, path: Path
) -> Path:
    figure = _new_figure(6.4, 5.6)
    axes = figure.add_subplot()
    served, raw = _curve_names(raw_scores)
    if raw_scores is not None:
        RocCurveDisplay.from_predictions(
            outcomes, raw_scores, name=raw, ax=axes, curve_kwargs={"linestyle": "--"}
        )
    RocCurveDisplay.from_predictions(outcomes, scores, name=served, ax=axes, plot_chance_level=True)
    axes.set_xlabel("False positive rate (share of non-converting leads flagged)")
    axes.set_ylabel("True positive rate (share of conversions flagged)")
    axes.set_title(f"ROC curve{suffix}")
    axes.legend(loc="lower right")
    return _save(figure, path)


def _plot_precision_recall(
    outcomes: np.ndarray,
    scores: np.ndarray,
    raw_scores: np.ndarray | None,
    threshold: float,
    suffix: str,
    path: Path,
) -> Path:
    figure = _new_figure(6.4, 5.6)
    axes = figure.add_subplot()
    served, raw = _curve_names(raw_scores)
    if raw_scores is not None:
        PrecisionRecallDisplay.from_predictions(
            outcomes, raw_scores, name=raw, ax=axes, curve_kwargs={"linestyle": "--"}
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
    axes.set_title(f"Precision–recall{suffix}")
    axes.legend(loc="upper right")
    return _save(figure, path)


def _plot_calibration(
    outcomes: np.ndarray, scores: np.ndarray, raw_scores: np.ndarray | None, suffix: str, path: Path
) -> Path:
    figure = _new_figure(6.4, 7.0)
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
    curve_axes.set_title(f"Calibration{suffix}")
    curve_axes.legend(loc="upper left")
    histogram_axes.set_yscale("log")
    histogram_axes.set_xlabel("Predicted probability of closed-won")
    histogram_axes.set_ylabel("Leads")
    histogram_axes.legend(loc="upper right")
    return _save(figure, path)


def _plot_gains(outcomes: np.ndarray, scores: np.ndarray, suffix: str, path: Path) -> Path:
    figure = _new_figure(10.0, 4.6)
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
    gains_axes.set_title(f"Cumulative gains{suffix}")
    gains_axes.legend(loc="lower right", fontsize="small")
    lifts = [d["lift"] if d["lift"] is not None else 0.0 for d in deciles]
    bars = lift_axes.bar([d["decile"] for d in deciles], lifts, color="tab:blue")
    lift_axes.bar_label(bars, fmt="%.1f×", padding=2)
    lift_axes.axhline(1.0, color="grey", linestyle="--", label="random order (lift 1)")
    lift_axes.set_xticks(range(1, 11))
    lift_axes.set_xlabel("Score decile (1 = highest scores)")
    lift_axes.set_ylabel("Lift (decile conversion rate / base rate)")
    lift_axes.set_title(f"Lift by decile{suffix}")
    lift_axes.legend(loc="upper right")
    return _save(figure, path)


def _feature_display_name(name: str) -> str:
    feature = FEATURES_BY_NAME.get(name)
    return f"{feature.label} ({name})" if feature is not None else name


def _plot_feature_importance(
    importance: Mapping[str, float], importance_type: str, suffix: str, path: Path
) -> Path:
    ranked = sorted(importance.items(), key=lambda item: item[1])
    figure = _new_figure(9.0, max(3.5, 1.5 + 0.4 * len(ranked)))
    axes = figure.add_subplot()
    bars = axes.barh([_feature_display_name(n) for n, _ in ranked], [v for _, v in ranked])
    axes.bar_label(bars, fmt="%.3g", padding=2)
    axes.set_xlabel(f"Importance ({importance_type})")
    # A figure title, not an axes title: long feature labels push the axes right.
    figure.suptitle(f"Feature importance{suffix}")
    axes.margins(x=0.15)
    return _save(figure, path)


def plot_report(
    y_true: ArrayLike,
    scores: ArrayLike,
    out_dir: str | Path,
    *,
    raw_scores: ArrayLike | None = None,
    feature_importance: Mapping[str, float] | None = None,
    title_suffix: str = "",
    threshold: float = DEFAULT_ROUTING_THRESHOLD,
    importance_type: str = "gain",
) -> dict[str, Path]:
    """Write the report's PNGs into `out_dir` and return figure name -> path.

    Always roc, precision_recall, calibration and gains; feature_importance when importances are
    given. `scores` are the served probabilities; `raw_scores`, the model's output before
    calibration, adds a dashed comparison curve. `title_suffix` is appended to every title
    (e.g. " — full features, time-based holdout").
    """
    outcomes, served = outcomes_and_scores(y_true, scores)
    raw = None if raw_scores is None else outcomes_and_scores(outcomes, raw_scores)[1]
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = f" {title_suffix.strip()}" if title_suffix.strip() else ""
    paths = {
        "roc": _plot_roc(outcomes, served, raw, suffix, directory / "roc.png"),
        "precision_recall": _plot_precision_recall(
            outcomes, served, raw, threshold, suffix, directory / "precision_recall.png"
        ),
        "calibration": _plot_calibration(
            outcomes, served, raw, suffix, directory / "calibration.png"
        ),
        "gains": _plot_gains(outcomes, served, suffix, directory / "gains.png"),
    }
    if feature_importance:
        paths["feature_importance"] = _plot_feature_importance(
            feature_importance, importance_type, suffix, directory / "feature_importance.png"
        )
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


METRIC_LABELS: dict[str, str] = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "brier": "Brier score (lower is better)",
    "log_loss": "Log loss (lower is better)",
    "lift_top_10pct": "Lift in the top 10% of scores",
    "recall_top_10pct": "Share of conversions in the top 10% of scores",
    "precision_at_threshold": "Precision above the routing threshold",
    "recall_at_threshold": "Recall above the routing threshold",
    "share_above_threshold": "Share of leads above the routing threshold",
    "accuracy": "Accuracy at 0.5",
    "precision": "Precision at 0.5",
    "recall": "Recall at 0.5",
    "f1": "F1 at 0.5",
    "base_rate": "Conversion rate (base rate)",
    "rows": "Evaluation leads",
    "positives": "Evaluation conversions",
}
NOT_RECORDED = "not recorded"


def _format_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4f}"
    return str(value)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(_format_value(cell) for cell in row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def _ordered_metric_names(names: Sequence[str]) -> list[str]:
    """Known metrics in reading order, then any others alphabetically."""
    known = [name for name in METRIC_LABELS if name in names]
    return known + sorted(name for name in names if name not in METRIC_LABELS)


def _feature_names(metadata: Mapping[str, Any]) -> list[str]:
    """Feature names from metadata["features"]: names, or dicts with "name" as the artifact
    stores them."""
    features = metadata.get("features") or []
    return [f["name"] if isinstance(f, Mapping) else str(f) for f in features]


def _split_description(split: Any) -> str:
    if split is None:
        return f"Evaluation split: {NOT_RECORDED}."
    details = dict(split) if isinstance(split, Mapping) else {"kind": split}
    kind = str(details.pop("kind", details.pop("method", "")))
    if "time" in kind:
        text = "Time-based holdout: trained on older leads, evaluated on the newest ones"
    elif "random" in kind:
        text = "Random split: evaluated on a random holdout of leads"
    else:
        text = f"Split: {kind or NOT_RECORDED}"
    extra = ", ".join(f"{key} = {_format_value(value)}" for key, value in details.items())
    return f"{text}{f' ({extra})' if extra else ''}."


def _calibration_description(calibration: Mapping[str, Any] | None) -> str:
    if not calibration:
        return f"Calibration: {NOT_RECORDED}."
    method = calibration.get("method", "none")
    meaning = {
        "none": "none — the model's own probabilities are served",
        "isotonic": "isotonic regression on a held-out slice",
        "platt": "Platt scaling (logistic regression on the log-odds) on a held-out slice",
    }.get(method, method)
    text = f"Calibration: {meaning}."
    selection = calibration.get("selection")
    if isinstance(selection, Mapping) and isinstance(selection.get("cv_brier"), Mapping):
        scores = ", ".join(f"{name} {value:.5f}" for name, value in selection["cv_brier"].items())
        text += (
            f" Chosen by {selection.get('criterion', 'cross-validation')} "
            f"({selection.get('cv_folds', '?')} folds: {scores}); rule: "
            f"{selection.get('rule', NOT_RECORDED)}."
        )
    return text


def _feature_description(name: str) -> str:
    feature = FEATURES_BY_NAME.get(name)
    return f" — {feature.label}" if feature is not None else ""


def _model_details(metadata: Mapping[str, Any], features: list[str]) -> list[str]:
    rows = [
        ("Model version", metadata.get("model_version")),
        ("Trained at", metadata.get("trained_at")),
        (
            "Model type",
            metadata.get("model_type", "XGBoost gradient-boosted trees (binary:logistic)"),
        ),
        ("Feature set", metadata.get("feature_set")),
        ("Routing threshold", metadata.get("threshold")),
        ("MLflow run id", metadata.get("mlflow_run_id")),
        ("Dagster run id", metadata.get("dagster_run_id")),
        ("Training data sha256", metadata.get("training_data_sha256")),
        ("Training rows", metadata.get("training_rows")),
    ]
    lines = [
        "## Model details",
        "",
        _markdown_table(
            ("Field", "Value"),
            [(name, value if value is not None else NOT_RECORDED) for name, value in rows],
        ),
        "",
    ]
    if features:
        lines += ["Features, in model order:", ""]
        lines += [f"- `{name}`{_feature_description(name)}" for name in features]
        lines.append("")
    hyperparameters = metadata.get("hyperparameters")
    if isinstance(hyperparameters, Mapping) and hyperparameters:
        lines += [
            "Hyper-parameters:",
            "",
            _markdown_table(("Parameter", "Value"), sorted(hyperparameters.items())),
            "",
        ]
    return lines


def _comparison_section(comparison: Mapping[str, Mapping[str, Any]]) -> list[str]:
    names = list(comparison)
    metrics = _ordered_metric_names(sorted({m for values in comparison.values() for m in values}))
    rows = [
        (METRIC_LABELS.get(metric, metric), *(comparison[name].get(metric) for name in names))
        for metric in metrics
    ]
    return [
        "### Feature sets compared on the same split",
        "",
        _markdown_table(("Metric", *(f"`{name}`" for name in names)), rows),
        "",
    ]


def _caveats(metadata: Mapping[str, Any], features: list[str]) -> list[str]:
    caveats = [f"**Warning:** {warning}" for warning in metadata.get("warnings") or []]
    source = str(metadata.get("data_source", ""))
    if "synthetic" in source.lower():
        caveats.append(
            "Trained and evaluated on synthetic data from the project's generator: the numbers "
            "show the pipeline works, not how well it will rank your leads."
        )
    if "channel" in features:
        caveats.append(
            f"Channels not seen in training are scored as '{FALLBACK_CHANNEL}', so a new "
            "campaign channel gets that group's effect until the model is retrained."
        )
    caveats += [
        "The score reflects website behaviour only: it knows nothing about company size, budget "
        "or anything said in a sales conversation.",
        "Scores are probabilities for leads like those in the training data; after changes to "
        "the website, tracking or lead sources, retrain and re-check calibration before relying "
        "on them.",
        "Tier conversion rates on small tiers (few leads) are noisy.",
    ]
    return ["## Limits and caveats", "", *(f"- {caveat}" for caveat in caveats), ""]


def model_card(
    metadata: Mapping[str, Any],
    metrics: Mapping[str, Any],
    tiers: list[dict],
    *,
    comparison: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """`model_card.md` for a published model, after "Model Cards for Model Reporting".

    Reads whichever of these metadata keys exist (missing ones show as "not recorded"):
    model_version, trained_at, model_type, feature_set, features (names or {"name": ...}),
    threshold, hyperparameters, mlflow_run_id, dagster_run_id, training_data_sha256,
    training_rows, data_source (e.g. "synthetic" or "landing exports"), split ("random", "time",
    or a dict with "kind" and details), calibration (as `fit_calibration` returns it) and
    warnings (list of str). `metrics` is `classification_metrics`' dict, `tiers` the rows of
    `conversion_by_tier`, `comparison` maps feature-set name -> metrics on the same split.
    """
    features = _feature_names(metadata)
    version = metadata.get("model_version", NOT_RECORDED)
    threshold = metadata.get("threshold")
    routed = f"above {threshold}" if threshold is not None else "above the routing threshold"
    lines = [
        f"# Model card: lead scoring model {version}",
        "",
        *_model_details(metadata, features),
        "## Intended use",
        "",
        "- Ranking inbound leads so sales follows up the most promising first.",
        "- The score is the probability that the lead becomes a closed-won deal; leads scoring "
        f"{routed} are routed to sales as high priority.",
        "",
        "## Not intended for",
        "",
        "- Decisions about individuals beyond sales follow-up order (credit, pricing, "
        "eligibility, employment).",
        "- Leads from markets, products or channels unlike the training data, or predicting deal "
        "size or timing.",
        "- Replacing a conversation: a low score means less web engagement, not no interest.",
        "",
        "## Data",
        "",
        f"- Source: {metadata.get('data_source', NOT_RECORDED)}.",
        "- One row per lead from the feature mart; the label is whether the lead's deal closed "
        "won.",
        "- Features are point-in-time: only web activity before the lead's scoring cut-off "
        "counts, so nothing that happened after the outcome leaks in.",
        "",
        "## Evaluation",
        "",
        _split_description(metadata.get("split")),
        "",
        _markdown_table(
            ("Metric", "Value"),
            [
                (METRIC_LABELS.get(name, name), metrics[name])
                for name in _ordered_metric_names(list(metrics))
            ],
        ),
        "",
    ]
    if tiers:
        lines += [
            "### Conversion by score tier",
            "",
            _markdown_table(
                ("Tier", "Leads", "Conversions", "Conversion rate", "Mean score"),
                [
                    (t["tier"], t["leads"], t["conversions"], t["conversion_rate"], t["mean_score"])
                    for t in tiers
                ],
            ),
            "",
        ]
    lines += [_calibration_description(metadata.get("calibration")), ""]
    if comparison:
        lines += _comparison_section(comparison)
    lines += _caveats(metadata, features)
    return "\n".join(lines)
