"""prepare-ntu end to end on the real samples plus one bad file."""

from __future__ import annotations

import argparse
import shutil
import warnings

import numpy as np
import pytest

from skel.data import ntu
from skel.data.prepare import _ctrgcn_reader, _split_float_reader, add_arguments, benchmark, prepare
from skel.data.prepare import main as prepare_main
from skel.data.store import Store
from skel.utils import shared_data_dir

SHARED = shared_data_dir()
pytestmark = pytest.mark.skipif(SHARED is None, reason="real data folder ../shared/data is absent (fresh clone)")
RAW = SHARED / "ntu_raw_samples" / "LevelCA" if SHARED else None


@pytest.fixture
def raw_dir(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for p in sorted(RAW.glob("*.skeleton")):
        shutil.copy(p, raw / p.name)
    lines = (RAW / "S001C001P001R001A011.skeleton").read_text().splitlines()
    lines[40] = " ".join(lines[40].split()[:11])  # a joint line one field short
    (raw / "S001C001P002R001A011.skeleton").write_text("\n".join(lines) + "\n")
    return raw


def test_cli_writes_good_files_and_reports_the_bad_one(raw_dir, tmp_path, capsys):
    out = tmp_path / "store"
    parser = argparse.ArgumentParser()
    add_arguments(parser)  # the prepare-ntu command's own options, as `python -m skel` builds them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no missing-skeleton list in this folder
        rc = prepare_main(parser.parse_args(["--raw", str(raw_dir), "--out", str(out), "--workers", "2"]))
    assert rc == 1
    err = capsys.readouterr().err
    assert "S001C001P002R001A011.skeleton line 41: expected 12 numbers per joint line, got 11" in err
    store = Store(out)
    good = sorted(RAW.glob("*.skeleton"))
    assert store.dataset == "ntu60" and len(store) == len(good)
    assert store.manifest["bad_files"][0]["line"] == 41
    assert store.index["names"].tolist() == [p.name[:20] for p in good]
    for i, p in enumerate(good):  # memmap round trip equals the in-memory preprocessing
        np.testing.assert_array_equal(store.sample(i), ntu.preprocess(ntu.read_skeleton(p)))
        info = ntu.parse_name(p.name)
        assert store.index["label"][i] == info["action"] - 1
        assert store.index["performer"][i] == info["performer"]

    # load_ntu selects each benchmark's side from the store
    for bench in ("ntu60-xsub", "ntu60-xview"):
        train, test = (ntu.load_ntu(bench, s, out) for s in ("train", "test"))
        assert sorted(train.names + test.names) == [p.name[:20] for p in good]
        assert all(ntu.split_of(n, bench) == "train" for n in train.names)
        assert all(ntu.split_of(n, bench) == "test" for n in test.names)
        for data in (train, test):
            assert data.lengths().tolist() == [data[i][0].shape[1] for i in range(len(data))]
            assert data.meta["camera"].tolist() == [ntu.parse_name(n)["camera"] for n in data.names]
    with pytest.raises(ValueError, match="holds ntu60, expected ntu120"):
        ntu.load_ntu("ntu120-xsub", "train", out)


def test_missing_list_is_honoured(raw_dir, tmp_path):
    (raw_dir / "S001C001P002R001A011.skeleton").unlink()
    listing = raw_dir / "NTU_RGBD_samples_with_missing_skeletons.txt"
    listing.write_text("1 of the captured samples ...\nplease ignore\n\nS002C001P003R001A003\n")
    manifest = prepare(raw_dir, tmp_path / "a", workers=1, progress=False)  # found inside --raw
    assert manifest["num_samples"] == 4 and manifest["skipped_missing"] == 1
    assert "S002C001P003R001A003" not in Store(tmp_path / "a").index["names"].tolist()
    other = tmp_path / "other.txt"
    other.write_text("S001C003P008R002A058\n")
    manifest = prepare(raw_dir, tmp_path / "b", workers=1, missing_list=other, progress=False)
    assert manifest["skipped_missing"] == 1 and manifest["bad_files"] == []
    with pytest.warns(UserWarning, match="no missing-skeleton list"):
        listing.unlink()
        prepare(raw_dir, tmp_path / "c", workers=1, progress=False)
    assert Store(tmp_path / "c").manifest["num_samples"] == 5


def test_check_all_reports_a_bad_number_the_default_does_not_use(raw_dir, tmp_path):
    (raw_dir / "S001C001P002R001A011.skeleton").unlink()
    lines = (RAW / "S001C001P001R001A011.skeleton").read_text().splitlines()
    toks = lines[40].split()
    toks[3] = "1.2.3"  # depthX: never used by the preprocessing
    lines[40] = " ".join(toks)
    (raw_dir / "S001C001P003R001A011.skeleton").write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no missing-skeleton list in this folder
        default = prepare(raw_dir, tmp_path / "a", workers=2, progress=False)
        full = prepare(raw_dir, tmp_path / "b", workers=2, progress=False, check_all=True)
    assert default["num_samples"] == 6 and default["bad_files"] == []
    assert full["num_samples"] == 5 and len(full["bad_files"]) == 1
    bad = full["bad_files"][0]
    assert bad["file"].endswith("S001C001P003R001A011.skeleton") and bad["line"] == 41
    assert "expected a number in field 4 of the joint line, got '1.2.3'" in bad["reason"]
    store = Store(tmp_path / "a")
    i = store.index["names"].tolist().index("S001C001P003R001A011")
    clean = ntu.preprocess(ntu.read_skeleton(RAW / "S001C001P001R001A011.skeleton"))
    np.testing.assert_array_equal(store.sample(i), clean)


def test_benchmark_reports_files_per_second():
    result = benchmark(n_files=10, workers=2, rounds=2)
    assert result["n_files"] == 10 and result["workers"] == 2 and result["rounds"] == 2
    rounds = result["per_round"]
    for name in ("ctrgcn_reader", "split_float_reader", "read_preprocess", "read_preprocess_check_all"):
        for unit in ("cpu_s", "s"):
            key = f"{name}_files_per_{unit}"
            assert len(rounds[key]) == 2 and min(rounds[key]) > 0
            assert result[key] == pytest.approx(np.median(rounds[key]), rel=1e-3)
    for workers in ("1_worker", "2_workers"):
        assert result[f"files_per_s_{workers}"] > 0 and result[f"files_per_cpu_s_{workers}"] > 0
    ours = np.array(rounds["files_per_cpu_s_1_worker"])
    for name in ("ctrgcn_reader", "split_float_reader"):  # medians of the rounds' ratios
        ratio = ours / np.array(rounds[f"{name}_files_per_cpu_s"])
        assert result[f"speedup_over_{name}"] == pytest.approx(np.median(ratio), rel=1e-2)
    scaling = np.array(rounds["files_per_s_2_workers"]) / np.array(rounds["files_per_s_1_worker"])
    assert result["scaling_2_workers"] == pytest.approx(np.median(scaling), rel=1e-2)
    assert 0 < result["cores_used_1_worker"] <= 1.2 and 0 < result["cores_used_2_workers"] <= 2.4
    assert result["per_core_efficiency_2_workers"] > 0


def test_benchmark_baselines_read_the_same_numbers():
    """The baselines do the work they are timed for: each body's x, y, z and colour of every
    frame, as read_skeleton reads them."""
    path = RAW / "S001C003P008R002A058.skeleton"  # two bodies
    raw = ntu.read_skeleton(path)
    for reader in (_ctrgcn_reader, _split_float_reader):
        bodies = reader(str(path))
        assert sorted(int(k) for k in bodies) == sorted(set(raw.body_ids.tolist()))
        for key, body in bodies.items():
            xyz, colors = (body["joints"], body["colors"]) if isinstance(body, dict) else body
            mine = raw.joints[raw.body_ids == int(key)]
            np.testing.assert_array_equal(np.reshape(xyz, (-1, 25, 3)), mine[:, :, :3].astype(np.float32))
            np.testing.assert_array_equal(colors, mine[:, :, 5:7].astype(np.float32))
