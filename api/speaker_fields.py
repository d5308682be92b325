"""The speaker options a job may carry (AssemblyAI's and Deepgram's names where they agree):
``multichannel`` (split a two-channel call, default true), ``channel_names``, ``diarize`` and
the speaker counts. Checked at the door with stable codes; what only the audio can tell (how
many channels, how much speech) is the worker's, answered with a note on the job."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from api import field_rules as rule
from shared.errors import ErrorCode, SttError
from shared.speech.speakers.options import MAX_SPEAKERS

SPEAKER_FIELDS = (
    "multichannel",
    "channel_names",
    "diarize",
    "num_speakers",
    "min_speakers",
    "max_speakers",
)
COUNTS = ("num_speakers", "min_speakers", "max_speakers")
MULTICHANNEL = "Two-channel calls transcribed per channel (default true); false mixes down"
NAMES = "Two names for the channels, in order, e.g. agent,customer (two-channel calls)"
DIARIZE = "Tell speakers apart on a single channel (default false)"
COUNT = f"1..{MAX_SPEAKERS}, with diarize=true"
Count = Annotated[int, Field(ge=1, le=MAX_SPEAKERS)]


def _read(func: Any, sent: Any) -> BeforeValidator:
    return BeforeValidator(func, json_schema_input_type=sent)


class SpeakerFields(BaseModel):
    multichannel: Annotated[
        bool | None, _read(rule.flag("multichannel"), bool | None), Field(description=MULTICHANNEL)
    ] = None
    channel_names: Annotated[
        list[str] | None,
        _read(rule.channel_names, str | list[str] | None),
        Field(description=NAMES),
    ] = None
    diarize: Annotated[
        bool | None, _read(rule.flag("diarize"), bool | None), Field(description=DIARIZE)
    ] = None
    num_speakers: Annotated[
        int | None,
        _read(rule.speaker_count("num_speakers"), Count | None),
        Field(description=COUNT),
    ] = None
    min_speakers: Annotated[
        int | None,
        _read(rule.speaker_count("min_speakers"), Count | None),
        Field(description=COUNT),
    ] = None
    max_speakers: Annotated[
        int | None,
        _read(rule.speaker_count("max_speakers"), Count | None),
        Field(description=COUNT),
    ] = None

    @model_validator(mode="after")
    def _counts_agree(self) -> Any:
        given = [name for name in COUNTS if getattr(self, name) is not None]
        if given and not self.diarize:
            raise SttError(
                ErrorCode.INVALID_SPEAKER_COUNT, f"{', '.join(given)} needs diarize=true"
            )
        if self.num_speakers is not None and (self.min_speakers or self.max_speakers):
            raise SttError(
                ErrorCode.INVALID_SPEAKER_COUNT,
                "num_speakers fixes the count: give it alone, or min_speakers/max_speakers",
            )
        low, high = self.min_speakers, self.max_speakers
        if low is not None and high is not None and low > high:
            raise SttError(
                ErrorCode.INVALID_SPEAKER_COUNT, "min_speakers must not exceed max_speakers"
            )
        return self


class SpeakerForm(SpeakerFields):
    """The same fields as a multipart form sends them (text)."""

    multichannel: Annotated[
        bool | None, _read(rule.flag("multichannel"), str), Field(description=MULTICHANNEL)
    ] = None
    channel_names: Annotated[
        list[str] | None, _read(rule.channel_names, str), Field(description=NAMES)
    ] = None
    diarize: Annotated[
        bool | None, _read(rule.flag("diarize"), str), Field(description=DIARIZE)
    ] = None
    num_speakers: Annotated[
        int | None, _read(rule.speaker_count("num_speakers"), str), Field(description=COUNT)
    ] = None
    min_speakers: Annotated[
        int | None, _read(rule.speaker_count("min_speakers"), str), Field(description=COUNT)
    ] = None
    max_speakers: Annotated[
        int | None, _read(rule.speaker_count("max_speakers"), str), Field(description=COUNT)
    ] = None
