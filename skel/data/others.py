"""Readers for the small non-NTU datasets: NW-UCLA, MSR Action3D, UTKinect-Action3D, SBU Kinect.

Each returns a :class:`skel.data.base.SkeletonData` whose samples are ``(3, T_i, V, M)`` float32
arrays in metres, Kinect camera axes (x towards the subject's right when facing the camera, y up,
z away from the camera), centred like NTU: the layout's centre joint of person 0 in the first
frame is subtracted from every present joint of every frame (a missing person stays all zeros).
Derived and plotted in ``notebooks/01_data.ipynb``; the splits are documented per reader.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np

from skel.data.base import SkeletonData
from skel.data.layout import KINECT20, MSR20, SBU15, Layout

NW_UCLA_CLASSES = [
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down",
    "stand up", "donning", "doffing", "throw", "carry",
]
MSR_CLASSES = [
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw",
    "draw x", "draw tick", "draw circle", "hand clap", "two hand wave", "side-boxing", "bend",
    "forward kick", "side kick", "jogging", "tennis swing", "tennis serve", "golf swing",
    "pick up & throw",
]
UTK_CLASSES = [
    "walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull", "waveHands", "clapHands",
]
SBU_CLASSES = ["approach", "depart", "kick", "punch", "push", "hug", "shake hands", "exchange"]

# The SBU authors' 5-fold cross-validation by subject pair (Yun et al. 2012, the dataset's page);
# the same table is used by the interaction-recognition code bases that report SBU numbers.
SBU_FOLDS = [
    ["s01s02", "s03s04", "s05s02", "s06s04"],
    ["s02s03", "s02s07", "s03s05", "s05s03"],
    ["s01s03", "s01s07", "s07s01", "s07s03"],
    ["s02s01", "s02s06", "s03s02", "s03s06"],
    ["s04s02", "s04s03", "s04s06", "s06s02", "s06s03"],
]


def _check_split(name: str, split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"{name}: split must be 'train' or 'test', got {split!r}")


def _centre(x: np.ndarray, layout: Layout) -> np.ndarray:
    """``x: (C, T, V, M)`` minus the centre joint of person 0 in frame 0, on present persons only."""
    origin = x[:, 0, layout.center, 0].copy()
    present = np.abs(x).sum(axis=(0, 1, 2)) > 0  # (M,)
    x[..., present] -= origin[:, None, None, None]
    return x


def _floats(path: Path, sep: str | None = None) -> np.ndarray:
    """All numbers of a text file, flat float64 (fast: one split, no per-line parsing)."""
    text = path.read_text()
    if sep is not None:
        text = text.replace(sep, " ")
    try:
        values = np.array(text.split(), dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: non-numeric value ({err})") from None
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:  # a NaN or inf would reach training; name where it is (slow path, errors only)
        seen = 0
        for lineno, line in enumerate(text.splitlines(), 1):
            toks = line.split()
            if seen + len(toks) > bad[0]:
                raise ValueError(f"{path}:{lineno}: expected finite numbers, got {toks[bad[0] - seen]!r}")
            seen += len(toks)
    return values


def _files(folder: Path, pattern: str, what: str) -> list[Path]:
    files = sorted(folder.glob(pattern))
    if not files:
        raise FileNotFoundError(f"{folder}: no {pattern} files found; expected {what}")
    return files


# --------------------------------------------------------------------------------------- NW-UCLA
def _read_json(path: Path) -> dict:
    """The json object in ``path``; a file that is not valid JSON (truncated, not UTF-8) or not an
    object is a ``ValueError`` naming the file and, for JSON syntax, the line and column."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err.msg} at line {err.lineno} column {err.colno} "
                         f"(character {err.pos})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object with 'skeletons' and 'label', got a {type(record).__name__}")
    return record


_UCLA_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)$")


def load_nw_ucla(split: str, data_dir: str | Path) -> SkeletonData:
    """NW-UCLA in CTR-GCN's ``all_sqe`` json format (``aAA_sSS_eEE_vVV.json``).

    Each json holds ``skeletons`` ``(T, 20, 3)`` (Kinect v1 SDK order, metres) and ``label`` 1..10.
    Split (the standard cross-view protocol): views 1 and 2 train, view 3 test.
    ``meta``: ``subject``, ``episode``, ``view``, ``action`` (the a-number in the file name).
    """
    _check_split("nw-ucla", split)
    folder = Path(data_dir)
    samples, labels, names = [], [], []
    meta: dict[str, list[int]] = {"subject": [], "episode": [], "view": [], "action": []}
    for path in _files(folder, "*.json", "CTR-GCN all_sqe files aAA_sSS_eEE_vVV.json"):
        m = _UCLA_NAME.match(path.stem)
        if m is None:
            raise ValueError(f"{path}: file name is not aAA_sSS_eEE_vVV.json")
        action, subject, episode, view = map(int, m.groups())
        if (view == 3) != (split == "test"):
            continue
        record = _read_json(path)
        try:
            joints = np.asarray(record["skeletons"], dtype=np.float32)
            label = int(record["label"]) - 1
        except KeyError as err:
            raise ValueError(f"{path}: missing key {err}; expected 'skeletons' and 'label'") from None
        except (TypeError, ValueError) as err:  # ragged or non-numeric skeletons, a non-integer label
            raise ValueError(f"{path}: {err}; expected 'skeletons' (T, 20, 3) numbers and an integer 'label'") from None
        if joints.ndim != 3 or joints.shape[1:] != (20, 3) or len(joints) == 0:
            raise ValueError(f"{path}: skeletons have shape {joints.shape}, expected (T>0, 20, 3)")
        bad = np.argwhere(~np.isfinite(joints))
        if len(bad):
            t, v, c = bad[0]
            raise ValueError(f"{path}: skeletons[{t}][{v}][{c}] is {joints[t, v, c]}, expected finite numbers")
        if not 0 <= label < len(NW_UCLA_CLASSES):
            raise ValueError(f"{path}: label {label + 1} outside 1..{len(NW_UCLA_CLASSES)}")
        x = np.ascontiguousarray(joints.transpose(2, 0, 1)[..., None])  # (3, T, 20, 1)
        samples.append(_centre(x, KINECT20))
        labels.append(label)
        names.append(path.stem)
        for key, value in zip(("subject", "episode", "view", "action"), (subject, episode, view, action)):
            meta[key].append(value)
    return SkeletonData("nw-ucla", split, samples, np.array(labels), KINECT20, list(NW_UCLA_CLASSES),
                        {k: np.array(v, dtype=np.int64) for k, v in meta.items()}, names)


# ---------------------------------------------------------------------------------- MSR Action3D
_MSR_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_skeleton3D$")


def load_msr_action3d(split: str, data_dir: str | Path, subset: str = "all") -> SkeletonData:
    """MSR Action3D ``real_world_coordinates/aAA_sSS_eEE_skeleton3D.txt`` (20 lines per frame).

    Columns are x y z c (c, a tracking confidence, is dropped). Axes: the files are already
    metres in camera space with y up and z the depth (head above feet, depth 2-3 m), so the
    mapping to the NTU convention is the identity (x, y, z) -> (x, y, z); the joint order is
    :data:`skel.data.layout.MSR20`. Centred on the spine joint of the first frame.
    Split: cross-subject, odd subjects (1, 3, 5, 7, 9) train, even test (Li et al. 2010).
    ``subset="cvpr12"`` keeps only the files listed in ``files_used_in_cvpr12_paper.txt``.
    All-zero files (a13_s09_e02) are skipped with a warning naming them.
    ``meta``: ``subject``, ``episode``.
    """
    _check_split("msr-action3d", split)
    if subset not in ("all", "cvpr12"):
        raise ValueError(f"msr-action3d: subset must be 'all' or 'cvpr12', got {subset!r}")
    folder = Path(data_dir) / "real_world_coordinates"
    files = _files(folder, "a*_s*_e*_skeleton3D.txt", "MSR Action3D aAA_sSS_eEE_skeleton3D.txt files")
    if subset == "cvpr12":
        listed = set((folder / "files_used_in_cvpr12_paper.txt").read_text().split())
        files = [f for f in files if f.stem.removesuffix("_skeleton3D") in listed]
    samples, labels, names = [], [], []
    meta: dict[str, list[int]] = {"subject": [], "episode": []}
    for path in files:
        m = _MSR_NAME.match(path.stem)
        if m is None:
            raise ValueError(f"{path}: file name is not aAA_sSS_eEE_skeleton3D.txt")
        action, subject, episode = map(int, m.groups())
        if (subject % 2 == 0) != (split == "test"):
            continue
        values = _floats(path)
        if values.size == 0 or values.size % 80:
            raise ValueError(f"{path}: {values.size} numbers, expected a multiple of 80 (20 joints x 4 columns)")
        frames = values.reshape(-1, 20, 4)[..., :3]
        if not frames.any():
            warnings.warn(f"msr-action3d: skipping {path.name}: all coordinates are zero", stacklevel=2)
            continue
        x = np.ascontiguousarray(frames.transpose(2, 0, 1)[..., None], dtype=np.float32)
        samples.append(_centre(x, MSR20))
        labels.append(action - 1)
        names.append(path.stem.removesuffix("_skeleton3D"))
        meta["subject"].append(subject)
        meta["episode"].append(episode)
    return SkeletonData("msr-action3d", split, samples, np.array(labels), MSR20, list(MSR_CLASSES),
                        {k: np.array(v, dtype=np.int64) for k, v in meta.items()}, names)


# -------------------------------------------------------------------------------------- UTKinect
_UTK_NAME = re.compile(r"s(\d+)_e(\d+)$")


def read_utkinect_labels(path: Path) -> dict[str, list[tuple[str, float, float]]]:
    """``actionLabel.txt`` -> ``{"s01_e01": [(action, start, end), ...]}`` (NaN kept as NaN)."""
    out: dict[str, list[tuple[str, float, float]]] = {}
    current = None
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if _UTK_NAME.match(line):
            current = out.setdefault(line, [])
            continue
        parts = line.replace(":", " ").split()
        if current is None or len(parts) != 3:
            raise ValueError(f"{path}:{lineno}: expected 'sSS_eEE' or 'action: start end', got {line!r}")
        current.append((parts[0], float(parts[1]), float(parts[2])))
    return out


def load_utkinect(split: str, data_dir: str | Path, corrected_labels: bool = False) -> SkeletonData:
    """UTKinect-Action3D: 20 recordings ``joints/joints_sSS_eEE.txt`` cut into action segments.

    Each line is a frame id then 20 joints x (x, y, z) (Kinect v1 SDK order, metres). Segment =
    the frames whose id lies in ``[start, end]`` from ``joints/actionLabel.txt``
    (``corrected_labels=True`` reads ``actionLabel_modified.txt``, which fixes a few obviously
    wrong boundaries, e.g. a 1,066-frame "push"). Entries whose start or end is NaN (s10_e02
    carry: not annotated) are skipped, giving 199 segments. Frame ids repeat now and then (the
    recorder wrote two skeletons for one id); the first row of each id is kept.
    Split: cross-subject, odd subjects train, even test - the half/half subject protocol of
    Zhu et al. 2013 used by the GCN literature; it mirrors MSR Action3D and keeps whole subjects
    out of training (the dataset's original protocol, leave-one-sequence-out, has no fixed split).
    ``meta``: ``subject``, ``episode``, ``start``, ``end`` (frame ids).
    """
    _check_split("utkinect", split)
    folder = Path(data_dir) / "joints"
    label_file = folder / ("actionLabel_modified.txt" if corrected_labels else "actionLabel.txt")
    if not label_file.is_file():
        raise FileNotFoundError(f"{label_file} not found; expected UTKinect joints_sSS_eEE.txt and actionLabel.txt")
    segments = read_utkinect_labels(label_file)
    samples, labels, names = [], [], []
    meta: dict[str, list[int]] = {"subject": [], "episode": [], "start": [], "end": []}
    for rec, entries in segments.items():
        subject, episode = map(int, _UTK_NAME.match(rec).groups())
        if (subject % 2 == 0) != (split == "test"):
            continue
        path = folder / f"joints_{rec}.txt"
        values = _floats(path)
        if values.size % 61:
            raise ValueError(f"{path}: {values.size} numbers, expected lines of 61 (frame id + 20 x 3)")
        rows = values.reshape(-1, 61)
        ids, first = np.unique(rows[:, 0], return_index=True)  # sorted ids, first row of each
        joints = rows[first, 1:].reshape(-1, 20, 3)
        for action, start, end in entries:
            if np.isnan(start) or np.isnan(end):
                continue
            if action not in UTK_CLASSES:
                raise ValueError(f"{label_file}: unknown action {action!r} in {rec}; expected one of {UTK_CLASSES}")
            keep = (ids >= start) & (ids <= end)
            if not keep.any():
                raise ValueError(f"{label_file}: {rec} {action} [{start:g}, {end:g}] matches no frame of {path.name}")
            x = np.ascontiguousarray(joints[keep].transpose(2, 0, 1)[..., None], dtype=np.float32)
            samples.append(_centre(x, KINECT20))
            labels.append(UTK_CLASSES.index(action))
            names.append(f"{rec}_{action}")
            for key, value in zip(("subject", "episode", "start", "end"), (subject, episode, start, end)):
                meta[key].append(int(value))
    return SkeletonData("utkinect", split, samples, np.array(labels), KINECT20, list(UTK_CLASSES),
                        {k: np.array(v, dtype=np.int64) for k, v in meta.items()}, names)


# ------------------------------------------------------------------------------------------- SBU
def sbu_denormalise(values: np.ndarray) -> np.ndarray:
    """Undo SBU's normalisation, ``(..., 3)`` -> metres, following the dataset's README:
    ``X = 1280 - 2560 x``, ``Y = 960 - 1920 y``, ``Z = 10000 z / 7.8125`` (millimetres), then / 1000.
    Y comes out pointing up and X towards the subject's right, as in Kinect camera space."""
    out = np.empty_like(values)
    out[..., 0] = 1280.0 - 2560.0 * values[..., 0]
    out[..., 1] = 960.0 - 1920.0 * values[..., 1]
    out[..., 2] = values[..., 2] * 10000.0 / 7.8125
    return out / 1000.0


def load_sbu(split: str, data_dir: str | Path, fold: int = 0) -> SkeletonData:
    """SBU Kinect Interaction: ``sXXsYY/CC/NNN/skeleton_pos.txt``, 2 persons x 15 joints.

    Each line: frame index, then person 1's 15 joints x (x, y, z), then person 2's (OpenNI
    order, :data:`skel.data.layout.SBU15`), normalised; :func:`sbu_denormalise` turns them back
    into metres. Centred on person 1's torso in the first frame (both persons move together).
    Split: the authors' 5-fold cross-validation by subject pair (:data:`SBU_FOLDS`): ``fold`` k
    (0..4) tests on the pairs of fold k and trains on the other four folds.
    ``meta``: ``pair`` (index into the sorted pair folders), ``subject_a``, ``subject_b``,
    ``take``, ``fold``.
    """
    _check_split("sbu", split)
    if fold not in range(len(SBU_FOLDS)):
        raise ValueError(f"sbu: fold must be 0..{len(SBU_FOLDS) - 1}, got {fold!r}")
    folder = Path(data_dir)
    files = _files(folder, "s*s*/*/*/skeleton_pos.txt", "SBU sXXsYY/CC/NNN/skeleton_pos.txt files")
    fold_of = {pair: k for k, pairs in enumerate(SBU_FOLDS) for pair in pairs}
    pair_names = sorted({f.parts[-4] for f in files})
    samples, labels, names = [], [], []
    meta: dict[str, list[int]] = {"pair": [], "subject_a": [], "subject_b": [], "take": [], "fold": []}
    for path in files:
        pair, cls, take = path.parts[-4], path.parts[-3], path.parts[-2]
        m = re.fullmatch(r"s(\d+)s(\d+)", pair)
        if m is None or pair not in fold_of:
            raise ValueError(f"{path}: pair folder {pair!r} is not one of the 21 SBU pairs {sorted(fold_of)}")
        if (fold_of[pair] == fold) != (split == "test"):
            continue
        values = _floats(path, sep=",")
        if values.size == 0 or values.size % 91:
            raise ValueError(f"{path}: {values.size} numbers, expected lines of 91 (frame index + 2 x 15 x 3)")
        joints = sbu_denormalise(values.reshape(-1, 91)[:, 1:].reshape(-1, 2, 15, 3))  # (T, M, V, C)
        x = np.ascontiguousarray(joints.transpose(3, 0, 2, 1), dtype=np.float32)  # (3, T, 15, 2)
        label = int(cls) - 1
        if not 0 <= label < len(SBU_CLASSES):
            raise ValueError(f"{path}: class folder {cls!r} outside 01..08")
        samples.append(_centre(x, SBU15))
        labels.append(label)
        names.append(f"{pair}_{cls}_{take}")
        for key, value in zip(("pair", "subject_a", "subject_b", "take", "fold"),
                              (pair_names.index(pair), int(m.group(1)), int(m.group(2)), int(take), fold_of[pair])):
            meta[key].append(value)
    return SkeletonData("sbu", split, samples, np.array(labels), SBU15, list(SBU_CLASSES),
                        {k: np.array(v, dtype=np.int64) for k, v in meta.items()}, names)
