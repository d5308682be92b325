"""The OpenAPI 3.1 document at ``/openapi.json``, generated from the request models the handlers
validate with (api/request_models.py), the answers' shapes (api/response_models.py) and the
route table (api/openapi_routes.py).

A field cannot be read without being described: its model is both. tests/test_openapi.py fuzzes
the app against this document and fails on any answer it does not describe, so a new field,
status or route has to reach the models or the table first. OpenAPI 3.1 because its schemas
are JSON Schema 2020-12, the dialect pydantic writes, so no translation step stands between the
models and the document. The error-code enum comes from shared.errors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from api import response_models as answer
from api.openai_compat.document import OPENAI_PATHS
from api.openapi_routes import ERROR_TEXT, PATHS, RETRY_AFTER

bp = Blueprint("openapi", __name__)
Schema = dict[str, Any]
REF = "#/components/schemas/"
# Named under components.schemas and referred to; every other shape is written where it is used.
COMPONENTS: tuple[type, ...] = (
    answer.Error,
    answer.Job,
    answer.JobList,
    answer.Delivery,
    answer.BatchItem,
    answer.Batch,
    answer.Readiness,
    answer.LegacyAnswer,
    answer.LegacyError,
)
INFO = {
    "title": "vi-stt",
    "version": "1",
    "description": "Vietnamese speech-to-text jobs. Errors are "
    '{"error": {"code", "message"}}; branch on `code`. /v1/audio/transcriptions is OpenAI\'s '
    "createTranscription and answers in OpenAI's error shape instead. When API keys are "
    "configured (STT_API_KEYS or `stt apikey create`), send one as `Authorization: Bearer <key>` "
    "or `X-API-Key`; with none configured the API is open.",
}


class OpenApiSchemas(GenerateJsonSchema):
    """pydantic's JSON Schema less the per-field titles (the field's name again) and defaults
    (placeholders such as null for fields a client simply leaves out)."""

    def field_title_should_be_set(self, schema: Any) -> bool:  # noqa: ARG002
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def inline(node: Any, defs: Schema, prefix: str, keep: frozenset[str] = frozenset()) -> Any:
    """``node`` with every reference to a definition not in ``keep`` replaced by its content."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] not in keep:
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return inline({**defs[ref[len(prefix) :]], **siblings}, defs, prefix, keep)
        return {key: inline(value, defs, prefix, keep) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(item, defs, prefix, keep) for item in node]
    return node


def query_parameters(model: type[BaseModel]) -> list[Schema]:
    """One query parameter per field. A parameter is absent rather than null, so a nullable
    field's null branch is left out of its parameter's schema."""
    schema = model.model_json_schema(schema_generator=OpenApiSchemas)
    defs = schema.get("$defs", {})
    parameters = []
    for name, field in schema["properties"].items():
        field = inline(field, defs, "#/$defs/")
        description = field.pop("description", None)
        options = [s for s in field.get("anyOf", []) if s != {"type": "null"}]
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                "schema": options[0] if len(options) == 1 else field,
                "description": description,
            }
        )
    return parameters


def _shapes(node: Any) -> list[type]:
    """The model classes the route table names, in the order it names them."""
    if isinstance(node, type):
        return [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return [shape for child in children for shape in _shapes(child)]


def _fill(node: Any, schema_of: Callable[[type], Schema]) -> Any:
    """The route table with its model classes replaced: in a list (of parameters) a model by
    its query parameters, anywhere else a class by its schema."""
    if isinstance(node, dict):
        return {key: _fill(value, schema_of) for key, value in node.items()}
    if isinstance(node, list):
        expanded: list[Any] = []
        for item in node:
            if isinstance(item, type) and issubclass(item, BaseModel):
                expanded.extend(query_parameters(item))
            else:
                expanded.append(_fill(item, schema_of))
        return expanded
    return schema_of(node) if isinstance(node, type) else node


@cache
def document() -> Schema:
    paths = {**PATHS, **OPENAI_PATHS}
    shapes = list(dict.fromkeys([*COMPONENTS, *_shapes(paths)]))
    schemas, top = TypeAdapter.json_schemas(
        [(shape, "validation", TypeAdapter(shape)) for shape in shapes],
        ref_template=REF + "{model}",
        schema_generator=OpenApiSchemas,
    )
    defs = top.get("$defs", {})
    keep = frozenset(shape.__name__ for shape in COMPONENTS)
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": _fill(paths, lambda shape: inline(schemas[shape, "validation"], defs, REF, keep)),
        "security": [{"bearer": []}, {"apiKey": []}, {}],
        "components": {
            "schemas": {name: inline(defs[name], defs, REF, keep) for name in sorted(keep)},
            "responses": {
                f"E{code}": {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": REF + "Error"}}},
                    **({"headers": RETRY_AFTER} if code == 503 else {}),
                }
                for code, text in ERROR_TEXT.items()
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(document())
