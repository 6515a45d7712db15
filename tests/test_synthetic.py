"""The embedded synthetic dataset: shapes, determinism, subject split, kinematics, class statistics."""

from __future__ import annotations

import re

import numpy as np
import pytest

from skel.data import load_dataset
from skel.data.layout import NTU25
from skel.data.synthetic import CLASS_NAMES, TWO_PERSON, load_synthetic

PER_CLASS = 8
BONES = [(c, p) for c, p in NTU25.bones if c != p]
WAVE_RIGHT, WAVE_LEFT = CLASS_NAMES.index("wave right hand"), CLASS_NAMES.index("wave left hand")
R_HAND, L_HAND = NTU25.joint_names.index("r_hand"), NTU25.joint_names.index("l_hand")


@pytest.fixture(scope="module")
def train():
    return load_synthetic("train", seed=0, num_per_class=PER_CLASS)


@pytest.fixture(scope="module")
def test_split():
    return load_synthetic("test", seed=0, num_per_class=PER_CLASS)


@pytest.fixture(scope="module")
def clean():
    """No sensor noise or glitches: the kinematics alone."""
    return load_synthetic("train", seed=0, num_per_class=PER_CLASS, noise=0.0, glitch=0.0)


def _bone_lengths(x: np.ndarray, m: int) -> np.ndarray:
    """``x: (C, T, V, M)`` -> ``(T, num_bones)`` lengths of person ``m``."""
    return np.stack([np.linalg.norm(x[:, :, c, m] - x[:, :, p, m], axis=0) for c, p in BONES], 1)


def test_shapes_dtype_layout_and_meta(train):
    assert train.name == "synthetic" and train.split == "train"
    assert train.layout is NTU25
    assert train.num_classes == len(CLASS_NAMES) >= 10
    assert len(train) == PER_CLASS * train.num_classes
    lengths = train.lengths()
    assert lengths.min() >= 40 and lengths.max() <= 90 and len(np.unique(lengths)) > 10
    for i in range(len(train)):
        x, label = train[i]
        assert x.dtype == np.float32 and x.shape == (3, lengths[i], 25, 2)
        assert np.isfinite(x).all()
        # NTU centring: spine middle (joint 1) of actor 1 in the first frame is the origin.
        np.testing.assert_allclose(x[:, 0, NTU25.center, 0], 0.0, atol=1e-6)
        # Metres: a person is at most a couple of metres from the origin.
        assert np.abs(x).max() < 3.0
    assert set(train.meta) >= {"subject", "view", "persons"}
    assert set(np.unique(train.meta["view"])) <= {0, 1, 2}
    assert len(set(train.names)) == len(train)
    for name, label, subject in zip(train.names, train.labels, train.meta["subject"]):
        match = re.fullmatch(r"syn_s(\d\d)_a(\d\d)_r(\d\d\d)", name)
        assert match, name
        assert int(match.group(1)) == subject and int(match.group(2)) == label + 1


def test_lengths_option_is_respected():
    data = load_synthetic("train", num_per_class=3, length=(20, 24))
    assert data.lengths().min() >= 20 and data.lengths().max() <= 24


def test_same_seed_same_arrays_other_seed_differs(train):
    again = load_synthetic("train", seed=0, num_per_class=PER_CLASS)
    assert again.names == train.names and np.array_equal(again.labels, train.labels)
    for key in train.meta:
        assert np.array_equal(again.meta[key], train.meta[key])
    for a, b in zip(again.samples, train.samples):
        assert np.array_equal(a, b)
    other = load_synthetic("train", seed=1, num_per_class=PER_CLASS)
    differ = [a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(other.samples, train.samples)]
    assert all(differ)


def test_train_and_test_subjects_are_disjoint(train, test_split):
    tr, te = set(train.meta["subject"].tolist()), set(test_split.meta["subject"].tolist())
    assert tr.isdisjoint(te)
    assert tr | te <= set(range(1, 21))
    assert len(tr) == 10 and len(te) == 10
    small_tr = set(load_synthetic("train", num_per_class=4, num_subjects=3).meta["subject"].tolist())
    small_te = set(load_synthetic("test", num_per_class=4, num_subjects=3).meta["subject"].tolist())
    assert small_tr.isdisjoint(small_te) and small_tr | small_te == {1, 2, 3}


def test_second_person_zero_exactly_for_one_person_classes(train):
    for i in range(len(train)):
        x, label = train[i]
        second = x[..., 1]
        if label in TWO_PERSON:
            assert train.meta["persons"][i] == 2
            assert np.abs(second).sum(axis=(0, 2)).min() > 0, f"{train.names[i]}: an empty frame for actor 2"
        else:
            assert train.meta["persons"][i] == 1
            assert not second.any(), train.names[i]
    assert sum(label in TWO_PERSON for label in train.labels) > 0


def test_bone_lengths_constant_over_time(clean, train):
    for i in range(len(clean)):
        x, label = clean[i]
        for m in range(2 if label in TWO_PERSON else 1):
            lengths = _bone_lengths(x, m)
            assert (lengths.max(0) - lengths.min(0)).max() < 1e-4, clean.names[i]
            assert lengths.min() > 0.01
    # With the default sensor noise the lengths still stay put: the typical deviation from the
    # sample's median length is of the order of the jitter (0.015 m), not a limb swinging.
    for i in range(len(train)):
        x, _ = train[i]
        lengths = _bone_lengths(x, 0)
        mad = np.median(np.abs(lengths - np.median(lengths, 0)), 0)
        assert mad.max() < 0.04, train.names[i]


def test_each_subject_has_one_body(clean):
    """Noise-free bone lengths of actor 1 depend on the subject only."""
    by_subject: dict[int, np.ndarray] = {}
    for i in range(len(clean)):
        lengths = _bone_lengths(clean[i][0], 0)[0]
        subject = int(clean.meta["subject"][i])
        if subject in by_subject:
            np.testing.assert_allclose(lengths, by_subject[subject], atol=1e-5)
        by_subject[subject] = lengths
    bodies = np.stack(list(by_subject.values()))
    assert bodies.std(0).max() > 0.01  # subjects do differ


def test_classes_balanced(train, test_split):
    for data in (train, test_split):
        assert np.array_equal(np.bincount(data.labels, minlength=data.num_classes),
                              np.full(data.num_classes, PER_CLASS))


def test_waving_hand_moves_most(train):
    """The hand that waves moves more (summed s.d. over time) than the other one, on average."""
    def excess(label):  # right minus left hand motion, per sample
        out = []
        for i in np.flatnonzero(train.labels == label):
            x = train[i][0][..., 0]
            out.append(x[:, :, R_HAND].std(1).sum() - x[:, :, L_HAND].std(1).sum())
        return np.array(out)

    right, left = excess(WAVE_RIGHT), excess(WAVE_LEFT)
    assert right.mean() > 0.1 and (right > 0).mean() >= 0.75
    assert left.mean() < -0.1 and (left < 0).mean() >= 0.75


def test_nearest_centroid_above_chance_but_not_perfect(train, test_split):
    """Learnable: class means of resampled, root-centred joints beat chance across subjects."""
    def features(data):
        rows = []
        for i in range(len(data)):
            x = data[i][0]
            x = x - x[:, :, NTU25.center:NTU25.center + 1, :1] * (np.abs(x).sum((0, 2), keepdims=True) > 0)
            t = np.linspace(0, x.shape[1] - 1, 16).round().astype(int)
            rows.append(x[:, t].ravel())
        return np.array(rows)

    xtr, xte = features(train), features(test_split)
    centroids = np.stack([xtr[train.labels == k].mean(0) for k in range(train.num_classes)])
    pred = np.argmin(((xte[:, None] - centroids[None]) ** 2).sum(-1), 1)
    accuracy = (pred == test_split.labels).mean()
    assert 3.0 / train.num_classes < accuracy < 0.95


def test_options_validated():
    with pytest.raises(TypeError, match="colour"):
        load_synthetic("train", colour=1)
    with pytest.raises(ValueError, match="colour"):
        load_dataset("synthetic", "train", colour=1)
    with pytest.raises(ValueError, match="length"):
        load_synthetic("train", length=(50, 10))
    with pytest.raises(ValueError, match="num_subjects"):
        load_synthetic("train", num_subjects=1)
    with pytest.raises(ValueError, match="noise"):
        load_synthetic("train", noise=-0.1)
    with pytest.raises(ValueError, match="split"):
        load_synthetic("val")


def test_registry_returns_the_same_data():
    a = load_dataset("synthetic", "test", num_per_class=2, seed=3)
    b = load_synthetic("test", num_per_class=2, seed=3)
    assert a.names == b.names and all(np.array_equal(x, y) for x, y in zip(a.samples, b.samples))
