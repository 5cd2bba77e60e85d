"""The front end's routes: each parses its peer's JSON, calls Triton through the SDK's async
client, and answers its peer's JSON. One client serves every request: its gRPC channel
multiplexes them, and the SDK marks a request of one Triton batch interactive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from emoclient import AsyncClient, Classification, EmotritonError, ModelInfo

from . import schema
from .errors import (
    HTTP_ERROR_TYPES,
    ApiError,
    error_response,
    sdk_error_response,
    too_many_texts,
    unsupported,
)
from .keys import ApiKeys
from .limits import BodyLimit
from .responses import PydanticJSONResponse
from .route import JsonRoute
from .settings import ApiSettings
from .tracing import traced

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schema.ErrorBody, "description": description}
    for status, description in {
        401: "no API key, or not one of the keys",
        404: "the model is not served here",
        413: "too many texts, or a body over the size limit",
        422: "a body that does not parse, or a text or option that cannot be served",
        429: "Triton is overloaded: retry after Retry-After seconds",
        502: "Triton refused the request",
        503: "Triton is not reachable or not ready",
        504: "Triton did not answer in time",
    }.items()
}


def create_app(settings: ApiSettings) -> FastAPI:
    """The ASGI app for `settings`; it connects to Triton when it starts serving."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncClient(settings.triton_url) as client:
            app.state.client = client
            yield
        if provider is not None:
            provider.shutdown()  # sends the spans not sent yet

    app = FastAPIOffline(
        title="emotriton",
        summary="Emotion classifiers served by Triton, as plain JSON",
        version="1",
        lifespan=lifespan,
        responses=_ERRORS,
        # Spans come from tracing.py's instrumentation when a serve option asks for them;
        # FastAPI's own would look for global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    provider = None if settings.tracing is None else traced(app, settings.tracing)
    app.router.route_class = JsonRoute  # the routes declared below; the docs page's stay
    # Without keys nothing is checked, and the document declares no security.
    guarded = [Depends(ApiKeys(settings.api_keys))] if settings.api_keys else []

    def texts_of(inputs: str | list[str]) -> list[str]:
        texts = [inputs] if isinstance(inputs, str) else inputs
        if len(texts) > settings.max_texts:
            raise too_many_texts(len(texts), settings.max_texts)
        return texts

    def nonempty(texts: list[str]) -> list[str]:
        if not texts:
            raise ApiError(400, "empty", "inputs cannot be empty")
        return texts

    def client() -> AsyncClient:
        """The one SDK client, set while the app serves: read as it is, where a FastAPI
        dependency would cost each request its resolution."""
        sdk: AsyncClient = app.state.client
        return sdk

    async def served(model: str | None) -> ModelInfo:
        """`model`, or the default one; only the models this front end was given."""
        name = model or settings.models[0]
        if name not in settings.models:
            raise ApiError(
                404, "not_found", f"model {name!r} is not served here; served: {settings.models}"
            )
        return await client().model(name)

    @app.post(
        "/classify",
        response_model=schema.ClassifyResponse,
        dependencies=guarded,
        summary="classify texts: the predicted labels and every label's score",
    )
    async def classify(body: schema.ClassifyRequest) -> Response:
        info = await served(body.model)
        results = await client().classify(
            texts_of(body.texts), model=info.name, top_k=body.top_k, threshold=body.threshold
        )
        return PydanticJSONResponse({"model": info.name, "results": [r.to_dict() for r in results]})

    @app.post(
        "/models/{model}",
        response_model=list[list[schema.LabelScore]],
        dependencies=guarded,
        summary="the Hugging Face text-classification task (huggingface_hub.InferenceClient)",
    )
    async def task(model: str, body: schema.TaskRequest) -> Response:
        info = await served(model)
        parameters = body.parameters or schema.TaskParameters()
        applied = parameters.function_to_apply
        if applied not in (None, info.activation):
            raise unsupported(
                f"function_to_apply={applied!r}: {info.name}'s scores are {info.activation} "
                "probabilities, and no other function can be applied to them"
            )
        texts = nonempty(texts_of(body.inputs))
        results = await client().classify(texts, model=info.name)
        return PydanticJSONResponse([ranked(r, parameters.top_k) for r in results])

    @app.post(
        "/predict",
        response_model=list[schema.LabelScore] | list[list[schema.LabelScore]],
        dependencies=guarded,
        summary="text-embeddings-inference's /predict, on the default model",
    )
    async def predict(body: schema.PredictRequest) -> Response:
        if body.raw_scores:
            raise unsupported("raw_scores: the served scores are probabilities, not logits")
        if body.truncation_direction != "right":
            raise unsupported("truncation_direction: the tokenizer keeps a text's first tokens")
        info = await served(None)
        results = await client().classify(nonempty(texts_of(body.inputs)), model=info.name)
        answers = [ranked(r, None) for r in results]
        return PydanticJSONResponse(answers[0] if isinstance(body.inputs, str) else answers)

    @app.get("/models", response_model=list[schema.ModelDescription], dependencies=guarded)
    async def models() -> Response:
        return PydanticJSONResponse([describe(await served(name)) for name in settings.models])

    @app.get("/models/{model}", response_model=schema.ModelDescription, dependencies=guarded)
    async def model(model: str) -> Response:
        return PydanticJSONResponse(describe(await served(model)))

    @app.get(
        "/health",
        response_model=schema.Health,
        responses={503: {"model": schema.Health, "description": "Triton is not ready"}},
        summary="Triton's readiness: 200 when it serves, 503 otherwise",
    )
    async def health() -> Response:
        state = await client().health()
        body = schema.Health(
            status="ok" if state.ready else "unavailable", live=state.live, ready=state.ready
        )
        return PydanticJSONResponse(body.model_dump(), 200 if state.ready else 503)

    @app.exception_handler(ApiError)
    async def refused(request: Request, error: ApiError) -> Response:
        challenge = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return error_response(error.status, error.error_type, str(error), challenge)

    @app.exception_handler(EmotritonError)
    async def failed(request: Request, error: EmotritonError) -> Response:
        return sdk_error_response(error)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        kind = HTTP_ERROR_TYPES.get(error.status_code, "http")
        return error_response(error.status_code, kind, str(error.detail), error.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> Response:
        return error_response(422, "validation", validation_message(error.errors()))

    # The JSON routes are the traffic: matched before the docs page's five routes.
    app.router.routes.sort(key=lambda route: not isinstance(route, JsonRoute))
    return app


def ranked(result: Classification, top_k: int | None) -> list[dict[str, Any]]:
    """Every label (or the best `top_k`), highest score first, as both peers answer."""
    return [
        {"label": label, "score": score} for label, score in result.top(top_k or len(result.scores))
    ]


def describe(info: ModelInfo) -> dict[str, Any]:
    return schema.ModelDescription(
        name=info.name,
        labels=list(info.labels),
        activation=info.activation,
        decision=info.decision,
        thresholds=None if info.thresholds is None else dict(info.thresholds),
        threshold_profile=info.threshold_profile,
        max_length=info.max_length,
        max_batch_size=info.max_batch_size,
    ).model_dump()


def validation_message(errors: Sequence[Any]) -> str:
    """pydantic's errors as one line: where, and what is wrong."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "; ".join(parts)
