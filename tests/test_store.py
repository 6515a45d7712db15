"""The compact NTU store: round trip through the memmap, atomic writes, clear errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from skel.data.store import Store, StoreError, StoreWriter


def _samples(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, int(t), 25, 2)).astype(np.float32) for t in rng.integers(1, 60, n)]


def _write(path, samples, dataset="ntu60"):
    with StoreWriter(path, dataset) as w:
        for i, x in enumerate(samples):
            w.add(f"S001C00{i % 3 + 1}P00{i + 1}R001A00{i + 1}", x, 1, i % 3 + 1, i + 1, 1, i)
        return w.close(bad_files=[])


def test_round_trip_is_memory_mapped(tmp_path):
    samples = _samples()
    manifest = _write(tmp_path / "s", samples)
    assert manifest["num_samples"] == 4 and manifest["num_frames"] == sum(x.shape[1] for x in samples)
    store = Store(tmp_path / "s")
    assert isinstance(store.joints, np.memmap) and store.joints.shape == (manifest["num_frames"], 2, 25, 3)
    assert len(store) == 4 and store.dataset == "ntu60"
    for i, x in enumerate(samples):
        np.testing.assert_array_equal(store.sample(i), x)
    assert store.index["lengths"].tolist() == [x.shape[1] for x in samples]
    assert store.index["label"].tolist() == [0, 1, 2, 3]
    assert store.index["camera"].tolist() == [1, 2, 3, 1]
    assert sorted(os.listdir(tmp_path / "s")) == ["index.npz", "joints.npy", "manifest.json"]
    # the npy file is a plain one: numpy reads it without the store
    plain = np.load(tmp_path / "s" / "joints.npy", mmap_mode="r")
    np.testing.assert_array_equal(plain[: samples[0].shape[1]], samples[0].transpose(1, 3, 2, 0))


def test_failed_write_publishes_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with StoreWriter(tmp_path / "s", "ntu60") as w:
            w.add("S001C001P001R001A001", _samples(1)[0], 1, 1, 1, 1, 0)
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path / "s") == []
    with pytest.raises(StoreError, match="manifest.json: not found; expected a folder written by"):
        Store(tmp_path / "s")


def test_rejects_wrong_sample_shape(tmp_path):
    with StoreWriter(tmp_path / "s", "ntu60") as w:
        with pytest.raises(ValueError, match=r"expected a \(3, T, 25, 2\) sample"):
            w.add("x", np.zeros((3, 5, 20, 2)), 1, 1, 1, 1, 0)
        w.abort()


def test_truncated_and_corrupt_stores_name_the_file(tmp_path):
    _write(tmp_path / "s", _samples())
    joints = tmp_path / "s" / "joints.npy"
    size = joints.stat().st_size
    with open(joints, "r+b") as f:
        f.truncate(size - 600)
    with pytest.raises(StoreError, match=rf"joints.npy: {size - 600} bytes, expected {size} .*truncated"):
        Store(tmp_path / "s")

    _write(tmp_path / "s", _samples())
    (tmp_path / "s" / "index.npz").write_bytes(b"garbage")
    with pytest.raises(StoreError, match="index.npz: unreadable"):
        Store(tmp_path / "s")

    _write(tmp_path / "s", _samples())
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    manifest["num_samples"] = 5
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"'offsets' has shape \(4,\), expected \(5,\)"):
        Store(tmp_path / "s")

    manifest["num_samples"], manifest["version"] = 4, 99
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="expected format 'skel-ntu-store' version 1"):
        Store(tmp_path / "s")
