"""Typed run configurations for pre-training, fine-tuning and the linear probe.

One dataclass per command, sharing :class:`CommonConfig`. They are built from the command line
(:func:`add_common_arguments` + ``Config.from_args``) or from notebook / papermill parameters
(``Config.from_dict``), which refuses unknown keys (naming the accepted ones) and wrong types
(naming the expected type). Papermill's ``-p`` leaves ``true`` and ``[1, 2]`` as strings and
YAML 1.1 reads ``1e-3`` as a string, so unambiguous strings are converted: numbers for numeric
fields, ``true/false/yes/no/1/0`` for booleans, ``"[60, 90]"`` or ``"60,90"`` for int lists.

Fields left as ``None`` are filled from the recipe preset by :meth:`CommonConfig.resolve`:

* ``paper``: the paper's recipe (Adam, lr 1e-3 for none/vae and 1e-2 for vq, weight decay 1e-4,
  batch 64, 200 epochs, lr x0.1 at epochs 60/90/110, window 120, mask 0.4/0.4), with the official
  STTFormer training augmentation the paper does not mention: random rotation, angles uniform in
  +-0.3 rad (``rotate``; STTFormer's configs set ``random_rot: True``, CTR-GCN's ``random_rot``
  draws in +-0.3).
* ``small`` / ``tiny``: CPU scales of the same recipe (fewer epochs, smaller batch and window;
  the window stays a multiple of the 6-frame tuple) WITHOUT the rotation, as before issue 14:
  measured at CPU scale its effect depends on the protocol (docs/deviations.md; ``rotate=0.3``
  turns it on).

An explicit value wins over the recipe (``rotate=0`` turns the rotation off). The linear probe
never augments (it trains on features extracted once): its ``rotate`` resolves to 0.

Unless given, the lr steps sit at 30 %, 45 % and 55 % of the epochs with ``paper`` (60/90/110 of
200), and once at 80 % with ``small`` / ``tiny``, whose runs are too short for three steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

LATENTS = ("none", "vae", "vq")
PRESETS = ("tiny", "small", "paper")
DEVICES = ("auto", "cpu", "cuda")
PROBE_OPTIMIZERS = ("adam", "lbfgs")

# The CPU presets' runs are short (tens of epochs): the paper's three steps at 30/45/55 % would
# leave under a third of the run at full lr and end it at 1e-3 of it, so they step once, late.
CPU_LR_STEP_FRACTIONS = (0.8,)
# The official STTFormer training augmentation (random_rot, as CTR-GCN): angles uniform in +-0.3 rad.
# `paper` follows it. The CPU presets keep what they did before issue 14 (no rotation): measured on
# MSR Action3D (small, 3 seeds; RESULTS.md part 3) its effect depends on the protocol (with all
# labels and 8 fine-tuning epochs it cost SkeletonMAE 6 and the per-token SkeletonMVAE 9 points;
# with 10 % of the labels and 30 epochs it gave SkeletonMAE 10), so it is no fix there; rotate=0.3.
ROTATE = 0.3
CPU_ROTATE = 0.0
# Per-preset recipe; ``lr`` depends on the latent (the paper: 1e-3 with VAE, 1e-2 with VQ).
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 200, "batch_size": 64, "window": 120, "weight_decay": 1e-4,
              "lr": {"none": 1e-3, "vae": 1e-3, "vq": 1e-2}, "mask_frames": 0.4, "mask_joints": 0.4,
              "lr_step_fractions": (60 / 200, 90 / 200, 110 / 200), "rotate": ROTATE},
    "small": {"epochs": 10, "batch_size": 16, "window": 48, "weight_decay": 1e-4,
              "lr": {"none": 1e-3, "vae": 1e-3, "vq": 1e-2}, "mask_frames": 0.4, "mask_joints": 0.4,
              "lr_step_fractions": CPU_LR_STEP_FRACTIONS, "rotate": CPU_ROTATE},
    "tiny": {"epochs": 2, "batch_size": 8, "window": 36, "weight_decay": 1e-4,
             "lr": {"none": 1e-3, "vae": 1e-3, "vq": 1e-2}, "mask_frames": 0.4, "mask_joints": 0.4,
             "lr_step_fractions": CPU_LR_STEP_FRACTIONS, "rotate": CPU_ROTATE},
}
LR_GAMMA = 0.1
TUPLE_LENGTH = 6  # STTFormer groups 6 frames into a tuple: the window must be a multiple of it


class ConfigError(ValueError):
    """A parameter is unknown, of the wrong type, or out of range."""


@dataclass
class CommonConfig:
    """Options every command shares. ``None`` means: take it from the recipe preset."""

    dataset: str = "synthetic"
    data_dir: str | None = None
    latent: str = "none"
    preset: str = "tiny"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    lr_steps: list[int] | None = None
    lr_gamma: float = LR_GAMMA
    seed: int = 0
    out: str = "runs/train"
    device: str = "auto"
    window: int | None = None
    num_workers: int = 0
    amp: bool = True
    threads: int | None = None
    val_fraction: float = 0.1
    max_samples: int | None = None  # CPU smoke runs: use at most this many train (and test) samples
    rotate: float | None = None  # training augmentation: rotation, angles uniform in +-rotate rad; None: the preset's
    val_groups: str | None = None  # carve validation by whole groups of this meta column (e.g. "subject")
    resume: bool = False
    progress: bool = True
    sync_bn: bool = False  # SyncBatchNorm under several CUDA processes
    deterministic: bool | None = None  # deterministic kernels; None: on for the CPU, off for CUDA (speed)
    dataset_options: dict[str, Any] = field(default_factory=dict)

    KIND: ClassVar[str] = "common"

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def field_types(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> "CommonConfig":
        """Build from a dict (notebook or papermill parameters); unknown keys and wrong types raise."""
        if not isinstance(params, dict):
            raise ConfigError(f"{cls.__name__}.from_dict expects a dict, got {type(params).__name__}")
        types_ = cls.field_types()
        unknown = [k for k in params if k not in types_]
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"accepted keys: {', '.join(types_)}")
        values = {k: _coerce(cls.__name__, k, v, types_[k]) for k, v in params.items()}
        cfg = cls(**values)
        cfg.validate()
        return cfg

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "CommonConfig":
        """Build from parsed command-line arguments (only the fields this config holds)."""
        names = cls.field_types()
        params = {k: v for k, v in vars(args).items() if k in names and v is not None}
        if "deterministic" in params:
            params["deterministic"] = params["deterministic"] == "on"
        return cls.from_dict(params)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ---- checks and defaults ------------------------------------------------------------
    def validate(self) -> None:
        """Range and choice checks, each naming the key and the accepted values."""
        if self.latent is not None:  # None (fine-tuning): the init checkpoint's latent
            _choice(self, "latent", LATENTS)
        _choice(self, "preset", PRESETS)
        _choice(self, "device", DEVICES)
        for key in ("epochs", "batch_size", "window", "threads", "max_samples"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ConfigError(f"{key} must be >= 1, got {v}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.window is not None and self.window % TUPLE_LENGTH:
            raise ConfigError(f"window must be a multiple of {TUPLE_LENGTH} (the STTFormer tuple length), got {self.window}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.rotate is not None and not self.rotate >= 0:
            raise ConfigError(f"rotate must be >= 0 (radians), got {self.rotate}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.lr_steps is not None and any(s < 1 for s in self.lr_steps):
            raise ConfigError(f"lr_steps must be epochs >= 1, got {self.lr_steps}")

    def resolve(self) -> "CommonConfig":
        """A copy with every ``None`` recipe field filled from the preset."""
        recipe = RECIPES[self.preset]
        cfg = dataclasses.replace(self)
        if cfg.latent is None:
            cfg.latent = "none"
        for key in ("epochs", "batch_size", "window", "weight_decay", "rotate"):
            if getattr(cfg, key) is None:
                setattr(cfg, key, recipe[key])
        if cfg.lr is None:
            cfg.lr = recipe["lr"][cfg.latent]
        if cfg.lr_steps is None:
            cfg.lr_steps = sorted({max(1, round(f * cfg.epochs)) for f in recipe["lr_step_fractions"]})
        self._resolve_extra(cfg, recipe)
        cfg.validate()
        return cfg

    def _resolve_extra(self, cfg: "CommonConfig", recipe: dict[str, Any]) -> None:
        """Hook for subclasses' own recipe fields."""


@dataclass
class PretrainConfig(CommonConfig):
    """Masked-reconstruction pre-training (``python -m skel pretrain``)."""

    out: str = "runs/pretrain"
    mask_frames: float | None = None  # Mt, the frame masking rate
    mask_joints: float | None = None  # Mj, the joint masking rate
    model_options: dict[str, Any] = field(default_factory=dict)  # extra build_pretrain_model overrides
    find_unused_parameters: bool | None = None  # DDP; None: on for the vq latent

    KIND: ClassVar[str] = "pretrain"

    def validate(self) -> None:
        super().validate()
        for key in ("mask_frames", "mask_joints"):
            v = getattr(self, key)
            if v is not None and not 0.0 <= v < 1.0:
                raise ConfigError(f"{key} must be in [0, 1), got {v}")

    def _resolve_extra(self, cfg, recipe):
        for key in ("mask_frames", "mask_joints"):
            if getattr(cfg, key) is None:
                setattr(cfg, key, recipe[key])
        if cfg.find_unused_parameters is None:
            cfg.find_unused_parameters = cfg.latent == "vq"


@dataclass
class FinetuneConfig(CommonConfig):
    """Encoder + linear head trained with cross-entropy (``python -m skel finetune``).

    ``init`` is a pre-training checkpoint (its encoder is loaded) or ``"none"`` (from scratch).
    ``label_fraction`` < 1 trains on a class-stratified subset of the training labels.
    """

    out: str = "runs/finetune"
    latent: str | None = None  # picks the recipe's lr; None: the init checkpoint's latent ("none" from scratch)
    init: str = "none"
    label_fraction: float = 1.0
    test_curve: bool = False  # also log test accuracy per epoch (for plots only, never for selection)
    model_options: dict[str, Any] = field(default_factory=dict)  # extra build_classifier overrides

    KIND: ClassVar[str] = "finetune"

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"label_fraction must be in (0, 1], got {self.label_fraction}")


@dataclass
class ProbeConfig(CommonConfig):
    """Frozen-encoder linear probe and k-nearest-neighbour accuracy (``python -m skel linear-probe``).

    ``epochs``, ``lr``, ``batch_size`` and ``weight_decay`` here are the linear classifier's
    (trained on cached features, so cheap); ``batch_size`` also sets the feature-extraction batch.

    ``bn_recompute`` (default True, the evaluation protocol): before features are extracted, the
    encoder's BatchNorm statistics, which are those of masked pre-training input, are re-estimated
    on the unmasked, unaugmented training split (centre crops; :func:`skel.train.bn.recompute_batchnorm`),
    over at most ``bn_batches`` batches (``None``: all). False keeps the pre-training statistics
    (the behaviour before the option existed).
    """

    out: str = "runs/probe"
    init: str = "none"
    knn_k: int = 20
    knn_temperature: float = 0.07
    probe_optimizer: str = "adam"
    bn_recompute: bool = True
    bn_batches: int | None = None

    KIND: ClassVar[str] = "probe"

    def validate(self) -> None:
        super().validate()
        _choice(self, "probe_optimizer", PROBE_OPTIMIZERS)
        if self.knn_k < 1:
            raise ConfigError(f"knn_k must be >= 1, got {self.knn_k}")
        if self.bn_batches is not None and self.bn_batches < 1:
            raise ConfigError(f"bn_batches must be >= 1 (or None: the whole training split), got {self.bn_batches}")
        if not self.knn_temperature > 0:
            raise ConfigError(f"knn_temperature must be > 0, got {self.knn_temperature}")
        if self.init == "none":
            raise ConfigError("init: the linear probe needs a pre-training checkpoint path, got 'none'")
        if self.rotate:
            raise ConfigError(f"rotate: the linear probe extracts features once, without augmentation; "
                              f"leave rotate unset or 0, got {self.rotate}")

    def _resolve_extra(self, cfg, recipe):
        # The probe trains a linear layer on cached features: more epochs, larger batches, no steps.
        if self.epochs is None:
            cfg.epochs = {"paper": 100, "small": 50, "tiny": 30}[cfg.preset]
        if self.batch_size is None:
            cfg.batch_size = 256 if cfg.preset == "paper" else 64
        if self.lr is None:
            cfg.lr = 1e-2 if cfg.probe_optimizer == "adam" else 1.0
        if self.weight_decay is None:
            cfg.weight_decay = 0.0
        if self.lr_steps is None:
            cfg.lr_steps = []
        if self.rotate is None:  # no augmentation: features are extracted once (centre crops)
            cfg.rotate = 0.0


# ---- type coercion ------------------------------------------------------------------------
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args) + " or None"
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(args[0])}"
    if typing.get_origin(tp) is dict:
        return "dict"
    return getattr(tp, "__name__", str(tp))


def _coerce(owner: str, key: str, value: Any, tp: Any) -> Any:
    """``value`` converted to ``tp``, or a ConfigError naming ``key`` and the expected type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(owner, key, value, args[0])
    bad = ConfigError(f"{owner}: {key} expects {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        if hasattr(value, "__fspath__"):
            return str(value)
        raise bad
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text) if text.startswith("[") else [p for p in text.split(",") if p.strip()]
            except json.JSONDecodeError:
                raise bad from None
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(owner, f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise bad from None
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    raise TypeError(f"{owner}: no coercion for field {key} of type {tp}")


def _choice(cfg: Any, key: str, accepted: tuple[str, ...]) -> None:
    v = getattr(cfg, key)
    if v not in accepted:
        raise ConfigError(f"{key} must be one of {', '.join(accepted)}; got {v!r}")


# ---- command line -------------------------------------------------------------------------
def add_common_arguments(parser: argparse.ArgumentParser, defaults: type[CommonConfig]) -> None:
    """The options every training command shares; unset ones stay ``None`` (recipe defaults)."""
    d = defaults()
    g = parser.add_argument_group("common options")
    from skel.data import DATASETS

    g.add_argument("--dataset", choices=DATASETS, default=None, help=f"dataset name (default {d.dataset})")
    g.add_argument("--data-dir", dest="data_dir", default=None, help="folder holding the dataset files")
    g.add_argument("--dataset-options", dest="dataset_options", default=None, metavar="JSON",
                   help='options for the dataset reader, e.g. \'{"num_per_class": 4}\' for synthetic')
    g.add_argument("--latent", choices=LATENTS, default=None,
                   help=f"latent space (default {d.latent or 'the --init checkpoint one, else none'})")
    g.add_argument("--preset", choices=PRESETS, default=None,
                   help=f"model size and recipe (default {d.preset}; paper = the paper's settings)")
    g.add_argument("--epochs", type=int, default=None, help="epochs (default: the preset's)")
    g.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="batch size per process")
    g.add_argument("--lr", type=float, default=None, help="base learning rate (default: the preset's)")
    g.add_argument("--weight-decay", dest="weight_decay", type=float, default=None)
    g.add_argument("--lr-steps", dest="lr_steps", type=int, nargs="*", default=None,
                   help="epochs after which lr is multiplied by --lr-gamma (default: 30/45/55%% of epochs with paper, 80%% with small/tiny)")
    g.add_argument("--lr-gamma", dest="lr_gamma", type=float, default=None)
    g.add_argument("--seed", type=int, default=None, help=f"seed (default {d.seed})")
    g.add_argument("--out", default=None, help=f"output folder (default {d.out})")
    g.add_argument("--device", choices=DEVICES, default=None, help="auto = cuda when available")
    g.add_argument("--window", type=int, default=None, help="frames per sample, a multiple of 6")
    g.add_argument("--num-workers", dest="num_workers", type=int, default=None, help="data loader workers")
    g.add_argument("--no-amp", dest="amp", action="store_false", default=None, help="disable mixed precision on CUDA")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    g.add_argument("--val-fraction", dest="val_fraction", type=float, default=None,
                   help=f"part of the training set carved out for validation (default {d.val_fraction})")
    g.add_argument("--max-samples", dest="max_samples", type=int, default=None,
                   help="use at most this many training (and test) samples: smoke runs")
    g.add_argument("--rotate", type=float, default=None, metavar="RAD",
                   help="training augmentation: random rotation, angles uniform in +-RAD (default: the preset's, "
                        "0.3 as the official STTFormer; 0 = off; the linear probe never rotates)")
    g.add_argument("--val-groups", dest="val_groups", default=None, metavar="COLUMN",
                   help="carve validation by whole groups of this meta column, e.g. subject (default: per class)")
    g.add_argument("--resume", action="store_true", default=None, help="continue from OUT/last.pt")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no tqdm bars")
    g.add_argument("--sync-bn", dest="sync_bn", action="store_true", default=None,
                   help="SyncBatchNorm across CUDA processes")
    g.add_argument("--deterministic", dest="deterministic", choices=("on", "off"), default=None,
                   help="deterministic kernels: one seed, one result (default: on for the CPU, off for CUDA)")
