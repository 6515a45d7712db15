"""The registry and the non-NTU readers against the real files in ../shared/data.

Every expected count is recomputed here from the files with plain Python, independently of the
readers' code paths.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from skel.data import DATASETS, load_dataset
from skel.utils import shared_data_dir

SHARED = shared_data_dir()
needs_data = pytest.mark.skipif(SHARED is None, reason="real data folder ../shared/data is absent (fresh clone)")


def _load(name, split, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, split, **options)


def _check_common(data, channels=3, joints=20, persons=1):
    assert len(data.samples) == len(data.labels) == len(data.names)
    for x, label in (data[i] for i in range(len(data))):
        assert x.dtype == np.float32 and x.ndim == 4
        assert x.shape[0] == channels and x.shape[2] == joints and x.shape[3] == persons
        assert 0 <= label < data.num_classes
        # centred like NTU: person 0's centre joint is the origin in the first frame
        np.testing.assert_allclose(x[:, 0, data.layout.center, 0], 0.0, atol=1e-6)
    assert len(set(data.names)) == len(data.names)


def _y_up(data, head: int, feet: tuple[int, ...]):
    """Median over samples of head height above the feet: ~1.3-1.8 m when y points up."""
    gaps = [np.median(x[1, :, head, 0] - x[1, :, list(feet), 0].mean(0)) for x, _ in (data[i] for i in range(len(data)))]
    return float(np.median(gaps))


# ------------------------------------------------------------------------------------- registry
def test_registry_names():
    assert set(DATASETS) == {"synthetic", "ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset",
                             "nw-ucla", "msr-action3d", "utkinect", "sbu"}


def test_unknown_name_is_one_line_and_lists_names():
    with pytest.raises(ValueError) as err:
        load_dataset("ntu61", "train")
    message = str(err.value)
    assert "\n" not in message and "ntu61" in message
    assert all(name in message for name in DATASETS)


def test_unknown_split_and_option(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_dataset("sbu", "val", tmp_path)
    with pytest.raises(ValueError) as err:
        load_dataset("sbu", "train", tmp_path, folds=2)
    message = str(err.value)
    assert "\n" not in message and "'folds'" in message and "fold" in message.split("accepted:")[1]


def test_ntu_needs_data_dir_and_synthetic_checks_options():
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("ntu60-xsub", "train")
    assert "\n" not in str(err.value) and "prepare-ntu" in str(err.value)
    with pytest.raises(ValueError) as err:
        load_dataset("synthetic", "train", num_per_clas=3)
    assert "'num_per_clas'" in str(err.value) and "num_per_class" in str(err.value)


def test_missing_folder_is_one_line(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("msr-action3d", "train", missing)
    message = str(err.value)
    assert "\n" not in message and str(missing) in message and "skeleton3D" in message


def _inspect(argv):
    """``python -m skel inspect ARGV`` through the command module (the dispatcher is tested elsewhere)."""
    import argparse

    from skel.data import inspect

    parser = argparse.ArgumentParser()
    inspect.add_arguments(parser)
    return inspect.main(parser.parse_args(argv))


def test_inspect_cli_errors_exit_2(capsys, tmp_path):

    assert _inspect(["--dataset", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "msr-action3d" in err
    assert _inspect(["--dataset", "utkinect", "--data-dir", str(tmp_path / "x")]) == 2
    assert str(tmp_path / "x") in capsys.readouterr().err


@needs_data
def test_inspect_cli_prints_counts(capsys):
    assert _inspect(["--dataset", "nw-ucla", "--split", "test"]) == 0
    out = capsys.readouterr().out
    views3 = len(list((SHARED / "nw_ucla_sample").glob("*_v03.json")))
    assert f"[test] samples: {views3}" in out and "classes: 10" in out and "2nd person: 0" in out


# ---------------------------------------------------------------------------------- MSR Action3D
@needs_data
def test_msr_counts_and_zero_file_warning():
    folder = SHARED / "msr_action3d" / "real_world_coordinates"
    files = sorted(folder.glob("*_skeleton3D.txt"))
    assert len(files) == 567
    zero = [f.stem.removesuffix("_skeleton3D") for f in files if not any(float(v) for v in f.read_text().split())]
    assert zero == ["a13_s09_e02"]
    subject = {f.stem.removesuffix("_skeleton3D"): int(f.name.split("_")[1][1:]) for f in files}
    expected = {"train": sum(1 for n, s in subject.items() if s % 2 == 1 and n not in zero),
                "test": sum(1 for n, s in subject.items() if s % 2 == 0 and n not in zero)}
    with pytest.warns(UserWarning, match="a13_s09_e02"):
        train = load_dataset("msr-action3d", "train")
    test = _load("msr-action3d", "test")
    assert (len(train), len(test)) == (expected["train"], expected["test"]) == (291, 275)
    assert "a13_s09_e02" not in train.names
    assert set(train.meta["subject"]) == {1, 3, 5, 7, 9} and set(test.meta["subject"]) == {2, 4, 6, 8, 10}
    assert train.num_classes == 20 and set(np.unique(train.labels)) == set(range(20))
    # frames = lines / 20, checked on every file of the test split
    for name, x in zip(test.names, test.samples):
        assert x.shape[1] * 20 == len((folder / f"{name}_skeleton3D.txt").read_text().splitlines())
    _check_common(test, joints=20)
    assert _y_up(test, head=19, feet=(17, 18)) > 1.2


@needs_data
def test_msr_layout_right_arm_moves_in_one_arm_actions():
    """Subjects used their right arm: in 'high arm wave' the r_hand joint must move the most."""
    data = _load("msr-action3d", "train")
    names = data.layout.joint_names
    spread = np.mean([x[:, :, :, 0].std(axis=1).sum(0) for x, y in (data[i] for i in range(len(data))) if y == 0], 0)
    assert names[int(np.argmax(spread))] == "r_hand"
    assert spread[names.index("r_hand")] > 3 * spread[names.index("l_hand")]


@needs_data
def test_msr_cvpr12_subset():
    listed = (SHARED / "msr_action3d" / "real_world_coordinates" / "files_used_in_cvpr12_paper.txt").read_text().split()
    both = _load("msr-action3d", "train", subset="cvpr12").names + _load("msr-action3d", "test", subset="cvpr12").names
    assert sorted(both) == sorted(n for n in listed if n != "a13_s09_e02")


# -------------------------------------------------------------------------------------- UTKinect
def _utk_entries():
    entries, rec = [], None
    for line in (SHARED / "utkinect" / "joints" / "actionLabel.txt").read_text().splitlines():
        if re.fullmatch(r"s\d\d_e\d\d", line.strip()):
            rec = line.strip()
        elif ":" in line:
            action, rest = line.split(":")
            start, end = rest.split()
            entries.append((rec, action.strip(), start, end))
    return entries


@needs_data
def test_utkinect_counts_and_segments():
    entries = _utk_entries()
    assert len(entries) == 200
    valid = [e for e in entries if "NaN" not in (e[2], e[3])]
    assert len(valid) == 199
    train, test = _load("utkinect", "train"), _load("utkinect", "test")
    odd = sum(1 for e in valid if int(e[0][1:3]) % 2 == 1)
    assert (len(train), len(test)) == (odd, len(valid) - odd)
    assert train.num_classes == 10 and len(np.unique(np.concatenate([train.labels, test.labels]))) == 10
    # one segment recounted by hand: unique frame ids within [start, end]
    rec, action, start, end = valid[0]
    ids = {float(line.split()[0]) for line in (SHARED / "utkinect" / "joints" / f"joints_{rec}.txt").read_text().splitlines()}
    frames = sum(1 for i in ids if float(start) <= i <= float(end))
    assert train.samples[train.names.index(f"{rec}_{action}")].shape[1] == frames
    _check_common(train, joints=20)
    assert _y_up(train, head=3, feet=(15, 19)) > 1.2


@needs_data
def test_utkinect_corrected_labels_change_only_the_listed_segments():
    a, b = _load("utkinect", "train"), _load("utkinect", "train", corrected_labels=True)
    assert a.names == b.names
    changed = [n for n, x, y in zip(a.names, a.samples, b.samples) if x.shape != y.shape]
    assert 0 < len(changed) < 10


# ------------------------------------------------------------------------------------------- SBU
@needs_data
def test_sbu_counts_per_fold():
    from skel.data.others import SBU_FOLDS

    files = sorted((SHARED / "sbu_kinect_interaction").glob("*/*/*/skeleton_pos.txt"))
    assert len(files) == 282
    pairs = sorted({f.parts[-4] for f in files})
    assert len(pairs) == 21 and sorted(p for fold in SBU_FOLDS for p in fold) == pairs
    for fold in (0, 4):
        test = _load("sbu", "test", fold=fold)
        train = _load("sbu", "train", fold=fold)
        expected = sum(1 for f in files if f.parts[-4] in SBU_FOLDS[fold])
        assert len(test) == expected and len(train) == 282 - expected
        assert set(test.meta["fold"]) == {fold} and fold not in set(train.meta["fold"])
    assert test.num_classes == 8
    # frames = lines of the file
    name = test.names[0]
    pair, cls, take = name.split("_")
    lines = (SHARED / "sbu_kinect_interaction" / pair / cls / take / "skeleton_pos.txt").read_text().split()
    assert test.samples[0].shape[1] == len(lines)
    _check_common(test, joints=15, persons=2)
    assert _y_up(test, head=0, feet=(11, 14)) > 1.0


@needs_data
def test_sbu_denormalisation_matches_readme_formula():
    from skel.data.others import sbu_denormalise

    path = next(iter(sorted((SHARED / "sbu_kinect_interaction").glob("*/*/*/skeleton_pos.txt"))))
    row = [float(v) for v in path.read_text().splitlines()[0].split(",")]
    x, y, z = row[1:4]  # person 1, head, frame 0
    expected = [(1280 - 2560 * x) / 1000, (960 - 1920 * y) / 1000, z * 10000 / 7.8125 / 1000]
    np.testing.assert_allclose(sbu_denormalise(np.array([x, y, z])), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="fold"):
        load_dataset("sbu", "test", fold=5)


# --------------------------------------------------------------------------------------- NW-UCLA
@needs_data
def test_nw_ucla_sample_counts():
    files = sorted((SHARED / "nw_ucla_sample").glob("*.json"))
    assert len(files) == 30
    train, test = _load("nw-ucla", "train"), _load("nw-ucla", "test")
    assert len(test) == sum(1 for f in files if f.stem.endswith("_v03")) == 10
    assert len(train) == 20 and set(train.meta["view"]) == {1, 2} and set(test.meta["view"]) == {3}
    record = json.loads(files[0].read_text())
    i = train.names.index(files[0].stem)
    assert train.samples[i].shape[1] == len(record["skeletons"]) and train.labels[i] == record["label"] - 1
    # centring only translates: the raw frame minus its spine joint equals ours
    raw = np.asarray(record["skeletons"][0], dtype=np.float32)
    np.testing.assert_allclose(train.samples[i][:, 0, :, 0].T, raw - raw[1], atol=1e-6)
    _check_common(train, joints=20)
    assert _y_up(train, head=3, feet=(15, 19)) > 1.2


@needs_data
def test_a_nan_or_inf_in_a_file_is_refused_with_its_line(tmp_path):
    """A non-finite number would reach training as NaN: the loaders name the file and where it is."""
    src = sorted((SHARED / "msr_action3d" / "real_world_coordinates").glob("a01_s01_*_skeleton3D.txt"))[0]
    lines = src.read_text().splitlines()
    toks = lines[6].split()
    toks[2] = "nan"  # z of the 7th joint line
    folder = tmp_path / "msr" / "real_world_coordinates"
    folder.mkdir(parents=True)
    bad = folder / src.name
    bad.write_text("\n".join(lines[:6] + [" ".join(toks)] + lines[7:]) + "\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}:7: expected finite numbers, got 'nan'"):
        load_dataset("msr-action3d", "train", tmp_path / "msr")

    src = sorted((SHARED / "nw_ucla_sample").glob("*_v01.json"))[0]
    record = json.loads(src.read_text())
    record["skeletons"][2][5][1] = float("inf")
    (tmp_path / "ucla").mkdir()
    (tmp_path / "ucla" / src.name).write_text(json.dumps(record))  # json writes Infinity
    with pytest.raises(ValueError, match=rf"{src.name}: skeletons\[2\]\[5\]\[1\] is inf, expected finite"):
        load_dataset("nw-ucla", "train", tmp_path / "ucla")


@needs_data
def test_an_nw_ucla_file_that_is_not_json_names_the_file_and_position(tmp_path):
    """A truncated download gave only json's 'Expecting ...: line L column C', without the file."""
    src = sorted((SHARED / "nw_ucla_sample").glob("*_v01.json"))[0]
    text = src.read_text()
    bad = tmp_path / src.name
    bad.write_text(text[: len(text) // 2])
    with pytest.raises(json.JSONDecodeError) as decode:
        json.loads(bad.read_text())
    where = f"line {decode.value.lineno} column {decode.value.colno}"
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}: not valid JSON: .* at {where}") as err:
        load_dataset("nw-ucla", "train", tmp_path)
    assert not isinstance(err.value, json.JSONDecodeError) and "\n" not in str(err.value)
    bad.write_bytes(b"\xff\xfe" + text.encode()[:100])  # not UTF-8
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}: not valid JSON: not UTF-8"):
        load_dataset("nw-ucla", "train", tmp_path)
    bad.write_text("[1, 2]")  # valid JSON, not the expected object
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}: expected a JSON object"):
        load_dataset("nw-ucla", "train", tmp_path)
