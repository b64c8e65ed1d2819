"""The API's request and response models, built from the served model's `n2m.json` (`Predictor.info`).

Every shape plugs in the same way: its `n2m.json` names the input fields (`inputs`, default `["text"]`),
and the results are the predictor's own dataclasses. A predictor may name its result type as
`output_type` (else N21's are derived from the objective, and any other shape is documented as an object).
`ModelView` tells the web page which layout fits: a similarity gauge, class bars, entity highlights,
streamed text, or plain JSON for a shape it does not know yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, create_model

from n2m.outputs import ClassPrediction, LabelsPrediction, ScorePrediction
from n2m.serve.limits import Limits, check_text

N21_OUTPUTS = {"regression": ScorePrediction, "classification": ClassPrediction, "multilabel": LabelsPrediction}
# result types of the other shapes, by (shape, scheme), for the OpenAPI document; loaded only when served
OTHER_OUTPUTS = {
    ("N2N", "bio"): "n2m.predictor_token:EntityPrediction",
    ("N2N", "tags"): "n2m.predictor_token:TagPrediction",
    ("N2M", None): "n2m.predictor_seq2seq:GeneratedText",
}
TASKS = {"N2M": "generation"}
FIELD_HELP = {
    "text": "the text (the first one of a pair)",
    "text_pair": "the second text of the pair",
    "source": "the text to transform",
}


@dataclass
class ModelView:
    """What `GET /v1/model` answers and what the page lays itself out from."""

    name: str
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


def model_view(info: dict[str, Any], name: str, backend: str, streaming: bool, limits: Limits) -> ModelView:
    shape = str(info.get("shape", "N21"))
    inputs = input_fields(info)
    task = str(info.get("objective") or info.get("task") or info.get("scheme") or TASKS.get(shape, shape))
    labels = info.get("label_names") or info.get("labels")
    if shape == "N21":
        if task == "regression":
            layout = "similarity" if len(inputs) == 2 else "score"
        else:
            layout = "classes" if task == "classification" else "labels"
    elif shape == "N2N":
        layout = "tags" if info.get("scheme") == "tags" else "entities"
    else:
        layout = {"N2M": "generation"}.get(shape, "json")
    return ModelView(
        name=name,
        shape=shape,
        task=task,
        inputs=inputs,
        layout=layout,
        backend=backend,
        labels=list(labels) if isinstance(labels, list) else None,
        score_range=info.get("score_range"),
        backbone=info.get("backbone"),
        n2m_version=info.get("n2m_version"),
        streaming=streaming,
        limits={
            "max_body_bytes": limits.max_body_bytes,
            "max_inputs": limits.max_inputs,
            "max_chars": limits.max_chars,
        },
        n2m_json=info,
    )


def input_fields(info: dict[str, Any]) -> list[str]:
    inputs = info.get("inputs")
    if isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs):
        return inputs
    return ["text"]


def output_type(predictor: Any, info: dict[str, Any]) -> Any:
    declared = getattr(predictor, "output_type", None)
    if declared is not None:
        return declared
    shape = info.get("shape", "N21")
    if shape == "N21" and info.get("objective") in N21_OUTPUTS:
        return N21_OUTPUTS[info["objective"]]
    where = OTHER_OUTPUTS.get((shape, info.get("scheme")))
    if where:
        from n2m.registry import load_object

        try:
            return load_object(where)
        except (ImportError, AttributeError):  # renamed since: still served, documented as an object
            pass
    return dict[str, Any]


@dataclass
class ApiModels:
    input: type[BaseModel]
    request: type[BaseModel]
    response: type[BaseModel]
    stream_request: type[BaseModel]


def api_models(fields: list[str], result: Any, limits: Limits) -> ApiModels:
    text = Annotated[str, StringConstraints(max_length=limits.max_chars), AfterValidator(check_text)]
    forbid = ConfigDict(extra="forbid")
    input_model = create_model(  # type: ignore[call-overload]
        "ModelInput",
        __config__=forbid,
        **{name: (text, Field(description=FIELD_HELP.get(name, name))) for name in fields},
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
    response = create_model("PredictResponse", predictions=(list[result], ...))  # type: ignore[call-overload]
    stream_request = create_model("StreamRequest", __config__=forbid, inputs=(input_model, ...))  # type: ignore[call-overload]
    return ApiModels(input_model, request, response, stream_request)
