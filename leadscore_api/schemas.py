"""Request and response models. The lead's fields are generated from `INPUT_FIELDS`.

Generating them from the feature specification means the API accepts exactly the inputs the mart
produces and training used, with no second list to drift out of sync.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from leadscore_core.features import (
    EXAMPLE_LEAD,
    FALLBACK_CHANNEL,
    INPUT_FIELDS,
    MAX_CATEGORY_LENGTH,
    MAX_ID_LENGTH,
    InputField,
)
from leadscore_core.metadata import ModelMetadata

# An input that may never exceed another one (features.py); the mart guarantees it, so anything
# else is a bug upstream that must not be silently scored.
AT_MOST: dict[str, str] = {f.name: f.at_most for f in INPUT_FIELDS if f.at_most is not None}

EMAIL_MAX_LENGTH = 320
CONTACT_ID_MAX_LENGTH = MAX_ID_LENGTH  # the loader refuses longer ids, so every lead fits
CONTACT_ID_MAX = 2**53  # the largest integer JSON numbers carry exactly
Email = Annotated[
    str, Field(strict=True, max_length=EMAIL_MAX_LENGTH, description="Echoed in the response.")
]


def _json_number(value: Any) -> Any:
    """Whole numbers may arrive as 5 or 5.0 (JSON Schema's `integer` allows both), but never as
    "5" or true, which lax integer parsing would otherwise accept."""
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _whole_number(minimum: int, maximum: int) -> Any:
    return Annotated[int, Field(ge=minimum, le=maximum), BeforeValidator(_json_number)]


def _one_identifier_error(value: Any, validate: ValidatorFunctionWrapHandler) -> Any:
    """One error at `contact_id` instead of one per union member (`contact_id.constrained-str`)."""
    try:
        return validate(value)
    except ValidationError:
        raise PydanticCustomError(
            "contact_id_type",
            f"Input should be a string of 1 to {CONTACT_ID_MAX_LENGTH} characters or an integer "
            "from 0 to 2**53",
        ) from None


ContactId = Annotated[
    Annotated[str, Field(strict=True, min_length=1, max_length=CONTACT_ID_MAX_LENGTH)]
    | _whole_number(0, CONTACT_ID_MAX),
    WrapValidator(_one_identifier_error),
    Field(description="Echoed in the response."),
]


def _annotation(field: InputField) -> Any:
    """JSON types as the schema states them (no "5" for 5, no 1 for true), with the bounds."""
    if field.kind == "bool":
        return Annotated[bool, Field(strict=True)]
    if field.kind == "category":
        return Annotated[str, Field(strict=True, min_length=1, max_length=MAX_CATEGORY_LENGTH)]
    if field.max_value is None:
        raise ValueError(f"input field {field.name!r} needs a max_value to be served")
    if field.kind == "count":
        return _whole_number(0, int(field.max_value))
    return Annotated[float, Field(strict=True, ge=0, le=field.max_value, allow_inf_nan=False)]


def _field_definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for field in INPUT_FIELDS:
        annotation = _annotation(field)
        if field.required:
            definitions[field.name] = (annotation, Field(description=field.description))
        else:
            definitions[field.name] = (
                annotation | None,
                Field(None, description=f"{field.description} Optional: absent means unknown."),
            )
    return definitions


class _LeadBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    contact_id: ContactId | None = None

    @field_validator(*AT_MOST, check_fields=False)
    @classmethod
    def _not_more_than_bound(cls, value: int | None, info: ValidationInfo) -> int | None:
        bound_name = AT_MOST[info.field_name]
        bound = info.data.get(bound_name)  # absent when that field failed its own validation
        if value is not None and bound is not None and value > bound:
            raise PydanticCustomError(
                "not_more_than",
                "{field} ({value}) must not exceed {bound_name} ({bound})",
                {
                    "field": info.field_name,
                    "value": value,
                    "bound_name": bound_name,
                    "bound": bound,
                },
            )
        return value


Lead = create_model(
    "Lead",
    __base__=_LeadBase,
    __doc__="One lead's activity and, optionally, the CRM's attributes of the contact. Channels "
    "match GA4's groups whatever their case or spacing; unknown ones score as "
    f"{FALLBACK_CHANNEL!r}.",
    **_field_definitions(),
)
INPUT_NAMES: tuple[str, ...] = tuple(field.name for field in INPUT_FIELDS)


class ScoreRequest(Lead):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_LEAD]})

    # JSON booleans only: lax parsing would take 1 or "true" (the query parameter is lax, as
    # query strings have no types).
    explain: bool = Field(
        False, strict=True, description="Add `reasons` (same as `?explain=true`)."
    )


BATCH_EXAMPLE = {
    "leads": [
        {**EXAMPLE_LEAD, "contact_id": 1},
        {
            "sessions": 1,
            "engaged_sessions": 0,
            "page_views": 1,
            "channel": "TikTok",
            "is_first_visit": True,
            "contact_id": 2,
        },
    ]
}
SCORE_RESPONSE_EXAMPLE = {"score": 0.0281, "label": "low", "model_version": "lead_scoring/3"}
BATCH_RESPONSE_EXAMPLE = {
    "model_version": "lead_scoring/3",
    "results": [
        {"score": 0.0281, "label": "low", "contact_id": 1},
        {"score": 0.0074, "label": "low", "contact_id": 2},
    ],
}
VALIDATION_PROBLEM_EXAMPLE = {
    "detail": [
        {
            "field": "engaged_sessions",
            "loc": ["body", "engaged_sessions"],
            "msg": "engaged_sessions (3) must not exceed sessions (2)",
            "type": "not_more_than",
        }
    ],
    "error_count": 1,
}
NOT_READY_EXAMPLE = {"detail": "no model published yet: waiting for the pipeline to publish one"}


def batch_request_model(max_batch: int) -> type[BaseModel]:
    """The batch body; its size limit is a setting, so the model is built per app."""
    return create_model(
        "BatchRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [BATCH_EXAMPLE]}),
        leads=(list[Lead], Field(min_length=1, max_length=max_batch)),
        explain=(bool, Field(False, strict=True, description="Add `reasons` to every result.")),
    )


class Reason(BaseModel):
    """One feature's push on the score, in the model's log-odds (before calibration)."""

    feature: str
    value: bool | int | float | str | None = Field(
        description="The value the model saw; null means missing."
    )
    contribution: float = Field(description="Signed SHAP value in log-odds.")
    text: str = Field(description="The reason in words, e.g. for a sales rep.")


class ScoreResult(BaseModel):
    score: float = Field(ge=0, le=1, description="Probability that the lead becomes closed-won.")
    label: Literal["high", "low"]
    email: str | None = None
    contact_id: str | int | None = None
    reasons: list[Reason] | None = None


class ScoreResponse(ScoreResult):
    model_version: str


class BatchResponse(BaseModel):
    model_version: str
    results: list[ScoreResult] = Field(description="One result per lead, in request order.")


class ModelInfo(ModelMetadata):
    """The served model's metadata (leadscore_core.metadata.ModelMetadata, as the pipeline wrote
    it) plus what the service adds."""

    serving_threshold: float = Field(description="Threshold this service labels `high` above.")
    file_sha256: str = Field(description="SHA-256 of the model file being served.")
    loaded_at: datetime = Field(description="When this service loaded the file.")


class ReadyResponse(BaseModel):
    status: Literal["ready"]
    model_version: str
    predictor: Literal["compiled", "xgboost"] = Field(
        description="`compiled`: the model's C predictor built at publish time; `xgboost`: the "
        "fallback (none was published for this file, or it did not agree with XGBoost)."
    )
    last_reload_error: str | None = Field(
        None, description="Why the newest model file was rejected, if it was; the previous serves."
    )


class Problem(BaseModel):
    detail: str


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending value, e.g. `leads.17.sessions`.")
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    detail: list[FieldError]
    error_count: int
