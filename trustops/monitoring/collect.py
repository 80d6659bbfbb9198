"""Find the PREDICT captures that arrived after the watermark, and stream them chunk by chunk.

Collecting reads only the capture's manifests; the check stage then reads the listed chunks one
at a time, so a pass holds one chunk in memory however much traffic arrived (never all history).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from trustops.capture import CapturedStep, CorruptChunkError, open_capture
from trustops.monitoring.records import ChunkRef, CollectedCaptures, UnreadableChunk
from trustops.monitoring.repair import check_state
from trustops.monitoring.state_store import StateStore, open_state
from trustops.monitoring.watermark import Watermark


def collect_new_captures(capture_uri: str, state: Path | str | StateStore) -> CollectedCaptures:
    """The chunks with steps after the watermark kept in ``state`` and up to the capture's horizon, less the quarantined ones.

    The horizon (:meth:`~trustops.capture.CaptureReader.committed_horizon`) stops the listing
    below any step another process reserved and has not committed yet: once the watermark
    moved past such a step, no later pass would look at it.
    """
    store = open_state(state)  # a folder, or s3://... when the monitor state is on shared storage
    check_state(store)  # a damaged state file stops the pass here, before any work
    watermark = Watermark.load(store, capture_uri)
    reader = open_capture(capture_uri)
    horizon = reader.committed_horizon("predict", after=watermark.last_step)
    quarantined = set(watermark.quarantined)
    chunks = []
    for chunk in reader.chunks("predict", after=watermark.last_step):
        if horizon is None or chunk.steps[-1] > horizon:
            break  # chunks come in step order: every later one is beyond the horizon too
        if chunk.key not in quarantined:
            chunks.append(ChunkRef(key=chunk.key, steps=list(chunk.steps)))
    return CollectedCaptures(capture_uri=capture_uri, after=watermark.last_step, chunks=chunks)


def read_collected(collected: CollectedCaptures) -> Iterator[CapturedStep | UnreadableChunk]:
    """Every readable collected step in order; an unreadable chunk yields one :class:`UnreadableChunk`."""
    wanted = {chunk.key for chunk in collected.chunks}
    reader = open_capture(collected.capture_uri)
    for chunk in reader.chunks("predict", after=collected.after):
        if chunk.key not in wanted:  # arrived after collection, or quarantined: the next pass's
            continue
        try:
            steps = chunk.read(after=collected.after)
        except CorruptChunkError as error:
            yield UnreadableChunk(key=chunk.key, steps=list(error.steps or chunk.steps), reason=str(error))
            continue
        yield from steps
