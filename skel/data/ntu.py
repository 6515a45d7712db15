"""NTU RGB+D: the raw ``.skeleton`` reader, the CTR-GCN preprocessing, the benchmark splits,
the CTR-GCN npz reader and :func:`load_ntu` (derived in ``notebooks/01_data.ipynb``).

* :func:`read_skeleton` parses the official text layout, keeping every body, its info line and all
  12 numbers of every joint. A malformed file raises :class:`SkeletonFormatError` naming the
  file, the 1-based line and what was expected.
* :func:`preprocess` turns a :class:`RawSkeleton` into one sample ``(C=3, T_valid, V=25, M=2)``
  float32 exactly as the CTR-GCN scripts do (reused by STTFormer and MAMP; reference.md section 3):
  empty frames dropped, multi-body denoising, motion-sorted actor assignment, centring on joint 2
  of actor 1. No padding to 300 frames (the feeder's job).
* :func:`split_of` gives the train/test side of a sample name for the four benchmarks.
* :func:`load_ntu` opens a ``prepare-ntu`` store (:mod:`skel.data.store`) or a CTR-GCN npz,
  memory-mapped.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from skel.data.base import SkeletonData
from skel.data.layout import NTU25

NUM_JOINTS = 25
INFO_FIELDS = 10  # bodyID + 9 numbers
JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientationW X Y Z trackingState
_BODY_TOKENS = INFO_FIELDS + 1 + NUM_JOINTS * JOINT_FIELDS  # info line, joint count, joint lines

# CTR-GCN denoising thresholds (get_raw_denoised_data.py)
NOISE_LEN_THRES = 11  # a body seen in <= 11 frames is noise
NOISE_SPR_THRES1 = 0.8  # a frame is noisy when x-range > 0.8 * y-range
NOISE_SPR_THRES2 = 0.69754  # a body with >= this ratio of noisy frames is removed

NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")

# ---------------------------------------------------------------------------------------------
# The benchmark splits (reference.md section 3)

XSUB60_TRAIN_PERFORMERS = frozenset(
    {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
XSUB120_TRAIN_PERFORMERS = XSUB60_TRAIN_PERFORMERS | frozenset(
    {45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
     89, 91, 92, 93, 94, 95, 97, 98, 100, 103})
XVIEW_TRAIN_CAMERAS = frozenset({2, 3})
BENCHMARKS = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset")
# the CTR-GCN npz file names of each benchmark
NPZ_NAMES = {
    "ntu60-xsub": ("NTU60_CS.npz", "NTU60_XSub.npz"),
    "ntu60-xview": ("NTU60_CV.npz", "NTU60_XView.npz"),
    "ntu120-xsub": ("NTU120_CSub.npz", "NTU120_XSub.npz"),
    "ntu120-xset": ("NTU120_CSet.npz", "NTU120_XSet.npz"),
}


def parse_name(name: str) -> dict[str, int]:
    """``"S001C002P003R002A013"`` (a file name or path is fine) -> setup, camera, performer,
    replication, action (all 1-based as in the name)."""
    m = NAME_RE.search(os.path.basename(str(name)))
    if m is None:
        raise ValueError(f"{name!r} is not an NTU sample name; expected SsssCcccPpppRrrrAaaa, "
                         "e.g. S001C002P003R002A013")
    s, c, p, r, a = (int(g) for g in m.groups())
    return {"setup": s, "camera": c, "performer": p, "replication": r, "action": a}


def split_of(name: str, benchmark: str) -> str:
    """``"train"`` or ``"test"``: the side of sample ``name`` in ``benchmark``
    (one of ``ntu60-xsub``, ``ntu60-xview``, ``ntu120-xsub``, ``ntu120-xset``)."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown NTU benchmark {benchmark!r}; accepted: {', '.join(BENCHMARKS)}")
    info = parse_name(name)
    if benchmark == "ntu60-xsub":
        train = info["performer"] in XSUB60_TRAIN_PERFORMERS
    elif benchmark == "ntu60-xview":
        train = info["camera"] in XVIEW_TRAIN_CAMERAS
    elif benchmark == "ntu120-xsub":
        train = info["performer"] in XSUB120_TRAIN_PERFORMERS
    else:  # ntu120-xset: even setup ids train
        train = info["setup"] % 2 == 0
    return "train" if train else "test"


def split_mask(benchmark: str, setup, camera, performer) -> np.ndarray:
    """Vectorised :func:`split_of`: ``(N,)`` bool, True = train."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown NTU benchmark {benchmark!r}; accepted: {', '.join(BENCHMARKS)}")
    if benchmark == "ntu60-xsub":
        return np.isin(performer, sorted(XSUB60_TRAIN_PERFORMERS))
    if benchmark == "ntu60-xview":
        return np.isin(camera, sorted(XVIEW_TRAIN_CAMERAS))
    if benchmark == "ntu120-xsub":
        return np.isin(performer, sorted(XSUB120_TRAIN_PERFORMERS))
    return np.asarray(setup) % 2 == 0


# ---------------------------------------------------------------------------------------------
# The raw reader

class SkeletonFormatError(ValueError):
    """A malformed ``.skeleton`` file: ``path``, 1-based ``line`` and what was ``expected``."""

    def __init__(self, path, line: int, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path} line {line}: {reason}")


@dataclass
class RawSkeleton:
    """Everything in one ``.skeleton`` file; ``B`` = body records over all frames.

    Attributes:
        path: the file read.
        body_counts: ``(F,)`` bodies in each frame (F = the declared frame count, empty frames kept).
        body_ids: ``(B,)`` int64 tracking ID of each body record (IDs exceed float64 precision).
        body_info: ``(B, 9)`` float64, the info line after the ID: clippedEdges,
            handLeftConfidence, handLeftState, handRightConfidence, handRightState, isRestricted,
            leanX, leanY, trackingState.
        joints: ``(B, 25, 12)`` float64: x y z depthX depthY colorX colorY orientationW X Y Z
            trackingState.
    """

    path: str
    body_counts: np.ndarray
    body_ids: np.ndarray
    body_info: np.ndarray
    joints: np.ndarray

    @property
    def name(self) -> str:
        return Path(self.path).name.split(".")[0]

    @property
    def num_frames(self) -> int:
        return len(self.body_counts)

    @property
    def body_frames(self) -> np.ndarray:
        """``(B,)`` frame index (0-based, over all declared frames) of each body record."""
        return np.repeat(np.arange(len(self.body_counts)), self.body_counts)


def read_skeleton(path) -> RawSkeleton:
    """Parse one official NTU ``.skeleton`` file (layout in ``shared/data/README.md``).

    A vectorised parser handles well-formed files; anything it cannot vouch for goes through
    :func:`_parse_strict`, the line-by-line definition of the format, which names the first bad
    line. Both give identical results on a good file.
    """
    data = Path(path).read_bytes()
    raw = _parse_fast(data, path)
    return raw if raw is not None else _parse_strict(data, path)


def _is_int_token(tok: bytes) -> bool:
    return tok.isdigit() and tok.isascii()


def _parse_strict(data: bytes, path) -> RawSkeleton:
    """Line-by-line parser: the reference for the format and for the error messages."""
    lines = data.split(b"\n")
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1  # trailing blank lines are fine
    state = {"i": 0}

    def fail(lineno: int, reason: str):
        raise SkeletonFormatError(path, lineno, reason)

    def next_tokens(expected: str) -> tuple[int, list[bytes]]:
        i = state["i"]
        if i >= end:
            fail(i + 1, f"expected {expected}, got end of file")
        state["i"] = i + 1
        return i + 1, lines[i].split()

    def show(toks: list[bytes]) -> str:
        return repr(b" ".join(toks).decode("ascii", "replace")[:60])

    def integer(expected: str) -> tuple[int, int]:
        lineno, toks = next_tokens(expected)
        if len(toks) != 1 or not _is_int_token(toks[0]):
            fail(lineno, f"expected {expected} (one non-negative integer), got {show(toks)}")
        return lineno, int(toks[0])

    def numbers(toks: list[bytes], lineno: int, what: str) -> list[float]:
        out = []
        for k, tok in enumerate(toks):
            try:
                out.append(float(tok))
            except ValueError:
                fail(lineno, f"expected a number in field {k + 1} of the {what}, got {show([tok])}")
        return out

    _, num_frames = integer("the frame count")
    counts, ids, infos, joints = [], [], [], []
    for f in range(num_frames):
        _, nb = integer(f"the body count of frame {f + 1}")
        counts.append(nb)
        for b in range(nb):
            lineno, toks = next_tokens(f"the info line of body {b + 1} in frame {f + 1}")
            if len(toks) != INFO_FIELDS:
                fail(lineno, f"expected {INFO_FIELDS} numbers on the body info line, got {len(toks)}")
            if not _is_int_token(toks[0]) or int(toks[0]) >= 2 ** 63:
                fail(lineno, f"expected an integer body ID below 2**63, got {show(toks[:1])}")
            ids.append(int(toks[0]))
            infos.append(numbers(toks[1:], lineno, "body info line"))
            lineno, njoint = integer("the joint count")
            if njoint != NUM_JOINTS:
                fail(lineno, f"expected joint count {NUM_JOINTS}, got {njoint}")
            for _ in range(NUM_JOINTS):
                lineno, toks = next_tokens("a joint line")
                if len(toks) != JOINT_FIELDS:
                    fail(lineno, f"expected {JOINT_FIELDS} numbers per joint line, got {len(toks)}")
                joints.append(numbers(toks, lineno, "joint line"))
    if state["i"] < end:
        i = state["i"]
        fail(i + 1, f"expected end of file after {num_frames} frames, got {show(lines[i].split())}")
    return RawSkeleton(
        path=str(path),
        body_counts=np.array(counts, dtype=np.int64),
        body_ids=np.array(ids, dtype=np.int64),
        body_info=np.array(infos, dtype=np.float64).reshape(-1, INFO_FIELDS - 1),
        joints=np.array(joints, dtype=np.float64).reshape(-1, NUM_JOINTS, JOINT_FIELDS),
    )


_U = np.uint64
_ONES = _U(0x0101010101010101)
# the divisor of a token whose dot sits at byte k (or of k-byte integers): 10**(15-k); k = 16
# only occurs in irregular tokens
_DIVISOR = np.append(10.0 ** np.arange(15, -1, -1), 1.0)
_MAX_EXACT = _U(2 ** 53)  # integers below this are exact in float64
# keep-masks of the first k bytes (k = 0..16) of a token's two little-endian words
_KEEP_LO = np.array([(1 << (8 * min(k, 8))) - 1 for k in range(17)], dtype=np.uint64)
_KEEP_HI = np.array([(1 << (8 * max(k - 8, 0))) - 1 for k in range(17)], dtype=np.uint64)
# token counts of the lines of one body: info line, joint count, joint lines
_BODY_LINES = np.array([INFO_FIELDS, 1] + [JOINT_FIELDS] * NUM_JOINTS)


def _swar8(v: np.ndarray) -> None:
    """In place: 8 digit values per little-endian uint64 (first byte most significant) -> their
    integer, by pairs, then fours, then all eight (each step fits its lane: 99, 9999, 99999999)."""
    v *= _U(10 * 256 + 1)
    v >>= _U(8)
    v &= _U(0x00FF00FF00FF00FF)
    v *= _U(100 * 65536 + 1)
    v >>= _U(16)
    v &= _U(0x0000FFFF0000FFFF)
    v *= _U(10000 * 2 ** 32 + 1)
    v >>= _U(32)


def _tokenize(data: bytes):
    """``(starts, ends, lengths, vals, regular, signed)`` of the whitespace-separated tokens of
    ``data``; None if it starts with whitespace or a token holds a byte other than a digit,
    ``.``, ``-``, ``e``, ``E``, ``+``.

    ``starts``/``ends``/``lengths``: (n,) int64 byte spans. ``vals``: (n,) float64, exact where
    ``regular``: a token ``[-]digits[.digits]`` of at most 15 bytes. ``signed``: (n,) nonzero where
    a token holds a sign or a dot (so a regular token with 0 there is a plain non-negative integer).

    Each token's first 16 bytes become two little-endian words (from aligned 8-byte loads) and are
    handled 8 bytes at a time, in place to keep the working set small. Within a token the bytes
    are digits (bit 4 set), ``.`` and ``-`` (bit 4 clear; bit 0 tells them apart); tokens holding
    ``e``, ``E`` or ``+`` are found by a byte search and marked irregular. The dot is dropped by
    moving the bytes before it up one place (a leading zero changes nothing), so a regular token
    is an integer below 2**53 over an exact power of ten and the float division rounds correctly,
    as ``float()`` does; the caller sends the other tokens to ``float()``.
    """
    c = np.frombuffer(data + b" " * (24 + (-len(data)) % 8), np.uint8)  # 16-byte reads stay inside
    ws = c <= 32
    if ws[0]:
        return None
    # token bytes are "-", ".", digits (0x2D..0x39 but "/") and rarely "e", "E", "+"; the caller
    # checks the whitespace between and after the tokens
    plain = np.subtract(c, np.uint8(0x2D)) <= 12
    plain &= c != 0x2F
    plain |= ws
    odd = c.size - int(np.count_nonzero(plain))
    special = [i for ch in (b"e", b"E", b"+") for i in _find_all(data, ch)] if odd else []
    if len(special) != odd:
        return None
    edges = np.flatnonzero(ws[1:] != ws[:-1])
    edges += 1
    ends = edges[0::2]  # the padding ends the last token
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = edges[1::2]
    lengths = ends - starts
    # the two words at each start, from the aligned words q, q+1, q+2 around it
    aligned = c.view("<u8")
    q = starts >> 3
    shift = starts.view(np.uint64) & _U(7)
    shift <<= _U(3)
    t0 = aligned.take(q)
    q += 1
    t1 = aligned.take(q)
    q += 1
    t2 = aligned.take(q)
    back = _U(64) - shift  # NumPy shifts by >= 64 bits give 0
    t0 >>= shift
    tmp = np.left_shift(t1, back)
    t0 |= tmp
    t1 >>= shift
    t2 <<= back
    t1 |= t2
    short = np.minimum(lengths, 16)
    in0, in1 = _KEEP_LO.take(short), _KEEP_HI.take(short)
    t0 &= in0
    t1 &= in1
    dig0 = np.right_shift(t0, _U(4))
    dig0 &= _ONES
    dig1 = np.right_shift(t1, _U(4))
    dig1 &= _ONES
    nd0 = in0 & _ONES
    nd0 ^= dig0  # "-" or "." flags
    nd1 = in1 & _ONES
    nd1 ^= dig1
    signed = nd0 | nd1
    minus0 = nd0 & t0
    nd0 ^= minus0  # dots of word 0
    bad = nd1 & t1  # a minus in word 1
    nd1 ^= bad  # dots of word 1
    ndots = np.bitwise_count(nd0)
    ndots += np.bitwise_count(nd1)
    # bytes before the dot, or the whole token without one: nd0 - 1 wraps to all ones when the
    # dot is not in word 0; word 1 only counts when word 0 is wholly before the dot
    nd0 -= _U(1)
    nd0 &= in0
    nd1 -= _U(1)
    nd1 &= in1
    np.right_shift(nd0, _U(63), out=tmp)
    np.negative(tmp, out=tmp)
    nd1 &= tmp
    dotpos = np.bitwise_count(nd0)
    dotpos += np.bitwise_count(nd1)
    dotpos >>= 3
    dig0 *= _U(0x0F)
    t0 &= dig0  # digit values; sign and dot bytes 0
    dig1 *= _U(0x0F)
    t1 &= dig1
    nd0 &= t0
    t0 ^= nd0  # the head (before the dot) out ...
    nd1 &= t1
    t1 ^= nd1
    t1 |= np.left_shift(nd1, _U(8), out=nd1)  # ... and back in one byte further
    t1 |= np.right_shift(nd0, _U(56), out=tmp)
    t0 |= np.left_shift(nd0, _U(8), out=nd0)
    _swar8(t0)
    _swar8(t1)
    t0 *= _U(10 ** 8)
    t0 += t1  # the digits as one integer
    regular = t0 < _MAX_EXACT
    regular &= lengths <= 15
    regular &= ndots <= 1
    np.bitwise_and(minus0, ~_U(1), out=tmp)
    bad |= tmp  # a minus after the first byte
    regular &= bad == 0
    dig0 |= dig1
    regular &= dig0 != 0  # at least one digit
    if special:
        regular[np.searchsorted(starts, special, side="right") - 1] = False
    vals = t0.astype(np.float64)
    vals /= _DIVISOR.take(dotpos)
    minus0 <<= _U(63)
    vals.view(np.uint64)[...] |= minus0  # the sign bit
    return starts, ends, lengths, vals, regular, signed


def _find_all(data: bytes, ch: bytes) -> list[int]:
    out, i = [], data.find(ch)
    while i >= 0:
        out.append(i)
        i = data.find(ch, i + 1)
    return out


def _parse_fast(data: bytes, path) -> RawSkeleton | None:
    """Vectorised parser; None when the file is not plainly well formed (then the strict one runs).

    Plainly well formed: tokens separated by one space or one line break (``\\n`` or ``\\r\\n``),
    no leading whitespace, and the layout the counts declare.
    """
    tokens = _tokenize(data)
    if tokens is None:
        return None
    starts, ends, lengths, vals, regular, signed = tokens
    n = starts.size
    # every gap between tokens is " ", "\n" or "\r\n": the byte after each token says which, and
    # the whitespace before the last token adds up to exactly those; after it, only whitespace
    if data[int(ends[-1]):].strip(b" \t\r\n"):
        return None
    after = np.frombuffer(data, np.uint8).take(ends[:-1])
    eol = after != 32  # the gap after the token is a line break
    cr = np.flatnonzero(after == 13)
    if np.count_nonzero(eol) != np.count_nonzero(after == 10) + cr.size \
            or int(ends[-1]) - int(lengths.sum()) != n - 1 + cr.size \
            or not (np.frombuffer(data, np.uint8).take(ends[cr] + 1) == 10).all():
        return None
    line_start = np.empty(int(eol.sum()) + 1, dtype=np.int64)
    line_start[0] = 0
    line_start[1:] = np.flatnonzero(eol)
    line_start[1:] += 1
    per_line = np.empty_like(line_start)
    np.subtract(line_start[1:], line_start[:-1], out=per_line[:-1])
    per_line[-1] = n - line_start[-1]
    # the frame count and body counts: the one-token lines not right after an info line
    is_count = per_line == 1
    is_count[1:] &= per_line[:-1] != INFO_FIELDS
    count_lines = np.flatnonzero(is_count)
    count_toks = line_start[count_lines]
    if count_lines.size == 0 or count_lines[0] != 0 or not regular[count_toks].all() \
            or signed[count_toks].any():
        return None
    num_frames = int(vals[0])
    counts = vals[count_toks[1:]].astype(np.int64)
    if counts.size != num_frames or (num_frames and counts.max() > n):  # (no overflow below)
        return None
    nbody = int(counts.sum())
    before = np.cumsum(counts) - counts
    if line_start.size != 1 + num_frames + _BODY_LINES.size * nbody \
            or not np.array_equal(count_lines[1:], 1 + np.arange(num_frames) + _BODY_LINES.size * before) \
            or not np.array_equal(per_line[~is_count], np.tile(_BODY_LINES, nbody)):
        return None
    body_pos = line_start[~is_count][::_BODY_LINES.size]  # token index of each body's ID
    jc = body_pos + INFO_FIELDS
    if not regular[jc].all() or signed[jc].any() or not (vals[jc] == NUM_JOINTS).all():
        return None
    id_toks = [data[s:e] for s, e in zip(starts[body_pos].tolist(), ends[body_pos].tolist())]
    distinct = {t: int(t) for t in set(id_toks) if t.isdigit()}  # a file holds few distinct IDs
    if len(distinct) != len(set(id_toks)) or (distinct and max(distinct.values()) >= 2 ** 63):
        return None
    ids = [distinct[t] for t in id_toks]
    regular[body_pos] = True  # IDs are read as integers above
    for k in np.flatnonzero(~regular).tolist():
        try:
            vals[k] = float(data[starts[k]:ends[k]])
        except ValueError:
            return None
    info = vals.take(body_pos[:, None] + np.arange(1, INFO_FIELDS))
    joints = vals.take((jc + 1)[:, None] + np.arange(NUM_JOINTS * JOINT_FIELDS))
    return RawSkeleton(
        path=str(path), body_counts=counts, body_ids=np.array(ids, dtype=np.int64), body_info=info,
        joints=joints.reshape(nbody, NUM_JOINTS, JOINT_FIELDS),
    )


# ---------------------------------------------------------------------------------------------
# CTR-GCN preprocessing (get_raw_skes_data.py, get_raw_denoised_data.py, seq_transformation.py)

def _motion(xyz: np.ndarray) -> np.float32:
    """Sum over x, y, z of the variance of all joint positions over time (float32, as CTR-GCN)."""
    return np.sum(np.var(xyz.reshape(-1, 3), axis=0))


def _denoise(bodies: dict, path) -> list:
    """CTR-GCN's denoising of a sample with several body IDs -> bodies, most motion first.

    ``bodies`` maps ID -> dict(xyz (n, 25, 3) float32, start, motion), in order of first appearance.
    """
    bodies = {k: v for k, v in bodies.items() if len(v["xyz"]) > NOISE_LEN_THRES}
    if len(bodies) == 1:
        return list(bodies.values())
    for key in list(bodies):  # spread rule, in order of first appearance
        if len(bodies) == 1:
            break
        xyz = bodies[key]["xyz"]
        spread_x = xyz[:, :, 0].max(1) - xyz[:, :, 0].min(1)
        spread_y = xyz[:, :, 1].max(1) - xyz[:, :, 1].min(1)
        valid = spread_x <= NOISE_SPR_THRES1 * spread_y
        noisy = len(xyz) - int(valid.sum())
        if noisy == 0:
            continue
        if noisy / float(len(xyz)) >= NOISE_SPR_THRES2:
            del bodies[key]
        else:
            bodies[key]["motion"] = min(bodies[key]["motion"], _motion(xyz[valid]))
    if not bodies:
        raise ValueError(f"{path}: no body survives denoising (all seen in <= {NOISE_LEN_THRES} frames)")
    # sorted() is stable, so ties keep the order of first appearance, as in CTR-GCN
    return sorted(bodies.values(), key=lambda b: b["motion"], reverse=True)


def _one_body(raw: RawSkeleton, xyz: np.ndarray, valid_index: np.ndarray) -> np.ndarray:
    """:func:`preprocess_frames` of a file with a single body ID (most files): its records fill
    actor 1 in every non-empty frame, actor 2 stays zero. ``xyz: (B, 25, 3)`` float32."""
    if (np.diff(valid_index) <= 0).any():
        raise ValueError(f"{raw.path}: body {raw.body_ids[0]} appears twice in one frame")
    present = xyz.reshape(len(xyz), -1).any(axis=1)  # (T,) frames where actor 1 has data
    origin = xyz[int(np.argmax(present)), NTU25.center].copy()
    xyz -= origin
    xyz[~present] = 0.0
    out = np.zeros((len(xyz), 2, NUM_JOINTS, 3), dtype=np.float32)
    out[:, 0] = xyz
    return out


def preprocess(raw: RawSkeleton) -> np.ndarray:
    """One sample ``(C=3, T_valid, V=25, M=2)`` float32 from a raw file, the CTR-GCN way:
    :func:`preprocess_frames` in the model's axis order."""
    return np.ascontiguousarray(preprocess_frames(raw).transpose(3, 0, 2, 1))


def preprocess_frames(raw: RawSkeleton) -> np.ndarray:
    """One sample as frames ``(T_valid, M=2, V=25, C=3)`` float32 (C-contiguous, the store's
    layout), the CTR-GCN way.

    Frames without a body are dropped. With more than one body ID: bodies seen in <= 11 frames are
    removed, then bodies whose x-spread exceeds 0.8 * y-spread in >= 69.754% of their frames, and
    the rest are sorted by motion. Actor 1 = most motion; each other body takes actor 1's slot where
    it does not overlap actor 1's frame span, else actor 2's, else is dropped. Frames where both
    actors are empty are removed. Everything is centred on joint 2 (spine middle) of actor 1 in its
    first non-empty frame; an empty actor stays zero. Like CTR-GCN, a body's frames are taken as
    consecutive from its first appearance.
    """
    counts = raw.body_counts
    nonempty = counts > 0
    if not nonempty.any():
        raise ValueError(f"{raw.path}: no frame has a body")
    # index among the non-empty frames of each body record
    valid_index = np.repeat(np.cumsum(nonempty) - 1, counts)
    num_frames = int(np.count_nonzero(nonempty))
    xyz_all = raw.joints[:, :, :3].astype(np.float32)
    if (raw.body_ids == raw.body_ids[0]).all():
        return _one_body(raw, xyz_all, valid_index)
    ids, first_rec, which = np.unique(raw.body_ids, return_index=True, return_inverse=True)
    bodies = {}
    for k in np.argsort(first_rec, kind="stable"):  # bodies in order of first appearance
        recs = np.flatnonzero(which == k)
        frames = valid_index[recs]
        if (np.diff(frames) <= 0).any():
            raise ValueError(f"{raw.path}: body {ids[k]} appears twice in one frame")
        bodies[int(ids[k])] = {"xyz": xyz_all[recs], "start": int(frames[0])}
    joints = np.zeros((num_frames, 2, NUM_JOINTS, 3), dtype=np.float32)
    for body in bodies.values():
        body["motion"] = _motion(body["xyz"])
    ranked = _denoise(bodies, raw.path)
    first = ranked[0]
    start1, end1 = first["start"], first["start"] + len(first["xyz"]) - 1
    joints[start1:end1 + 1, 0] = first["xyz"]
    start2 = end2 = 0  # CTR-GCN's initial (virtual) span of actor 2
    two_actors = len(ranked) > 1
    for body in ranked[1:]:
        start, end = body["start"], body["start"] + len(body["xyz"]) - 1
        # "<= 0" as in CTR-GCN: spans sharing a single frame count as not overlapping
        if min(end1, end) - max(start1, start) <= 0:
            joints[start:end + 1, 0] = body["xyz"]
            start1, end1 = min(start, start1), max(end, end1)
        elif min(end2, end) - max(start2, start) <= 0:
            joints[start:end + 1, 1] = body["xyz"]
            start2, end2 = min(start, start2), max(end, end2)
    joints = joints[joints.reshape(num_frames, -1).any(axis=1)]
    if len(joints) == 0:
        raise ValueError(f"{raw.path}: no frame left after denoising")
    present = joints.reshape(len(joints), 2, -1).any(axis=2)  # (T, M): actor has data
    first_frame = int(np.argmax(present[:, 0]))
    origin = joints[first_frame, 0, NTU25.center].copy()
    joints -= origin
    joints[~present] = 0.0  # an empty actor (or the unused actor 2) stays zero
    if not two_actors:
        joints[:, 1] = 0.0
    return joints


# ---------------------------------------------------------------------------------------------
# Class names and load_ntu

NTU_CLASS_NAMES: tuple[str, ...] = (
    'drink water',  # A1
    'eat meal/snack',  # A2
    'brushing teeth',  # A3
    'brushing hair',  # A4
    'drop',  # A5
    'pickup',  # A6
    'throw',  # A7
    'sitting down',  # A8
    'standing up (from sitting position)',  # A9
    'clapping',  # A10
    'reading',  # A11
    'writing',  # A12
    'tear up paper',  # A13
    'wear jacket',  # A14
    'take off jacket',  # A15
    'wear a shoe',  # A16
    'take off a shoe',  # A17
    'wear on glasses',  # A18
    'take off glasses',  # A19
    'put on a hat/cap',  # A20
    'take off a hat/cap',  # A21
    'cheer up',  # A22
    'hand waving',  # A23
    'kicking something',  # A24
    'reach into pocket',  # A25
    'hopping (one foot jumping)',  # A26
    'jump up',  # A27
    'make a phone call/answer phone',  # A28
    'playing with phone/tablet',  # A29
    'typing on a keyboard',  # A30
    'pointing to something with finger',  # A31
    'taking a selfie',  # A32
    'check time (from watch)',  # A33
    'rub two hands together',  # A34
    'nod head/bow',  # A35
    'shake head',  # A36
    'wipe face',  # A37
    'salute',  # A38
    'put the palms together',  # A39
    'cross hands in front (say stop)',  # A40
    'sneeze/cough',  # A41
    'staggering',  # A42
    'falling',  # A43
    'touch head (headache)',  # A44
    'touch chest (stomachache/heart pain)',  # A45
    'touch back (backache)',  # A46
    'touch neck (neckache)',  # A47
    'nausea or vomiting condition',  # A48
    'use a fan (with hand or paper)/feeling warm',  # A49
    'punching/slapping other person',  # A50
    'kicking other person',  # A51
    'pushing other person',  # A52
    'pat on back of other person',  # A53
    'point finger at the other person',  # A54
    'hugging other person',  # A55
    'giving something to other person',  # A56
    "touch other person's pocket",  # A57
    'handshaking',  # A58
    'walking towards each other',  # A59
    'walking apart from each other',  # A60
    'put on headphone',  # A61
    'take off headphone',  # A62
    'shoot at the basket',  # A63
    'bounce ball',  # A64
    'tennis bat swing',  # A65
    'juggling table tennis balls',  # A66
    'hush (quite)',  # A67
    'flick hair',  # A68
    'thumb up',  # A69
    'thumb down',  # A70
    'make ok sign',  # A71
    'make victory sign',  # A72
    'staple book',  # A73
    'counting money',  # A74
    'cutting nails',  # A75
    'cutting paper (using scissors)',  # A76
    'snapping fingers',  # A77
    'open bottle',  # A78
    'sniff (smell)',  # A79
    'squat down',  # A80
    'toss a coin',  # A81
    'fold paper',  # A82
    'ball up paper',  # A83
    'play magic cube',  # A84
    'apply cream on face',  # A85
    'apply cream on hand back',  # A86
    'put on bag',  # A87
    'take off bag',  # A88
    'put something into a bag',  # A89
    'take something out of a bag',  # A90
    'open a box',  # A91
    'move heavy objects',  # A92
    'shake fist',  # A93
    'throw up cap/hat',  # A94
    'hands up (both hands)',  # A95
    'cross arms',  # A96
    'arm circles',  # A97
    'arm swings',  # A98
    'running on the spot',  # A99
    'butt kicks (kick backward)',  # A100
    'cross toe touch',  # A101
    'side kick',  # A102
    'yawn',  # A103
    'stretch oneself',  # A104
    'blow nose',  # A105
    'hit other person with something',  # A106
    'wield knife towards other person',  # A107
    'knock over other person (hit with body)',  # A108
    'grab other person’s stuff',  # A109
    'shoot at other person with a gun',  # A110
    'step on foot',  # A111
    'high-five',  # A112
    'cheers and drink',  # A113
    'carry something with other person',  # A114
    'take a photo of other person',  # A115
    'follow other person',  # A116
    'whisper in other person’s ear',  # A117
    'exchange things with other person',  # A118
    'support somebody with hand',  # A119
    'finger-guessing game (playing rock-paper-scissors)',  # A120
)


@dataclass
class NTUData(SkeletonData):
    """:class:`SkeletonData` whose ``lengths()`` come from an index instead of reading samples."""

    length_source: object = None  # callable () -> (N,) int64

    def lengths(self) -> np.ndarray:
        if self.length_source is None:
            return super().lengths()
        return np.asarray(self.length_source(), dtype=np.int64).copy()


class _StoreSamples(Sequence):
    """Lazy samples of a store, restricted to ``indices``."""

    def __init__(self, store, indices: np.ndarray):
        self.store, self.indices = store, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.store.sample(int(self.indices[i]))


class _NpzSamples(Sequence):
    """Lazy samples of a CTR-GCN array ``x: (N, T, 150)``: frames (2 actors x 25 joints x 3)."""

    def __init__(self, x: np.ndarray):
        if x.ndim != 3 or x.shape[2] != 2 * NUM_JOINTS * 3:
            raise ValueError(f"CTR-GCN x array has shape {x.shape}, expected (N, T, 150)")
        self.x = x
        self._lengths = None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        frames = np.asarray(self.x[i], dtype=np.float32).reshape(-1, 2, NUM_JOINTS, 3)
        frames = frames[frames.reshape(len(frames), -1).any(axis=1)]  # valid = not all zero
        return np.ascontiguousarray(frames.transpose(3, 0, 2, 1))

    def lengths(self) -> np.ndarray:
        """Valid frames per sample, scanning the array in chunks (never all of it at once)."""
        if self._lengths is None:
            out = np.empty(len(self.x), dtype=np.int64)
            for a in range(0, len(self.x), 256):
                chunk = np.asarray(self.x[a:a + 256])
                out[a:a + 256] = chunk.any(axis=2).sum(axis=1)
            self._lengths = out
        return self._lengths


def _npz_member(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of an npz file, memory-mapped when the member is stored uncompressed."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{path}: not a readable npz file ({err})") from None
    with zf:
        try:
            info = zf.getinfo(key + ".npy")
        except KeyError:
            raise ValueError(f"{path}: no array {key!r}; expected a CTR-GCN npz with x_train, "
                             f"y_train, x_test, y_test (has {', '.join(zf.namelist())})") from None
        if info.compress_type != zipfile.ZIP_STORED:
            warnings.warn(f"{path} is compressed: {key} is loaded into memory; save it with "
                          "np.savez (not savez_compressed) to memory-map it", stacklevel=3)
            with zf.open(info) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # zip local file header: name and extra lengths at bytes 26..30
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"{path}: bad zip local header for {key}.npy")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{path}: {key}.npy has npy format {version}, expected 1.0 or 2.0")
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{path}: {key}.npy holds Python objects; expected numbers")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def _find_source(name: str, data_dir) -> tuple[str, Path]:
    """``("store", folder)`` or ``("npz", file)`` for ``data_dir``; a one-line error otherwise."""
    accepted = (f"a prepare-ntu output folder (with manifest.json) or a CTR-GCN npz "
                f"({' / '.join(NPZ_NAMES[name])}, or a folder holding one)")
    if data_dir is None:
        raise ValueError(f"{name} needs data_dir: {accepted}")
    path = Path(data_dir)
    if path.is_file():
        if path.suffix != ".npz":
            raise ValueError(f"{path}: not an npz file; {name} accepts {accepted}")
        return "npz", path
    if not path.is_dir():
        raise ValueError(f"{path}: not found; {name} accepts {accepted}")
    if (path / "manifest.json").is_file():
        return "store", path
    for fname in NPZ_NAMES[name]:
        if (path / fname).is_file():
            return "npz", path / fname
    raise ValueError(f"{path}: holds neither manifest.json nor {' / '.join(NPZ_NAMES[name])}; "
                     f"{name} accepts {accepted}")


def load_ntu(name: str, split: str, data_dir) -> NTUData:
    """One split of an NTU benchmark (``ntu60-xsub``, ``ntu60-xview``, ``ntu120-xsub``,
    ``ntu120-xset``) from a ``prepare-ntu`` store or a CTR-GCN npz, memory-mapped.

    Samples are ``(C=3, T_valid, V=25, M=2)`` float32, read lazily. From a store, ``meta`` has
    ``setup``, ``camera``, ``performer``, ``replication`` and ``names`` the file names; a CTR-GCN
    npz holds neither, so ``meta`` is empty and names are ``"<split>_<index>"``.
    """
    from skel.data.store import Store

    if name not in BENCHMARKS:
        raise ValueError(f"unknown NTU benchmark {name!r}; accepted: {', '.join(BENCHMARKS)}")
    if split not in ("train", "test"):
        raise ValueError(f"{name}: unknown split {split!r}; accepted: train, test")
    num_classes = 60 if name.startswith("ntu60") else 120
    class_names = list(NTU_CLASS_NAMES[:num_classes])
    kind, path = _find_source(name, data_dir)
    if kind == "store":
        store = Store(path)
        wanted = name.split("-")[0]
        if store.dataset != wanted:
            raise ValueError(f"{path}: holds {store.dataset}, expected {wanted} for {name}; "
                             f"run prepare-ntu with --dataset {wanted}")
        idx = store.index
        train = split_mask(name, idx["setup"], idx["camera"], idx["performer"])
        rows = np.flatnonzero(train if split == "train" else ~train)
        lengths = idx["lengths"][rows]
        return NTUData(
            name=name, split=split, samples=_StoreSamples(store, rows), labels=idx["label"][rows],
            layout=NTU25, class_names=class_names,
            meta={k: idx[k][rows] for k in ("setup", "camera", "performer", "replication")},
            names=[str(s) for s in idx["names"][rows]], length_source=lambda: lengths,
        )
    x = _npz_member(path, f"x_{split}")
    y = np.asarray(_npz_member(path, f"y_{split}"))
    if y.ndim != 2 or y.shape[0] != len(x):
        raise ValueError(f"{path}: y_{split} has shape {y.shape}, expected one-hot ({len(x)}, classes)")
    if y.shape[1] != num_classes:
        raise ValueError(f"{path}: y_{split} has {y.shape[1]} classes, expected {num_classes} for {name}")
    samples = _NpzSamples(x)
    return NTUData(
        name=name, split=split, samples=samples, labels=y.argmax(axis=1), layout=NTU25,
        class_names=class_names, names=[f"{split}_{i}" for i in range(len(x))],
        length_source=samples.lengths,
    )
