"""Publishing: the candidate the promotion gate passed becomes the served model.

`published_model` receives the candidate from `lead_scoring_model` (the same value the gate
checked) and publishes it only if the gate's verdict recorded on that candidate's MLflow run is
"passed" and the champion is still the one the gate compared it with. The files are replaced
first, the registry's `champion` alias moved last (docs/operations.md).
"""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
from mlflow.exceptions import MlflowException

from leadscore_assets import tracking
from leadscore_assets.defs.promotion.checks import (
    GATE_CHAMPION_TAG,
    GATE_REASON_TAG,
    GATE_TAG,
    current_champion_version,
)
from leadscore_assets.defs.training.candidate import MODEL_CARD_FILE, Candidate
from leadscore_assets.defs.training.training import input_columns
from leadscore_assets.freshness import DAILY
from leadscore_assets.provenance import source_version
from leadscore_assets.settings import (
    CHAMPION_ALIAS,
    PIPELINE_POOL,
    REGISTERED_MODEL_NAME,
    PipelineSettings,
)
from leadscore_core.artifact import write_atomically
from leadscore_core.predictor import build_compiled_predictor, remove_other_predictors

GROUP = "publishing"
_PREDICTOR = Path("leadscore_core") / "predictor.py"


def publish_then_promote(files: dict[Path, bytes], move_champion_alias: Callable[[], None]) -> None:
    """Replace the served files (in order, each atomically), then move the registry's `champion`
    alias. The registry must never name a model that is not being served: if a write or the alias
    move fails, the files already replaced are put back and the alias is left where it was."""
    replaced: dict[Path, bytes | None] = {}
    try:
        for path, data in files.items():
            replaced[path] = path.read_bytes() if path.is_file() else None
            write_atomically(path, data)
        move_champion_alias()
    except BaseException:
        for path, previous in reversed(replaced.items()):
            if previous is not None:
                write_atomically(path, previous)
            elif path.is_file():
                path.unlink()
        raise


def _check_the_gate_passed(candidate: Candidate, settings: PipelineSettings) -> dict[str, str]:
    """The gate's verdict on this very candidate, refusing to publish without a pass or when the
    champion changed since the gate compared against it."""
    tags = tracking.client(settings).get_run(candidate.mlflow_run_id).data.tags
    if tags.get(GATE_TAG) != "passed":
        reason = tags.get(GATE_REASON_TAG, "the promotion gate has not checked it")
        raise dg.Failure(f"{candidate.model_version} is not published: {reason}")
    champion = current_champion_version(settings)
    if tags.get(GATE_CHAMPION_TAG) != champion:
        raise dg.Failure(
            f"{candidate.model_version} is not published: the gate compared it with champion "
            f"{tags.get(GATE_CHAMPION_TAG)}, but the champion is now {champion}; "
            "run the gate again"
        )
    return {"passed": "true", "reason": tags.get(GATE_REASON_TAG, "")}


@dg.asset(
    group_name=GROUP,
    code_version=source_version([Path(__file__), Path(__file__).parents[3] / _PREDICTOR]),
    pool=PIPELINE_POOL,
    freshness_policy=DAILY,
)
def published_model(
    context: dg.AssetExecutionContext,
    lead_scoring_model: Candidate,
    settings: dg.ResourceParam[PipelineSettings],
) -> dg.MaterializeResult:
    """`models/lead_scoring_model.json`: the champion, replaced atomically, which the scoring
    API hot-reloads. Only a candidate that passed the promotion gate is published."""
    candidate = lead_scoring_model
    gate = _check_the_gate_passed(candidate, settings)
    model = candidate.load_model()
    # The model compiled to C (checked against XGBoost on the whole holdout), built beside the
    # candidate and published before the model file, so that it is there when the service loads
    # the new file; None (XGBoost serves) when it cannot be built.
    library = build_compiled_predictor(
        candidate.model_path.read_bytes(),
        model.matrix(input_columns(candidate.holdout())),
        candidate.directory,
    )
    published_dir = settings.published_model_path.parent
    files = {settings.models_dir / MODEL_CARD_FILE: candidate.card_path.read_bytes()}
    if library is not None:
        files[published_dir / library.name] = library.read_bytes()
    files[settings.published_model_path] = candidate.model_path.read_bytes()
    try:
        publish_then_promote(
            files,
            lambda: tracking.client(settings).set_registered_model_alias(
                REGISTERED_MODEL_NAME, CHAMPION_ALIAS, candidate.registered_version
            ),
        )
    except (OSError, MlflowException) as error:
        raise dg.Failure(
            f"publishing {model.version} failed ({error}); the served files and the registry's "
            f"'{CHAMPION_ALIAS}' alias are unchanged"
        ) from error
    remove_other_predictors(published_dir, keep=published_dir / library.name if library else None)
    context.log.info(f"published {model.version} to {settings.published_model_path}")
    metadata = model.metadata
    return dg.MaterializeResult(
        metadata={
            "model_version": model.version,
            "registered_model": dg.MetadataValue.json(dict(metadata.registered_model or {})),
            "path": dg.MetadataValue.path(str(settings.published_model_path)),
            "sha256": model.file_sha256,
            "mlflow_run_id": metadata.mlflow_run_id,
            "training_dagster_run_id": metadata.dagster_run_id,
            "training_data": dg.MetadataValue.json(dict(metadata.training_data or {})),
            "code_version": dg.MetadataValue.json(dict(metadata.code_version or {})),
            "demo": metadata.demo,
            "compiled_predictor": library.name if library else "none (XGBoost predicts)",
            "gate": dg.MetadataValue.json(gate),
            "model_card": dg.MetadataValue.md(candidate.card_path.read_text()),
        },
        data_version=dg.DataVersion(model.file_sha256[:16]),
    )
