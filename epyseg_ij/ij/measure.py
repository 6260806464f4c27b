"""Moved: the per-cell measurements live in ``epyseg_ij.measure`` (no JVM needed); this name stays for old imports."""

from ..measure import cell_ids, cell_table, neighbour_counts, neighbour_pairs

__all__ = ["cell_ids", "cell_table", "neighbour_counts", "neighbour_pairs"]
