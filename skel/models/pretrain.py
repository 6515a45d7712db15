"""Masked reconstruction pre-training models: SkeletonMAE / SkeletonMVAE / SkeletonMVQVAE
(derived in ``notebooks/05_pretraining.ipynb``, §1 One forward pass by hand).

``x (N, C, T, V, M)`` -> one random spatial-temporal mask per sample, shared by its persons ->
encoder on the visible tokens -> latent space -> decoder on the full grid -> reconstruction.

Loss: squared error between reconstruction and input on the MASKED joints only (MAE convention;
``loss_on="all"`` uses every joint); persons that are all zeros (the missing second person of
one-person samples) never count, neither in the reconstruction nor in the latent's terms. Option
``loss_reduction``:

* ``"sum"`` (the paper's ``||x - x_hat||^2``, default): per sample, the SUM of the squared errors
  over the counted joints' coordinates (all its persons), averaged over the ``N`` samples
  (squared metres per sample for coordinates); the latent's terms are per sample as well (KL in
  nats per sample, VQ terms summed over a sample's tokens and dims);
* ``"mean"`` (before issue 14; what a stored config without the key means): the per-coordinate
  mean over the counted joints (squared metres per coordinate); KL per token, VQ terms per token
  and dim.

Plus the latent's own terms with their weights (VAE: ``0.005 * kl``; VQ: ``codebook + 0.25 * commit``).
:func:`effective_noise` says which Gaussian decoder noise a KL weight means under each reduction.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from skel.models.decoder import DECODER_PRESETS, Decoder
from skel.models.encoder import ENCODER_PRESETS, Encoder
from skel.models.latent import LATENT_LEGACY, LATENT_OPTIONS, REDUCTIONS, VAE_MODES, build_latent
from skel.models.masking import kept_counts, random_masking

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
    "loss_reduction": "sum",  # "sum" (the paper: per sample) | "mean" (per coordinate / token; before issue 14)
}
# the pre-training model's own defaults for latent options, over build_latent's: SkeletonMVAE has ONE
# latent per sample (the paper's Tables 8 and 9; MSR could not tell the readings apart,
# docs/deviations.md), while build_latent alone (no grid to size its layers by) stays per token
MODEL_LATENT_DEFAULTS = {"vae": {"vae_mode": "sample"}}
# what a stored config WITHOUT the key meant (options added after the first checkpoints)
COMMON_LEGACY = {"target": "coords", "decoder_head_init": "xavier", "loss_reduction": "mean"}


def legacy_options(model_config: dict) -> dict:
    """The options a stored ``model_config`` lacks because they came later, with the meaning the
    checkpoint was trained under (:data:`COMMON_LEGACY`, ``LATENT_LEGACY``): what a resumed run
    must pass to rebuild the same model, e.g. ``{"loss_reduction": "mean", "vae_mode": "token"}``
    for a SkeletonMVAE checkpoint written before issue 14. Empty for a config that has them all."""
    accepted = {**COMMON_OPTIONS, **LATENT_OPTIONS[model_config["latent"]]}
    legacy = {**COMMON_LEGACY, **LATENT_LEGACY}
    return {k: v for k, v in legacy.items() if k in accepted and k not in model_config}


def effective_noise(reduction: str, beta: float, counted_coordinates: int = 1, latent_terms: int = 1) -> dict:
    """The ELBO reading of a KL weight ``beta``: the effective beta and the decoder noise sigma.

    A Gaussian decoder ``p(x | z) = N(x_hat, sigma^2 I)`` over the ``P`` counted coordinates of a
    sample gives ``-log p(x | z) = ||x - x_hat||^2 / (2 sigma^2) + const``, so the negative ELBO
    per sample is ``S / (2 sigma^2) + KL`` with ``S = ||x - x_hat||^2`` (summed over the ``P``
    coordinates) and ``KL`` the sample's KL (summed over its latent dims and latent vectors).
    Multiplying by ``2 sigma^2`` (which does not move the minimiser): ``S + 2 sigma^2 KL``.

    * ``"sum"``: the loss is ``S + beta KL`` per sample, so ``beta_eff = beta = 2 sigma^2`` and
      ``sigma = sqrt(beta / 2)`` (beta = 0.005 -> sigma = 0.05 m for coordinates in metres).
    * ``"mean"``: the loss is ``S / P + beta KL / K`` per sample, with ``K = latent_terms`` the
      latent vectors the KL is averaged over (``vae_mode="token"``: a person's visible tokens,
      ``T'k * L*Vk`` = 72 x 15 = 1080 at the paper's shape; ``"sample"``: 1). Times ``P``:
      ``S + (beta P / K) KL``, so ``beta_eff = beta P / K`` and ``sigma = sqrt(beta P / (2 K))``
      (paper shape, masked joints, one person: ``P = 3 x (3000 - 1080) = 5760``, so beta = 0.005
      means ``beta_eff = 0.0267`` and sigma = 0.115 m with token latents, and
      ``beta_eff = 28.8``, sigma = 3.8 m with one latent per person).

    With several persons, ``P`` and ``K`` are both per sample, so the ratio is that of one person.

    Args:
        reduction: ``"sum"`` | ``"mean"``.
        beta: the KL weight.
        counted_coordinates: ``P``, coordinates counted per sample (``"mean"`` only).
        latent_terms: ``K``, latent vectors per sample the KL is averaged over (``"mean"`` only).
    Returns:
        ``{"beta": beta_eff (weight of the per-sample KL against the per-sample squared error),
        "sigma": the decoder noise s.d. it implies, in the units of the target}``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss_reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if beta < 0 or counted_coordinates < 1 or latent_terms < 1:
        raise ValueError(f"need beta >= 0, counted_coordinates >= 1, latent_terms >= 1; got "
                         f"{beta}, {counted_coordinates}, {latent_terms}")
    eff = beta if reduction == "sum" else beta * counted_coordinates / latent_terms
    return {"beta": eff, "sigma": math.sqrt(eff / 2.0)}


def resolve_options(latent: str, preset: str, overrides: dict) -> dict:
    """Preset defaults + ``overrides``; unknown keys raise ``ValueError`` naming the accepted ones."""
    if latent not in LATENT_OPTIONS:
        raise ValueError(f"unknown latent {latent!r}; expected one of {sorted(LATENT_OPTIONS)}")
    if preset not in ENCODER_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(ENCODER_PRESETS)}")
    accepted = {**COMMON_OPTIONS, **LATENT_OPTIONS[latent], **MODEL_LATENT_DEFAULTS.get(latent, {})}
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
    if opts["loss_reduction"] not in REDUCTIONS:
        raise ValueError(f"loss_reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
                         f"got {opts['loss_reduction']!r}")
    if latent == "vae":
        if opts["vae_mode"] not in VAE_MODES:
            raise ValueError(f"vae_mode must be one of {', '.join(map(repr, VAE_MODES))}, got {opts['vae_mode']!r}")
        ch = opts["sample_channels"]
        if not isinstance(ch, int) or isinstance(ch, bool) or ch < 1:
            raise ValueError(f"sample_channels must be a positive integer, got {ch!r}")
    return opts


class PretrainModel(nn.Module):
    """Encoder + latent + decoder; build it with :func:`build_pretrain_model`.

    ``forward(x (N, C, T, V, M), generator=None) -> (losses, recon (N, C, T, V, M), mask (N, T, V))``;
    ``mask`` is True where a joint was masked (the same for every person of a sample).
    ``losses["loss"]`` is the weighted total to back-propagate; every other entry is detached and
    is exactly what is weighted: ``recon`` (squared target units per sample with
    ``loss_reduction="sum"``, per coordinate with ``"mean"``), the latent's terms (``kl``: nats per
    sample | per token; ``codebook``, ``commit``: squared feature units per sample | per token and
    dim) and monitors (``perplexity``, ``used_codes``), all over present (not all-zero) persons only.

    ``PretrainModel(config)`` reads a stored config as it was written: a key added after the first
    checkpoints that it lacks takes its old meaning (:data:`COMMON_LEGACY`, ``LATENT_LEGACY``).
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        c = self.config
        self.latent_name = c["latent"]
        self.mask_frames, self.mask_joints, self.loss_on = c["mask_frames"], c["mask_joints"], c["loss_on"]
        self.target = c.get("target", COMMON_LEGACY["target"])
        self.loss_reduction = c.get("loss_reduction", COMMON_LEGACY["loss_reduction"])
        if self.loss_reduction not in REDUCTIONS:
            raise ValueError(f"loss_reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
                             f"got {self.loss_reduction!r}")
        enc = ENCODER_PRESETS[c["preset"]]
        self.encoder = Encoder(c["in_channels"], c["num_joints"], enc["blocks"], enc["num_heads"],
                               skip_empty_persons=c["skip_empty_persons"])
        defaults = LATENT_OPTIONS[c["latent"]]
        latent_opts = {k: c.get(k, LATENT_LEGACY.get(k, defaults[k])) for k in defaults}
        self.sample_latent = c["latent"] == "vae" and latent_opts["vae_mode"] == "sample"
        grid = None
        if self.sample_latent:
            tk, vk = kept_counts(c["num_frames"], c["num_joints"], self.mask_frames, self.mask_joints,
                                 self.encoder.tuple_len)
            grid = (tk // self.encoder.tuple_len, self.encoder.tuple_len * vk)
        self.latent = build_latent(c["latent"], self.encoder.dim, reduction=self.loss_reduction, grid=grid,
                                   **latent_opts)
        self.decoder = Decoder(self.latent.out_dim, c["in_channels"], c["num_joints"], dim=c["decoder_dim"],
                               depth=c["decoder_depth"], qk_dim=c["decoder_qk_dim"], num_heads=enc["num_heads"],
                               head_init=c.get("decoder_head_init", COMMON_LEGACY["decoder_head_init"]))

    def _check(self, x: Tensor) -> None:
        c = self.config
        if x.dim() != 5:
            raise ValueError(f"expected x of shape (N, C, T, V, M), got {tuple(x.shape)}")
        _, ch, t, v, m = x.shape
        want = {"C": (ch, c["in_channels"]), "V": (v, c["num_joints"]), "M": (m, c["num_persons"])}
        if self.sample_latent:
            want["T"] = (t, c["num_frames"])
        for name, (got, expect) in want.items():
            if got != expect:
                why = (" (vae_mode='sample': its fully connected latent layers are sized for the visible map "
                       f"(D, T'k, L*Vk) = {self.latent.in_shape} of that window)" if name == "T" else "")
                raise ValueError(f"x has {name}={got}, the model was built for {name}={expect}{why} "
                                 f"(shape {tuple(x.shape)} = (N, C, T, V, M))")

    def reconstruction_loss(self, recon: Tensor, x: Tensor, masked: Tensor) -> Tensor:
        """Squared error over the counted joints: ``recon, x: (N, C, T, V, M)``, ``masked: (N, T, V)``
        bool -> a scalar.

        Counted: masked joints (or all with ``loss_on="all"``) of persons that are not all zeros.
        ``loss_reduction="sum"``: per sample the sum over the counted joints' coordinates (and its
        persons), averaged over the ``N`` samples (squared metres per sample for coordinates);
        ``"mean"``: the mean over the counted joints' coordinates (squared metres per coordinate).
        """
        present = x.ne(0).flatten(1, 3).any(1)  # (N, M)
        where = masked if self.loss_on == "masked" else torch.ones_like(masked)
        w = (where[..., None] & present[:, None, None, :]).to(x.dtype)  # (N, T, V, M)
        target = self.target_of(x)
        if self.target == "motion":
            w = w[:, :-1]  # the last frame has no next frame: no motion to predict
            recon = recon[:, :, :-1]
        if self.loss_reduction == "sum":
            sq = (recon - target).pow(2).sum(1)  # over coordinates
            return (sq * w).sum() / x.shape[0]
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
        present = x.ne(0).flatten(1, 3).any(1).reshape(-1)  # (N*M,) rows n*M + p that are not all zeros
        all_rows = bool(rows.all())
        if not all_rows:
            present = present[rows]
        z, terms, stats = self.latent(z, generator, present=present, num_samples=n)
        run_mask = mask.repeat_persons(m)
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
        num_frames: the window the model is meant for (any multiple of 6 runs; used by cost figures),
            except with ``vae_mode="sample"``, whose fully connected latent is sized for this window
            (with the mask rates and ``num_joints``) and refuses another one.
        overrides: any of ``COMMON_OPTIONS`` and the latent's ``LATENT_OPTIONS``.

    ``model.config`` is a JSON-able dict with every resolved option: ``build_pretrain_model(**model.config)``
    rebuilds the same architecture.
    """
    opts = resolve_options(latent, preset, overrides)
    config = {"latent": latent, "preset": preset, "num_joints": num_joints, "num_persons": num_persons,
              "num_frames": num_frames, "in_channels": in_channels, **opts}
    return PretrainModel(config)
