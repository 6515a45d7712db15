"""The fine-tuning / probing classifier (derived in ``notebooks/06_finetuning.ipynb``:
§1 From a pre-training checkpoint to a classifier, §2 The pooled head, §3 The head's initial weights).

Encoder (no masking, no latent, position embedding of the full grid) -> global average pooling over
tuples, positions and persons -> one linear layer. ``load_encoder`` takes the encoder weights of a
pre-training checkpoint.

The head's initial weights (``head_init``): ``"xavier"`` (default) is what the official STTFormer
code does (``model/sttformer.py``: ``nn.init.xavier_normal_`` on the fc weight, bias 0, i.e. std
``sqrt(2 / (fan_in + fan_out))``); ``"normal"`` is this project's earlier choice, a normal of std
``sqrt(2 / num_classes)`` (bias 0), kept to reproduce runs made with it. A classifier config that has
no ``head_init`` key (written before the option existed) means ``"normal"``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from skel.models.encoder import ENCODER_PRESETS, Encoder, pool_persons

# Options build_classifier accepts, with their defaults. head_init is a head option: encoder_options
# never copies it from a pre-training checkpoint.
CLASSIFIER_OPTIONS = {"skip_empty_persons": False, "head_init": "xavier"}
HEAD_INITS = ("xavier", "normal")
ENCODER_OPTION_KEYS = ("skip_empty_persons",)  # the options that change how the encoder runs


def encoder_options(checkpoint: dict) -> dict:
    """The classifier options a pre-training checkpoint's encoder was trained with.

    ``checkpoint``: a dict from ``skel.train.checkpoint.load_checkpoint`` (``model_config`` of a
    pre-training run, else the run ``config``'s ``model_options``). A classifier that loads that
    encoder should run it the same way (e.g. ``skip_empty_persons``), or its features and
    BatchNorm statistics shift.
    """
    source = checkpoint.get("model_config") or (checkpoint.get("config") or {}).get("model_options") or {}
    return {k: source[k] for k in ENCODER_OPTION_KEYS if k in source}


class Classifier(nn.Module):
    """``forward(x (N, C, T, V, M)) -> logits (N, num_classes)``; ``features(x) -> (N, D)``."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        c = self.config
        enc = ENCODER_PRESETS[c["preset"]]
        self.encoder = Encoder(c["in_channels"], c["num_joints"], enc["blocks"], enc["num_heads"],
                               skip_empty_persons=c["skip_empty_persons"])
        self.fc = nn.Linear(self.encoder.dim, c["num_classes"])
        head_init = c.get("head_init", "normal")  # configs from before the option: the init they were built with
        if head_init == "xavier":  # the official STTFormer head: xavier_normal_ weight, zero bias
            nn.init.xavier_normal_(self.fc.weight)
        elif head_init == "normal":  # this project's earlier head: normal, std sqrt(2 / num_classes)
            nn.init.normal_(self.fc.weight, 0.0, (2.0 / c["num_classes"]) ** 0.5)
        else:
            raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, got {head_init!r}")
        nn.init.zeros_(self.fc.bias)

    def features(self, x: Tensor) -> Tensor:
        """Pooled encoder features ``(N, D)`` of ``x: (N, C, T, V, M)``."""
        if x.dim() != 5 or x.shape[-1] != self.config["num_persons"]:
            raise ValueError(f"expected x of shape (N, C, T, V, M={self.config['num_persons']}), got {tuple(x.shape)}")
        z, rows = self.encoder(x)
        return pool_persons(z, rows, x.shape[0])

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))

    def load_encoder(self, src: str | os.PathLike | dict) -> None:
        """Load exactly the encoder weights from ``src``.

        ``src``: a checkpoint file (read with ``weights_only=True``), a checkpoint dict
        (``{"model": state_dict, ...}``), a model state dict whose encoder keys start with
        ``encoder.`` (pre-training model or classifier; other keys are ignored), or an encoder state
        dict. Raises ``ValueError`` naming missing / unexpected keys or mismatched shapes, and naming
        the file when it cannot be read.
        """
        origin = "state dict"
        if isinstance(src, (str, os.PathLike)):
            path = Path(src)
            origin = str(path)
            if not path.is_file():
                raise FileNotFoundError(f"no checkpoint file at {path}")
            try:
                src = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # torch raises several types for corrupt / truncated files
                raise ValueError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err
        if not isinstance(src, dict):
            raise ValueError(f"{origin}: expected a dict, got {type(src).__name__}")
        state = src["model"] if isinstance(src.get("model"), dict) else src
        if any(k.startswith("encoder.") for k in state):
            state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
        own = self.encoder.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"{origin}: encoder weights do not match this classifier's encoder "
                             f"(preset {self.config['preset']!r}): missing keys {missing[:10]}"
                             f"{' ...' if len(missing) > 10 else ''}, unexpected keys {unexpected[:10]}"
                             f"{' ...' if len(unexpected) > 10 else ''}")
        bad = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
               if not isinstance(state[k], Tensor) or state[k].shape != v.shape]
        if bad:
            raise ValueError(f"{origin}: encoder weight shapes differ (checkpoint vs model): {bad[:10]}")
        self.encoder.load_state_dict(state, strict=True)


def build_classifier(preset: str = "tiny", num_classes: int = 60, num_joints: int = 25, num_persons: int = 2,
                     num_frames: int = 120, in_channels: int = 3, **overrides) -> Classifier:
    """Encoder of ``preset`` + global average pooling + linear layer to ``num_classes``.

    ``overrides``: ``skip_empty_persons`` (default False), ``head_init`` (``"xavier"``, the official
    STTFormer head, default; ``"normal"``: std ``sqrt(2 / num_classes)``, the earlier choice).
    ``model.config`` (JSON-able) rebuilds it:
    ``build_classifier(**model.config)``.
    """
    if preset not in ENCODER_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(ENCODER_PRESETS)}")
    unknown = sorted(set(overrides) - set(CLASSIFIER_OPTIONS))
    if unknown:
        raise ValueError(f"unknown classifier option(s) {unknown}; accepted: {sorted(CLASSIFIER_OPTIONS)}")
    config = {"preset": preset, "num_classes": num_classes, "num_joints": num_joints, "num_persons": num_persons,
              "num_frames": num_frames, "in_channels": in_channels, **CLASSIFIER_OPTIONS, **overrides}
    return Classifier(config)
