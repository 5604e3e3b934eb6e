"""The model card: what a model is for, how it was trained and evaluated, and its limits, in a
page a sales or data lead reads in two minutes (after "Model Cards for Model Reporting")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from leadscore_core.features import FALLBACK_CHANNEL, FEATURES_BY_NAME, INPUT_FIELDS
from leadscore_core.metadata import ModelMetadata

# Required-inputs-only requests "lose most of the signal" when their ROC AUC keeps less than this
# share of the full-input AUC's distance above chance (0.5).
MOST_OF_THE_SIGNAL = 0.5
REQUIRED_FIELDS = sum(f.required for f in INPUT_FIELDS)
_FITTED_OUT_OF_FOLD = (
    "fitted on out-of-fold predictions for every training lead (models trained without it)"
)

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
    "required_inputs_only_roc_auc": "ROC AUC, required inputs only",
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


def _split_description(split: str | None) -> str:
    if split == "time":
        return "Time-based holdout: trained on older leads, evaluated on the newest ones."
    if split == "random":
        return "Random split: evaluated on a random holdout of leads."
    return f"Evaluation split: {split or NOT_RECORDED}."


def _calibration_description(calibration: Mapping[str, Any] | None) -> str:
    if not calibration:
        return f"Calibration: {NOT_RECORDED}."
    method = calibration.get("method", "none")
    meaning = {
        "none": "none — the model's own probabilities are served",
        "isotonic": f"isotonic regression {_FITTED_OUT_OF_FOLD}",
        "platt": f"Platt scaling (logistic regression on the log-odds) {_FITTED_OUT_OF_FOLD}",
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


def _model_details(metadata: ModelMetadata, features: list[str]) -> list[str]:
    training_data = metadata.training_data or {}
    rows = [
        ("Model version", metadata.model_version),
        ("Trained at", metadata.trained_at),
        ("Model type", metadata.model_type or "XGBoost gradient-boosted trees (binary:logistic)"),
        ("Feature set", metadata.feature_set),
        ("Routing threshold", metadata.threshold),
        ("MLflow run id", metadata.mlflow_run_id),
        ("Dagster run id", metadata.dagster_run_id),
        ("Training data sha256", training_data.get("sha256")),
        ("Training rows", training_data.get("fit_rows")),
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
    if metadata.hyperparameters:
        lines += [
            f"Hyper-parameters: {_settings_description(metadata.tuning)}",
            "",
            _markdown_table(("Parameter", "Value"), sorted(metadata.hyperparameters.items())),
            "",
        ]
    return lines


def _settings_description(tuning: Mapping[str, Any] | None) -> str:
    if not tuning:
        return "the seed's fixed settings (no search)."
    found = (
        "the search's best replaced the seed's settings"
        if tuning.get("chosen") == "tuned"
        else "the search found nothing better, so the seed's settings were kept"
    )
    return (
        f"searched for this run ({tuning.get('method', 'search')}, {tuning.get('trials', '?')} "
        f"trials in {tuning.get('seconds', 0):.1f} s, ended by {tuning.get('stopped_by', '?')}; "
        f"{tuning.get('objective', 'validation score')} on {tuning.get('validation_rows', 0):,} "
        f"training leads held out from the search: best "
        f"{tuning.get('best_validation_log_loss', float('nan')):.4f}, the seed's settings "
        f"{tuning.get('seed_validation_log_loss', float('nan')):.4f}); {found}."
    )


def _required_inputs_description(metadata: ModelMetadata, metrics: Mapping[str, Any]) -> list[str]:
    """What callers sending only the required fields get, against every input."""
    optional = [f["name"] for f in metadata.input_fields if not f["required"]]
    required_only = metadata.required_inputs_only_metrics or {}
    if "roc_auc" not in metrics:
        return []
    full = metrics["roc_auc"]
    if not optional:
        return [
            f"Requests with only the required inputs (the {REQUIRED_FIELDS}-field `/score` body) "
            f"get this model's full ROC AUC, {full:.4f}: it uses no optional input.",
            "",
        ]
    if "roc_auc" not in required_only:
        return []
    required = required_only["roc_auc"]
    text = (
        f"Requests with only the required inputs (the {REQUIRED_FIELDS}-field `/score` body, "
        f"without {', '.join(f'`{name}`' for name in optional)}) get ROC AUC {required:.4f}, "
        f"against {full:.4f} with every input."
    )
    if full > 0.5 and (required - 0.5) < MOST_OF_THE_SIGNAL * (full - 0.5):
        text += (
            " **The optional inputs carry most of the signal:** without them this model ranks "
            "leads little better than chance, so send them with every request that has them."
        )
    return [text, ""]


def _comparison_section(comparison: Mapping[str, Mapping[str, Any]]) -> list[str]:
    names = list(comparison)
    metrics = _ordered_metric_names(sorted({m for values in comparison.values() for m in values}))
    rows = [
        (METRIC_LABELS.get(metric, metric), *(comparison[name].get(metric) for name in names))
        for metric in metrics
    ]
    return [
        "### Compared with the seed's model on the same split",
        "",
        _markdown_table(("Metric", *names), rows),
        "",
    ]


def _caveats(metadata: ModelMetadata, features: list[str]) -> list[str]:
    caveats = [f"**Warning:** {warning}" for warning in metadata.warnings]
    if metadata.demo:
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
        "The score reflects what the exports hold: website behaviour and, where the contacts "
        "export has them, the CRM's lead source and contact attributes (an attribute whose only "
        "category is 'Other' was not in the data). It knows nothing about budget or anything "
        "said in a sales conversation.",
        "Scores are probabilities for leads like those in the training data; after changes to "
        "the website, tracking or lead sources, retrain and re-check calibration before relying "
        "on them.",
        "Tier conversion rates on small tiers (few leads) are noisy.",
    ]
    return ["## Limits and caveats", "", *(f"- {caveat}" for caveat in caveats), ""]


def _readable(metadata: ModelMetadata | Mapping[str, Any]) -> ModelMetadata:
    """The metadata as the card reads it: a partial document (an older model file's) leaves
    what it lacks "not recorded"."""
    if isinstance(metadata, ModelMetadata):
        return metadata
    unrecorded = {
        "model_version": NOT_RECORDED,
        "features": [],
        "categories": {},
        "calibration": {},
    }
    return ModelMetadata.model_construct(**{**unrecorded, **metadata})


def model_card(
    metadata: ModelMetadata | Mapping[str, Any],
    metrics: Mapping[str, Any],
    tiers: list[dict],
    *,
    comparison: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """`model_card.md` for a model: its metadata (fields not set show as "not recorded"),
    `metrics` as `classification_metrics` returns them, `tiers` the rows of `conversion_by_tier`,
    and `comparison`: feature-set name -> metrics on the same split."""
    metadata = _readable(metadata)
    features = [feature["name"] for feature in metadata.features]
    version = metadata.model_version
    threshold = metadata.threshold
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
        f"- Source: {metadata.data_source or NOT_RECORDED}.",
        "- One row per lead from the feature mart; the label is whether the lead's deal closed "
        "won.",
        "- Features are point-in-time: only web activity before the lead's scoring cut-off "
        "counts, so nothing that happened after the outcome leaks in.",
        "",
        "## Evaluation",
        "",
        _split_description(metadata.split),
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
    lines += _required_inputs_description(metadata, metrics)
    lines += [_calibration_description(metadata.calibration), ""]
    if comparison:
        lines += _comparison_section(comparison)
    lines += _caveats(metadata, features)
    return "\n".join(lines)
