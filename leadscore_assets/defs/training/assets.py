"""Training: an XGBoost model trained on `lead_scoring_features.csv`, logged to MLflow,
registered, and handed on as a `Candidate` to the promotion gate."""

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetExecutionContext,
    Config,
    DataVersion,
    MetadataValue,
    Output,
    ResourceParam,
    asset,
)
from pydantic import Field

from leadscore_assets import tracking
from leadscore_assets.defs.ingestion.folder import discover
from leadscore_assets.defs.training import mlflow_run
from leadscore_assets.defs.training.assessment import (
    REQUIRED_INPUTS_ONLY_ROC_AUC,
    Assessment,
    assess,
)
from leadscore_assets.defs.training.candidate import (
    Candidate,
    keep_training_data,
    stage_directory,
)
from leadscore_assets.defs.training.model_card import model_card
from leadscore_assets.defs.training.plots import figures_markdown, plot_report
from leadscore_assets.defs.training.training import TrainedModel, read_features_csv, train
from leadscore_assets.defs.training.tuning import TuningBudget
from leadscore_assets.defs.warehouse.assets import FEATURES_CSV_KEY
from leadscore_assets.demo.files import synthetic_share
from leadscore_assets.project import channel_groups, dbt_project
from leadscore_assets.provenance import dbt_model_versions, git_commit, sha256_file, source_version
from leadscore_assets.settings import (
    CALIBRATION_CHOICES,
    PIPELINE_POOL,
    REGISTERED_MODEL_NAME,
    PipelineSettings,
)
from leadscore_core.artifact import build_metadata, load_model_bytes, model_bytes, write_atomically
from leadscore_core.features import LABEL_COLUMN
from leadscore_core.metadata import ModelMetadata

GROUP = "training"
CANDIDATES_IO_MANAGER = "candidates"
_HERE = Path(__file__).parent
_CORE = _HERE.parents[2] / "leadscore_core"


class TrainingConfig(Config):
    """Per-run overrides; unset fields use the LEADSCORE_* environment settings."""

    feature_set: str | None = Field(None, description="'full' (default) or 'seed'.")
    split: str | None = Field(None, description="'random' (the seed's 80/20) or 'time'.")
    calibration: str | None = Field(
        None, description=f"One of {', '.join(repr(c) for c in CALIBRATION_CHOICES)}."
    )
    tuning_trials: int | None = Field(
        None, ge=0, description="Hyperparameter search trials; 0 trains with the seed's settings."
    )
    tuning_timeout_seconds: float | None = Field(
        None, gt=0, description="Time limit of the hyperparameter search, in seconds."
    )
    shuffle_labels: bool = Field(
        False,
        description="Train on randomly permuted labels: a deliberately useless model, "
        "for proving that the promotion gate blocks it.",
    )


def _tuning_budget(config: TrainingConfig, settings: PipelineSettings) -> TuningBudget:
    return TuningBudget(
        trials=settings.tuning_trials if config.tuning_trials is None else config.tuning_trials,
        timeout_seconds=config.tuning_timeout_seconds or settings.tuning_timeout_seconds,
    )


def _training_summary(trained: TrainedModel) -> str:
    """One log line: what was trained, with which settings, in how long."""
    search = trained.tuning
    if search is None:
        how = "the seed's settings (no search)"
    else:
        how = (
            f"{search['chosen']} settings after {search['trials']} trials "
            f"(stopped by {search['stopped_by']}; validation log loss "
            f"{search.get('best_validation_log_loss', float('nan')):.4f} vs the seed's "
            f"{search['seed_validation_log_loss']:.4f})"
        )
    return (
        f"trained {trained.feature_set}/{trained.split} with {how}: "
        f"{trained.hyperparameters['n_estimators']} trees of depth "
        f"{trained.hyperparameters['max_depth']}, calibration {trained.calibration['method']}, "
        f"{trained.seconds:.1f} s"
    )


def launched_by(job_name: str, tags: Mapping[str, str]) -> str:
    """What started a Dagster run, for its MLflow run's name: a schedule, a sensor, a named job,
    or a materialisation from the UI or CLI (Dagster's hidden `__ASSET_JOB`)."""
    for tag in ("dagster/schedule_name", "dagster/sensor_name"):
        if tag in tags:
            return tags[tag]
    return "materialize" if job_name.startswith("__") else job_name


@asset(
    group_name=GROUP,
    deps=[FEATURES_CSV_KEY],
    io_manager_key=CANDIDATES_IO_MANAGER,
    code_version=source_version([_HERE, _CORE / "features.py", _CORE / "artifact.py"]),
    pool=PIPELINE_POOL,
)
def lead_scoring_model(
    context: AssetExecutionContext,
    config: TrainingConfig,
    settings: ResourceParam[PipelineSettings],
) -> Output[Candidate]:
    """XGBoost trained on the features CSV, logged to MLflow ("Lead Scoring Optimization"),
    registered as `lead_scoring` with alias `challenger`, and handed to the promotion gate as a
    `Candidate` staged in `models/candidates/v<N>/`."""
    feature_set = config.feature_set or settings.feature_set
    split = config.split or settings.split
    with tracking.training_run(
        settings,
        instance=context.instance,
        dagster_run_id=context.run.run_id,
        run_name=f"train {feature_set}/{split} ({launched_by(context.job_name, context.run.tags)})",
        tags={"dagster_job": context.job_name},
    ) as run:
        frame = read_features_csv(settings.features_csv_path)
        if config.shuffle_labels:
            rng = np.random.default_rng(0)
            frame[LABEL_COLUMN] = rng.permutation(frame[LABEL_COLUMN].to_numpy())
        calibration = config.calibration or settings.calibration
        categories = {"channel": channel_groups()}
        trained = train(
            frame,
            feature_set=feature_set,
            split=split,
            calibration=calibration,
            categories=categories,
            tuning=_tuning_budget(config, settings),
            nthread=settings.training_threads,
        )
        context.log.info(_training_summary(trained))
        assessment = assess(
            frame,
            trained,
            calibration=calibration,
            categories=categories,
            threshold=settings.high_threshold,
            nthread=settings.training_threads,
            min_leads=settings.min_training_leads,
            min_conversions=settings.min_training_conversions,
        )
        for warning in assessment.warnings:
            context.log.warning(warning)
        csv_sha256 = sha256_file(settings.features_csv_path)
        code_version = git_commit()
        hyperparameters = {**trained.hyperparameters, "nthread": settings.training_threads}
        mlflow_run.log_training(
            trained,
            assessment,
            hyperparameters=hyperparameters,
            calibration_requested=calibration,
            shuffled_labels=config.shuffle_labels,
            tags={"training_data_sha256": csv_sha256, "code_version": code_version or "unknown"},
        )
        version = mlflow_run.register(trained, settings)
        metadata = _model_metadata(
            trained,
            assessment,
            version=version,
            settings=settings,
            hyperparameters=hyperparameters,
            provenance={
                "mlflow_run_id": run.info.run_id,
                "mlflow_experiment_id": run.info.experiment_id,
                "dagster_run_id": context.run.run_id,
                "training_data": {
                    "path": settings.features_csv_path.name,
                    "sha256": csv_sha256,
                    "rows": len(frame),
                    "positives": int(frame[LABEL_COLUMN].sum()),
                    "fit_rows": trained.rows["fit"],
                },
                "code_version": {
                    "git_commit": code_version,
                    "dbt_models": dbt_model_versions(dbt_project.manifest_path),
                },
            },
        )
        candidate, figures = _stage(trained, assessment, metadata, settings, context.run.run_id)
        mlflow_run.log_candidate(candidate, assessment)

    return Output(
        candidate,
        metadata={
            "model_version": candidate.model_version,
            "registered_version": version,
            "mlflow_run_id": candidate.mlflow_run_id,
            "mlflow_experiment_id": run.info.experiment_id,
            "candidate_dir": MetadataValue.path(str(candidate.directory)),
            "feature_set": feature_set,
            "split": split,
            "calibration": trained.calibration["method"],
            "training_data_sha256": csv_sha256,
            "dagster/row_count": len(frame),
            "warnings": MetadataValue.json(assessment.warnings),
            "demo": metadata.demo,
            **{f"metric/{k}": float(v) for k, v in assessment.metrics.items()},
            "seed_baseline_roc_auc": float(assessment.seed_baseline["roc_auc"]),
            "seed_settings_roc_auc": float(assessment.seed_settings["roc_auc"]),
            "hyperparameters": MetadataValue.json(hyperparameters),
            "tuning": MetadataValue.json(trained.tuning or {"chosen": "seed", "trials": 0}),
            "training_seconds": round(trained.seconds, 2),
            "required_inputs_only_roc_auc": float(assessment.required_inputs_only["roc_auc"]),
            "conversion_by_tier": MetadataValue.md(_tier_table(assessment.tiers)),
            "report": MetadataValue.md(figures),
            "model_card": MetadataValue.md(candidate.card_path.read_text()),
            "code_version": code_version or "unknown",
        },
        data_version=DataVersion(candidate.model_sha256[:16]),
    )


def _model_metadata(
    trained: TrainedModel,
    assessment: Assessment,
    *,
    version: str,
    settings: PipelineSettings,
    hyperparameters: dict,
    provenance: dict,
) -> ModelMetadata:
    data_source, demo = _data_source(settings)
    return build_metadata(
        model_version=f"{REGISTERED_MODEL_NAME}/{version}",
        feature_names=trained.feature_names,
        categories=trained.categories,
        calibration=trained.calibration,
        threshold=settings.high_threshold,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        feature_set=trained.feature_set,
        model_type="xgboost.Booster (binary:logistic)",
        hyperparameters=hyperparameters,
        split=trained.split,
        metrics=assessment.metrics,
        seed_baseline_metrics=assessment.seed_baseline,
        seed_settings_metrics=assessment.seed_settings,
        tuning=trained.tuning,
        required_inputs_only_metrics=assessment.required_inputs_only,
        warnings=assessment.warnings,
        registered_model={"name": REGISTERED_MODEL_NAME, "version": version},
        data_source=data_source,
        demo=demo,
        **provenance,
    )


def _stage(
    trained: TrainedModel,
    assessment: Assessment,
    metadata: ModelMetadata,
    settings: PipelineSettings,
    dagster_run_id: str,
) -> tuple[Candidate, str]:
    """Write the candidate's files (model, holdout, training leads, training data, report, card);
    returns the candidate and its report as markdown."""
    version = metadata.registered_model["version"]
    directory = stage_directory(settings.candidates_dir, version)
    raw = model_bytes(trained.booster, metadata)
    candidate = Candidate(
        model_version=metadata.model_version,
        registered_version=version,
        directory=directory,
        model_sha256=load_model_bytes(raw).file_sha256,
        mlflow_run_id=metadata.mlflow_run_id,
        dagster_run_id=dagster_run_id,
    )
    write_atomically(candidate.model_path, raw)
    trained.test_rows.to_parquet(candidate.holdout_path, index=False)
    pd.DataFrame({"contact_id": trained.seen_contact_ids}).to_parquet(
        candidate.seen_contacts_path, index=False
    )
    keep_training_data(settings.features_csv_path, directory)
    holdout = trained.test_rows
    figures = plot_report(
        holdout[LABEL_COLUMN],
        holdout["score"],
        candidate.report_dir,
        raw_scores=holdout["raw_score"] if trained.calibration["method"] != "none" else None,
        feature_importance=_importance(trained),
        title_suffix=f"{metadata.model_version}, {trained.feature_set} features, "
        f"{trained.split} split",
        threshold=settings.high_threshold,
    )
    card = model_card(
        metadata,
        assessment.metrics,
        assessment.tiers,
        comparison=_comparison(trained, assessment),
    )
    candidate.card_path.write_text(card)
    return candidate, figures_markdown(figures)


def _comparison(trained: TrainedModel, assessment: Assessment) -> dict[str, dict]:
    """The model card's columns: the seed's model, this feature set with the seed's settings
    (when the model's own differ), and this model."""
    columns = {}
    if trained.feature_set != "seed":
        columns["seed features, seed settings"] = assessment.seed_baseline
    if not trained.uses_seed_settings:
        columns[f"{trained.feature_set} features, seed settings"] = assessment.seed_settings
    if columns:
        settings = "seed" if trained.uses_seed_settings else "tuned"
        columns[f"{trained.feature_set} features, {settings} settings (this model)"] = {
            **assessment.metrics,
            REQUIRED_INPUTS_ONLY_ROC_AUC: assessment.required_inputs_only["roc_auc"],
        }
    return columns


def _importance(trained: TrainedModel) -> dict[str, float]:
    """Gain per feature, with 0 for features the trees never split on (XGBoost omits them)."""
    gains = trained.booster.get_score(importance_type="gain")
    return {name: float(gains.get(name, 0.0)) for name in trained.feature_names}


def _data_source(settings: PipelineSettings) -> tuple[str, bool]:
    """What the model was trained on, in words, and whether any of it is synthetic demo data."""
    files = {f.path.name: f.size for f in discover(settings.landing_dir)}
    share = synthetic_share(settings.landing_dir, files)
    names = ", ".join(sorted(files))
    if share == 1:
        return "synthetic demo data from the leadscore generator (docs/synthetic_data.md)", True
    if share == 0:
        return f"landing exports ({names})", False
    return f"landing exports, {share:.0%} of the files synthetic demo data ({names})", True


def _tier_table(tiers: list[dict]) -> str:
    lines = ["| tier | leads | conversions | conversion rate |", "|---|---:|---:|---:|"]
    for tier in tiers:
        rate = "–" if tier["conversion_rate"] is None else f"{tier['conversion_rate']:.1%}"
        lines.append(f"| {tier['tier']} | {tier['leads']:,} | {tier['conversions']:,} | {rate} |")
    return "\n".join(lines)
