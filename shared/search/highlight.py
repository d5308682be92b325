"""The words a hit matched, marked in its text.

Marks are computed here rather than by the engines (FTS5's ``highlight()``, PostgreSQL's
``ts_headline``) because the index holds folded words, not the text a reader sees: a word of
the text is marked when its folded form is one the query asked for. A hit carries the marks
twice: as character offsets into ``text`` for programs, and as HTML for pages.
"""

from __future__ import annotations

import html
from collections.abc import Collection
from dataclasses import dataclass

from shared.search.folding import WORD, fold


@dataclass(frozen=True, slots=True)
class Marked:
    text: str
    marks: list[tuple[int, int]]  # [start, end) character offsets into text

    @property
    def html(self) -> str:
        """``text`` HTML-escaped, each matched word inside ``<mark>…</mark>``."""
        out, last = [], 0
        for start, end in self.marks:
            out += [html.escape(self.text[last:start]), "<mark>", html.escape(self.text[start:end])]
            out.append("</mark>")
            last = end
        out.append(html.escape(self.text[last:]))
        return "".join(out)


def mark(text: str, folded_words: Collection[str]) -> Marked:
    """``text`` with every word whose folded form is in ``folded_words`` marked."""
    marks = [
        match.span() for match in WORD.finditer(text) if fold(match.group()) in folded_words
    ]
    return Marked(text, marks)


def best_form(text: str, spoken: str | None, folded_words: Collection[str]) -> tuple[str, Marked]:
    """The written text marked, or the spoken form where only it holds the words found."""
    written = mark(text, folded_words)
    if written.marks or not spoken:
        return "written", written
    spoken_marked = mark(spoken, folded_words)
    return ("spoken", spoken_marked) if spoken_marked.marks else ("written", written)
