"""NTU RGB+D: the raw ``.skeleton`` reader, the CTR-GCN preprocessing, the benchmark splits,
the CTR-GCN npz reader and :func:`load_ntu` (derived in ``notebooks/01_data.ipynb``,
§1 The raw file to §4 Splits).

* :func:`read_skeleton` parses the official text layout, keeping every body, its info line and all
  12 numbers of every joint. A malformed file raises :class:`SkeletonFormatError` naming the
  file, the 1-based line and what was expected.
* :func:`read_preprocessed` is ``prepare-ntu``'s reader: :func:`preprocess_frames` of a file,
  converting only the body counts, IDs and x, y, z.
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
import threading
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
    line. Both give identical results on a good file. Joint x, y, z must be finite float32 numbers
    (a NaN or inf there is refused with its line; the other fields are kept as read).
    """
    c, size = _read_padded(path)
    raw = _parse_padded(c, size, path, xyz_only=False)
    return raw if raw is not None else _parse_strict(c[:size].tobytes(), path)


def read_preprocessed(path, check_all: bool = True) -> np.ndarray:
    """``preprocess_frames(read_skeleton(path))``: one sample as frames ``(T_valid, M=2, V=25,
    C=3)`` float32, the way ``prepare-ntu`` reads files.

    Only the numbers the preprocessing uses (body counts, IDs, x, y, z) are converted. With
    ``check_all`` every token is checked as :func:`read_skeleton` checks it, so a malformed file
    raises the same :class:`SkeletonFormatError`. Without it (``prepare-ntu``'s default, about a
    fifth faster) the numbers the preprocessing does not use (body info, depth, colour,
    orientation, tracking state; CTR-GCN never reads them either) are checked only for their
    characters (digits, ``.``, ``-``, exponents), their count on each line and the whitespace
    between them: a malformed file still raises the same error, unless its only flaw is such a
    number being a bad arrangement of number characters (``1.2.3``, ``-``, ``4-2``).
    """
    c, size = _read_padded(path)
    parsed = _parse_padded(c, size, path, xyz_only=True, check_all=check_all)
    if parsed is None:
        return preprocess_frames(_parse_strict(c[:size].tobytes(), path))
    counts, ids, xyz = parsed
    return _frames(str(path), counts, ids, xyz)


def _is_int_token(tok: bytes) -> bool:
    return tok.isdigit() and tok.isascii()


def _as_float32(values) -> np.ndarray:
    """``values`` as float32, the type x, y, z are kept in; a number beyond float32's range becomes
    inf silently, so that one ``np.isfinite`` of the result refuses it along with NaN and inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float32)


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
                joint = numbers(toks, lineno, "joint line")
                bad = np.flatnonzero(~np.isfinite(_as_float32(joint[:3])))  # a NaN would poison training
                if bad.size:
                    fail(lineno, f"expected a finite coordinate (within float32 range) in field {bad[0] + 1} "
                                 f"of the joint line, got {show([toks[bad[0]]])}")
                joints.append(joint)
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
# only occurs in tokens that go through float()
_DIVISOR = np.append(10.0 ** np.arange(15, -1, -1), 1.0)
_MAX_EXACT = _U(2 ** 53)  # integers below this are exact in float64
# keep-masks of the first k bytes (k = 0..16) of a token's two little-endian words
_KEEP_LO = np.array([(1 << (8 * min(k, 8))) - 1 for k in range(17)], dtype=np.uint64)
_KEEP_HI = np.array([(1 << (8 * max(k - 8, 0))) - 1 for k in range(17)], dtype=np.uint64)
_JOINT_COUNT = _U(int.from_bytes(str(NUM_JOINTS).encode(), "little"))  # the token "25"
# token counts of the lines of one body: info line, joint count, joint lines
_BODY_LINES = np.array([INFO_FIELDS, 1] + [JOINT_FIELDS] * NUM_JOINTS)
# offsets of x, y, z of the 25 joints from a body's joint count token
_XYZ_OFFSETS = (1 + JOINT_FIELDS * np.arange(NUM_JOINTS)[:, None] + np.arange(3)).ravel()
_PAD = 24  # spaces after the data, so the 16-byte reads of the last token stay inside
_LOCAL = threading.local()  # each thread's reusable read buffer


def _read_padded(path) -> tuple[np.ndarray, int]:
    """``(c, size)``: the file's ``size`` bytes then spaces, as uint8 with ``len(c)`` a multiple
    of 8 and at least ``size + 24``.

    ``c`` views this thread's read buffer, which the next call overwrites: reading into the same
    memory spares an allocation and a copy per file and keeps the bytes in cache.
    """
    with open(path, "rb") as f:
        expected = os.fstat(f.fileno()).st_size
        buf = _buffer(expected + 1)
        size = f.readinto(memoryview(buf)[:expected + 1])  # one byte more tells a file that grew
        if size > expected:
            data = bytes(buf[:size]) + f.read()
            size = len(data)
            buf = _buffer(size)
            buf[:size] = data
    end = size + _PAD + (-size) % 8
    buf[size:end] = b" " * (end - size)
    return np.frombuffer(buf, np.uint8, count=end), size


def _buffer(size: int) -> bytearray:
    """This thread's read buffer, with room for ``size`` bytes and the padding."""
    buf = getattr(_LOCAL, "buf", None)
    if buf is None or len(buf) < size + _PAD + 8:
        buf = _LOCAL.buf = bytearray(max(size + _PAD + 8, 1 << 19))
    return buf


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


def _words(aligned: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
    """``(t0, t1, in0, in1)``: (n,) uint64, bytes 0-7 and 8-15 of each token (little-endian,
    zero past its end), from the aligned words q, q+1, q+2 around its start; ``in0``/``in1`` keep
    the token's bytes."""
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
    q = np.left_shift(t1, back, out=q.view(np.uint64))
    t0 |= q
    t1 >>= shift
    t2 <<= back
    t1 |= t2
    short = np.minimum(lengths, 16)
    in0, in1 = _KEEP_LO.take(short), _KEEP_HI.take(short)
    t0 &= in0
    t1 &= in1
    return t0, t1, in0, in1


def _classes(t0, t1, in0, in1):
    """``(dig0, dig1, nd0, nd1, first)``: per word, 0x01 at digit bytes (bit 4 set) and at the
    other token bytes ("-", ".", exponent bytes: bit 4 clear), and 0x01 where byte 0 is odd
    ("-"; "." is even)."""
    dig0 = np.right_shift(t0, _U(4))
    dig0 &= _ONES
    nd0 = in0 & _ONES
    nd0 ^= dig0
    dig1 = np.right_shift(t1, _U(4))
    dig1 &= _ONES
    nd1 = in1 & _ONES
    nd1 ^= dig1
    first = nd0 & t0
    first &= _U(1)
    return dig0, dig1, nd0, nd1, first


def _plain(t0, t1, in0, in1, lengths) -> tuple[np.ndarray, tuple]:
    """``(ok, classes)``: (n,) bool, the token is ``[-]digits[.digits]`` with at least one digit,
    at most 16 bytes (an exponent byte, odd like "-", fails it unless at byte 0: the caller rules
    those out); and :func:`_classes` with the leading "-" taken out of ``nd0``, for
    :func:`_values`."""
    classes = dig0, dig1, nd0, nd1, first = _classes(t0, t1, in0, in1)
    nd0 ^= first  # the non-digits past a leading "-"
    dots = np.bitwise_count(nd0)
    dots += np.bitwise_count(nd1)
    bad = nd0 & t0  # a "-" past byte 0
    bad |= np.bitwise_and(nd1, t1)
    ok = bad == 0
    ok &= dots <= 1
    ok &= dig0 != 0  # (a digit-less token of one "-" and one "." fits in word 0)
    ok &= lengths <= 16
    return ok, classes


def _values(t0, t1, in0, in1, lengths, classes=None) -> tuple[np.ndarray, np.ndarray]:
    """``(vals, exact)``: (n,) float64 of tokens that :func:`_plain` accepts, and (n,) bool where
    that value is ``float(token)`` (at most 15 bytes and digits below 2**53); the caller sends
    the others to ``float()``.

    The dot is dropped by moving the bytes before it up one place (a leading zero changes
    nothing), so the token is an integer below 2**53 over an exact power of ten and the float
    division rounds correctly, as ``float()`` does. ``classes``: from :func:`_plain` on the same
    words, else computed here. Modifies ``t0``, ``t1`` and ``classes``.
    """
    if classes is None:
        dig0, dig1, nd0, nd1, minus = _classes(t0, t1, in0, in1)
        nd0 ^= minus
    else:
        dig0, dig1, nd0, nd1, minus = classes  # nd0: the dot of word 0
    # bytes before the dot, or the whole token without one: nd0 - 1 wraps to all ones when the
    # dot is not in word 0; word 1 only counts when word 0 is wholly before the dot
    nd0 -= _U(1)
    nd0 &= in0
    nd1 -= _U(1)
    nd1 &= in1
    tmp = np.right_shift(nd0, _U(63))
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
    exact = t0 < _MAX_EXACT
    exact &= lengths <= 15
    vals = t0.astype(np.float64)
    vals /= _DIVISOR.take(dotpos)
    minus <<= _U(63)
    vals.view(np.uint64)[...] |= minus  # the sign bit
    return vals, exact


def _parse_fast(data: bytes, path) -> RawSkeleton | None:
    """:func:`_parse_padded` of the bytes ``data`` (the vectorised half of :func:`read_skeleton`)."""
    size = len(data)
    return _parse_padded(np.frombuffer(data + b" " * (_PAD + (-size) % 8), np.uint8), size, path,
                         xyz_only=False)


def _parse_padded(c: np.ndarray, size: int, path, xyz_only: bool, check_all: bool = True):
    """Vectorised parser of the ``size`` bytes of ``c`` (then spaces, see :func:`_read_padded`);
    None when the file is not plainly well formed (then the strict one runs).

    Plainly well formed: tokens separated by one space or one line break (``\\n`` or ``\\r\\n``),
    no leading whitespace, only number characters, and the layout the counts declare. Every
    token but the IDs is then checked to be a number, or with ``xyz_only`` and not ``check_all``
    only x, y, z and the tokens holding an exponent (see :func:`read_preprocessed`).
    ``xyz_only`` converts only x, y, z and returns ``(body_counts (F,) int64, body_ids (B,)
    int64, xyz (B, 25, 3) float32)`` instead of a :class:`RawSkeleton`.
    """
    ws = c <= 32
    if ws[0]:
        return None
    # token bytes are "-", ".", digits (0x2D..0x39 but "/") and rarely "e", "E", "+"
    k = np.subtract(c, np.uint8(0x2D))
    plain = k <= 12
    plain &= k != 2
    plain |= ws
    special = None
    if not plain.all():
        special = np.flatnonzero(~plain)
        found = c.take(special)
        if (found == 0x65).sum() + (found == 0x45).sum() + (found == 0x2B).sum() != found.size:
            return None
    edges = np.flatnonzero(ws[1:] != ws[:-1])
    edges += 1
    ends = edges[0::2].copy()  # the padding ends the last token
    n = ends.size
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = edges[1::2]
    lengths = ends - starts
    last = int(ends[-1])
    if c[last:size].tobytes().strip(b" \t\r\n"):
        return None  # only whitespace may follow the last token
    # lines: a gap after a token is " ", or a line break "\n" or "\r\n"; all the gaps are one
    # byte (two for "\r\n") when the whitespace between the tokens adds up to exactly that
    after = c.take(ends)
    eol = after != 32
    eol[-1] = True
    line_end = np.flatnonzero(eol)  # the last token of each line
    breaks = after.take(line_end[:-1])
    cr = breaks == 13
    ncr = int(np.count_nonzero(cr))
    if np.count_nonzero(breaks == 10) + ncr != breaks.size or last - int(lengths.sum()) != n - 1 + ncr:
        return None
    if ncr and not (c.take(ends.take(line_end[:-1][cr]) + 1) == 10).all():
        return None
    per_line = np.empty_like(line_end)
    per_line[0] = line_end[0] + 1
    np.subtract(line_end[1:], line_end[:-1], out=per_line[1:])
    # the frame count and body counts: the one-token lines not right after an info line; the
    # other lines must be whole bodies
    is_count = per_line == 1
    is_count[1:] &= per_line[:-1] != INFO_FIELDS
    if not is_count[0]:
        return None
    body_lines = np.flatnonzero(~is_count)
    nbody, rest = divmod(body_lines.size, _BODY_LINES.size)
    if rest or not np.array_equal(per_line.take(body_lines), np.tile(_BODY_LINES, nbody)):
        return None
    count_toks = line_end[is_count]
    count_lens = lengths.take(count_toks[1:])
    if (count_lens == 1).all():  # body counts 0..9: one digit each
        counts = c.take(starts.take(count_toks[1:])).astype(np.int64)
        counts -= 48
        if counts.size and not (0 <= counts.min() and counts.max() <= 9):
            return None
    else:
        toks = [c[s:s + ln].tobytes() for s, ln in zip(starts.take(count_toks[1:]).tolist(),
                                                        count_lens.tolist())]
        if count_lens.max() > 18 or not all(map(_is_int_token, toks)):
            return None  # (beyond 18 digits a count could overflow int64)
        counts = np.array([int(t) for t in toks], dtype=np.int64)
    head = c[:int(ends[0])].tobytes()
    if not _is_int_token(head) or int(head) != counts.size:
        return None
    num_frames = counts.size
    before = np.cumsum(counts)
    before -= counts
    if counts.sum() != nbody or not np.array_equal(
            np.flatnonzero(is_count[1:]), np.arange(num_frames) + _BODY_LINES.size * before):
        return None
    body_pos = line_end.take(body_lines[0::_BODY_LINES.size]) - (INFO_FIELDS - 1)  # IDs
    jc = body_pos + INFO_FIELDS  # the joint counts: "25"
    jc_start = starts.take(jc)
    if not ((c.take(jc_start) == 0x32) & (c.take(jc_start + 1) == 0x35) & (lengths.take(jc) == 2)).all():
        return None
    # the numbers checked token by token: all (but the IDs, checked below), or x, y, z only
    xyz = (jc[:, None] + _XYZ_OFFSETS).ravel() if xyz_only else None
    if check_all or not xyz_only:
        t0, t1, in0, in1 = _words(c.view("<u8"), starts, lengths)
        ok, classes = _plain(t0, t1, in0, in1, lengths)
        ok[body_pos] = True
        tok = None  # all
    else:
        tok = xyz
        t0, t1, in0, in1 = _words(c.view("<u8"), starts.take(tok), lengths.take(tok))
        ok, classes = _plain(t0, t1, in0, in1, lengths.take(tok))
    odd = set((np.flatnonzero(~ok) if tok is None else tok[~ok]).tolist())  # tokens for float()
    if special is not None:  # every token with an exponent byte goes through float()
        exponent = np.searchsorted(starts, special, side="right") - 1
        odd.update(exponent.tolist())
        if tok is None:
            ok[exponent] = False
        elif tok.size:  # (tok is sorted)
            at = np.minimum(np.searchsorted(tok, exponent), tok.size - 1)
            ok[at[tok.take(at) == exponent]] = False
    for i in sorted(odd):
        try:
            float(c[starts[i]:ends[i]].tobytes())
        except ValueError:
            return None
    mv = memoryview(c)
    id_toks = [mv[s:e].tobytes()
               for s, e in zip(starts.take(body_pos).tolist(), ends.take(body_pos).tolist())]
    distinct = {t: int(t) for t in set(id_toks) if _is_int_token(t)}  # a file holds few IDs
    if len(distinct) != len(set(id_toks)) or (distinct and max(distinct.values()) >= 2 ** 63):
        return None
    ids = np.array([distinct[t] for t in id_toks], dtype=np.int64)
    if xyz_only:
        if tok is None:
            t0, t1, in0, in1, ok = (a.take(xyz) for a in (t0, t1, in0, in1, ok))
        vals, exact = _values(t0, t1, in0, in1, lengths.take(xyz), None if tok is None else classes)
        exact &= ok
        for i in np.flatnonzero(~exact).tolist():
            j = int(xyz[i])
            vals[i] = float(c[starts[j]:ends[j]].tobytes())
        coords = _as_float32(vals).reshape(nbody, NUM_JOINTS, 3)
        if not np.isfinite(coords).all():
            return None  # the line-by-line parser names the line
        return counts, ids, coords
    vals, exact = _values(t0, t1, in0, in1, lengths, classes)
    exact &= ok
    exact[body_pos] = True  # (IDs are not read as floats)
    for i in np.flatnonzero(~exact).tolist():
        vals[i] = float(c[starts[i]:ends[i]].tobytes())
    info = vals.take(body_pos[:, None] + np.arange(1, INFO_FIELDS))
    joints = vals.take((jc + 1)[:, None] + np.arange(NUM_JOINTS * JOINT_FIELDS)).reshape(nbody, NUM_JOINTS,
                                                                                        JOINT_FIELDS)
    if not np.isfinite(_as_float32(joints[:, :, :3])).all():
        return None  # the line-by-line parser names the line
    return RawSkeleton(path=str(path), body_counts=counts, body_ids=ids, body_info=info, joints=joints)


# ---------------------------------------------------------------------------------------------
# CTR-GCN preprocessing (get_raw_skes_data.py, get_raw_denoised_data.py, seq_transformation.py)

def _motion(xyz: np.ndarray) -> np.float32:
    """Sum over x, y, z of the variance of all joint positions over time (float32, as CTR-GCN)."""
    return np.sum(np.var(xyz.reshape(-1, 3), axis=0))


def _denoise(bodies: dict, path) -> list:
    """CTR-GCN's denoising of a sample with several body IDs -> bodies, most motion first.

    ``bodies`` maps ID -> dict(xyz (n, 25, 3) float32, start), in order of first appearance; the
    survivors of the length rule get their ``motion`` (only they are ever compared).
    """
    bodies = {k: v for k, v in bodies.items() if len(v["xyz"]) > NOISE_LEN_THRES}
    if len(bodies) == 1:
        return list(bodies.values())
    for body in bodies.values():
        body["motion"] = _motion(body["xyz"])
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
    return _frames(raw.path, raw.body_counts, raw.body_ids, raw.joints[:, :, :3].astype(np.float32))


def _frames(path: str, counts: np.ndarray, body_ids: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """:func:`preprocess_frames` of ``counts: (F,)`` bodies per frame, ``body_ids: (B,)`` and
    ``xyz: (B, 25, 3)`` float32 (modified)."""
    if not counts.any():
        raise ValueError(f"{path}: no frame has a body")
    if (body_ids == body_ids[0]).all():
        return _one_body(path, counts, body_ids[0], xyz)
    nonempty = counts > 0
    # index among the non-empty frames of each body record
    valid_index = np.repeat(np.cumsum(nonempty) - 1, counts)
    num_frames = int(np.count_nonzero(nonempty))
    ids, first_rec, which = np.unique(body_ids, return_index=True, return_inverse=True)
    bodies = {}
    for k in np.argsort(first_rec, kind="stable"):  # bodies in order of first appearance
        recs = np.flatnonzero(which == k)
        frames = valid_index[recs]
        if (np.diff(frames) <= 0).any():
            raise ValueError(f"{path}: body {ids[k]} appears twice in one frame")
        bodies[int(ids[k])] = {"xyz": xyz[recs], "start": int(frames[0])}
    joints = np.zeros((num_frames, 2, NUM_JOINTS, 3), dtype=np.float32)
    ranked = _denoise(bodies, path)
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
        raise ValueError(f"{path}: no frame left after denoising")
    present = joints.reshape(len(joints), 2, -1).any(axis=2)  # (T, M): actor has data
    first_frame = int(np.argmax(present[:, 0]))
    origin = joints[first_frame, 0, NTU25.center].copy()
    joints -= origin
    joints[~present] = 0.0  # an empty actor (or the unused actor 2) stays zero
    if not two_actors:
        joints[:, 1] = 0.0
    return joints


def _one_body(path: str, counts: np.ndarray, body_id, xyz: np.ndarray) -> np.ndarray:
    """:func:`_frames` of a file with a single body ID (most files): its records fill actor 1 in
    every non-empty frame, actor 2 stays zero. ``xyz: (B, 25, 3)`` float32."""
    if counts.max() > 1:
        raise ValueError(f"{path}: body {body_id} appears twice in one frame")
    present = xyz.reshape(len(xyz), -1).any(axis=1)  # (T,) frames where actor 1 has data
    out = np.zeros((len(xyz), 2, NUM_JOINTS, 3), dtype=np.float32)
    np.subtract(xyz, xyz[int(np.argmax(present)), NTU25.center], out=out[:, 0])
    if not present.all():
        out[~present, 0] = 0.0
    return out


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
