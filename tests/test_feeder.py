"""Feeder crop/resize/rotation and the index helpers, on small hand-made data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skel.data.base import SkeletonData
from skel.data.feeder import (Feeder, carve_validation, crop_bounds, load_indices, resize_time,
                              rotation_matrix, save_indices, stratified_subset)
from skel.data.layout import NTU25


def _data(lengths=(150, 40, 300, 10, 64), persons=2, seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for t in lengths:
        x = rng.standard_normal((3, t, 25, persons)).astype(np.float32)
        x[..., 1:] = 0.0  # a missing second person
        samples.append(x)
    return SkeletonData("toy", "train", samples, np.arange(len(lengths)) % 3, NTU25, ["a", "b", "c"])


# ------------------------------------------------------------------------------- crop and resize
@pytest.mark.parametrize("T", [1, 5, 63, 64, 100, 301])
def test_train_crop_bounds(T):
    rng = np.random.default_rng(0)
    floor = min(64, T)
    for _ in range(200):
        start, length = crop_bounds(T, True, rng.random(2), min_length=64, crop=(0.5, 1.0))
        assert 0 <= start and start + length <= T
        assert max(floor, math.floor(0.5 * T)) <= length <= T


def test_train_crop_fraction_spans_the_range():
    rng = np.random.default_rng(1)
    lengths = np.array([crop_bounds(1000, True, rng.random(2), crop=(0.5, 1.0))[1] for _ in range(500)])
    assert lengths.min() < 560 and lengths.max() > 940  # uniform over [500, 1000]


def test_test_crop_is_centred():
    assert crop_bounds(200, False, test_crop=0.95) == (5, 190)
    assert crop_bounds(20, False, min_length=64) == (0, 20)  # short: the minimum adapts to T


def test_resize_full_crop_keeps_endpoints_and_is_exact_on_lines():
    T, W = 37, 120
    t = np.arange(T, dtype=np.float32)
    x = np.stack([2.0 * t + 1.0, -t, 0.5 * t])[:, :, None, None] * np.ones((1, 1, 25, 2), np.float32)
    out = resize_time(x, 0, T, W)
    assert out.shape == (3, W, 25, 2)
    np.testing.assert_array_equal(out[:, 0], x[:, 0])
    np.testing.assert_array_equal(out[:, -1], x[:, -1])
    s = np.arange(W) * (T - 1) / (W - 1)  # a linear signal is resampled exactly
    np.testing.assert_allclose(out[0, :, 0, 0], 2.0 * s + 1.0, rtol=1e-5, atol=1e-5)


def test_resize_downsampling_picks_crop_frames():
    x = np.arange(50, dtype=np.float32).reshape(1, 50, 1, 1)
    out = resize_time(x, 10, 21, 11)  # crop frames 10..30, step exactly 2
    np.testing.assert_array_equal(out[0, :, 0, 0], np.arange(10, 31, 2))


def test_rotation_matrix_is_orthonormal():
    r = rotation_matrix(np.array([0.3, -0.2, 0.1]))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(r), 1.0)


# --------------------------------------------------------------------------------------- feeder
def test_feeder_shape_dtype_and_labels():
    data = _data()
    for train in (True, False):
        feeder = Feeder(data, window=120, train=train, rotate=0.3)
        for i in range(len(feeder)):
            x, y = feeder[i]
            assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (3, 120, 25, 2)
            assert y == data.labels[i]
            assert torch.all(x[..., 1] == 0)  # the missing person stays missing after rotation


def test_test_mode_is_deterministic_and_unrotated():
    data = _data()
    feeder = Feeder(data, window=64, train=False, rotate=0.5)
    x = data[2][0]
    start, length = crop_bounds(x.shape[1], False)
    torch.testing.assert_close(feeder[2][0], torch.from_numpy(resize_time(x, start, length, 64)))


def test_rotation_preserves_bone_lengths():
    data = _data()
    plain = Feeder(data, window=32, train=True, rotate=0.0, seed=3)
    rotated = Feeder(data, window=32, train=True, rotate=0.7, seed=3)  # same crops (same draws first)
    a, b = plain[0][0].numpy(), rotated[0][0].numpy()
    assert not np.allclose(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0), rtol=1e-4, atol=1e-5)


def test_feeder_reproducible_per_seed_epoch_and_index():
    data = _data()
    f1 = Feeder(data, window=50, train=True, rotate=0.3, seed=7)
    f2 = Feeder(data, window=50, train=True, rotate=0.3, seed=7)
    order = [f2[i][0] for i in reversed(range(len(f2)))][::-1]  # another access order
    for i in range(len(f1)):
        torch.testing.assert_close(f1[i][0], order[i])
    f3 = Feeder(data, window=50, train=True, rotate=0.3, seed=8)
    assert not torch.allclose(f1[0][0], f3[0][0])
    before = f1[0][0]
    f1.set_epoch(1)
    assert not torch.allclose(before, f1[0][0])


def test_feeder_workers_do_not_change_samples():
    data = _data()
    feeder = Feeder(data, window=40, train=True, rotate=0.3, seed=1)
    single = torch.cat([x for x, _ in torch.utils.data.DataLoader(feeder, batch_size=2)])
    multi = torch.cat([x for x, _ in torch.utils.data.DataLoader(feeder, batch_size=2, num_workers=2)])
    torch.testing.assert_close(single, multi)


def test_feeder_indices_subset():
    data = _data()
    feeder = Feeder(data, window=20, train=False, indices=[4, 1])
    assert len(feeder) == 2 and feeder[0][1] == data.labels[4] and list(feeder.labels) == [data.labels[4], data.labels[1]]
    with pytest.raises(IndexError):
        Feeder(data, indices=[5])


# --------------------------------------------------------------------------------- index helpers
def _labels():
    return np.repeat(np.arange(5), [40, 30, 20, 10, 3])


def test_stratified_subset_balance_and_seeds():
    labels = _labels()
    idx = stratified_subset(labels, 0.1, seed=0)
    counts = np.bincount(labels[idx], minlength=5)
    assert counts.tolist() == [4, 3, 2, 1, 1]  # floor(0.1 n_c), at least one; 11 = floor(10.5 + 0.5) in all
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, stratified_subset(labels, 0.1, seed=0))
    assert not np.array_equal(idx, stratified_subset(labels, 0.1, seed=1))
    assert len(stratified_subset(labels, 1.0, seed=0)) == len(labels)


def test_carve_validation_stratified():
    labels = _labels()
    train, val = carve_validation(labels, 0.1, seed=0)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
    assert np.bincount(labels[val], minlength=5).tolist() == [4, 3, 2, 1, 1]
    assert not np.array_equal(val, carve_validation(labels, 0.1, seed=1)[1])
    np.testing.assert_array_equal(val, carve_validation(labels, 0.1, seed=0)[1])


def test_carve_validation_by_group():
    labels = _labels()
    groups = np.arange(len(labels)) % 7
    train, val = carve_validation(labels, 0.2, seed=0, groups=groups)
    assert not set(groups[train]) & set(groups[val])
    assert len(val) >= 0.2 * len(labels) and len(train) > 0


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_save_load_indices(tmp_path, suffix):
    path = tmp_path / f"split{suffix}"
    save_indices(path, train=np.array([3, 1, 2]), val=np.array([0]))
    loaded = load_indices(path)
    assert set(loaded) == {"train", "val"}
    np.testing.assert_array_equal(loaded["train"], [3, 1, 2])
    assert loaded["val"].dtype == np.int64


def test_zero_padding_is_not_a_valid_frame():
    data = _data(lengths=(80,))
    x = data.samples[0]
    padded = np.concatenate([x, np.zeros((3, 220, 25, 2), np.float32)], axis=1)
    plain = Feeder(data, window=30, train=False)
    pad = Feeder(SkeletonData("p", "test", [padded], data.labels, NTU25, data.class_names), window=30, train=False)
    torch.testing.assert_close(plain[0][0], pad[0][0])


def test_rotation_matrix_is_rz_ry_rx():
    ax, ay, az = 0.3, -0.2, 0.1
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    np.testing.assert_allclose(rotation_matrix((ax, ay, az)), rz @ ry @ rx, atol=1e-12)


def test_draws_follow_the_dataset_index_not_the_subset_position():
    data = _data()
    full = Feeder(data, window=40, train=True, rotate=0.3, seed=2)
    subset = Feeder(data, window=40, train=True, rotate=0.3, seed=2, indices=[3, 2])
    torch.testing.assert_close(full[2][0], subset[1][0])


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.25, 0.5])
def test_stratified_subset_total_is_the_fraction(fraction):
    # Uneven classes of 11-15 samples (MSR Action3D's shape): per-class rounding drifted to 12.4% for 10%.
    rng = np.random.default_rng(3)
    sizes = rng.integers(11, 16, size=20)
    labels = np.repeat(np.arange(20), sizes)
    rng.shuffle(labels)
    idx = stratified_subset(labels, fraction, seed=0)
    assert len(idx) == max(20, int(np.floor(fraction * len(labels) + 0.5)))
    assert len(np.unique(idx)) == len(idx)
    per_class = np.bincount(labels[idx], minlength=20)
    low = np.maximum(1, np.floor(fraction * sizes))
    assert np.all(per_class >= low) and np.all(per_class <= np.maximum(low, np.ceil(fraction * sizes)))
