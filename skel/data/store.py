"""A compact, memory-mappable store of preprocessed NTU samples (written by ``prepare-ntu``).

Folder layout (see ``notebooks/01_data.ipynb``):

* ``joints.npy``: every sample's valid frames, concatenated, ``(F_total, M=2, V=25, C=3)`` float32;
  read with ``np.load(mmap_mode="r")`` so NTU120 never has to fit in memory.
* ``index.npz``: per sample ``offsets``, ``lengths`` (frames), ``setup``, ``camera``,
  ``performer``, ``replication``, ``label`` (0-based action), ``names``.
* ``manifest.json``: format, version, dataset, counts and the bad files; written last, so a
  folder without it is an unfinished store.

The writer streams: samples are appended to a temporary file whose npy header is filled in at the
end, then every file is renamed into place (atomic; a reader sees the old store or the new one).
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from skel.utils import atomic_write_bytes, atomic_write_json

FORMAT = "skel-ntu-store"
VERSION = 1
JOINTS_FILE, INDEX_FILE, MANIFEST_FILE = "joints.npy", "index.npz", "manifest.json"
FRAME_SHAPE = (2, 25, 3)  # (M, V, C) per frame
INDEX_KEYS = ("offsets", "lengths", "setup", "camera", "performer", "replication", "label", "names")
META_KEYS = ("setup", "camera", "performer", "replication")
_HEADER_BYTES = 128  # reserved npy header, filled in when the frame count is known
_FRAME_BYTES = int(np.prod(FRAME_SHAPE)) * 4


class StoreError(ValueError):
    """A missing, unfinished, corrupt or truncated store; the message names the file."""


def _npy_header(num_frames: int) -> bytes:
    """npy 1.0 header for ``(num_frames, 2, 25, 3)`` little-endian float32, exactly 128 bytes."""
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % ((num_frames, *FRAME_SHAPE),)
    room = _HEADER_BYTES - 10 - 1
    if len(text) > room:
        raise ValueError(f"npy header for {num_frames} frames does not fit {_HEADER_BYTES} bytes")
    body = (text + " " * (room - len(text)) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


class StoreWriter:
    """Append samples ``(C, T, V, M)`` one by one; :meth:`close` publishes the store.

    Use as a context manager: leaving on an exception removes the temporary file and publishes
    nothing.
    """

    def __init__(self, out_dir, dataset: str):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset
        fd, tmp = tempfile.mkstemp(dir=self.out, prefix=f".{JOINTS_FILE}.", suffix=".tmp")
        self._tmp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        self._fh.write(b"\0" * _HEADER_BYTES)
        self._frames = 0
        self._rows: dict[str, list] = {k: [] for k in INDEX_KEYS}

    def add(self, name: str, sample: np.ndarray, setup: int, camera: int, performer: int,
            replication: int, label: int) -> None:
        """``sample``: ``(C=3, T, V=25, M=2)``; ``label`` 0-based."""
        sample = np.asarray(sample, dtype=np.float32)
        if sample.ndim != 4 or (sample.shape[0], sample.shape[2], sample.shape[3]) != (3, 25, 2):
            raise ValueError(f"{name}: expected a (3, T, 25, 2) sample, got {sample.shape}")
        frames = sample.transpose(1, 3, 2, 0)  # (T, M, V, C)
        self._fh.write(np.ascontiguousarray(frames, dtype="<f4").data)  # (no copy when contiguous)
        for key, value in zip(INDEX_KEYS, (self._frames, frames.shape[0], setup, camera, performer,
                                           replication, label, name)):
            self._rows[key].append(value)
        self._frames += frames.shape[0]

    def close(self, **manifest_extra) -> dict:
        """Fill in the header, rename every file into place, write the manifest last."""
        self._fh.seek(0)
        self._fh.write(_npy_header(self._frames))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        manifest_path = self.out / MANIFEST_FILE
        if manifest_path.exists():
            manifest_path.unlink()  # a half-replaced store must not look finished
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)  # mkstemp makes it private; a store is shared data
        os.replace(self._tmp, self.out / JOINTS_FILE)
        index = {k: np.asarray(v, dtype=np.int64) for k, v in self._rows.items() if k != "names"}
        index["names"] = np.asarray(self._rows["names"], dtype="<U20")
        buf = io.BytesIO()
        np.savez(buf, **index)
        atomic_write_bytes(self.out / INDEX_FILE, buf.getvalue())
        manifest = {"format": FORMAT, "version": VERSION, "dataset": self.dataset,
                    "num_samples": len(self._rows["names"]), "num_frames": self._frames,
                    "joints_shape": [self._frames, *FRAME_SHAPE], **manifest_extra}
        atomic_write_json(manifest_path, manifest)
        return manifest

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()


class Store:
    """A read-only view of a store folder; ``joints`` is a memmap, the index lives in memory."""

    def __init__(self, path):
        self.path = Path(path)
        mpath = self.path / MANIFEST_FILE
        if not mpath.is_file():
            raise StoreError(f"{mpath}: not found; expected a folder written by "
                             "`python -m skel prepare-ntu` (joints.npy, index.npz, manifest.json)")
        try:
            self.manifest = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise StoreError(f"{mpath}: not valid JSON ({err})") from None
        if self.manifest.get("format") != FORMAT or self.manifest.get("version") != VERSION:
            raise StoreError(f"{mpath}: expected format {FORMAT!r} version {VERSION}, got "
                             f"{self.manifest.get('format')!r} version {self.manifest.get('version')}")
        n, frames = int(self.manifest["num_samples"]), int(self.manifest["num_frames"])
        self.index = self._read_index(self.path / INDEX_FILE, n, frames)
        self.joints = self._open_joints(self.path / JOINTS_FILE, frames)

    @staticmethod
    def _read_index(path: Path, n: int, frames: int) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as z:
                index = {k: z[k] for k in INDEX_KEYS}
        except FileNotFoundError:
            raise StoreError(f"{path}: not found; the store is incomplete") from None
        except KeyError as err:
            raise StoreError(f"{path}: missing array {err}; expected {', '.join(INDEX_KEYS)}") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise StoreError(f"{path}: unreadable ({err})") from None
        for k, v in index.items():
            if v.shape != (n,):
                raise StoreError(f"{path}: {k!r} has shape {v.shape}, expected ({n},) from the manifest")
        ends = index["offsets"] + index["lengths"]
        if n and (index["offsets"][0] != 0 or (index["offsets"][1:] != ends[:-1]).any() or ends[-1] != frames):
            raise StoreError(f"{path}: offsets/lengths do not tile the {frames} frames of the manifest")
        return index

    @staticmethod
    def _open_joints(path: Path, frames: int) -> np.ndarray:
        if not path.is_file():
            raise StoreError(f"{path}: not found; the store is incomplete")
        expected = _HEADER_BYTES + frames * _FRAME_BYTES
        size = path.stat().st_size
        if size != expected:
            raise StoreError(f"{path}: {size} bytes, expected {expected} "
                             f"({frames} frames x {FRAME_SHAPE} float32 + header); truncated or corrupt")
        try:
            joints = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise StoreError(f"{path}: not a readable npy file ({err})") from None
        if joints.dtype != np.float32 or joints.shape != (frames, *FRAME_SHAPE):
            raise StoreError(f"{path}: holds {joints.dtype} {joints.shape}, expected float32 "
                             f"{(frames, *FRAME_SHAPE)}")
        return joints

    def __len__(self) -> int:
        return len(self.index["names"])

    @property
    def dataset(self) -> str:
        return str(self.manifest["dataset"])

    def sample(self, i: int) -> np.ndarray:
        """Sample ``i`` as a fresh ``(C, T, V, M)`` float32 array (only its frames are read)."""
        off, n = int(self.index["offsets"][i]), int(self.index["lengths"][i])
        return np.ascontiguousarray(self.joints[off:off + n].transpose(3, 0, 2, 1))
