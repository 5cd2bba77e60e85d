"""Each route's request and answer body: the wire contract of the JSON API, from which FastAPI
generates the OpenAPI document. Our own route refuses unknown fields (a typo is an error, not a
silently ignored option); the peers' routes ignore them, as their servers do."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Inputs = Annotated[
    str | list[str],
    Field(description="one text, or a list of texts (one answer each, in order)"),
]


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: Inputs
    model: str | None = Field(
        default=None, description="the served model; the front end's default model when absent"
    )
    top_k: int | None = Field(
        default=None, ge=1, description="keep at most the k best-scoring of the predicted labels"
    )
    threshold: Probability | dict[str, Probability] | None = Field(
        default=None,
        description="replaces the served thresholds for this request: one for every label, or "
        "label → threshold; a label is predicted when its score is at least its threshold",
    )


class Prediction(BaseModel):
    index: int = Field(description="the text's position in the request")
    labels: list[str] = Field(description="the predicted labels, highest score first")
    scores: dict[str, float] = Field(description="every label's probability, in the model's order")


class ClassifyResponse(BaseModel):
    model: str
    results: list[Prediction]


class LabelScore(BaseModel):
    label: str
    score: float


class TaskParameters(BaseModel):
    top_k: int | None = Field(
        default=None, ge=1, description="the k best labels (default: every label)"
    )
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = Field(
        default=None,
        description="must be the model's own activation when given: the served scores are "
        "probabilities, so no other function can be applied to them",
    )


class TaskRequest(BaseModel):
    """The Hugging Face text-classification task's input."""

    inputs: Inputs
    parameters: TaskParameters | None = None


class PredictRequest(BaseModel):
    """text-embeddings-inference's /predict input (text pairs are not served)."""

    inputs: Inputs
    truncate: bool = Field(
        default=False,
        description="accepted for compatibility: a text is always cut to the model's max_length "
        "tokens",
    )
    truncation_direction: Literal["left", "right"] = Field(
        default="right", description="only right: the tokenizer keeps a text's first tokens"
    )
    raw_scores: bool = Field(
        default=False, description="only false: the served scores are probabilities, not logits"
    )


class ModelDescription(BaseModel):
    name: str
    labels: list[str]
    activation: str = Field(description="sigmoid (multi-label) or softmax (single-label)")
    decision: str = Field(description="how the served labels are chosen from the scores")
    thresholds: dict[str, float] | None
    threshold_profile: str | None
    max_length: int | None = Field(description="the tokens of a text that the model reads")
    max_batch_size: int


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    live: bool
    ready: bool = Field(description="Triton's readiness: every model it loaded is ready")


class ErrorBody(BaseModel):
    error: str
    error_type: str
