"""Masked reconstruction pre-training models: SkeletonMAE / SkeletonMVAE / SkeletonMVQVAE
(derived in ``notebooks/05_pretraining.ipynb``).

``x (N, C, T, V, M)`` -> one random spatial-temporal mask per sample, shared by its persons ->
encoder on the visible tokens -> latent space -> decoder on the full grid -> reconstruction.

Loss: MSE between reconstruction and input on the MASKED joints only (MAE convention;
``loss_on="all"`` uses every joint), averaged over the coordinates and the counted joints; persons
that are all zeros (the missing second person of one-person samples) never count. Plus the latent's
own terms with their weights (VAE: ``0.005 * kl``; VQ: ``codebook + 0.25 * commit``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from skel.models.decoder import DECODER_PRESETS, Decoder
from skel.models.encoder import ENCODER_PRESETS, Encoder
from skel.models.latent import LATENT_OPTIONS, build_latent
from skel.models.masking import random_masking

MODEL_NAMES = {"none": "SkeletonMAE", "vae": "SkeletonMVAE", "vq": "SkeletonMVQVAE"}
# options every pre-training model accepts (latent options come from LATENT_OPTIONS)
COMMON_OPTIONS = {
    "mask_frames": 0.4,   # Mt
    "mask_joints": 0.4,   # Mj
    "loss_on": "masked",  # "masked" | "all"
    "target": "coords",   # "coords" (the paper) | "motion" (deviation: x[t+1] - x[t], as MAMP)
    "skip_empty_persons": False,  # deviation, see Encoder
    "decoder_dim": None,    # None: the preset's
    "decoder_depth": None,  # None: the preset's for this latent
    "decoder_qk_dim": None,
    "decoder_head_init": "zero",  # "zero" | "xavier" (before 2026-11-22; see docs/deviations.md)
}


def resolve_options(latent: str, preset: str, overrides: dict) -> dict:
    """Preset defaults + ``overrides``; unknown keys raise ``ValueError`` naming the accepted ones."""
    if latent not in LATENT_OPTIONS:
        raise ValueError(f"unknown latent {latent!r}; expected one of {sorted(LATENT_OPTIONS)}")
    if preset not in ENCODER_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(ENCODER_PRESETS)}")
    accepted = {**COMMON_OPTIONS, **LATENT_OPTIONS[latent]}
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for latent {latent!r}; accepted: {sorted(accepted)}")
    opts = {**accepted, **overrides}
    dec = DECODER_PRESETS[preset]
    opts["decoder_dim"] = opts["decoder_dim"] or dec["dim"]
    opts["decoder_depth"] = opts["decoder_depth"] or dec["depth"][latent]
    opts["decoder_qk_dim"] = opts["decoder_qk_dim"] or dec["qk_dim"]
    if opts["target"] not in ("coords", "motion"):
        raise ValueError(f"target must be 'coords' or 'motion', got {opts['target']!r}")
    if opts["loss_on"] not in ("masked", "all"):
        raise ValueError(f"loss_on must be 'masked' or 'all', got {opts['loss_on']!r}")
    return opts


class PretrainModel(nn.Module):
    """Encoder + latent + decoder; build it with :func:`build_pretrain_model`.

    ``forward(x (N, C, T, V, M), generator=None) -> (losses, recon (N, C, T, V, M), mask (N, T, V))``;
    ``mask`` is True where a joint was masked (the same for every person of a sample).
    ``losses["loss"]`` is the weighted total to back-propagate; every other entry is detached:
    ``recon``, the latent's terms (``kl`` | ``codebook``, ``commit``) and monitors
    (``perplexity``, ``used_codes``).
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        c = self.config
        self.latent_name = c["latent"]
        self.mask_frames, self.mask_joints, self.loss_on = c["mask_frames"], c["mask_joints"], c["loss_on"]
        self.target = c.get("target", "coords")  # checkpoints from before the option reconstruct coordinates
        enc = ENCODER_PRESETS[c["preset"]]
        self.encoder = Encoder(c["in_channels"], c["num_joints"], enc["blocks"], enc["num_heads"],
                               skip_empty_persons=c["skip_empty_persons"])
        self.latent = build_latent(c["latent"], self.encoder.dim,
                                   **{k: c[k] for k in LATENT_OPTIONS[c["latent"]]})
        self.decoder = Decoder(self.latent.out_dim, c["in_channels"], c["num_joints"], dim=c["decoder_dim"],
                               depth=c["decoder_depth"], qk_dim=c["decoder_qk_dim"], num_heads=enc["num_heads"],
                               head_init=c.get("decoder_head_init", "xavier"))  # old checkpoints: xavier

    def _check(self, x: Tensor) -> None:
        c = self.config
        if x.dim() != 5:
            raise ValueError(f"expected x of shape (N, C, T, V, M), got {tuple(x.shape)}")
        _, ch, t, v, m = x.shape
        want = {"C": (ch, c["in_channels"]), "V": (v, c["num_joints"]), "M": (m, c["num_persons"])}
        for name, (got, expect) in want.items():
            if got != expect:
                raise ValueError(f"x has {name}={got}, the model was built for {name}={expect} "
                                 f"(shape {tuple(x.shape)} = (N, C, T, V, M))")

    def reconstruction_loss(self, recon: Tensor, x: Tensor, masked: Tensor) -> Tensor:
        """MSE over the counted joints: ``recon, x: (N, C, T, V, M)``, ``masked: (N, T, V)`` bool.

        Counted: masked joints (or all with ``loss_on="all"``) of persons that are not all zeros.
        """
        present = x.ne(0).flatten(1, 3).any(1)  # (N, M)
        where = masked if self.loss_on == "masked" else torch.ones_like(masked)
        w = (where[..., None] & present[:, None, None, :]).to(x.dtype)  # (N, T, V, M)
        target = self.target_of(x)
        if self.target == "motion":
            w = w[:, :-1]  # the last frame has no next frame: no motion to predict
            recon = recon[:, :, :-1]
        sq = (recon - target).pow(2).mean(1)  # over coordinates
        return (sq * w).sum() / w.sum().clamp(min=1.0)

    def target_of(self, x: Tensor) -> Tensor:
        """What the decoder predicts: ``x`` itself, or with ``target="motion"`` its motion
        ``x[:, :, t+1] - x[:, :, t]``: ``(N, C, T-1, V, M)`` (then ``recon[:, :, t]`` is a motion)."""
        if self.target == "motion":
            return x[:, :, 1:] - x[:, :, :-1]
        return x

    def as_coordinates(self, recon: Tensor, x: Tensor) -> Tensor:
        """``recon`` as joint positions ``(N, C, T, V, M)``: itself when the target is coordinates;
        with ``target="motion"`` each frame's position predicted from the true previous frame,
        ``x[:, :, t] + recon[:, :, t]`` at frame ``t + 1`` (frame 0 is ``x``'s own)."""
        if self.target != "motion":
            return recon
        return torch.cat([x[:, :, :1], x[:, :, :-1] + recon[:, :, :-1]], dim=2)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[dict, Tensor, Tensor]:
        self._check(x)
        n, c, t, v, m = x.shape
        mask = random_masking(n, t, v, self.mask_frames, self.mask_joints, generator, device=x.device)
        z, rows = self.encoder(x, mask)
        z, terms, stats = self.latent(z, generator)
        run_mask = mask.repeat_persons(m)
        all_rows = bool(rows.all())
        if not all_rows:
            run_mask = run_mask.select(rows)
        out = self.decoder(z, run_mask)  # (B, C, T, V)
        if not all_rows:
            full = out.new_zeros(n * m, c, t, v)
            full[rows] = out
            out = full
        recon = out.view(n, m, c, t, v).permute(0, 2, 3, 4, 1)
        masked = mask.grid()
        rec = self.reconstruction_loss(recon, x, masked)
        loss = rec + sum(self.latent.weights[k] * terms[k] for k in terms)
        losses = {"loss": loss, "recon": rec.detach()}
        losses.update({k: val.detach() for k, val in terms.items()})
        losses.update({k: val.detach() for k, val in stats.items()})
        return losses, recon, masked


def build_pretrain_model(latent: str = "none", preset: str = "tiny", num_joints: int = 25, num_persons: int = 2,
                         num_frames: int = 120, in_channels: int = 3, **overrides) -> PretrainModel:
    """SkeletonMAE (``latent="none"``), SkeletonMVAE (``"vae"``) or SkeletonMVQVAE (``"vq"``).

    Args:
        preset: ``paper`` | ``small`` | ``tiny`` (encoder stack and decoder size).
        num_frames: the window the model is meant for (any multiple of 6 runs; used by cost figures).
        overrides: any of ``COMMON_OPTIONS`` and the latent's ``LATENT_OPTIONS``.

    ``model.config`` is a JSON-able dict with every resolved option: ``build_pretrain_model(**model.config)``
    rebuilds the same architecture.
    """
    opts = resolve_options(latent, preset, overrides)
    config = {"latent": latent, "preset": preset, "num_joints": num_joints, "num_persons": num_persons,
              "num_frames": num_frames, "in_channels": in_channels, **opts}
    return PretrainModel(config)
