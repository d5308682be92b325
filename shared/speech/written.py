"""Timed segments in the recogniser's spoken form -> segments of written sentences.

The formatter works on the whole transcript at once (a sentence often runs across two speech
chunks), then the words are regrouped into one segment per sentence, so subtitles and the page
break where a reader expects. Every recognised word stays in its segment with its own time and
confidence; each written token says which of them it came from and spans their times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.settings import Settings
from shared.speech.engines.base import Segment, Token, Word
from shared.text.formatter import FormatOptions, Formatter, WrittenToken

log = logging.getLogger(__name__)

# A sentence longer than this (a monologue the model found no period in) is still cut, at a
# token, so that no one segment holds minutes of text; a silence this long also starts one.
MAX_SEGMENT_S = 30.0
PAUSE_S = 3.0


@dataclass(frozen=True, slots=True)
class LoadedFormatter:
    """The formatter, or None with the reason the worker serves the spoken form."""

    formatter: Formatter | None
    status: str


def load_formatter(settings: Settings) -> LoadedFormatter:
    """Never raises: a model that cannot load must not stop the worker from transcribing."""
    if not settings.formatting:
        return LoadedFormatter(None, "off (STT_FORMATTING=false): spoken form")
    started = time.perf_counter()
    try:
        formatter = Formatter.load(
            settings.punctuation_model, settings.decimal_separator, settings.thousands_separator
        )
    except Exception as exc:  # any failure: the job still gets its words, unformatted
        log.error("written transcripts are OFF, serving the spoken form: %s", exc)
        return LoadedFormatter(None, f"unavailable, serving the spoken form: {exc}")
    took = time.perf_counter() - started
    log.info("written transcripts: %s (loaded in %.2f s)", formatter.name, took)
    return LoadedFormatter(formatter, formatter.name)


def spread_words(segment: Segment) -> list[Word]:
    """A segment's timed words; an engine without word times gets its text spread over the
    segment by characters, so cues and written tokens still get a plausible time."""
    if segment.words:
        return list(segment.words)
    texts = segment.text.split()
    if not texts:
        return []
    weights = [len(t) + 1 for t in texts]
    per_char = (segment.end - segment.start) / sum(weights)
    out, t = [], segment.start
    for text, weight in zip(texts, weights, strict=True):
        out.append(Word(text, t, t + weight * per_char))
        t += weight * per_char
    return out


def write_segments(
    segments: Sequence[Segment], formatter: Formatter, options: FormatOptions
) -> list[Segment]:
    words = [w for segment in segments for w in spread_words(segment) if w.text.strip()]
    tokens = formatter.format([w.text.strip() for w in words], options)
    return [_segment(words, group) for group in _sentences(words, tokens)]


def _sentences(words: list[Word], tokens: list[WrittenToken]) -> Iterator[list[WrittenToken]]:
    group: list[WrittenToken] = []
    for token in tokens:
        if group:
            gap = words[token.first].start - words[group[-1].last].end
            too_long = words[token.last].end - words[group[0].first].start > MAX_SEGMENT_S
            if group[-1].sentence_end or gap >= PAUSE_S or too_long:
                yield group
                group = []
        group.append(token)
    if group:
        yield group


def _segment(words: list[Word], group: list[WrittenToken]) -> Segment:
    base = group[0].first
    own = words[base : group[-1].last + 1]
    tokens = [
        Token(t.text, words[t.first].start, words[t.last].end, t.first - base, t.last - base)
        for t in group
    ]
    return Segment(
        text=" ".join(t.text for t in group),
        start=own[0].start,
        end=own[-1].end,
        words=own,
        spoken_text=" ".join(w.text.strip() for w in own),
        tokens=tokens,
    )
