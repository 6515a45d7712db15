"""The training/test feeder: valid-frame crop, linear resize in time, random rotation.

Derived in ``notebooks/01_data.ipynb``. A sample ``(C, T, V, M)`` becomes ``(C, W, V, M)``
(``W = window``):

* crop: training keeps a random fraction ``p ~ U(crop)`` of the ``T`` valid frames (trailing
  all-zero frames are padding, not valid), at least
  ``min(min_length, T)`` of them, starting at a uniform random offset; test keeps the centre
  ``test_crop`` fraction (same minimum);
* resize: output frame ``k`` samples the crop ``[s, s + L - 1]`` at ``t_k = s + k (L - 1) / (W - 1)``
  by linear interpolation between frames ``floor(t_k)`` and ``floor(t_k) + 1`` (so the first and
  last output frames are the crop's first and last frames);
* rotation (training, ``rotate > 0``): angles uniform in ``[-rotate, rotate]`` rad about x, y and
  z, ``R = Rz Ry Rx`` applied to every joint of every person (a missing, all-zero person stays zero).

Per-sample randomness: for each epoch, ``np.random.default_rng([seed, epoch])`` draws a table
of 5 uniforms per sample of the dataset (crop fraction, crop offset, 3 angles), and sample
``index`` reads its row. The same seed, epoch and index give the same crop and angles whatever
the worker count, the order or the subset (``indices``) - and no generator is built per sample.
Also: ``carve_validation``, ``stratified_subset``, ``save_indices`` / ``load_indices``.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from skel.data.base import SkeletonData
from skel.utils import atomic_write_bytes, atomic_write_json


def valid_length(x: np.ndarray) -> int:
    """Frames up to the last one that is not all zero (zero padding at the end is not valid).

    ``SkeletonData`` samples hold valid frames only; this guards padded stores (CTR-GCN npz)."""
    if x[:, -1].any():  # the common case, checked on one frame
        return x.shape[1]
    nonzero = np.flatnonzero(np.abs(x).reshape(x.shape[0], x.shape[1], -1).max(axis=(0, 2)) > 0)
    return int(nonzero[-1]) + 1 if len(nonzero) else x.shape[1]


def crop_bounds(T: int, train: bool, u: Sequence[float] = (0.5, 0.5), min_length: int = 64,
                crop: tuple[float, float] = (0.5, 1.0), test_crop: float = 0.95) -> tuple[int, int]:
    """``(start, length)`` of the kept frames of a ``T``-frame sample (see the module docstring).

    ``u``: two uniforms in [0, 1) for training, mapped to the crop fraction and the offset."""
    if T < 1:
        raise ValueError("a sample needs at least one frame")
    floor = min(min_length, T)
    if train:
        length = min(max(math.floor(T * (crop[0] + (crop[1] - crop[0]) * u[0])), floor), T)
        start = math.floor(u[1] * (T - length + 1))  # uniform over 0 .. T - length
    else:
        length = min(max(math.floor(T * test_crop), floor), T)
        start = (T - length) // 2
    return start, length


def resize_time(x: np.ndarray, start: int, length: int, window: int) -> np.ndarray:
    """Linear resize of frames ``[start, start + length)`` of ``x: (C, T, ...)`` to ``(C, window, ...)``.

    Output frame k is ``x`` at ``t_k = start + k (length - 1) / (window - 1)``: the lerp of the
    two neighbouring frames (endpoints land exactly on the crop's first and last frames).
    """
    last = start + length - 1
    if window == 1:
        pos = np.array([start + (length - 1) / 2.0])
    else:
        pos = start + np.arange(window) * ((length - 1) / (window - 1))
    lo = np.minimum(pos.astype(np.int64), last)  # pos >= 0, so the cast floors
    hi = np.minimum(lo + 1, last)
    w = (pos - lo).astype(x.dtype)[None, :, None]
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    a = np.take(flat, lo, axis=1)
    out = np.take(flat, hi, axis=1)
    out -= a
    out *= w
    out += a
    return out.reshape((x.shape[0], window) + x.shape[2:])


def rotation_matrix(angles) -> np.ndarray:
    """Angles ``(ax, ay, az)`` (rad) about x, y, z -> ``(3, 3)`` ``Rz @ Ry @ Rx`` (closed form)."""
    cx, cy, cz = (math.cos(a) for a in angles)
    sx, sy, sz = (math.sin(a) for a in angles)
    return np.array([
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ])


class Feeder(Dataset):
    """``torch.utils.data.Dataset`` over a :class:`SkeletonData`: ``(x (C, window, V, M) float32, label)``.

    Args:
        data: the split to read.
        window: output frames ``W``.
        train: random crop (and rotation) if True, centre crop otherwise.
        rotate: maximum rotation angle in radians (0 = none; applied only when ``train``).
        indices: the subset of ``data`` to expose (e.g. from :func:`carve_validation`).
        seed: base seed; with :meth:`set_epoch` and the index it fixes every random draw.
        min_length: crops keep at least ``min(min_length, T)`` frames.
        crop: training crop fraction range ``(low, high)``.
        test_crop: the test-time centre crop fraction.
    """

    def __init__(self, data: SkeletonData, window: int = 120, train: bool = True, rotate: float = 0.0,
                 indices: Sequence[int] | np.ndarray | None = None, seed: int = 0, min_length: int = 64,
                 crop: tuple[float, float] = (0.5, 1.0), test_crop: float = 0.95):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if not 0.0 < crop[0] <= crop[1] <= 1.0:
            raise ValueError(f"crop must satisfy 0 < low <= high <= 1, got {crop}")
        if not 0.0 < test_crop <= 1.0:
            raise ValueError(f"test_crop must be in (0, 1], got {test_crop}")
        self.data = data
        self.window = window
        self.train = train
        self.rotate = float(rotate)
        self.indices = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(data)):
            raise IndexError(f"indices outside 0..{len(data) - 1}")
        self.seed = int(seed)
        self.min_length = int(min_length)
        self.crop = (float(crop[0]), float(crop[1]))
        self.test_crop = float(test_crop)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws (call once per epoch, before iterating)."""
        self.epoch = int(epoch)
        self._draws = np.random.default_rng([self.seed, self.epoch]).random((len(self.data), 5))

    def uniforms(self, index: int) -> np.ndarray:
        """The 5 uniforms sample ``index`` (of ``data``) uses this epoch: crop fraction, crop
        offset, angles about x, y, z (mapped to ``rotate * (2 u - 1)``)."""
        return self._draws[index].copy()

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        return self.data.labels[self.indices]

    def transform(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``(C, T, V, M)`` -> ``(C, window, V, M)`` float32: crop, resize, rotate.

        ``u``: 5 uniforms in [0, 1) (crop fraction, crop offset, angles about x, y, z)."""
        start, length = crop_bounds(valid_length(x), self.train, u, self.min_length, self.crop, self.test_crop)
        out = resize_time(x, start, length, self.window)
        if self.train and self.rotate > 0:
            r = rotation_matrix(self.rotate * (2.0 * u[2:5] - 1.0)).astype(np.float32)
            c = out.shape[0]
            out = (r @ out.reshape(c, -1)).reshape(out.shape)
        return np.ascontiguousarray(out, dtype=np.float32)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        index = int(self.indices[i])
        x, label = self.data[index]
        return torch.from_numpy(self.transform(x, self._draws[index])), label


# ------------------------------------------------------------------------------------- benchmark
def benchmark(n: int = 2000, window: int = 120, batch_size: int = 64, seed: int = 0) -> dict:
    """Feeder throughput on ONE thread at the NTU60 shape (C=3, T ~ U[100, 300], V=25, M=2).

    Training mode with rotation, collated into batches by a ``DataLoader`` (no workers).
    Returns ``{"samples_per_s", "samples_per_cpu_s", "n", "window", "batch_size", "threads"}``;
    ``samples_per_cpu_s`` divides by this process's CPU time, a figure that other processes
    sharing the cores do not lower.
    """
    from skel.data.layout import NTU25

    rng = np.random.default_rng(seed)
    samples = [rng.standard_normal((3, int(t), 25, 2)).astype(np.float32) for t in rng.integers(100, 301, size=256)]
    data = SkeletonData("bench", "train", samples, rng.integers(0, 60, size=len(samples)), NTU25,
                        [str(k) for k in range(60)])
    feeder = Feeder(data, window=window, train=True, rotate=0.3, indices=np.arange(n) % len(samples), seed=seed)
    loader = torch.utils.data.DataLoader(feeder, batch_size=batch_size, shuffle=False, num_workers=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        begin, begin_cpu = time.perf_counter(), time.process_time()
        count = sum(len(y) for _, y in loader)
        seconds, cpu_seconds = time.perf_counter() - begin, time.process_time() - begin_cpu
    finally:
        torch.set_num_threads(threads)
    return {"samples_per_s": count / seconds, "samples_per_cpu_s": count / cpu_seconds, "n": count,
            "window": window, "batch_size": batch_size, "threads": 1}


# ------------------------------------------------------------------------------------ index sets
def carve_validation(labels: Sequence[int] | np.ndarray, fraction: float = 0.1, seed: int = 0,
                     groups: Sequence[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into ``(train_idx, val_idx)``, both sorted int64.

    Without ``groups``: stratified by class, ``round(fraction * n_c)`` of each class ``c`` go to
    validation (at least one when the class has two or more samples). With ``groups`` (e.g.
    subject ids): whole groups go to validation, in a seeded random order, until at least
    ``fraction`` of the samples are held out - no group is on both sides.
    """
    labels = np.asarray(labels)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(labels):
            raise ValueError(f"groups has {len(groups)} entries, labels {len(labels)}")
        order = rng.permutation(np.unique(groups))
        held, count = [], 0
        for g in order:
            if count >= fraction * len(labels) or len(held) == len(order) - 1:
                break
            held.append(g)
            count += int((groups == g).sum())
        val = np.flatnonzero(np.isin(groups, held))
    else:
        picks = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            k = int(round(fraction * len(members)))
            k = min(max(k, 1 if len(members) > 1 else 0), len(members) - 1)
            picks.append(rng.choice(members, size=k, replace=False))
        val = np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train.astype(np.int64), val.astype(np.int64)


def stratified_subset(labels: Sequence[int] | np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted indices of a class-stratified random ``fraction`` of the samples.

    The total is ``floor(fraction * n + 0.5)`` (at least one sample per class); each class ``c``
    gets ``floor(fraction * n_c)`` or one more, the extra ones going to the classes with the
    largest remainders (ties broken at random by ``seed``). Rounding every class on its own would
    drift: on MSR Action3D (about 13 samples a class) "10%" became 12.4%.
    """
    labels = np.asarray(labels)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    classes = np.unique(labels)
    if classes.size == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(labels == c) for c in classes]
    sizes = np.array([len(m) for m in members])
    exact = fraction * sizes
    counts = np.maximum(1, np.floor(exact).astype(np.int64))
    total = max(int(np.floor(fraction * sizes.sum() + 0.5)), len(classes))
    spare = total - int(counts.sum())
    if spare > 0:
        remainder = np.where(counts < sizes, exact - np.floor(exact), -1.0)
        order = np.lexsort((rng.random(len(classes)), -remainder))  # largest remainder first
        counts[order[:spare]] += 1
    counts = np.minimum(counts, sizes)
    picks = [rng.choice(m, size=k, replace=False) for m, k in zip(members, counts)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def save_indices(path: str | Path, **arrays) -> None:
    """Write named integer index arrays atomically: ``.json`` as lists, anything else as ``.npz``."""
    path = Path(path)
    arrays = {k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()}
    if path.suffix == ".json":
        atomic_write_json(path, {k: v.tolist() for k, v in arrays.items()})
    else:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())


def load_indices(path: str | Path) -> dict[str, np.ndarray]:
    """Read what :func:`save_indices` wrote: ``{name: int64 array}``."""
    path = Path(path)
    if path.suffix == ".json":
        return {k: np.asarray(v, dtype=np.int64) for k, v in json.loads(path.read_text()).items()}
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k].astype(np.int64) for k in f.files}
