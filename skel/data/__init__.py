"""The dataset registry: ``load_dataset(name, split, data_dir=None, **options) -> SkeletonData``.

Readers are imported only when their dataset is asked for, so ``import skel.data`` stays light.
The real non-NTU sets default to their folder under :func:`skel.utils.shared_data_dir`; NTU needs
``data_dir`` (a ``prepare-ntu`` output folder or a CTR-GCN npz). See ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

import importlib
from inspect import Parameter, signature
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skel.data.base import SkeletonData

__all__ = ["DATASETS", "SkeletonData", "load_dataset", "default_data_dir"]

DATASETS: tuple[str, ...] = (
    "synthetic", "ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset",
    "nw-ucla", "msr-action3d", "utkinect", "sbu",
)

SPLITS = ("train", "test")


@dataclass(frozen=True)
class _Spec:
    module: str
    function: str
    folders: tuple[str, ...] = ()  # default folder names under shared_data_dir(), first found wins
    contents: str = ""  # what the folder should contain, for the error message


_NTU_CONTENTS = "a prepare-ntu output folder or a CTR-GCN NTU60_CS.npz / NTU120_CSub.npz style file"
_SPECS: dict[str, _Spec] = {
    "synthetic": _Spec("skel.data.synthetic", "load_synthetic"),
    **{name: _Spec("skel.data.ntu", "load_ntu", contents=_NTU_CONTENTS) for name in DATASETS[1:5]},
    "nw-ucla": _Spec("skel.data.others", "load_nw_ucla", ("nw_ucla", "nw_ucla_sample"),
                     "CTR-GCN all_sqe json files aAA_sSS_eEE_vVV.json"),
    "msr-action3d": _Spec("skel.data.others", "load_msr_action3d", ("msr_action3d",),
                          "real_world_coordinates/aAA_sSS_eEE_skeleton3D.txt"),
    "utkinect": _Spec("skel.data.others", "load_utkinect", ("utkinect",),
                      "joints/joints_sSS_eEE.txt and joints/actionLabel.txt"),
    "sbu": _Spec("skel.data.others", "load_sbu", ("sbu_kinect_interaction", "sbu"),
                 "sXXsYY/CC/NNN/skeleton_pos.txt"),
}


def default_data_dir(name: str) -> Path | None:
    """The folder a real non-NTU dataset is read from when no ``data_dir`` is given (None if absent)."""
    from skel.utils import shared_data_dir

    spec = _spec(name)
    root = shared_data_dir()
    if root is None or not spec.folders:
        return None
    for folder in spec.folders:
        if (root / folder).is_dir():
            return root / folder
    return root / spec.folders[0]


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise ValueError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")
    return _SPECS[name]


def _check_options(name: str, function, options: dict[str, Any], fixed: set[str]) -> None:
    params = signature(function).parameters
    if any(p.kind is Parameter.VAR_KEYWORD for p in params.values()):
        return  # the reader validates its own options
    accepted = [p for p in params if p not in fixed]
    for key in options:
        if key not in accepted:
            raise ValueError(f"{name}: unknown option {key!r}; accepted: {', '.join(accepted) or 'none'}")


def load_dataset(name: str, split: str, data_dir: str | Path | None = None, **options: Any) -> SkeletonData:
    """Load one split (``"train"`` or ``"test"``) of dataset ``name`` (one of :data:`DATASETS`).

    Raises a one-line ``ValueError`` for an unknown name, split or option and a one-line
    ``FileNotFoundError`` naming the folder and what it should hold when the data is missing.
    """
    spec = _spec(name)
    if split not in SPLITS:
        raise ValueError(f"{name}: unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    function = getattr(importlib.import_module(spec.module), spec.function)
    if name == "synthetic":
        _check_options(name, function, options, {"split"})
        return function(split, **options)
    if data_dir is None and spec.folders:
        data_dir = default_data_dir(name)
        if data_dir is None:
            raise FileNotFoundError(f"{name}: no data_dir given and no shared data folder "
                                    f"(../shared/data or $SKEL_SHARED_DATA); expected a folder with {spec.contents}")
    if data_dir is None:
        raise FileNotFoundError(f"{name}: data_dir is required; expected {spec.contents}")
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise FileNotFoundError(f"{name}: {data_dir} not found; expected {spec.contents}")
    if name in DATASETS[1:5]:
        _check_options(name, function, options, {"name", "split", "data_dir"})
        return function(name, split, data_dir, **options)
    _check_options(name, function, options, {"split", "data_dir"})
    return function(split, data_dir, **options)
