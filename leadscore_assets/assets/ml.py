"""ML: features CSV -> trained model (MLflow run, registry version, candidate) -> gate -> published.

The published model only changes when the blocking `promotion_gate` check passes for the
candidate trained in the same run: a worse model is registered (alias `challenger`) but never
served.
"""

import gzip
import json
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow.artifacts
import mlflow.xgboost as mlflow_xgboost
import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
    asset_check,
)
from dagster_duckdb import DuckDBResource
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from pydantic import Field
from sklearn.metrics import roc_auc_score

from leadscore_assets import tracking
from leadscore_assets.evaluation import classification_metrics, conversion_by_tier, score_tiers
from leadscore_assets.gate import HeadToHead, decide_promotion
from leadscore_assets.generator import synthetic_share
from leadscore_assets.landing import discover
from leadscore_assets.project import channel_groups, dbt_project
from leadscore_assets.provenance import (
    REPO_ROOT,
    dbt_model_versions,
    git_commit,
    sha256_file,
    source_version,
)
from leadscore_assets.report import figures_markdown, model_card, plot_report
from leadscore_assets.settings import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    REGISTERED_MODEL_NAME,
    PipelineSettings,
)
from leadscore_assets.training import (
    SEED_HYPERPARAMETERS,
    TrainedModel,
    input_columns,
    read_features_csv,
    train,
)
from leadscore_core.artifact import (
    LoadedModel,
    build_metadata,
    load_model,
    load_model_bytes,
    model_bytes,
    write_atomically,
)
from leadscore_core.features import CSV_COLUMNS, LABEL_COLUMN, feature_matrix
from leadscore_core.predictor import build_compiled_predictor

GROUP = "ml"
MART_KEY = AssetKey(["marts", "fct_lead_scoring_features"])
MART_TABLE = "marts.fct_lead_scoring_features"
CANDIDATE_MODEL = "model.json"
CANDIDATE_HOLDOUT = "holdout.parquet"
CANDIDATE_SEEN_CONTACTS = "training_contacts.parquet"
# The exact training file, kept for audits (its sha256 is that of the uncompressed CSV).
CANDIDATE_TRAINING_DATA = "lead_scoring_features.csv.gz"
CANDIDATE_GATE = "gate.json"
MODEL_CARD = "model_card.md"
PUBLISHED_ARTIFACT_DIR = "published"
# A fair head-to-head needs holdout rows neither model trained on; below this many (or with one
# class only) the whole holdout is used, which can only favour the champion.
MIN_HEAD_TO_HEAD_ROWS = 200

_ML_SOURCES = [
    REPO_ROOT / "leadscore_assets" / name
    for name in ("training.py", "calibration.py", "evaluation.py", "report.py", "gate.py")
] + [REPO_ROOT / "leadscore_core" / name for name in ("features.py", "artifact.py", "predictor.py")]


@asset(
    group_name=GROUP,
    deps=[MART_KEY],
    code_version=source_version([REPO_ROOT / "leadscore_core" / "features.py"]),
)
def lead_scoring_features_csv(
    duckdb: DuckDBResource, settings: ResourceParam[PipelineSettings]
) -> MaterializeResult:
    """`lead_scoring_features.csv`: the mart's specified columns, written atomically."""
    target = settings.features_csv_path
    partial = target.with_name(f".{target.name}.tmp")
    quoted = str(partial).replace("'", "''")
    with duckdb.get_connection() as conn:
        rows, positives = conn.execute(f"SELECT count(*), sum(is_won) FROM {MART_TABLE}").fetchone()
        if not rows:
            raise Failure(f"{MART_TABLE} is empty; refusing to replace {target.name}")
        conn.execute(
            f"COPY (SELECT {', '.join(CSV_COLUMNS)} FROM {MART_TABLE} ORDER BY contact_id) "
            f"TO '{quoted}' (HEADER, DELIMITER ',')"
        )
    partial.replace(target)
    digest = sha256_file(target)
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "positives": int(positives or 0),
            "conversion_rate": float((positives or 0) / rows),
            "columns": MetadataValue.json(list(CSV_COLUMNS)),
            "path": MetadataValue.path(str(target)),
            "sha256": digest,
        },
        data_version=DataVersion(digest[:16]),
    )


class TrainingConfig(Config):
    """Per-run overrides; unset fields use the LEADSCORE_* environment settings."""

    feature_set: str | None = Field(None, description="'full' (default) or 'seed'.")
    split: str | None = Field(None, description="'random' (the seed's 80/20) or 'time'.")
    calibration: str | None = Field(None, description="'auto', 'isotonic', 'platt' or 'none'.")
    shuffle_labels: bool = Field(
        False,
        description="Train on randomly permuted labels: a deliberately useless model, "
        "for proving that the promotion gate blocks it.",
    )


def _small_data_warnings(rows: int, positives: int, settings: PipelineSettings) -> list[str]:
    warnings = []
    if rows < settings.min_training_leads:
        warnings.append(
            f"only {rows:,} leads (fewer than {settings.min_training_leads:,}): metrics are "
            "unreliable and the model will not be promoted"
        )
    if positives < settings.min_training_conversions:
        warnings.append(
            f"only {positives:,} conversions (fewer than {settings.min_training_conversions:,}): "
            "metrics are unreliable and the model will not be promoted"
        )
    return warnings


def _seed_baseline(frame: pd.DataFrame, trained: TrainedModel, settings: PipelineSettings) -> dict:
    """The seed's four-feature model on the same split, uncalibrated: the yardstick."""
    baseline = train(
        frame,
        feature_set="seed",
        split=trained.split,
        calibration="none",
        categories={},
        nthread=settings.training_threads,
    )
    return classification_metrics(
        baseline.test_rows[LABEL_COLUMN], baseline.test_rows["score"], settings.high_threshold
    )


@asset(
    group_name=GROUP,
    deps=[lead_scoring_features_csv],
    code_version=source_version(_ML_SOURCES),
)
def lead_scoring_model(
    context: AssetExecutionContext,
    config: TrainingConfig,
    settings: ResourceParam[PipelineSettings],
    mlflow: ResourceParam[Any],
) -> MaterializeResult:
    """XGBoost trained on the features CSV, logged to MLflow ("Lead Scoring Optimization"),
    registered as `lead_scoring` with alias `challenger`, and staged as a candidate for the
    promotion gate."""
    try:
        return _train_log_and_stage(context, config, settings, mlflow)
    except BaseException:
        # The MLflow run was started by the resource; a failed step must not leave it RUNNING.
        mlflow.end_run(status="FAILED")
        raise


def _train_log_and_stage(
    context: AssetExecutionContext,
    config: TrainingConfig,
    settings: PipelineSettings,
    mlflow: Any,
) -> MaterializeResult:
    csv_path = settings.features_csv_path
    frame = read_features_csv(csv_path)
    csv_sha256 = sha256_file(csv_path)
    if config.shuffle_labels:
        rng = np.random.default_rng(0)
        frame[LABEL_COLUMN] = rng.permutation(frame[LABEL_COLUMN].to_numpy())
    feature_set = config.feature_set or settings.feature_set
    split = config.split or settings.split
    calibration = config.calibration or settings.calibration
    positives = int(frame[LABEL_COLUMN].sum())
    warnings = _small_data_warnings(len(frame), positives, settings)
    for warning in warnings:
        context.log.warning(warning)

    trained = train(
        frame,
        feature_set=feature_set,
        split=split,
        calibration=calibration,
        categories={"channel": channel_groups()},
        nthread=settings.training_threads,
    )
    holdout = trained.test_rows
    metrics = classification_metrics(
        holdout[LABEL_COLUMN], holdout["score"], settings.high_threshold
    )
    raw_metrics = classification_metrics(
        holdout[LABEL_COLUMN], holdout["raw_score"], settings.high_threshold
    )
    tiers = conversion_by_tier(
        holdout[LABEL_COLUMN], holdout["score"], score_tiers((0.2, 0.5, settings.high_threshold))
    )
    baseline = _seed_baseline(frame, trained, settings) if feature_set != "seed" else metrics
    # What callers sending only the required fields (the seed's /score body) get.
    required_only = (
        classification_metrics(
            holdout[LABEL_COLUMN], holdout["score_required_inputs_only"], settings.high_threshold
        )
        if "score_required_inputs_only" in holdout
        else metrics
    )

    run = mlflow.active_run()
    run_id, experiment_id = run.info.run_id, run.info.experiment_id
    hyperparameters = {**SEED_HYPERPARAMETERS, "nthread": settings.training_threads}
    mlflow.log_params(
        {
            **hyperparameters,
            "feature_set": feature_set,
            "features": ",".join(trained.feature_names),
            "split": split,
            "test_size": 0.2,
            "calibration": trained.calibration["method"],
            "calibration_requested": calibration,
            "shuffled_labels": config.shuffle_labels,
        }
    )
    mlflow.log_metrics(
        {
            **metrics,
            "auc": metrics["roc_auc"],  # the seed's name for it, so old dashboards keep working
            "raw_brier": raw_metrics["brier"],
            "raw_log_loss": raw_metrics["log_loss"],
            "required_inputs_only_roc_auc": required_only["roc_auc"],
            "required_inputs_only_brier": required_only["brier"],
            "seed_baseline_roc_auc": baseline["roc_auc"],
            "seed_baseline_pr_auc": baseline["pr_auc"],
            "training_rows": trained.rows["fit"],
            "calibration_rows": trained.rows["calibration"],
        }
    )
    code_version = git_commit()
    mlflow.set_tags(
        {
            "dagster_run_id": context.run.run_id,
            "training_data_sha256": csv_sha256,
            "feature_set": feature_set,
            "split": split,
            "code_version": code_version or "unknown",
        }
    )

    example = pd.DataFrame(
        feature_matrix(input_columns(holdout.head(5)), trained.features, trained.categories),
        columns=trained.feature_names,
    )
    logged = mlflow_xgboost.log_model(
        trained.booster,
        name="model",
        signature=infer_signature(example, trained.booster.inplace_predict(example.to_numpy())),
        input_example=example,
        registered_model_name=REGISTERED_MODEL_NAME,
    )
    version = str(logged.registered_model_version)
    registry = tracking.client(settings)
    registry.set_registered_model_alias(REGISTERED_MODEL_NAME, CHALLENGER_ALIAS, version)

    metadata = build_metadata(
        model_version=f"{REGISTERED_MODEL_NAME}/{version}",
        feature_names=trained.feature_names,
        categories=trained.categories,
        calibration=trained.calibration,
        threshold=settings.high_threshold,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        feature_set=feature_set,
        model_type="xgboost.Booster (binary:logistic)",
        hyperparameters=hyperparameters,
        split=split,
        metrics=metrics,
        seed_baseline_metrics=baseline,
        required_inputs_only_metrics=required_only,
        warnings=warnings,
        registered_model={"name": REGISTERED_MODEL_NAME, "version": version},
        mlflow_run_id=run_id,
        mlflow_experiment_id=experiment_id,
        dagster_run_id=context.run.run_id,
        training_data={
            "path": csv_path.name,
            "sha256": csv_sha256,
            "rows": len(frame),
            "positives": positives,
        },
        data_source=_data_source(settings),
        code_version={
            "git_commit": code_version,
            "dbt_models": dbt_model_versions(dbt_project.manifest_path),
        },
    )
    candidate_dir = settings.candidates_dir / f"v{version}"
    if candidate_dir.exists():
        shutil.rmtree(candidate_dir)
    candidate_dir.mkdir(parents=True)
    raw = model_bytes(trained.booster, metadata)
    write_atomically(candidate_dir / CANDIDATE_MODEL, raw)
    holdout.to_parquet(candidate_dir / CANDIDATE_HOLDOUT, index=False)
    pd.DataFrame({"contact_id": trained.seen_contact_ids}).to_parquet(
        candidate_dir / CANDIDATE_SEEN_CONTACTS, index=False
    )
    with (
        csv_path.open("rb") as source,
        gzip.open(candidate_dir / CANDIDATE_TRAINING_DATA, "wb", compresslevel=1) as copy,
    ):
        shutil.copyfileobj(source, copy)

    figures = plot_report(
        holdout[LABEL_COLUMN],
        holdout["score"],
        candidate_dir / "report",
        raw_scores=holdout["raw_score"] if trained.calibration["method"] != "none" else None,
        feature_importance=_importance(trained),
        title_suffix=f"— {metadata['model_version']}, {feature_set} features, {split} split",
        threshold=settings.high_threshold,
    )
    card = model_card(
        {**metadata, "training_data_sha256": csv_sha256, "training_rows": trained.rows["fit"]},
        metrics,
        tiers,
        comparison={"seed (baseline)": baseline, feature_set: metrics}
        if feature_set != "seed"
        else None,
    )
    (candidate_dir / MODEL_CARD).write_text(card)
    mlflow.log_artifacts(str(candidate_dir / "report"), artifact_path="report")
    mlflow.log_artifact(str(candidate_dir / MODEL_CARD))
    mlflow.log_dict(
        {"tiers": tiers, "metrics": metrics, "seed_baseline": baseline}, "evaluation.json"
    )
    # The served file, byte for byte, so any registered version can be audited or re-published.
    mlflow.log_artifact(str(candidate_dir / CANDIDATE_MODEL), artifact_path=PUBLISHED_ARTIFACT_DIR)
    mlflow.log_artifact(str(candidate_dir / CANDIDATE_SEEN_CONTACTS), artifact_path="training")
    mlflow.log_artifact(str(candidate_dir / CANDIDATE_TRAINING_DATA), artifact_path="training")
    mlflow.end_run()

    return MaterializeResult(
        metadata={
            "model_version": metadata["model_version"],
            "registered_version": version,
            "mlflow_run_id": run_id,
            "mlflow_experiment_id": experiment_id,
            "candidate_dir": MetadataValue.path(str(candidate_dir)),
            "feature_set": feature_set,
            "split": split,
            "calibration": trained.calibration["method"],
            "training_data_sha256": csv_sha256,
            "dagster/row_count": len(frame),
            "warnings": MetadataValue.json(warnings),
            **{f"metric/{k}": float(v) for k, v in metrics.items()},
            "seed_baseline_roc_auc": float(baseline["roc_auc"]),
            "required_inputs_only_roc_auc": float(required_only["roc_auc"]),
            "conversion_by_tier": MetadataValue.md(_tier_table(tiers)),
            "report": MetadataValue.md(figures_markdown(figures)),
            "model_card": MetadataValue.path(str(candidate_dir / MODEL_CARD)),
            "code_version": code_version or "unknown",
        },
        data_version=DataVersion(load_model_bytes(raw).file_sha256[:16]),
    )


def _importance(trained: TrainedModel) -> dict[str, float]:
    """Gain per feature, with 0 for features the trees never split on (XGBoost omits them)."""
    gains = trained.booster.get_score(importance_type="gain")
    return {name: float(gains.get(name, 0.0)) for name in trained.feature_names}


def _data_source(settings: PipelineSettings) -> str:
    files = {f.path.name: f.size for f in discover(settings.landing_dir)}
    share = synthetic_share(settings.landing_dir, files)
    if share == 1:
        return "synthetic demo data from the leadscore generator (docs/synthetic_data.md)"
    if share == 0:
        return f"landing exports ({', '.join(sorted(files))})"
    names = ", ".join(sorted(files))
    return f"landing exports, {share:.0%} of the files synthetic demo data ({names})"


def _tier_table(tiers: list[dict]) -> str:
    lines = ["| tier | leads | conversions | conversion rate |", "|---|---:|---:|---:|"]
    for tier in tiers:
        rate = "–" if tier["conversion_rate"] is None else f"{tier['conversion_rate']:.1%}"
        lines.append(f"| {tier['tier']} | {tier['leads']:,} | {tier['conversions']:,} | {rate} |")
    return "\n".join(lines)


def latest_candidate_dir(context: AssetExecutionContext | AssetCheckExecutionContext) -> Path:
    """The candidate staged by the latest `lead_scoring_model` materialisation."""
    event = context.instance.get_latest_materialization_event(AssetKey("lead_scoring_model"))
    if event is None or event.asset_materialization is None:
        raise Failure("lead_scoring_model has never been materialised: train a model first")
    return Path(event.asset_materialization.metadata["candidate_dir"].value)


def _auc_on(model: LoadedModel, holdout: pd.DataFrame) -> float:
    return float(roc_auc_score(holdout[LABEL_COLUMN], model.predict_proba(input_columns(holdout))))


@dataclass(frozen=True)
class Champion:
    version: str
    model: LoadedModel
    seen_contact_ids: np.ndarray


def _champion(settings: PipelineSettings) -> Champion | None:
    """The current champion's served file and training leads, from its MLflow run."""
    registry = tracking.client(settings)
    try:
        version = registry.get_model_version_by_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS)
    except MlflowException:
        return None

    def artifact(path: str) -> str:
        return mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path=path, tracking_uri=settings.tracking_uri
        )

    seen = pd.read_parquet(artifact(f"training/{CANDIDATE_SEEN_CONTACTS}"))["contact_id"]
    return Champion(
        str(version.version),
        load_model(artifact(f"{PUBLISHED_ARTIFACT_DIR}/{CANDIDATE_MODEL}")),
        seen.to_numpy(),
    )


def _head_to_head(challenger: LoadedModel, champion: Champion, holdout: pd.DataFrame) -> HeadToHead:
    """Both models on the holdout rows the champion never saw (the challenger never saw any)."""
    unseen = holdout[~holdout["contact_id"].isin(champion.seen_contact_ids)]
    fair = len(unseen) >= MIN_HEAD_TO_HEAD_ROWS and unseen[LABEL_COLUMN].nunique() == 2
    rows = unseen if fair else holdout
    return HeadToHead(_auc_on(challenger, rows), _auc_on(champion.model, rows), len(rows))


@asset_check(
    asset=lead_scoring_model,
    blocking=True,
    description="Promote only a model with ROC AUC >= the floor that is not worse than the "
    "current champion by more than the allowed drop, on the same holdout rows.",
)
def promotion_gate(
    context: AssetCheckExecutionContext, settings: ResourceParam[PipelineSettings]
) -> AssetCheckResult:
    candidate_dir = latest_candidate_dir(context)
    challenger = load_model(candidate_dir / CANDIDATE_MODEL)
    holdout = pd.read_parquet(candidate_dir / CANDIDATE_HOLDOUT)
    challenger_auc = _auc_on(challenger, holdout)
    champion = _champion(settings)
    head_to_head = None if champion is None else _head_to_head(challenger, champion, holdout)
    decision = decide_promotion(
        challenger_auc=challenger_auc,
        head_to_head=head_to_head,
        min_auc=settings.gate_min_auc,
        max_auc_drop=settings.gate_max_auc_drop,
        warnings=list(challenger.metadata.get("warnings", [])),
    )
    record = {
        "passed": decision.passed,
        "reason": decision.reason,
        "challenger_version": challenger.metadata["registered_model"]["version"],
        "challenger_auc": challenger_auc,
        "champion_version": champion.version if champion else None,
        "head_to_head": asdict(head_to_head) if head_to_head else None,
        "min_auc": settings.gate_min_auc,
        "max_auc_drop": settings.gate_max_auc_drop,
        "holdout_rows": len(holdout),
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_atomically(candidate_dir / CANDIDATE_GATE, json.dumps(record, indent=2).encode())
    tracking.client(settings).set_tag(
        challenger.metadata["mlflow_run_id"],
        "promotion_gate",
        "passed" if decision.passed else "failed",
    )
    compared: dict[str, Any] = (
        {
            "champion_auc": MetadataValue.null(),
            "challenger_auc_vs_champion": MetadataValue.null(),
            "head_to_head_rows": 0,
        }
        if head_to_head is None
        else {
            "champion_auc": head_to_head.champion_auc,
            "challenger_auc_vs_champion": head_to_head.challenger_auc,
            "head_to_head_rows": head_to_head.rows,
        }
    )
    return AssetCheckResult(
        passed=decision.passed,
        severity=AssetCheckSeverity.ERROR,
        description=decision.reason,
        metadata={
            "challenger_version": record["challenger_version"],
            "challenger_auc": challenger_auc,
            "champion_version": record["champion_version"] or "none",
            **compared,
            "min_auc": settings.gate_min_auc,
            "max_auc_drop": settings.gate_max_auc_drop,
            "holdout_rows": len(holdout),
        },
    )


@asset(group_name=GROUP, deps=[lead_scoring_model], code_version=source_version(_ML_SOURCES))
def published_model(
    context: AssetExecutionContext, settings: ResourceParam[PipelineSettings]
) -> MaterializeResult:
    """`models/lead_scoring_model.json`: the champion, replaced atomically, which the scoring
    API hot-reloads. Only a candidate that passed the promotion gate is published."""
    candidate_dir = latest_candidate_dir(context)
    gate_file = candidate_dir / CANDIDATE_GATE
    gate = json.loads(gate_file.read_text()) if gate_file.exists() else None
    if not gate or not gate["passed"]:
        raise Failure(
            f"candidate {candidate_dir.name} has not passed the promotion gate "
            f"({gate['reason'] if gate else 'never checked'}); the published model is unchanged"
        )
    raw = (candidate_dir / CANDIDATE_MODEL).read_bytes()
    model = load_model_bytes(raw)
    version = model.metadata["registered_model"]["version"]
    tracking.client(settings).set_registered_model_alias(
        REGISTERED_MODEL_NAME, CHAMPION_ALIAS, version
    )
    # The compiled predictor first (checked against XGBoost on the whole holdout), so that it is
    # there when the service loads the new file; None (XGBoost serves) when it cannot be built.
    holdout = pd.read_parquet(candidate_dir / CANDIDATE_HOLDOUT)
    build_compiled_predictor(
        raw, model.matrix(input_columns(holdout)), settings.published_model_path.parent
    )
    write_atomically(settings.published_model_path, raw)
    write_atomically(settings.models_dir / MODEL_CARD, (candidate_dir / MODEL_CARD).read_bytes())
    context.log.info(f"published {model.version} to {settings.published_model_path}")
    provenance = model.metadata
    return MaterializeResult(
        metadata={
            "model_version": model.version,
            "registered_model": MetadataValue.json(provenance["registered_model"]),
            "path": MetadataValue.path(str(settings.published_model_path)),
            "sha256": model.file_sha256,
            "mlflow_run_id": provenance["mlflow_run_id"],
            "training_dagster_run_id": provenance["dagster_run_id"],
            "training_data": MetadataValue.json(provenance["training_data"]),
            "code_version": MetadataValue.json(provenance["code_version"]),
            "gate": MetadataValue.json(gate),
        },
        data_version=DataVersion(model.file_sha256[:16]),
    )
