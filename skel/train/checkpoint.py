"""Checkpoints: plain dicts of tensors and Python values, written atomically, read safely.

A checkpoint is ``{"kind": "pretrain" | "finetune", "model": state_dict, "optimizer": ...,
"scheduler": ..., "epoch": int, "config": dict, "rng": {...}, ...}`` (docs/architecture.md).
Writing goes through a temporary file and a rename (:func:`skel.utils.atomic_torch_save`), so a
crash never leaves half a file; reading uses ``torch.load(weights_only=True)`` (no arbitrary
code from a file) and turns every failure into a :class:`CheckpointError` that names the file
and what was expected.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skel.utils import atomic_torch_save

REQUIRED_KEYS = ("kind", "model", "epoch", "config")
KINDS = ("pretrain", "finetune")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, truncated, or not the kind expected."""


def save_checkpoint(path: str | os.PathLike, **payload: Any) -> None:
    """Write ``payload`` (must hold ``kind``, ``model``, ``epoch``, ``config``) atomically."""
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ValueError(f"save_checkpoint({path}): payload lacks {', '.join(missing)}")
    if payload["kind"] not in KINDS:
        raise ValueError(f"save_checkpoint({path}): kind must be one of {KINDS}, got {payload['kind']!r}")
    atomic_torch_save(payload, path)


def load_checkpoint(path: str | os.PathLike, kind: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the ``.pt`` file.
        kind: when given, the checkpoint's ``kind`` must equal it (e.g. ``"pretrain"`` for ``--init``).
        map_location: passed to ``torch.load`` (default: everything on the CPU).
    Raises:
        CheckpointError: missing file, unreadable / truncated / corrupt data, not a dict, missing
            keys, or the wrong kind; the message names the file and what was expected.
    """
    path = Path(path)
    expected = f"a skel checkpoint: a dict with keys {', '.join(REQUIRED_KEYS)}" + (f" and kind {kind!r}" if kind else "")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; expected {expected}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # the unpickler fails in many ways on bad bytes (IndexError, EOFError, ...)
        size = path.stat().st_size
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({size} bytes; corrupt or truncated?): "
                              f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} "
                              f"; expected {expected}") from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, expected {expected}")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: missing key(s) {', '.join(missing)}; expected {expected}")
    if kind is not None and obj["kind"] != kind:
        raise CheckpointError(f"{path}: is a {obj['kind']!r} checkpoint, expected kind {kind!r}")
    return obj


# ---- random number generator states (for exact resume) ------------------------------------
def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Python, NumPy, torch (CPU and CUDA) and named generators' states, in weights_only-safe types."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, torch.from_numpy(np.asarray(np_keys, dtype=np.int64)), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only when CUDA is present)."""
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for k, g in (generators or {}).items():
        if k in state["generators"]:
            g.set_state(state["generators"][k])
