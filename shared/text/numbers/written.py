"""How a recognised number is written in Vietnamese: separators, units, currencies, dates, times.

The tagger says what was spoken ("measure: 30, °c"); this module says how Vietnamese text writes
it ("30°C"). It is ours rather than the library's verbaliser because the library writes "200000₫",
"12.5" and "50 %", where Vietnamese writes "200.000 đồng", "12,5" and "50%". The conventions
(each checked against the Dân trí news text in the team's data) are in the README's table.

`write` returns the written tokens, or None where the token should stay as spoken words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.text.numbers.tagger import Fields, Token

# Units the grammar writes one way and Vietnamese text another.
_UNITS = {"°c": "°C", "°f": "°F", "l": "lít", "s": "giây", "h": "giờ"}
_ATTACHED_UNITS = frozenset({"%", "°C", "°F"})
_CURRENCIES = {"₫": "đồng", "$": "USD", "€": "euro", "¥": "yên", "₩": "won"}


@dataclass(frozen=True, slots=True)
class Style:
    """Separators: Vietnamese by default (1.000,5); a setting may ask for 1,000.5."""

    decimal: str = ","
    thousands: str = "."

    def integer(self, digits: str) -> str:
        """Group thousands: 1200000 -> 1.200.000 (digit strings under 1,000 unchanged)."""
        head = len(digits) % 3 or 3
        groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
        return self.thousands.join(groups)

    def number(self, fields: Fields) -> str:
        """A cardinal or decimal's fields as one written number, sign included."""
        sign = "-" if fields.get("negative") else ""
        whole = _text(fields, "integer") or _text(fields, "integer_part") or "0"
        written = sign + self.integer(whole)
        fraction = _text(fields, "fractional_part")
        return written + self.decimal + fraction if fraction else written


def _text(fields: Fields, key: str) -> str:
    value = fields.get(key)
    return value.strip() if isinstance(value, str) else ""


def _quantity(fields: Fields) -> list[str]:
    quantity = _text(fields, "quantity")
    return [quantity] if quantity else []


def write(token: Token, spoken: tuple[str, ...], style: Style) -> list[str] | None:
    """The written tokens for one recognised token made from the words `spoken`."""
    fields = token.fields
    kind = token.kind
    if kind in ("cardinal", "decimal"):
        return [style.number(fields), *_quantity(fields)]
    if kind == "money":
        currency = _text(fields, "currency")
        return [style.number(fields), *_quantity(fields), _CURRENCIES.get(currency, currency)]
    if kind == "measure":
        return _measure(fields, style)
    if kind == "telephone":
        return [_text(fields, "number_part").replace(" ", "")]
    if kind == "ordinal":
        return ["thứ", _text(fields, "integer")]
    if kind == "date":
        return _date(fields, spoken)
    if kind == "time":
        return _time(fields)
    return None


def _measure(fields: Fields, style: Style) -> list[str] | None:
    number = fields.get("cardinal") or fields.get("decimal")
    if not isinstance(number, Mapping):
        return None
    unit = _text(fields, "units")
    unit = _UNITS.get(unit, unit)
    written = style.number(number)
    if number.get("negative") is None and fields.get("negative"):
        written = "-" + written
    if unit in _ATTACHED_UNITS:
        return [written + unit]
    return [written, unit]


def _date(fields: Fields, spoken: tuple[str, ...]) -> list[str]:
    """Dates as Vietnamese news writes them: 15/8/2020, 15/8, tháng 8/2020, năm 2020."""
    day, month, year = (_text(fields, k) for k in ("day", "month", "year"))
    if day and month:
        return ["/".join(p for p in (day, month, year) if p)]
    if month:
        return ["tháng", f"{month}/{year}" if year else month]
    lead = ["năm"] if spoken[:1] == ("năm",) else []
    return [*lead, year or _text(fields, "text")]


def _time(fields: Fields) -> list[str]:
    hours, minutes = _text(fields, "hours"), _text(fields, "minutes")
    if not minutes:
        return [hours, "giờ"]
    return [f"{hours}:{int(minutes):02d}"]
