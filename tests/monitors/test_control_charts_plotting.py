"""PNG output of every chart: a valid PNG of non-trivial size (Agg canvas, no display needed)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from monitors.control_charts import plot_chart
from tests.monitors.test_control_charts_common import CASE_IDS, CASES, fitted

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_plot_writes_a_png_with_signals(case, tmp_path) -> None:
    chart = fitted(case, 5)
    rng = np.random.default_rng(5)  # seed 5: 40 in-control points, then 20 shifted by 2.5 (signals to draw)
    chart.check(np.concatenate([case.draw(rng, 40, 0.0), case.draw(rng, 20, 2.5)]))
    assert chart.n_signals > 0
    path = plot_chart(chart, tmp_path / "nested" / f"{case.id}.png", title=case.id)
    data = path.read_bytes()
    width, height = _png_size(data)
    assert path.suffix == ".png" and width >= 600 and height >= 300
    assert len(data) > 10_000  # lines, points and text, not an empty canvas


def test_plot_image_decodes_and_has_signal_colour(tmp_path) -> None:
    from matplotlib.image import imread

    chart = fitted(CASES[0], 6)
    chart.check(CASES[0].draw(np.random.default_rng(6), 30, 3.0))
    image = imread(plot_chart(chart, tmp_path / "x.png"))
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    red = (image[..., 0] > 0.75) & (image[..., 1] < 0.3) & (image[..., 2] < 0.3)  # the signal markers
    assert red.sum() > 20
