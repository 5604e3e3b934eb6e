"""The report: real PNG files, markdown that embeds them, and a model card with the numbers."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from leadscore_assets.defs.training.calibration import fit_calibration
from leadscore_assets.defs.training.evaluation import classification_metrics, conversion_by_tier
from leadscore_assets.defs.training.model_card import model_card
from leadscore_assets.defs.training.plots import figures_markdown, plot_report, report_figures
from leadscore_core.artifact import apply_calibration
from leadscore_core.metadata import ModelMetadata

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scored_leads() -> dict[str, np.ndarray]:
    """Over-confident raw scores for 3,000 leads and their Platt-calibrated version."""
    rng = np.random.default_rng(0)
    probabilities = rng.beta(1.0, 5.0, 3000)
    outcomes = (rng.random(3000) < probabilities).astype(int)
    raw = np.sqrt(probabilities)
    calibration = fit_calibration(outcomes[:1500], raw[:1500], method="platt")
    return {
        "outcomes": outcomes[1500:],
        "raw": raw[1500:],
        "calibrated": apply_calibration(raw[1500:], calibration),
    }


@pytest.fixture(scope="module")
def report_paths(scored_leads, tmp_path_factory):
    return plot_report(
        scored_leads["outcomes"],
        scored_leads["calibrated"],
        tmp_path_factory.mktemp("report"),
        raw_scores=scored_leads["raw"],
        feature_importance={"engaged_sessions": 40.0, "channel": 12.5, "sessions": 3.0},
        title_suffix="— full features, time-based holdout",
    )


def test_every_plot_is_a_real_png_image(report_paths):
    assert set(report_paths) == {
        "roc",
        "precision_recall",
        "calibration",
        "gains",
        "feature_importance",
    }
    for name, path in report_paths.items():
        assert path.name == f"{name}.png"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 10_000  # a drawn chart, not a blank canvas
        pixels = matplotlib.image.imread(path)
        height, width = pixels.shape[:2]
        assert width >= 600 and height >= 300
        assert pixels.std() > 0.05  # not one flat colour


def test_plotting_leaves_no_open_figures(report_paths):
    assert plt.get_fignums() == []


def test_feature_importance_is_optional(scored_leads, tmp_path):
    paths = plot_report(scored_leads["outcomes"], scored_leads["calibrated"], tmp_path)
    assert set(paths) == {"roc", "precision_recall", "calibration", "gains"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in paths)


def test_plot_report_rejects_mismatched_raw_scores(scored_leads, tmp_path):
    with pytest.raises(ValueError, match="values but scores has"):
        plot_report(
            scored_leads["outcomes"],
            scored_leads["calibrated"],
            tmp_path,
            raw_scores=scored_leads["raw"][:-1],
        )


EMBEDDED_PNG = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def _embedded_images(markdown: str) -> list[bytes]:
    return [base64.b64decode(encoded) for encoded in EMBEDDED_PNG.findall(markdown)]


def test_figures_markdown_embeds_each_png_with_a_caption(report_paths):
    markdown = figures_markdown(report_paths, max_width=2000)
    images = _embedded_images(markdown)
    assert images == [path.read_bytes() for path in report_paths.values()]
    for title in ("ROC curve", "Calibration (reliability) curve", "Cumulative gains and lift"):
        assert f"#### {title}" in markdown
    assert "*How well the score ranks" in markdown


def test_figures_markdown_scales_wide_images_down(report_paths):
    images = _embedded_images(figures_markdown(report_paths, max_width=320))
    assert len(images) == len(report_paths)
    for image in images:
        assert image.startswith(PNG_SIGNATURE)
        assert matplotlib.image.imread(io.BytesIO(image)).shape[1] <= 320


@pytest.fixture
def evaluation(scored_leads):
    outcomes, calibrated = scored_leads["outcomes"], scored_leads["calibrated"]
    return classification_metrics(outcomes, calibrated), conversion_by_tier(outcomes, calibrated)


FULL_METADATA = ModelMetadata(
    model_version="lead_scoring/7",
    trained_at="2026-03-01T12:00:00+00:00",
    feature_set="full",
    features=[
        {"name": "sessions", "kind": "numeric", "xgboost_type": "float"},
        {"name": "channel", "kind": "categorical", "xgboost_type": "c"},
    ],
    categories={"channel": ["Email", "Unassigned"]},
    threshold=0.8,
    hyperparameters={"max_depth": 5, "learning_rate": 0.1},
    mlflow_run_id="0123abcd",
    dagster_run_id="run-42",
    training_data={"sha256": "f" * 64, "rows": 93_000, "fit_rows": 74_400},
    data_source="synthetic demo data from the leadscore generator",
    demo=True,
    split="time",
    calibration={
        "method": "platt",
        "a": 0.6,
        "b": -0.4,
        "selection": {
            "criterion": "cross-validated Brier score",
            "rule": "simplest method within one standard error of the lowest",
            "cv_folds": 5,
            "cv_brier": {"none": 0.1234, "platt": 0.0987, "isotonic": 0.0991},
        },
    },
    warnings=["Only 850 leads: below the 1,000 leads a reliable model needs."],
)


def test_model_card_has_the_sections_and_numbers(evaluation):
    metrics, tiers = evaluation
    card = model_card(FULL_METADATA, metrics, tiers, comparison={"seed": metrics, "full": metrics})
    for heading in (
        "# Model card: lead scoring model lead_scoring/7",
        "## Model details",
        "## Intended use",
        "## Not intended for",
        "## Data",
        "## Evaluation",
        "### Conversion by score tier",
        "### Compared with the seed's model on the same split",
        "## Limits and caveats",
    ):
        assert heading in card
    assert f"| ROC AUC | {metrics['roc_auc']:.4f} |" in card
    assert f"| Brier score (lower is better) | {metrics['brier']:.4f} |" in card
    assert f"| Lift in the top 10% of scores | {metrics['lift_top_10pct']:.4f} |" in card
    assert f"| ROC AUC | {metrics['roc_auc']:.4f} | {metrics['roc_auc']:.4f} |" in card
    for tier in tiers:
        assert f"| {tier['tier']} | {tier['leads']:,} | {tier['conversions']:,} |" in card
    for value in ("0123abcd", "run-42", "f" * 64, "74,400", "`channel` — first-touch channel"):
        assert value in card
    assert "Time-based holdout" in card
    assert "Platt scaling" in card and "platt 0.09870" in card
    assert "**Warning:** Only 850 leads" in card
    assert "synthetic data" in card
    assert "'Unassigned'" in card
    assert "| max_depth | 5 |" in card


def _with(**fields) -> ModelMetadata:
    return FULL_METADATA.model_copy(update=fields)


FULL_INPUTS = [
    {"name": "sessions", "kind": "count", "required": True},
    {"name": "channel", "kind": "category", "required": True},
    {"name": "total_engagement_seconds", "kind": "seconds", "required": False},
]


def test_model_card_says_what_required_inputs_only_requests_get():
    card = model_card(
        _with(input_fields=FULL_INPUTS, required_inputs_only_metrics={"roc_auc": 0.8712}),
        {"roc_auc": 0.8827},
        [],
    )
    assert (
        "Requests with only the required inputs (the 5-field `/score` body, without "
        "`total_engagement_seconds`) get ROC AUC 0.8712, against 0.8827 with every input."
    ) in card
    assert "carry most of the signal" not in card


def test_model_card_warns_when_the_optional_inputs_carry_most_of_the_signal():
    """0.56 keeps 0.06 of the full model's 0.33 above chance: less than half."""
    card = model_card(
        _with(input_fields=FULL_INPUTS, required_inputs_only_metrics={"roc_auc": 0.56}),
        {"roc_auc": 0.83},
        [],
    )
    assert "get ROC AUC 0.5600, against 0.8300 with every input" in card
    assert "**The optional inputs carry most of the signal:**" in card


def test_model_card_of_a_model_without_optional_inputs():
    required_only = [f for f in FULL_INPUTS if f["required"]]
    card = model_card(_with(input_fields=required_only), {"roc_auc": 0.87}, [])
    assert "get this model's full ROC AUC, 0.8700: it uses no optional input" in card


def test_model_card_says_how_the_settings_were_chosen():
    tuning = {
        "method": "optuna TPE",
        "objective": "validation log loss",
        "trials": 20,
        "seconds": 12.34,
        "stopped_by": "trials",
        "validation_rows": 14_880,
        "best_validation_log_loss": 0.2301,
        "seed_validation_log_loss": 0.2411,
        "chosen": "tuned",
    }
    card = model_card(_with(tuning=tuning), {"roc_auc": 0.88}, [])
    assert (
        "Hyper-parameters: searched for this run (optuna TPE, 20 trials in 12.3 s, ended by "
        "trials; validation log loss on 14,880 training leads held out from the search: best "
        "0.2301, the seed's settings 0.2411); the search's best replaced the seed's settings."
    ) in card
    kept = model_card(_with(tuning={**tuning, "chosen": "seed"}), {"roc_auc": 0.88}, [])
    assert "the search found nothing better, so the seed's settings were kept" in kept
    assert "the seed's fixed settings (no search)" in model_card(FULL_METADATA, {}, [])


def test_model_card_survives_missing_metadata(evaluation):
    metrics, tiers = evaluation
    card = model_card({}, metrics, tiers)
    assert "# Model card: lead scoring model not recorded" in card
    assert "Evaluation split: not recorded." in card
    assert "Calibration: not recorded." in card
    assert "above the routing threshold are routed" in card
    assert "Unassigned" not in card  # no channel feature recorded, no channel caveat
    assert "## Limits and caveats" in card


def test_model_card_names_a_random_split():
    card = model_card({"split": "random"}, {"roc_auc": 0.8}, [])
    assert "Random split" in card
    assert "| ROC AUC | 0.8000 |" in card


def test_no_title_or_label_is_cut_off_at_the_figure_edge(scored_leads):
    """Every title, axis label and legend entry of every figure (the gains and lift figure's
    titles among them) lies inside the image, with a long model description as the second title
    line."""
    figures = report_figures(
        scored_leads["outcomes"],
        scored_leads["calibrated"],
        raw_scores=scored_leads["raw"],
        feature_importance={"engaged_sessions": 40.0, "channel": 12.5, "sessions": 3.0},
        title_suffix="lead_scoring/12, full features, time split",
    )
    for name, figure in figures.items():
        renderer = figure.canvas.get_renderer()
        figure.draw(renderer)
        bounds = figure.bbox
        texts = [figure._suptitle]
        for axes in figure.axes:
            texts += [axes.title, axes.xaxis.label, axes.yaxis.label]
            legend = axes.get_legend()
            texts += legend.get_texts() if legend is not None else []
        for text in texts:
            if text is None or not text.get_visible() or not text.get_text().strip():
                continue
            extent = text.get_window_extent(renderer)
            inside = (
                extent.x0 >= bounds.x0 - 1
                and extent.x1 <= bounds.x1 + 1
                and extent.y0 >= bounds.y0 - 1
                and extent.y1 <= bounds.y1 + 1
            )
            assert inside, f"{name}: {text.get_text()!r} is cut off ({extent} outside {bounds})"
    assert "Cumulative gains and lift" in figures["gains"].get_suptitle()
