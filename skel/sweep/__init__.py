"""Sweeps: the paper's experiments (Tables 1-8) as grids of pre-training + fine-tuning runs.

* :mod:`skel.sweep.grid`: sweep files (``base`` + ``grid``) expanded into points;
* :mod:`skel.sweep.runner`: ``python -m skel sweep CONFIG`` / :func:`run_sweep` (skips finished
  points, resumes interrupted ones, records failures and goes on), :func:`load_results`;
* :mod:`skel.sweep.tables`: the paper's tables from the results, ours beside the paper's;
* :mod:`skel.sweep.plots`: the figures (mask-rate heat map, accuracy vs an axis, cost).

Ready sweep files: ``notebooks/configs/sweeps/``; the tables and figures are drawn in
``notebooks/08_experiments.ipynb``.
"""

from skel.sweep.grid import (Point, Sweep, SweepError, accepted_keys, expand, load_sweep, mask_collisions,
                             parse_sweep)
from skel.sweep.runner import load_results, run_sweep
from skel.sweep.tables import Cell, Table, build_tables, tables_markdown, variants_table

__all__ = ["Cell", "Point", "Sweep", "SweepError", "Table", "accepted_keys", "build_tables", "expand", "load_results",
           "load_sweep", "mask_collisions", "parse_sweep", "run_sweep", "tables_markdown", "variants_table"]
