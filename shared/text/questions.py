"""Which sentences are questions, read from Vietnamese question words.

The punctuation tagger learned from encyclopedia and legal text, where fewer than one sentence
in a hundred is a question, so it almost never writes "?" even for "anh có đi không"; speech
(support calls, voice notes) asks far more. Vietnamese marks a question with words, not with
word order or intonation the text keeps: a final "không" or "chưa" closing a yes/no frame, a
final particle that only asks ("nhỉ", "hả", "chăng"), a question word at the end ("gì",
"đâu", "bao nhiêu") or at the start ("tại sao", "có phải"). The tagger still decides where
sentences end; this only decides which end mark a sentence takes.
"""

from __future__ import annotations

from collections.abc import Sequence

_ENDS = frozenset({".", "?", "!"})
# Said after a question's last content word, politely or for emphasis; skipped when reading
# what the sentence ends with.
_TRAILING = frozenset({"ạ", "vậy", "thế", "nhé", "đây"})
_ASKING_PARTICLES = frozenset({"nhỉ", "hả", "hở", "chăng", "hử", "à", "ư"})
_PARTICLES = _TRAILING | _ASKING_PARTICLES
# Particles that only close a sentence: none of them starts one in the training text or in
# held-out news (2.1 M sentences of text), so a sentence the tagger starts with one ("... chào
# anh. Ạ em có thể ...") began a word too early.
NEVER_FIRST = frozenset({"ạ", "nhé", "nhá", "nhỉ", "hả", "hở", "hử", "chăng"})
_YES_NO = frozenset({"không", "chưa"})
_CLOSING_WORDS = _YES_NO | _TRAILING  # a comma right before one of these ends no clause
# "có đến hay không" (whether or not) closes an indirect question, which Vietnamese writes
# as a statement.
_INDIRECT = frozenset({"hay", "hoặc"})
# Words that make a final "không" part of a noun or an answer: "hàng không" (aviation), "chân
# không" (vacuum), "là không" (the answer is no), "số không" (zero).
_NOT_ASKING_BEFORE_KHONG = _INDIRECT | {"hàng", "chân", "là", "số", "tay", "bằng", "con"}
# A bare final "ai" is as often the acronym AI; "là ai", "của ai" ask.
_WH_END = ("gì", "đâu", "là ai", "của ai", "bao nhiêu", "mấy", "khi nào", "bao giờ", "thế nào")
_WH_START = ("tại sao", "vì sao", "có phải", "làm sao", "liệu", "phải chăng")
# After a negation a question word is an indefinite: "tôi không biết gì" (nothing).
_NEGATIONS = frozenset({"không", "chẳng", "chả", "chưa", "đừng", "chớ"})
# "có đơn giản đâu" (it is not simple): "đâu" after "có" or "phải" denies, it does not ask.
_DENYING_DAU = frozenset({"có", "phải"})


def is_question(words: Sequence[str]) -> bool:
    """Whether a sentence of lowercase words asks; words is the sentence, in order."""
    core = list(words)
    while len(core) > 1 and core[-1] in _TRAILING:
        core.pop()
    if not core:
        return False
    if core[-1] in _ASKING_PARTICLES:
        return core[-1] != "chăng" or _tail(core, 2) != "phải chăng"  # "giá phải chăng": fair
    if core[-1] in _YES_NO:
        return len(core) > 1 and core[-2] not in _NOT_ASKING_BEFORE_KHONG
    if _ends_with(core, _WH_END):
        denying = _DENYING_DAU if core[-1] == "đâu" else frozenset()
        return not any(w in _NEGATIONS or w in denying for w in core[:-1])
    return _starts_with(core, _WH_START)


def mark_questions(words: Sequence[str], marks: Sequence[str]) -> list[str]:
    """The marks again, with each sentence that asks ending in "?" instead of "." or "!"."""
    out = _ends_after_particles(words, marks)
    for start, end in _sentences(out):
        asks = out[end] != "?" and is_question(words[start : end + 1])
        if asks:
            out[end] = "?"
        closing = _CLOSING_WORDS if asks else NEVER_FIRST  # "theo số này, nhé." never
        if end > start and out[end - 1] == "," and words[end] in closing:
            out[end - 1] = ""  # "hôm nay, không?" reads as two sentences
    return out


def _ends_after_particles(words: Sequence[str], marks: Sequence[str]) -> list[str]:
    """Sentence ends moved past the closing particles the tagger put after them: a sentence of
    nothing but particles ("... khi nào. Vậy.") or a denying "đâu" joins the one before it, and
    one that starts with a particle that never starts one ("chào anh. Ạ em có thể") gives it
    back."""
    out = list(marks)
    before = 0  # where the sentence before this one starts
    for start, end in _sentences(marks):
        if start == 0:
            continue
        lead = start
        while lead <= end and words[lead] in _PARTICLES:
            lead += 1
        if lead > end or _denying_dau(words[before:start], words[start : end + 1]):
            out[start - 1] = ""
        elif words[start] in NEVER_FIRST:
            out[lead - 1], out[start - 1] = out[start - 1], ""
        before = start
    return out


def _denying_dau(previous: Sequence[str], sentence: Sequence[str]) -> bool:
    """A lone "đâu" after a negated sentence closes it ("không khó lắm đâu": not hard at all),
    it does not ask where."""
    return list(sentence) == ["đâu"] and any(w in _NEGATIONS for w in previous)


def _sentences(marks: Sequence[str]) -> list[tuple[int, int]]:
    """(first, last) token of each sentence the marks end; a tail without an end is none."""
    spans, start = [], 0
    for i, mark in enumerate(marks):
        if mark in _ENDS:
            spans.append((start, i))
            start = i + 1
    return spans


def _ends_with(words: Sequence[str], phrases: Sequence[str]) -> bool:
    return any(_tail(words, len(p.split())) == p for p in phrases)


def _starts_with(words: Sequence[str], phrases: Sequence[str]) -> bool:
    return any(" ".join(words[: len(p.split())]) == p for p in phrases)


def _tail(words: Sequence[str], n: int) -> str:
    return " ".join(words[-n:]) if len(words) >= n else ""
