"""Per-cell measurements in numpy (no JVM needed)."""

import numpy as np
import pytest

from epyseg_ij.measure import cell_table, neighbour_counts, neighbour_pairs


def grid_of_cells():
    """3×3 cells of 4×4 px separated by 1-px boundaries; the centre cell (5) has 4 neighbours sharing a bond."""
    labels = np.zeros((16, 16), np.uint16)
    for i in range(3):
        for j in range(3):
            labels[1 + 5 * i : 5 + 5 * i, 1 + 5 * j : 5 + 5 * j] = 1 + 3 * i + j
    return labels


def test_neighbours_share_bonds_not_corners():
    labels = grid_of_cells()
    pairs = {tuple(p) for p in neighbour_pairs(labels).tolist()}
    assert (4, 5) in pairs and (2, 5) in pairs and (1, 5) not in pairs  # 1 and 5 only meet at a corner
    assert neighbour_counts(labels).tolist() == [2, 3, 2, 3, 4, 3, 2, 3, 2]


def test_cell_table_is_calibrated_like_imagej():
    labels = grid_of_cells()
    table = cell_table(labels, spacing=(0.5, 0.25), origin=(0.0, 1.0))
    assert table["Label"].tolist() == list(range(1, 10))
    np.testing.assert_allclose(table["Area"], 16 * 0.5 * 0.25)
    # cell 1 covers x 1..4: centroid 2.5 + 0.5 = 3.0 px from the left edge, minus the origin (1 px)
    assert table["X"][0] == (3.0 - 1.0) * 0.25 and table["Y"][0] == 3.0 * 0.5
    assert table["Pixels"].tolist() == [16] * 9


def test_empty_label_image():
    table = cell_table(np.zeros((8, 8), np.uint16))
    assert all(len(v) == 0 for v in table.values())


def test_plane_outlines_reports_each_plane_and_can_be_stopped():
    """The per-plane progress that EPySeg Measure shows (and Esc uses to stop between planes)."""
    from epyseg_ij.errors import Cancelled
    from epyseg_ij.measure import plane_outlines

    stack = np.zeros((3, 8, 8), np.uint16)
    stack[:, 2:5, 2:5] = 1
    stack[1, 5:7, 5:7] = 2
    calls = []
    found = plane_outlines(stack, "ZYX", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert [len(plane) for plane in found] == [1, 2, 1]

    def stop_at_second(done, total):
        if done == 1:
            raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        plane_outlines(stack, "ZYX", progress=stop_at_second)
