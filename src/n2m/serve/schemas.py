"""The API's request and response models, built from the served model's card (`Predictor.info`).

Every shape plugs in the same way: its card names the input fields (`inputs`), the predictor names its result
type (`output_type`, documented as an object when it has none), and the registry says which page layout fits
(`n2m.registry.page_layout`): a similarity gauge, class bars, entity highlights, streamed text, or plain JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, create_model

from n2m.registry import page_layout
from n2m.serve.limits import Limits, check_text, text_pattern

FIELD_HELP = {
    "text": "the text (the first one of a pair)",
    "text_pair": "the second text of the pair",
}


@dataclass
class ModelView:
    """What `GET /v1/model` answers and what the page lays itself out from."""

    name: str
    title: str  # the model's own title (the card's `provenance.title`), else its name: what the page shows
    shape: str
    task: str
    inputs: list[str]
    layout: str  # similarity | score | classes | labels | entities | tags | generation | json
    backend: str
    labels: list[str] | None = None
    score_range: list[float] | None = None
    backbone: str | None = None
    n2m_version: str | None = None
    streaming: bool = False
    limits: dict[str, int] = field(default_factory=dict)
    n2m_json: dict[str, Any] = field(default_factory=dict)


def model_view(
    info: dict[str, Any], name: str, title: str | None, backend: str, streaming: bool, limits: Limits
) -> ModelView:
    shape, task, inputs = str(info.get("shape", "")), str(info.get("task", "")), input_fields(info)
    labels = info.get("labels")
    encoding = info.get("encoding") or {}
    provenance = info.get("provenance") or {}
    own_title = provenance.get("title")
    return ModelView(
        name=name,
        title=title or (own_title.strip() if isinstance(own_title, str) and own_title.strip() else name),
        shape=shape,
        task=task,
        inputs=inputs,
        layout=page_layout(shape, task, inputs),
        backend=backend,
        labels=list(labels) if isinstance(labels, list) else None,
        score_range=(info.get("settings") or {}).get("score_range"),
        backbone=info.get("backbone"),
        n2m_version=provenance.get("n2m_version"),
        streaming=streaming,
        limits={
            "max_body_bytes": limits.max_body_bytes,
            "max_inputs": limits.max_inputs,
            "max_chars": limits.max_chars,
            # the model reads this many tokens of a text (its start and end tokens included); the rest is cut
            **({"max_tokens": encoding["max_length"]} if "max_length" in encoding else {}),
        },
        n2m_json=info,
    )


def input_fields(info: dict[str, Any]) -> list[str]:
    inputs = info.get("inputs")
    if isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs):
        return inputs
    return ["text"]


def output_type(predictor: Any) -> Any:
    """The predictor's result type, for the OpenAPI document (an object when it names none)."""
    return getattr(predictor, "output_type", None) or dict[str, Any]


@dataclass
class ApiModels:
    input: type[BaseModel]
    request: type[BaseModel]
    response: type[BaseModel]
    stream_request: type[BaseModel]


def api_models(fields: list[str], result: Any, limits: Limits) -> ApiModels:
    text = Annotated[str, StringConstraints(max_length=limits.max_chars), AfterValidator(check_text)]
    forbid = ConfigDict(extra="forbid")
    # `check_text`'s rule, stated in the schema only: the check itself gives the clearer message
    rule = {"minLength": 1, "pattern": text_pattern()}
    input_model = create_model(  # type: ignore[call-overload]
        "ModelInput",
        __config__=forbid,
        **{name: (text, Field(description=FIELD_HELP.get(name, name), json_schema_extra=rule)) for name in fields},
    )
    many = Annotated[list[input_model], Field(min_length=1, max_length=limits.max_inputs)]  # type: ignore[valid-type]
    # tagged by JSON type, so a bad input is reported once, against the branch the client meant
    one_or_many = Annotated[
        Annotated[input_model, Tag("one")] | Annotated[many, Tag("many")],
        Discriminator(lambda value: "many" if isinstance(value, list) else "one"),
    ]
    request = create_model(  # type: ignore[call-overload]
        "PredictRequest",
        __config__=forbid,
        inputs=(
            one_or_many,
            Field(description=f"one input, or a list of 1 to {limits.max_inputs}; results come back in order"),
        ),
    )
    response = create_model(  # type: ignore[call-overload]
        "PredictResponse",
        predictions=(list[result], ...),
        truncated=(
            list[int],
            Field(default_factory=list, description="positions of the inputs longer than the model reads (cut)"),
        ),
    )
    stream_request = create_model("StreamRequest", __config__=forbid, inputs=(input_model, ...))  # type: ignore[call-overload]
    return ApiModels(input_model, request, response, stream_request)
