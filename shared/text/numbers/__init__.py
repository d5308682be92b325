"""Numbers as Vietnamese writes them (inverse text normalisation), with the spoken words each
written token came from; ``writer.NumberWriter`` is the entry point."""

from shared.text.numbers.writer import NumberWriter, Span

__all__ = ["NumberWriter", "Span"]
