"""The API's request and response models, built from the served model's card (`Predictor.info`).

Every shape plugs in the same way: its card names the input fields (`inputs`), the predictor names its result
type (`output_type`, documented as an object when it has none), and the registry says which page layout fits
(`n2m.registry.page_layout`): a similarity gauge, class bars, entity highlights, streamed text, or plain JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, create_model

from n2m.registry import page_layout
from n2m.serve.limits import Limits, check_text, text_pattern

LONG_TEXTS = (
    "a text longer than max_tokens tokens is cut to its first max_tokens (as in training) and still answered; "
    "the answer lists its position in `truncated` (/v1/rerank: the `X-N2M-Truncated` header)"
)
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
    # what happens to a text longer than `limits.max_tokens`: the rule every endpoint follows
    long_texts: str = LONG_TEXTS
    endpoints: list[str] = field(default_factory=list)  # the POST endpoints this model answers
    embedding_dimensions: int | None = None  # the length of a sentence vector (None: the model has none)
    corpus: dict[str, Any] | None = None  # what /v1/search searches: {"source": file name, "documents": N}
    # a captioner's images: formats, max_bytes, max_pixels, what an animated image is read as, how to send one
    images: dict[str, Any] | None = None
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
    # an image: its file's bytes in base64 (checked as an image by the endpoint: `serve.images`)
    image = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_body_bytes)]
    image_help = "the image file (PNG, JPEG, GIF, WebP, BMP) in base64, or a data: URL"
    input_model = create_model(  # type: ignore[call-overload]
        "ModelInput",
        __config__=forbid,
        **{
            name: (image, Field(description=image_help, json_schema_extra={"contentEncoding": "base64"}))
            if name == "image"
            else (text, Field(description=FIELD_HELP.get(name, name), json_schema_extra=rule))
            for name in fields
        },
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


# ---- embeddings, rerank and search -------------------------------------------------------------------------
ONE_OR_MANY = Discriminator(lambda value: "many" if isinstance(value, list) else "one")


def text_type(limits: Limits) -> Any:
    """A text as every endpoint takes it: at most `max_chars`, something visible, no control character."""
    rule = {"minLength": 1, "pattern": text_pattern()}
    return Annotated[
        str, StringConstraints(max_length=limits.max_chars), AfterValidator(check_text), Field(json_schema_extra=rule)
    ]


class Usage(BaseModel):
    prompt_tokens: int = Field(description="tokens the model read (a text cut at max_tokens counts max_tokens)")
    total_tokens: int


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="unit-length float32 values, or their little-endian bytes "
                                         "in base64 (`encoding_format: base64`)")  # fmt: skip


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage
    truncated: list[int] = Field(default_factory=list, description="positions of the inputs cut at max_tokens")


class RerankResult(BaseModel):
    index: int = Field(description="the document's position in the request")
    score: float = Field(description="cosine (a bi-encoder) or the model's pair score (a cross-encoder)")
    document: str | None = Field(default=None, description="the document's text (`return_documents: true`)")


class SearchHit(BaseModel):
    rank: int
    id: str
    text: str
    score: float = Field(description="cosine similarity of the query and the document")


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    documents: int = Field(description="documents searched")
    truncated: bool = Field(description="whether the query was cut at max_tokens")


@dataclass
class VectorModels:
    embeddings: type[BaseModel]
    rerank: Any  # a tagged union of two models: `documents` (Cohere, Jina) or `texts` (TEI)
    search: type[BaseModel]


def vector_models(limits: Limits, dimensions: int | None, max_top_k: int) -> VectorModels:
    text = text_type(limits)
    forbid = ConfigDict(extra="forbid")
    many = Annotated[list[text], Field(min_length=1, max_length=limits.max_inputs)]  # type: ignore[valid-type]
    one_or_many = Annotated[Annotated[text, Tag("one")] | Annotated[many, Tag("many")], ONE_OR_MANY]
    name = Annotated[str | None, Field(max_length=256)]
    # a model's vectors have one length: the schema says which (OpenAI's `dimensions` shortens, which needs a
    # model trained Matryoshka-style)
    fixed = Literal[dimensions] if dimensions else int  # type: ignore[valid-type]
    embeddings = create_model(  # type: ignore[call-overload]
        "EmbeddingsRequest",
        __config__=forbid,
        input=(one_or_many, Field(description=f"a text, or a list of 1 to {limits.max_inputs}")),
        model=(name, Field(default=None, description="any name (one model is served; the answer names it)")),
        encoding_format=(Literal["float", "base64"], "float"),
        dimensions=(fixed | None, Field(default=None, description="the model's own vector length only")),
        user=(name, None),
        input_type=(
            Literal["query", "passage"],
            Field(default="query", description="which prefix the texts get (e5: `query: ` or `passage: `)"),
        ),
    )
    documents = Annotated[list[text], Field(min_length=1, max_length=limits.max_inputs)]  # type: ignore[valid-type]
    common: dict[str, Any] = {
        "query": (text, ...),
        "top_n": (int | None, Field(default=None, ge=1, description="keep the best n (default: all)")),
        "return_documents": (bool, Field(default=False, description="each result carries its document's text")),
    }
    with_documents = create_model(  # type: ignore[call-overload]
        "RerankRequest", __config__=forbid, documents=(documents, ...), **common
    )
    with_texts = create_model(  # type: ignore[call-overload]
        "RerankTextsRequest", __config__=forbid, texts=(documents, ...), **common
    )
    rerank = Annotated[
        Annotated[with_documents, Tag("with_documents")] | Annotated[with_texts, Tag("with_texts")],
        Discriminator(rerank_branch),
    ]
    search = create_model(  # type: ignore[call-overload]
        "SearchRequest",
        __config__=forbid,
        query=(text, ...),
        top_k=(int, Field(default=10, ge=1, le=max_top_k, description=f"hits to return, 1 to {max_top_k}")),
    )
    return VectorModels(embeddings, rerank, search)


def rerank_branch(value: Any) -> str:
    """TEI's `texts` only when `documents` is absent: a body with both is answered against `documents`."""
    texts_only = isinstance(value, dict) and "texts" in value and "documents" not in value
    return "with_texts" if texts_only else "with_documents"
