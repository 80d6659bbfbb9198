"""Read the PREDICT steps that arrived after the watermark, chunk by chunk (never all history)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from trustops.capture import CapturedStep, CaptureReader, CorruptChunkError


@dataclass(frozen=True)
class UnreadableChunk:
    key: str
    steps: list[int]
    reason: str


def new_steps(
    reader: CaptureReader, *, after: int | None, quarantined: set[str]
) -> Iterator[CapturedStep | UnreadableChunk]:
    """Every readable new step in order; an unreadable chunk yields one :class:`UnreadableChunk`."""
    for chunk in reader.chunks("predict", after=after):
        if chunk.key in quarantined:
            continue
        try:
            steps = chunk.read(after=after)
        except CorruptChunkError as error:
            yield UnreadableChunk(key=chunk.key, steps=list(error.steps or chunk.steps), reason=str(error))
            continue
        yield from steps
