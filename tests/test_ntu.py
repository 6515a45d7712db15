"""NTU reader, preprocessing, splits and the CTR-GCN npz reader.

Expected numbers are recomputed here from the text files with plain line walks, independently of
``skel.data.ntu``'s code paths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skel.data import ntu
from skel.data.ntu import (RawSkeleton, SkeletonFormatError, load_ntu, preprocess, read_skeleton,
                           split_of)
from skel.utils import shared_data_dir

SHARED = shared_data_dir()
needs_data = pytest.mark.skipif(SHARED is None, reason="real data folder ../shared/data is absent (fresh clone)")
RAW = SHARED / "ntu_raw_samples" / "LevelCA" if SHARED else None
TWO_BODY = "S001C003P008R002A058"


def _walk(path: Path):
    """Plain line walk: (frame count, bodies per frame, body IDs in order, line of each body's
    first joint)."""
    lines = path.read_text().splitlines()
    i, frames = 1, int(lines[0])
    counts, ids, first_joint_line = [], [], []
    for _ in range(frames):
        nb = int(lines[i]); i += 1
        counts.append(nb)
        for _ in range(nb):
            ids.append(int(lines[i].split()[0]))
            first_joint_line.append(i + 2)  # 0-based index of the body's first joint line
            i += 2 + int(lines[i + 1])
    return frames, counts, ids, first_joint_line, lines


def _samples():
    return sorted(RAW.glob("*.skeleton"))


@needs_data
@pytest.mark.parametrize("index", range(5))
def test_read_real_files_counts_and_values(index):
    path = _samples()[index]
    frames, counts, ids, first, lines = _walk(path)
    raw = read_skeleton(path)
    assert raw.num_frames == frames
    assert raw.body_counts.tolist() == counts
    assert raw.body_ids.tolist() == ids  # 17-digit IDs kept exact (beyond float64)
    assert raw.joints.shape == (len(ids), 25, 12) and raw.body_info.shape == (len(ids), 9)
    for b in (0, len(ids) // 2, len(ids) - 1):  # spot checks against the text
        for j in (0, 11, 24):
            expected = [float(t) for t in lines[first[b] + j].split()]
            assert raw.joints[b, j].tolist() == expected
        info = lines[first[b] - 2].split()
        assert raw.body_info[b].tolist() == [float(t) for t in info[1:]]
    # the vectorised parser and the line-by-line one agree exactly
    strict = ntu._parse_strict(path.read_bytes(), path)
    for key in ("body_counts", "body_ids", "body_info", "joints"):
        assert np.array_equal(getattr(raw, key), getattr(strict, key)), key


@needs_data
def test_expected_body_counts_of_the_samples():
    distinct = {p.name[:20]: len(set(_walk(p)[2])) for p in _samples()}
    assert distinct[TWO_BODY] == 2
    assert all(n == 1 for name, n in distinct.items() if name != TWO_BODY)


@needs_data
def test_preprocess_single_body_is_centred_raw_xyz():
    path = RAW / "S002C001P003R001A003.skeleton"
    frames, counts, _, first, lines = _walk(path)
    xyz = np.array([[[float(t) for t in lines[f + j].split()[:3]] for j in range(25)] for f in first],
                   dtype=np.float32)  # (T, 25, 3) straight from the text
    x = preprocess(read_skeleton(path))
    assert x.shape == (3, sum(c > 0 for c in counts), 25, 2) and x.dtype == np.float32
    expected = xyz - xyz[0, 1]  # centred on joint 2 (spine middle) of the first frame
    np.testing.assert_array_equal(x[..., 0], expected.transpose(2, 0, 1))
    assert not x[..., 1].any()  # no second actor: zeros
    assert not x[:, 0, 1, 0].any()


@needs_data
def test_preprocess_two_body_sample_keeps_both_actors():
    x = preprocess(read_skeleton(RAW / f"{TWO_BODY}.skeleton"))
    frames, counts, _, _, _ = _walk(RAW / f"{TWO_BODY}.skeleton")
    assert x.shape == (3, frames, 25, 2)
    present = np.abs(x).reshape(3, frames, -1, 2).sum(axis=(0, 2)) > 0  # (T, M)
    assert present[:, 0].all() and present[:, 1].all()
    assert not x[:, 0, 1, 0].any()


def _raw(bodies, num_frames, path="synthetic.skeleton"):
    """RawSkeleton from {id: (first frame, xyz (n, 25, 3))}, bodies on consecutive frames."""
    per_frame = [[] for _ in range(num_frames)]
    for bid, (start, xyz) in bodies.items():
        for k, pose in enumerate(xyz):
            per_frame[start + k].append((bid, pose))
    ids, joints, counts = [], [], []
    for recs in per_frame:
        counts.append(len(recs))
        for bid, pose in recs:
            ids.append(bid)
            j = np.zeros((25, 12)); j[:, :3] = pose
            joints.append(j)
    return RawSkeleton(path, np.array(counts), np.array(ids, dtype=np.int64),
                       np.zeros((len(ids), 9)), np.array(joints).reshape(-1, 25, 12))


def _poses(n, seed, amplitude, wide=False):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(25, 3)) * [0.2, 0.6, 0.1]  # taller than wide: not spread-noisy
    if wide:
        base = rng.normal(size=(25, 3)) * [1.0, 0.1, 0.1]  # x-range >> y-range: spread noise
    return (base + amplitude * rng.normal(size=(n, 1, 3))).astype(np.float32)


def test_denoising_rules_on_synthetic_bodies():
    main, other = _poses(40, 0, 0.5), _poses(40, 1, 0.05)
    short = _poses(11, 2, 2.0)  # <= 11 frames: noise even with the most motion
    wide = _poses(40, 3, 3.0, wide=True)  # spread-noisy in every frame: removed
    x = preprocess(_raw({1: (0, main), 2: (0, other), 3: (5, short), 4: (0, wide)}, 40))
    assert x.shape == (3, 40, 25, 2)
    # actor 1 = most motion among the survivors (main), centred on its first frame's joint 2
    np.testing.assert_allclose(x[..., 0].transpose(1, 2, 0), main - main[0, 1], atol=1e-6)
    np.testing.assert_allclose(x[..., 1].transpose(1, 2, 0), other - main[0, 1], atol=1e-6)


def test_a_lone_survivor_of_the_length_rule_is_actor_1():
    main, flicker = _poses(30, 7, 0.5), _poses(11, 8, 3.0)  # 11 frames: noise, despite its motion
    x = preprocess(_raw({3: (0, main), 4: (30, flicker)}, 41))
    assert x.shape == (3, 30, 25, 2)  # the flicker's frames are left empty and dropped
    np.testing.assert_array_equal(x[..., 0].transpose(1, 2, 0), main - main[0, 1])
    assert not x[..., 1].any()


def test_actor_assignment_fills_actor1_slot_and_drops_empty_frames():
    a, b = _poses(20, 4, 0.5), _poses(15, 5, 0.1)
    c = _poses(15, 6, 0.05)
    # frames 20..24 hold no body: dropped, so b starts at valid frame 20, right after a ends and
    # takes actor 1's slot; c overlaps a: actor 2
    raw = _raw({7: (0, a), 8: (25, b), 9: (5, c)}, 40)
    x = preprocess(raw)
    assert x.shape[1] == 35
    np.testing.assert_allclose(x[:, 20:, :, 0].transpose(1, 2, 0), b - a[0, 1], atol=1e-6)
    assert not x[:, 20:, :, 1].any() and not x[:, :5, :, 1].any()


@needs_data
def test_split_sizes_match_the_published_numbers():
    expected = {"ntu60-xsub": (40091, 16487), "ntu60-xview": (37646, 18932),
                "ntu120-xsub": (63026, 50919), "ntu120-xset": (54468, 59477)}
    for bench, (n_train, n_test) in expected.items():
        folder = "ntu" if bench.startswith("ntu60") else "ntu120"
        names = (SHARED / "ntu_metadata_ctrgcn" / folder / "skes_available_name.txt").read_text().split()
        sides = [split_of(n, bench) for n in names]
        assert (sides.count("train"), sides.count("test")) == (n_train, n_test), bench
        cols = {k: np.array((SHARED / "ntu_metadata_ctrgcn" / folder / f"{k}.txt").read_text().split(),
                            dtype=np.int64) for k in ("setup", "camera", "performer")}
        mask = ntu.split_mask(bench, cols["setup"], cols["camera"], cols["performer"])
        assert mask.tolist() == [s == "train" for s in sides]


def test_split_of_rejects_bad_input():
    assert split_of("S002C001P003R001A003", "ntu120-xset") == "train"
    assert split_of("S002C001P003R001A003", "ntu60-xview") == "test"
    with pytest.raises(ValueError, match="accepted: ntu60-xsub, ntu60-xview, ntu120-xsub, ntu120-xset"):
        split_of("S001C001P001R001A001", "ntu60-xsubject")
    with pytest.raises(ValueError, match="SsssCcccPpppRrrrAaaa"):
        split_of("S01C001P001R001A001", "ntu60-xsub")


def _bad_file(tmp_path, lines, name="S001C001P001R001A011.skeleton"):
    path = tmp_path / name
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def _error(path):
    """The SkeletonFormatError of ``path``; prepare-ntu's reader raises the very same one."""
    with pytest.raises(SkeletonFormatError) as info:
        read_skeleton(path)
    err = info.value
    assert isinstance(err, ValueError) and str(path) in str(err) and f"line {err.line}:" in str(err)
    for check_all in (True, False):
        with pytest.raises(SkeletonFormatError) as again:
            ntu.read_preprocessed(path, check_all=check_all)
        assert str(again.value) == str(err) and again.value.line == err.line
    return err


@needs_data
def test_malformed_files_name_file_line_and_expectation(tmp_path):
    src = RAW / "S001C001P001R001A011.skeleton"
    frames, counts, ids, first, lines = _walk(src)
    j = first[3] + 7  # 0-based index of some joint line of body 4

    truncated = _bad_file(tmp_path, lines[:j])
    err = _error(truncated)
    assert err.line == j + 1 and "expected a joint line, got end of file" in str(err)

    wrong_count = list(lines); wrong_count[first[2] - 1] = "24"
    err = _error(_bad_file(tmp_path, wrong_count))
    assert err.line == first[2] and "expected joint count 25, got 24" in str(err)

    non_numeric = list(lines); toks = non_numeric[j].split(); toks[4] = "abc"
    non_numeric[j] = " ".join(toks)
    err = _error(_bad_file(tmp_path, non_numeric))
    assert err.line == j + 1 and "expected a number in field 5 of the joint line, got 'abc'" in str(err)

    # a coordinate that is not a finite float32 (NaN, inf, beyond 3.4e38) would reach training as NaN
    for field, token in ((1, "nan"), (2, "-inf"), (3, "1e39")):
        bad = list(lines); toks = bad[j].split(); toks[field - 1] = token
        bad[j] = " ".join(toks)
        err = _error(_bad_file(tmp_path, bad))
        assert err.line == j + 1 and (f"expected a finite coordinate (within float32 range) in field {field} "
                                      f"of the joint line, got {token!r}") in str(err)
    unused = list(lines); toks = unused[j].split(); toks[4] = "nan"  # depth x: not a coordinate, kept as read
    unused[j] = " ".join(toks)
    assert np.isnan(read_skeleton(_bad_file(tmp_path, unused)).joints).sum() == 1

    short = list(lines); short[j] = " ".join(lines[j].split()[:11])
    err = _error(_bad_file(tmp_path, short))
    assert err.line == j + 1 and "expected 12 numbers per joint line, got 11" in str(err)

    info = list(lines); info[first[1] - 2] = " ".join(lines[first[1] - 2].split()[:9])
    err = _error(_bad_file(tmp_path, info))
    assert err.line == first[1] - 1 and "expected 10 numbers on the body info line, got 9" in str(err)

    huge_id = list(lines); toks = lines[first[0] - 2].split(); toks[0] = "9" * 20
    huge_id[first[0] - 2] = " ".join(toks)
    err = _error(_bad_file(tmp_path, huge_id))
    assert err.line == first[0] - 1 and "expected an integer body ID below 2**63" in str(err)

    extra = _bad_file(tmp_path, lines + ["1"])
    err = _error(extra)
    assert err.line == len(lines) + 1 and f"expected end of file after {frames} frames" in str(err)

    empty = _bad_file(tmp_path, [])
    assert "expected the frame count" in str(_error(empty))


def _write_npz(path, n_train=3, n_test=2, classes=60, compressed=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays, lengths = {}, {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = np.zeros((n, 300, 150), dtype=np.float32)
        lengths[split] = rng.integers(5, 300, size=n)
        for i, t in enumerate(lengths[split]):
            x[i, :t] = rng.normal(size=(t, 150))
        y = np.zeros((n, classes), dtype=np.float32)
        y[np.arange(n), rng.integers(0, classes, size=n)] = 1
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays, lengths


def test_ctrgcn_npz_is_memory_mapped(tmp_path):
    arrays, lengths = _write_npz(tmp_path / "NTU60_CS.npz")
    for data_dir in (tmp_path / "NTU60_CS.npz", tmp_path):  # the file, or a folder holding it
        data = load_ntu("ntu60-xsub", "train", data_dir)
        assert isinstance(data.samples.x, np.memmap)
        assert data.lengths().tolist() == lengths["train"].tolist()
        assert data.labels.tolist() == arrays["y_train"].argmax(1).tolist()
        assert data.num_classes == 60 and data.layout.num_joints == 25
        x, label = data[1]
        t = lengths["train"][1]
        assert x.shape == (3, t, 25, 2)
        expected = arrays["x_train"][1, :t].reshape(t, 2, 25, 3).transpose(3, 0, 2, 1)
        np.testing.assert_array_equal(x, expected)
    test = load_ntu("ntu60-xsub", "test", tmp_path)
    assert len(test) == 2


def test_compressed_npz_loads_with_a_warning(tmp_path):
    arrays, lengths = _write_npz(tmp_path / "NTU120_CSet.npz", classes=120, compressed=True)
    with pytest.warns(UserWarning, match="compressed"):
        data = load_ntu("ntu120-xset", "test", tmp_path)
    assert data.lengths().tolist() == lengths["test"].tolist()
    assert data.num_classes == 120 and data.class_names[-1].startswith("finger-guessing")


def test_load_ntu_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match=r"not found; ntu60-xsub accepts a prepare-ntu output folder"):
        load_ntu("ntu60-xsub", "train", tmp_path / "absent")
    with pytest.raises(ValueError, match=r"holds neither manifest.json nor NTU60_CV.npz"):
        load_ntu("ntu60-xview", "train", tmp_path)
    with pytest.raises(ValueError, match="needs data_dir"):
        load_ntu("ntu60-xview", "train", None)
    _write_npz(tmp_path / "NTU60_CS.npz")
    with pytest.raises(ValueError, match="120 for ntu120-xsub|60 classes, expected 120"):
        load_ntu("ntu120-xsub", "train", tmp_path / "NTU60_CS.npz")
    with pytest.raises(ValueError, match="accepted: train, test"):
        load_ntu("ntu60-xsub", "val", tmp_path)


def test_class_names():
    assert len(ntu.NTU_CLASS_NAMES) == 120 and len(set(ntu.NTU_CLASS_NAMES)) == 120
    assert ntu.NTU_CLASS_NAMES[0] == "drink water" and ntu.NTU_CLASS_NAMES[57] == "handshaking"


def test_vectorised_parser_matches_float_on_varied_number_formats(tmp_path):
    rng = np.random.default_rng(0)
    formats = [lambda v: "%.7g" % v, lambda v: "%.3f" % v, lambda v: repr(v), lambda v: "%.0f" % v,
               lambda v: "%+.2f" % v, lambda v: "%.9E" % v, lambda v: ("%.4f" % v).lstrip("0"),
               lambda v: "%.15g" % v]
    lines = ["3"]
    for f in range(3):
        lines.append(str(f % 2 + 1))
        for b in range(f % 2 + 1):
            lines.append(f"{72057594037927936 + b} " + " ".join(str(int(k)) for k in rng.integers(0, 3, 9)))
            lines.append("25")
            for _ in range(25):
                vals = rng.normal(size=12) * 10.0 ** rng.integers(-6, 5, 12)
                lines.append(" ".join(formats[rng.integers(len(formats))](float(v)) for v in vals))
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text("\r\n".join(lines) + "\r\n")
    fast = ntu._parse_fast(path.read_bytes(), path)
    assert fast is not None  # the vectorised path vouched for this file
    strict = ntu._parse_strict(path.read_bytes(), path)
    expected = [[float(t) for t in ln.split()] for ln in lines if len(ln.split()) == 12]
    assert fast.joints.reshape(-1, 12).tolist() == expected
    for key in ("body_counts", "body_ids", "body_info", "joints"):
        assert np.array_equal(getattr(fast, key), getattr(strict, key)), key
    xyz = _parse_xyz(path.read_bytes())
    assert xyz is not None
    _assert_xyz_of(xyz, strict)  # exponents and 16-byte tokens in x, y, z go through float()


@needs_data
def test_line_ending_variants_read_the_same(tmp_path):
    src = RAW / "S001C001P001R001A011.skeleton"
    ref = read_skeleton(src)
    lines = src.read_text().splitlines()
    for variant, text in (("lf", "\n".join(lines) + "\n"), ("spaces", " \r\n".join(lines)),
                          ("no_final_newline", "\r\n".join(lines))):
        path = tmp_path / f"{variant}.skeleton"
        path.write_text(text, newline="")
        raw = read_skeleton(path)
        for key in ("body_counts", "body_ids", "body_info", "joints"):
            assert np.array_equal(getattr(raw, key), getattr(ref, key)), (variant, key)
    blank = tmp_path / "blank.skeleton"
    blank.write_text("\n".join(lines[:10] + [""] + lines[10:]) + "\n")
    err = _error(blank)
    assert err.line == 11 and "expected 12 numbers per joint line, got 0" in str(err)


def _parse_xyz(data: bytes, check_all: bool = True):
    """The vectorised parser's x, y, z-only mode (prepare-ntu's) on ``data``."""
    c = np.frombuffer(data + b" " * (24 + (-len(data)) % 8), np.uint8)
    return ntu._parse_padded(c, len(data), "f.skeleton", xyz_only=True, check_all=check_all)


def _assert_xyz_of(xyz, raw):
    """The x, y, z-only parse ``xyz`` equals what ``raw`` (a full parse) holds, bit for bit."""
    counts, ids, joints = xyz
    assert counts.dtype == np.int64 and counts.tolist() == raw.body_counts.tolist()
    assert ids.dtype == np.int64 and ids.tolist() == raw.body_ids.tolist()
    expected = raw.joints[:, :, :3].astype(np.float32)
    assert joints.dtype == np.float32 and joints.shape == expected.shape
    assert np.array_equal(joints.view(np.uint32), expected.view(np.uint32))  # -0.0 and NaN too


def _small_file(rng) -> bytes:
    """A well-formed file of 0-3 frames with 0-2 bodies each, CRLF or LF."""
    lines = [str(num_frames := int(rng.integers(0, 4)))]
    for _ in range(num_frames):
        lines.append(str(nb := int(rng.integers(0, 3))))
        for _ in range(nb):
            lines.append(f"{72057594037927936 + int(rng.integers(0, 3))} "
                         + " ".join(str(int(k)) for k in rng.integers(0, 3, 9)))
            lines.append("25")
            for _ in range(25):
                vals = rng.normal(size=12) * 10.0 ** rng.integers(-6, 4, 12)
                lines.append(" ".join("%.7g" % v for v in vals))
    sep = ("\r\n", "\n")[int(rng.integers(0, 2))]
    return (sep.join(lines) + sep).encode()


def test_vectorised_parser_agrees_with_strict_on_mutated_files():
    """Random byte edits and odd tokens: the vectorised parser either gives up (None) or returns
    exactly what the line-by-line parser returns, and never accepts a file the latter rejects."""
    rng = np.random.default_rng(1)
    odd = [b"-.5", b"5.", b".", b"-", b"--1", b"1.2.3", b"007", b"1e5", b"+3", b"nan", b"1_0",
           b"99999999999999999", b"0.000000000001", b"123456789012345", b"1234567890123456",
           b"-0", b"9999999999999999", b"1-2", b"12345678.1234567"]
    alphabet = b" \t\r\n0123456789.-+eEx"
    outcomes = {"same": 0, "fallback": 0, "both_reject": 0, "unused_number_passed": 0}
    for _ in range(300):
        data = bytearray(_small_file(rng))
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, len(data)))
            op = int(rng.integers(0, 4))
            if op == 0:
                data[pos] = alphabet[int(rng.integers(0, len(alphabet)))]
            elif op == 1:
                data.insert(pos, alphabet[int(rng.integers(0, len(alphabet)))])
            elif op == 2:
                del data[pos]
            else:
                data[pos:pos] = odd[int(rng.integers(0, len(odd)))]
        data = bytes(data)
        try:
            strict = ntu._parse_strict(data, "f.skeleton")
        except SkeletonFormatError:
            strict = None
        fast = ntu._parse_fast(data, "f.skeleton")
        xyz = _parse_xyz(data)
        assert (xyz is None) == (fast is None), data  # both modes check every token alike
        used = _parse_xyz(data, check_all=False)  # prepare-ntu's default
        if used is not None and strict is None:
            # accepted only when the flaw is a number the preprocessing does not use
            with pytest.raises(SkeletonFormatError, match=r"expected a number in field (\d+) of the "
                               r"(joint line|body info line)") as info:
                ntu._parse_strict(data, "f.skeleton")
            field = int(info.value.reason.split("field ")[1].split()[0])
            assert "body info" in info.value.reason or field > 3, data
            outcomes["unused_number_passed"] += 1
        elif used is not None:
            _assert_xyz_of(used, strict)
        if fast is None:
            outcomes["fallback" if strict is not None else "both_reject"] += 1
            continue
        assert strict is not None, data
        _assert_xyz_of(xyz, strict)
        for key in ("body_counts", "body_ids", "body_info", "joints"):
            a, b = getattr(fast, key), getattr(strict, key)
            assert a.dtype == b.dtype and a.shape == b.shape, (key, data)
            assert np.array_equal(a, b, equal_nan=True), (key, data)
            assert np.array_equal(np.signbit(a), np.signbit(b)), (key, data)  # -0.0 kept
        outcomes["same"] += 1
    assert min(outcomes.values()) > 0, outcomes  # every branch exercised


def test_vectorised_parser_handles_odd_number_shapes_exactly(tmp_path):
    """Numbers at every length 1..16, with and without sign and dot, at every byte alignment."""
    rng = np.random.default_rng(2)
    shapes = []
    for length in range(1, 17):
        for _ in range(6):
            digits = "".join(str(d) for d in rng.integers(0, 10, length))
            dot = int(rng.integers(0, length + 1))
            tok = digits[:dot] + "." + digits[dot:] if rng.integers(0, 2) else digits
            shapes.append(("-" if rng.integers(0, 2) else "") + tok)
    lines = ["1", "1", "72057594037927936 0 1 1 1 1 0 -0.1 0.1 2", "25"]
    lines += [" ".join(shapes[(12 * j + k) % len(shapes)] for k in range(12)) for j in range(25)]
    expected = [[float(t) for t in ln.split()] for ln in lines[4:]]
    for pad in range(8):  # a zero-padded frame count moves every token through the 8 alignments
        path = tmp_path / f"pad{pad}.skeleton"
        path.write_bytes(("\r\n".join(["0" * pad + "1"] + lines[1:]) + "\r\n").encode())
        fast = ntu._parse_fast(path.read_bytes(), path)
        assert fast is not None and fast.num_frames == 1
        assert fast.joints[0].tolist() == expected
        assert np.array_equal(np.signbit(fast.joints[0]), np.signbit(np.array(expected)))
        _assert_xyz_of(_parse_xyz(path.read_bytes()), fast)


def test_single_body_preprocess_drops_empty_frames_and_zeroes_lost_ones():
    rng = np.random.default_rng(3)
    xyz = rng.normal(size=(6, 25, 3)).astype(np.float32)
    xyz[0] = 0.0  # tracking lost in the first recorded frame: stays zero, not the origin
    joints = np.zeros((6, 25, 12))
    joints[:, :, :3] = xyz
    raw = RawSkeleton("one.skeleton", np.array([0, 1, 1, 1, 0, 1, 1, 1]), np.full(6, 5, np.int64),
                      np.zeros((6, 9)), joints)
    x = preprocess(raw)
    assert x.shape == (3, 6, 25, 2)  # the two empty frames dropped
    origin = xyz[1, 1]  # joint 2 of the first frame with data
    expected = xyz - origin
    expected[0] = 0.0
    np.testing.assert_array_equal(x[..., 0], expected.transpose(2, 0, 1))
    assert not x[..., 1].any()
    twice = RawSkeleton("twice.skeleton", np.array([2]), np.array([5, 5]), np.zeros((2, 9)),
                        np.zeros((2, 25, 12)))
    with pytest.raises(ValueError, match="twice.skeleton: body 5 appears twice in one frame"):
        preprocess(twice)


@needs_data
def test_preprocess_frames_is_the_store_layout_of_preprocess():
    for path in (RAW / f"{TWO_BODY}.skeleton", RAW / "S002C001P003R001A003.skeleton"):
        raw = read_skeleton(path)
        frames = ntu.preprocess_frames(raw)
        assert frames.flags.c_contiguous and frames.dtype == np.float32
        assert frames.shape[1:] == (2, 25, 3)
        np.testing.assert_array_equal(preprocess(raw), frames.transpose(3, 0, 2, 1))


@needs_data
def test_read_preprocessed_is_preprocess_of_the_strict_parse():
    """prepare-ntu's reader (x, y, z only, vectorised) gives bit for bit what the line-by-line
    parser and the CTR-GCN preprocessing give, on every real sample."""
    for path in _samples():
        expected = ntu.preprocess_frames(ntu._parse_strict(path.read_bytes(), path))
        for frames in (ntu.read_preprocessed(path), ntu.preprocess_frames(read_skeleton(path))):
            assert frames.dtype == np.float32 and frames.flags.c_contiguous
            assert frames.shape == expected.shape, path.name
            assert np.array_equal(frames.view(np.uint32), expected.view(np.uint32)), path.name
        _assert_xyz_of(_parse_xyz(path.read_bytes()), read_skeleton(path))


@needs_data
def test_reused_read_buffer_never_mixes_files(tmp_path):
    """Files are read into one reusable buffer per thread: a short file after a long one, a file
    larger than the buffer, and several threads at once all read what a fresh read gives."""
    from concurrent.futures import ThreadPoolExecutor

    paths = _samples()
    expected = {p: ntu.preprocess_frames(ntu._parse_strict(p.read_bytes(), p)) for p in paths}
    by_size = sorted(paths, key=lambda p: p.stat().st_size, reverse=True)
    for p in by_size + by_size[::-1]:
        assert np.array_equal(ntu.read_preprocessed(p), expected[p]), p.name
    big = tmp_path / "S001C001P001R001A011.skeleton"  # each body 5 times, under other IDs
    lines = by_size[-1].read_text().splitlines()
    frames, counts, ids, first, _ = _walk(by_size[-1])
    out = [lines[0]]
    i = 1
    for f in range(frames):
        nb = counts[f]
        block = lines[i + 1:i + 1 + 27 * nb]
        i += 1 + 27 * nb
        out.append(str(5 * nb))
        for k in range(5):
            for j in range(nb):
                body = list(block[27 * j:27 * (j + 1)])
                toks = body[0].split()
                body[0] = " ".join([str(int(toks[0]) + k)] + toks[1:])
                out.extend(body)
    big.write_text("\n".join(out) + "\n")
    assert big.stat().st_size > len(ntu._LOCAL.buf)  # this thread's buffer has to grow
    assert ntu._parse_fast(big.read_bytes(), big) is not None  # (the vectorised path reads it)
    raw = read_skeleton(big)
    strict = ntu._parse_strict(big.read_bytes(), big)
    for key in ("body_counts", "body_ids", "body_info", "joints"):
        assert np.array_equal(getattr(raw, key), getattr(strict, key)), key
    assert np.array_equal(ntu.read_preprocessed(by_size[-1]), expected[by_size[-1]])
    with ThreadPoolExecutor(4) as pool:
        for p, frames in zip(paths * 4, pool.map(ntu.read_preprocessed, paths * 4)):
            assert np.array_equal(frames, expected[p]), p.name


@needs_data
def test_prepare_default_checks_the_numbers_it_uses(tmp_path):
    """A badly formed number in a field the preprocessing does not use (depthX) fails
    read_skeleton and --check-all; prepare-ntu's default reads the file, exactly; the same flaw in
    x fails both."""
    src = RAW / "S001C001P001R001A011.skeleton"
    frames, counts, ids, first, lines = _walk(src)
    j = first[3] + 7
    for field, bad in ((3, "1.2.3"), (0, "1.2.3"), (4, "4-2")):
        edited = list(lines)
        toks = edited[j].split()
        toks[field] = bad
        edited[j] = " ".join(toks)
        path = _bad_file(tmp_path, edited)
        with pytest.raises(SkeletonFormatError) as info:
            read_skeleton(path)
        assert info.value.line == j + 1 and f"field {field + 1} of the joint line" in str(info.value)
        with pytest.raises(SkeletonFormatError):
            ntu.read_preprocessed(path, check_all=True)
        if field < 3:
            with pytest.raises(SkeletonFormatError):
                ntu.read_preprocessed(path, check_all=False)
        else:
            clean = ntu.preprocess_frames(read_skeleton(src))
            assert np.array_equal(ntu.read_preprocessed(path, check_all=False), clean)
