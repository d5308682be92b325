"""GET /v1/models: the models this deployment offers, in OpenAI's list-models shape.

Apps built on OpenAI's clients fill their model pickers from this list, and some check a name
with ``models.retrieve`` before using it. The names are the ones ``model`` selects on
/v1/audio/transcriptions and /v1/jobs: ``default`` and each STT_MODELS entry. The answers
carry no engine or path: which engine serves a name is the deployment's business, shown on
/readyz.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify

from api.openai_compat.shapes import Model
from api.services import services
from shared.errors import ErrorCode, SttError
from shared.jobs.routing import offered_models

bp = Blueprint("openai_models", __name__, url_prefix="/v1/models")
OWNER = "vi-stt"
# OpenAI's `created` is when a model was made; a name here is made when the API starts.
STARTED = int(time.time())


def _model(name: str) -> Model:
    return {"id": name, "object": "model", "created": STARTED, "owned_by": OWNER}


@bp.get("")
def list_models() -> Response:
    names = offered_models(services().settings)
    return jsonify({"object": "list", "data": [_model(name) for name in names]})


@bp.get("/<path:model_id>")
def retrieve_model(model_id: str) -> Response:
    """``path``: a name may hold a slash, as OpenAI's fine-tuned model names do."""
    if model_id not in offered_models(services().settings):
        raise SttError(
            ErrorCode.MODEL_NOT_FOUND,
            f"The model {model_id!r} does not exist here; GET /v1/models lists the ones offered",
        )
    return jsonify(_model(model_id))
