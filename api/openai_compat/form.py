"""What an OpenAI client sends to /v1/audio/transcriptions, read into this service's terms.

The form is OpenAI's; the job it becomes is an ordinary interactive job. Names OpenAI's clients
send that mean nothing here (``whisper-1``, ``gpt-4o-transcribe``) select the default model
rather than fail, so an app written for OpenAI works unchanged. The closest thing this service
has to a prompt is hotwords: a prompt's short comma-separated phrases become hotwords of the
beam decoder (where they act); running prose in it is left out, as no hotword could match it.
``diarized_json`` (OpenAI's answer with speaker turns) makes the job tell speakers apart: a
two-channel call by its channels (as every job does by default), one channel by diarization.
Speakers are labelled A, B, ... in order of first speech, as OpenAI labels them; naming them
from reference recordings (``known_speaker_references[]``) is refused, since no voice is
enrolled here. ``chunking_strategy`` is ignored: speech detection cuts the audio anyway.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

from api import field_rules as rule
from api.request_models import read
from shared.errors import ErrorCode, SttError
from shared.jobs.routing import DEFAULT_MODEL_NAME, offered_models
from shared.settings import Settings

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
GRANULARITIES = ("segment", "word")
GRANULARITIES_FIELD = "timestamp_granularities[]"
KNOWN_SPEAKERS = ("known_speaker_names[]", "known_speaker_references[]")
MAX_PHRASE_WORDS = 6
_PHRASE_BREAKS = re.compile(r"[,;\n]")

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
Granularity = Literal["segment", "word"]
Temperature = Annotated[float, Field(ge=0, le=1)]
MODEL = "A model this deployment offers (STT_MODELS); any other name (whisper-1) is the default"
PROMPT = (
    f"Phrases (split at , ; and new lines) of up to {MAX_PHRASE_WORDS} words become hotwords of"
    " the beam decoder; longer pieces are left out"
)


def model_rule(raw: Any, info: ValidationInfo) -> str:
    settings: Settings = (info.context or {})["settings"]
    return raw if isinstance(raw, str) and raw in offered_models(settings) else DEFAULT_MODEL_NAME


def prompt_rule(raw: Any) -> list[str]:
    """Short phrases of the prompt, at most as many as the hotwords field takes."""
    phrases = (p.strip() for p in _PHRASE_BREAKS.split(str(raw or "")))
    kept = [p for p in phrases if p and len(p.split()) <= MAX_PHRASE_WORDS]
    return kept[: rule.MAX_HOTWORDS]


def format_rule(raw: Any) -> str:
    return rule.choice(raw or "json", RESPONSE_FORMATS, "response_format")


def temperature_rule(raw: Any) -> float:
    """Accepted as OpenAI documents it and not used: CTC decoding samples nothing."""
    return 0.0 if raw is None or raw == "" else rule.number(raw, "temperature", 0, 1)


def stream_rule(raw: Any) -> bool:
    """Answers are never streamed: a client asking for events would wait for ones never sent."""
    if str(raw).strip().lower() in ("true", "1"):
        raise SttError(ErrorCode.INVALID_REQUEST, "stream is not supported: send stream=false")
    return False


def granularities_rule(raw: Any) -> tuple[str, ...]:
    """OpenAI's default is segment times only; word times only when asked for."""
    values = raw if isinstance(raw, list) else [raw] if raw else []
    return tuple(rule.choice(v, GRANULARITIES, "timestamp_granularities[]") for v in values) or (
        "segment",
    )


class TranscriptionForm(BaseModel):
    """OpenAI's createTranscription form (multipart/form-data)"""

    model_config = ConfigDict(json_schema_extra={"required": ["file"]})

    file: Annotated[bytes, Field(description="MP3, WAV, M4A, OGG or FLAC, by content")] = b""
    model: Annotated[
        str, read(model_rule, str), Field(description=MODEL, validate_default=True)
    ] = DEFAULT_MODEL_NAME
    language: Annotated[str | None, read(rule.language, str)] = None
    prompt: Annotated[list[str], read(prompt_rule, str), Field(description=PROMPT)] = []
    response_format: Annotated[str, read(format_rule, ResponseFormat)] = "json"
    temperature: Annotated[
        float, read(temperature_rule, Temperature), Field(description="Accepted, not used")
    ] = 0.0
    stream: Annotated[
        bool, read(stream_rule, Literal[False]), Field(description="Answers are not streamed")
    ] = False
    timestamp_granularities: Annotated[
        tuple[str, ...],
        read(granularities_rule, list[Granularity]),
        Field(alias=GRANULARITIES_FIELD, description="With verbose_json; default segment"),
    ] = ("segment",)

    def job_fields(self) -> dict[str, Any]:
        """The fields of the interactive job this request becomes (as POST /v1/jobs reads)."""
        fields: dict[str, Any] = {"queue": "interactive", "model": self.model}
        if self.language:
            fields["language"] = self.language
        if self.prompt:
            fields |= {"hotwords": self.prompt, "decoder": "beam"}
        if self.response_format == "diarized_json":
            fields["diarize"] = True
        return fields


def read_form(fields: dict[str, Any], listed: list[str], settings: Settings) -> TranscriptionForm:
    """``listed``: every value of the granularities field (the client sends it repeated)."""
    fields = {**fields, GRANULARITIES_FIELD: listed}
    fields.pop("file", None)  # a text field of that name is no upload: the route says so
    for name in KNOWN_SPEAKERS:
        if fields.get(name) or fields.get(name.removesuffix("[]")):
            raise SttError(
                ErrorCode.INVALID_REQUEST,
                f"{name} is not supported: no voices are enrolled here, speakers are labelled "
                "A, B, ... in order of first speech",
            )
    return TranscriptionForm.model_validate(fields, context={"settings": settings})
