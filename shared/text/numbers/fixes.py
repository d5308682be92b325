"""Where the library's reading is wrong or too eager, and how each case is put right.

Each rule answers one failure measured on the hand-checked table (tests/data/itn_vi.tsv):

- a birth-order name stays a word: "ông mười" (Mr Mười);
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
- a number does not run on into the next word ("3 triệu đồng một tháng", "100 năm").

Years are in `years`; "mười tư", units of mass and set phrases in `words`.
"""

from __future__ import annotations

from shared.text.numbers.align import TagFn
from shared.text.numbers.tagger import Token, cardinal_value
from shared.text.numbers.words import DIGIT_VALUE, DIGITS, NUMBER_WORDS

Aligned = tuple[Token, int, int]

_DAY_WORDS = frozenset({"ngày", "mồng", "mùng"})
_COUNTING = NUMBER_WORDS | {"mỗi", "hàng", "từng", "vài", "mấy"}
# Forms of address before a birth-order name: "ông Mười", "chị Mười" (the tenth child); the
# smaller ones ("anh Hai", "chú Bảy") already stay words as lone digits.
_ADDRESS = frozenset(
    {"ông", "bà", "anh", "chị", "cô", "chú", "bác", "dì", "cậu", "mợ", "thím", "dượng", "út"}
)
# What a count is of, so that "em mười tuổi" still reads "em 10 tuổi".
_COUNTED = frozenset({"tuổi", "năm", "tháng", "ngày", "giờ", "phút", "lần", "người", "con"})


def birth_order_name(words: list[str], at: int) -> bool:
    """Whether words[at] is "mười" used as a name after a form of address ("ông mười bán hàng"
    is Mr Mười, not "ông 10"), so not a number at all; "em mười tuổi" still counts."""
    if words[at] != "mười" or not at or words[at - 1] not in _ADDRESS:
        return False
    after = words[at + 1] if at + 1 < len(words) else ""
    return after not in _COUNTED and after not in NUMBER_WORDS


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
        if before in DIGITS and DIGIT_VALUE.get(spoken[0]) == DIGIT_VALUE[before] + 1:
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
    value = cardinal_value(tag(minute_words)) if minute_words else None
    if value is None or not 0 <= value < 60:
        return token
    return Token("time", {**token.fields, "minutes": str(value)})


def joined_minutes(aligned: list[Aligned]) -> list[Aligned]:
    """Hours followed by a number under 60 are one time: some minutes rows of the grammar do not
    match ("năm mươi tư"), so it reads "hai mươi mốt giờ năm mươi tư" as 21 giờ and 54."""
    out: list[Aligned] = []
    for token, first, last in aligned:
        if out and token.kind == "cardinal" and _is_hour(out[-1][0]):
            value = cardinal_value((token,))
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
