"""Where the library's reading is wrong or too eager, and how each case is put right.

Each rule answers one failure measured on the hand-checked table (tests/data/itn_vi.tsv):

- small counts stay words: a lone digit word ("năm con mèo"), ranges ("hai ba người", "năm sáu
  người", "ba bốn trăm người"), a count followed by "mấy" ("mười mấy người"), a digit word
  and "đồng"/"đô" alone ("hai đồng đội", "một đô thị", "không đồng ý"), "linh"/"lẻ" opening a
  number (the name Linh: "mạnh linh một nhà"), "tháng một" after a count word ("mỗi tháng
  một lần"), a one-digit day without "ngày" ("hai tháng một lần"), "một giờ" after a unit
  (per hour);
- ordinals of one word stay words: "thứ hai" is Monday as often as "second", "thứ nhất";
- a digit-by-digit reading of fewer than four digits is not a number ("năm chín lăm" is the year
  word and 95, "một hai ba" is counting);
- the grammar's minutes table has wrong rows ("ba mươi mốt" read as 21) and rows that never
  match ("năm mươi tư"): minutes are re-read, and hours followed by a number under 60 joined;
- "mười tư" (14) is not in the grammar: read as "mười bốn";
- a number does not run on into the next word ("3 triệu đồng một tháng", "100 năm");
- years spoken in two-digit groups after "năm" ("năm mười chín bảy lăm" → năm 1975), round
  years the grammar merges with the year word ("năm hai nghìn" is not 52,000) and years with
  the leading "một" dropped ("nghìn chín trăm bảy mươi lăm" → 1975);
- "tấn", "tạ", "yến" are units of mass the grammar does not know: a digit word before one is
  written as a digit, as before "mét";
- set phrases keep their numbers as words ("mười phân vẹn mười", "tỷ lệ", "Ba Tư").
"""

from __future__ import annotations

from shared.text.itn_align import Piece, TagFn
from shared.text.itn_tagger import Token

Aligned = tuple[Token, int, int]

_DIGIT_WORDS = ("", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy bẩy", "tám", "chín")
_DIGIT_VALUE = {word: value for value, words in enumerate(_DIGIT_WORDS) for word in words.split()}
DIGITS = frozenset(_DIGIT_VALUE)
NUMBER_WORDS = DIGITS | frozenset(
    {"không", "mười", "mươi", "trăm", "nghìn", "ngàn", "triệu", "tỷ", "tỉ", "linh", "lẻ"}
    | {"mốt", "tư", "lăm", "nhăm", "rưỡi", "phẩy", "chấm", "trừ", "âm"}
)
# Words the grammar reads around numbers, beside the numbers and units themselves.
CONTEXT_WORDS = frozenset(
    {"ngày", "mồng", "mùng", "tháng", "giờ", "phút", "giây", "kém", "thứ", "mấy"}
    | {"km", "kg", "cm", "mm", "m", "ha", "hàng", "vài", "mỗi", "từng", "tấn", "tạ", "yến"}
)
IDIOMS = frozenset(
    {
        ("mười", "phân", "vẹn", "mười"),
        ("chín", "người", "mười", "ý"),
        ("trăm", "người", "như", "một"),
        ("tỷ", "lệ"),
        ("tỉ", "lệ"),
        ("ba", "tư"),  # Persia; 34 is said "ba mươi tư"
        ("gam", "màu"),
    }
)
_DAY_WORDS = frozenset({"ngày", "mồng", "mùng"})
_COUNTING = NUMBER_WORDS | {"mỗi", "hàng", "từng", "vài", "mấy"}
_MAGNITUDES = frozenset({"trăm", "nghìn", "ngàn", "triệu", "tỷ", "tỉ", "phẩy", "chấm"})


def tagger_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words as the grammar expects them: "tư" after "mười" becomes "bốn" (one for one, so
    word indices do not move)."""
    return tuple(
        "bốn" if word == "tư" and index and words[index - 1] == "mười" else word
        for index, word in enumerate(words)
    )


def keeps_words(token: Token, spoken: tuple[str, ...], around: tuple[str, str]) -> bool:
    """True where a recognised number is better left as the words that were spoken; `around`
    is the word before and the word after it in the run ("" where there is none)."""
    before, after = around
    if token.kind == "money":  # "hai đồng đội", "một đô thị": a digit and "đồng" is no sum
        return len(spoken) == 2 and spoken[0] in DIGITS | {"không"}
    if token.kind == "measure" and spoken[0] == "không":
        return len(spoken) == 2  # "không kí" (did not sign) is no 0 kg; "không độ c" is 0°C
    if token.kind == "date" and "year" not in token.fields:
        # "mỗi tháng một lần" is once a month, not January; "hai tháng một lần" is not 2/1.
        day = token.fields.get("day")
        lone_day = isinstance(day, str) and len(day.strip()) == 1
        return before in _COUNTING or (lone_day and before not in _DAY_WORDS)
    if token.kind == "time" and "minutes" not in token.fields and spoken[0] in DIGITS:
        return before not in ("", *NUMBER_WORDS)  # "sáu mươi ki lô mét một giờ": per hour
    if token.kind == "cardinal":
        if before in DIGITS and _DIGIT_VALUE.get(spoken[0]) == _DIGIT_VALUE[before] + 1:
            return True  # a range: "ba bốn trăm người", "bảy tám mươi tuổi"
        if after == "mấy" or spoken[0] in ("linh", "lẻ"):  # "mạnh linh một nhà đầu tư"
            return True
        if len(spoken) == 1 and spoken[0] in DIGITS | {"không"}:
            return True
        return len(spoken) == 2 and spoken[0] in DIGITS and spoken[1] in DIGITS
    if token.kind == "ordinal":
        return len(spoken) <= 2
    if token.kind == "telephone":
        return len(spoken) < 4
    return token.kind in ("fraction", "electronic", "whitelist", "word", "punctuation")


_MASSES = frozenset({"tấn", "tạ", "yến"})


def digit_before_unit(word: str, after: str) -> str | None:
    """A digit word before a unit of mass the grammar lacks: "ba tấn" is written "3 tấn" like
    "ba mét" is "3 m"."""
    return str(_DIGIT_VALUE[word]) if word in DIGITS and after in _MASSES else None


def token_end(token: Token, spoken: tuple[str, ...], tag: TagFn) -> int | None:
    """Where a number really ends when the grammar ran on into the next word: "một trăm năm"
    is a hundred years (it reads 150); "ba triệu đồng một tháng" is 3 million a month (it reads
    3 million and 0.01), so a sum is the longest start of the words that reads as money alone."""
    if token.kind == "cardinal" and spoken[-2:] == ("trăm", "năm"):
        return len(spoken) - 1
    if token.kind != "money" or spoken[-1] not in NUMBER_WORDS:
        return None
    for end in range(len(spoken) - 1, 0, -1):
        head = tag(spoken[:end])
        if len(head) == 1 and head[0].kind == "money" and "fractional_part" not in head[0].fields:
            return end
    return None


def fixed_minutes(token: Token, spoken: tuple[str, ...], tag: TagFn) -> Token:
    """A time token with its minutes re-read from the words after "giờ" (the grammar's own
    minutes table is wrong for 21-59 on some rows)."""
    if token.kind != "time" or "minutes" not in token.fields or "kém" in spoken:
        return token
    if "giờ" not in spoken or "rưỡi" in spoken:
        return token
    minute_words = spoken[spoken.index("giờ") + 1 :]
    if minute_words[-1:] == ("phút",):
        minute_words = minute_words[:-1]
    value = _cardinal(tag(minute_words)) if minute_words else None
    if value is None or not 0 <= value < 60:
        return token
    return Token("time", {**token.fields, "minutes": str(value)})


def joined_minutes(aligned: list[Aligned]) -> list[Aligned]:
    """Hours followed by a number under 60 are one time: some minutes rows of the grammar do not
    match ("năm mươi tư"), so it reads "hai mươi mốt giờ năm mươi tư" as 21 giờ and 54."""
    out: list[Aligned] = []
    for token, first, last in aligned:
        if out and token.kind == "cardinal" and _is_hour(out[-1][0]):
            value = _cardinal((token,))
            if value is not None and value < 60:
                hours = out[-1][0].fields["hours"]
                out[-1] = (Token("time", {"hours": hours, "minutes": str(value)}), out[-1][1], last)
                continue
        if out and token.word == "phút" and out[-1][0].kind == "time":
            out[-1] = (out[-1][0], out[-1][1], last)
            continue
        out.append((token, first, last))
    return out


def _is_hour(token: Token) -> bool:
    return token.kind == "time" and "minutes" not in token.fields


def _cardinal(tokens: tuple[Token, ...]) -> int | None:
    if len(tokens) != 1 or tokens[0].kind != "cardinal" or "negative" in tokens[0].fields:
        return None
    value = tokens[0].fields.get("integer")
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def spoken_year(words: tuple[str, ...], tag: TagFn) -> list[Piece] | None:
    """A year the grammar misses, read from the start of `words`, or None."""
    return _grouped_year(words, tag) or _merged_year(words, tag) or _year_without_one(words, tag)


def with_year(head: tuple[Piece, ...], year: list[Piece]) -> tuple[Piece, ...]:
    """A year found by the rules above joins a date just before it ("tháng 8" + "năm 2000" is
    "tháng 8/2000"; "15/8" + "năm 2000" is "15/8/2000"), as the grammar's own dates are written."""
    if len(year) != 2 or not head or not head[-1][0].replace("/", "").isdigit():
        return head + tuple(year)
    text, first, _ = head[-1]
    if "/" in text or (len(head) > 1 and head[-2][0] == "tháng"):
        return head[:-1] + ((f"{text}/{year[1][0]}", first, year[1][2]),)
    return head + tuple(year)


def _merged_year(words: tuple[str, ...], tag: TagFn) -> list[Piece] | None:
    """After "năm", "hai nghìn" is the year 2000: the grammar reads "năm hai nghìn" as 52,000."""
    if words[:1] != ("năm",) or words[1:2] == () or words[1] not in DIGITS:
        return None
    stop = 1
    while stop < len(words) and words[stop] in NUMBER_WORDS:
        stop += 1
    merged = tag(words[:stop])
    if not merged or merged[0].kind != "cardinal":
        return None
    value = _cardinal(tag(words[1:stop]))
    if value is None or not 1000 <= value < 3000:
        return None
    return [("năm", 0, 0), (str(value), 1, stop - 1)]


def _grouped_year(words: tuple[str, ...], tag: TagFn) -> list[Piece] | None:
    """The year word, then the century and the year in two groups: "năm mười chín bảy lăm"."""
    if words[:1] != ("năm",) or words[1:2] == ("mươi",):
        return None
    stop = 1
    while stop < len(words) and words[stop] in NUMBER_WORDS - _MAGNITUDES:
        stop += 1
    if stop < 4:
        return None
    for split in range(3, stop):
        century = _cardinal(tag(words[1:split]))
        rest = _cardinal(tag(words[split:stop]))
        if century is not None and 10 <= century <= 20 and rest is not None and rest >= 10:
            return [("năm", 0, 0), (str(century * 100 + rest), 1, stop - 1)]
    return None


def _year_without_one(words: tuple[str, ...], tag: TagFn) -> list[Piece] | None:
    """A year with its leading "một" dropped, as people say it: "nghìn chín trăm bảy mươi lăm"."""
    if words[:1] not in (("nghìn",), ("ngàn",)) or words[2:3] != ("trăm",):
        return None
    tokens = tag(("một", *words))
    if not tokens or tokens[0].kind != "cardinal":
        return None
    value = _cardinal(tokens[:1])
    if value is None or not 1000 <= value < 2000:
        return None
    if any(t.kind != "name" for t in tokens[1:]):
        return None
    return [(str(value), 0, len(words) - len(tokens[1:]) - 1)]
