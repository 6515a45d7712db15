"""The one dataset interface every reader returns (derived in ``notebooks/01_data.ipynb``,
§6 The datasets).

A :class:`SkeletonData` is one split of one dataset. Sample ``i`` is a float32 array
``(C, T_i, V, M)``: C coordinates, its ``T_i`` valid frames only (no zero padding), V joints,
M persons (a missing person is all zeros). Labels are 0-based ints. ``meta`` holds per-sample
integer columns (subject, view, setup, ...), all of length ``len(data)``.

Samples may live in memory or be views into a memory-mapped store (``samples`` is then a lazy
sequence); ``data[i]`` always returns a fresh float32 ``np.ndarray``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from skel.data.layout import Layout


@dataclass
class SkeletonData:
    """One split of a skeleton dataset.

    Attributes:
        name: dataset name as given to :func:`skel.data.load_dataset` (e.g. ``"ntu60-xsub"``).
        split: ``"train"`` or ``"test"``.
        samples: sequence of ``(C, T_i, V, M)`` float32 arrays (lazy for memory-mapped stores).
        labels: ``(N,)`` int64, 0-based.
        layout: the skeleton's joints and bones.
        class_names: one name per class (``num_classes`` of them).
        meta: per-sample integer columns, each ``(N,)``.
        names: per-sample identifiers (file names), ``N`` strings.
    """

    name: str
    split: str
    samples: Sequence[np.ndarray]
    labels: np.ndarray
    layout: Layout
    class_names: list[str]
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.samples) != len(self.labels):
            raise ValueError(f"{self.name}/{self.split}: {len(self.samples)} samples but {len(self.labels)} labels")
        for key, col in self.meta.items():
            if len(col) != len(self.labels):
                raise ValueError(f"{self.name}/{self.split}: meta column {key!r} has {len(col)} rows, expected {len(self.labels)}")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.asarray(self.samples[i], dtype=np.float32), int(self.labels[i])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_joints(self) -> int:
        return self.layout.num_joints

    @property
    def num_channels(self) -> int:
        return int(np.asarray(self.samples[0]).shape[0])

    @property
    def num_persons(self) -> int:
        return int(np.asarray(self.samples[0]).shape[3])

    def lengths(self) -> np.ndarray:
        """``(N,)`` number of frames of each sample."""
        return np.array([np.asarray(s).shape[1] for s in self.samples], dtype=np.int64)
