"""A reader polling while a writer writes sees every step once, in order, never half-written."""

import doctest
import threading

import torch

import trustops.capture.hooks
from trustops.capture import open_capture
from trustops.capture.native import NativeWriter


def test_reader_polling_during_writes_sees_complete_steps_in_order(tmp_path):
    total = 300
    writer = NativeWriter(tmp_path, flush_interval=0.01, max_chunk_steps=7)

    def produce():
        for i in range(total):
            writer.write_step("predict", {"penultimate": torch.full((3, 4), float(i)), "inputs": torch.full((3, 2), float(i))})
        writer.close()

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[int] = []
    watermark = None
    reader = None
    while len(seen) < total:
        if reader is None:
            try:
                reader = open_capture(tmp_path)
            except FileNotFoundError:  # nothing committed yet
                continue
        for step in reader.iter_steps("predict", after=watermark):
            assert torch.equal(step.tensors["penultimate"], torch.full((3, 4), float(step.step)))
            seen.append(step.step)
            watermark = step.step
        if not producer.is_alive() and len(seen) < total:
            # One last poll after the writer closed.
            seen += [s.step for s in reader.iter_steps("predict", after=watermark)]
            break
    producer.join()
    assert seen == list(range(total))


def test_the_hooks_doctest_runs():
    result = doctest.testmod(trustops.capture.hooks, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
