"""Latent spaces between encoder and decoder (derived in ``notebooks/03_latent_spaces.ipynb``:
§2-5 the VAE, §6-8 the VQ, §10 its cures, §13 sum or mean).

One interface: ``build_latent(name, dim, reduction=..., **options)`` -> a module with ``out_dim``
(channels it hands to the decoder), ``weights`` (loss weight of each term it returns) and
``forward(z, generator=None, present=None, num_samples=None) -> (z_out, terms, stats)`` on
``z: (B, D, T', V')``, ``B`` folded person rows (row ``n*M + p`` is person ``p`` of sample ``n``):

* ``present: (B,)`` bool (None: every row): the rows whose person is not all zeros. Only their
  tokens count in ``terms`` and ``stats`` (and, for ``vq``, in the EMA update and dead-code
  restarts); the other rows still pass through (the paper runs empty persons through the network)
  but the reconstruction loss leaves them out, and so do the latent's terms.
* ``num_samples``: ``N``, the samples the ``B`` rows come from (None: ``B``, one row per sample).
* ``reduction`` (fixed at build time, :data:`REDUCTIONS`):

  - ``"sum"`` (the paper's ELBO, per sample): each term is summed over its dims and over the
    tokens of a sample's present persons, then divided by ``N``: a KL in nats per sample, a VQ
    term in squared feature units per sample;
  - ``"mean"`` (before issue 14): VAE KL summed over the latent dims and averaged over the present
    tokens; VQ terms averaged over the present tokens and the dims.

Latents:

* ``"none"`` (SkeletonMAE): identity.
* ``"vae"`` (SkeletonMVAE), ``vae_mode="token"`` (:class:`GaussianLatent`): per token, a linear map
  to ``mu`` and ``log sigma^2`` of ``latent_dim`` (25); ``z = mu + sigma * eps`` in training,
  ``mu`` in eval mode. ``out_dim = latent_dim``: the decoder's first linear layer is the map back
  up to the decoder dim. ``vae_mode="sample"`` (:class:`SampleGaussianLatent`, the paper's Table 9
  reading): the whole visible map of a person row ``(D, T'k, L*Vk)`` is flattened, two fully
  connected layers give ONE ``mu`` and ``log sigma^2`` of ``latent_dim`` per row, and one fully
  connected layer maps the sample ``z`` back to a ``(sample_channels, T'k, L*Vk)`` grid
  (``out_dim = sample_channels``, 3 = C by default). ``build_latent`` defaults to ``"token"`` (it
  has no visible grid to size the sample layers by); the pre-training model defaults to
  ``"sample"`` (``skel.models.pretrain.MODEL_LATENT_DEFAULTS``, chosen in docs/deviations.md).
  ``terms["kl"]`` = KL(q(z|x) || N(0, I)),
  weight ``beta = 0.005``. ``log sigma^2`` is clamped to ``[-30, 20]`` so ``exp`` cannot overflow.
  Option ``logvar_init`` (None in the paper preset: PyTorch's default bias init, so sigma starts
  near 1): the starting bias of ``log sigma^2``; e.g. -4 starts sigma at 0.14, so the sampled
  ``z`` is not mostly noise before the decoder has learnt to read it (docs/deviations.md).
* ``"vq"`` (SkeletonMVQVAE): per token, the nearest of ``K`` (128) codes of dim ``D``;
  straight-through gradient. ``terms["codebook"] = ||sg[z] - e||^2`` (weight 1) and
  ``terms["commit"] = ||z - sg[e]||^2`` (weight ``beta = 0.25``), reduced as above. Distances and
  both terms are computed in float32 with autocast off (under bf16 the codes, initialised within
  +-1/K, are not told apart). ``stats`` (detached): ``perplexity`` and ``used_codes`` of the
  present tokens of the batch. Options ``ema`` (codebook moved by exponential moving averages,
  decay 0.99, instead of the codebook loss) and ``restart_dead`` (a code unused for
  ``restart_after`` training steps is reset to a random present encoder output of the current
  batch); both off in the paper preset.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REDUCTIONS = ("sum", "mean")
VAE_MODES = ("token", "sample")


def _tokens(z: Tensor) -> Tensor:
    """``(B, D, T', V') -> (B*T'*V', D)``."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _untokens(t: Tensor, like: Tensor) -> Tensor:
    b, _, tt, v = like.shape
    return t.view(b, tt, v, -1).permute(0, 3, 1, 2)


def _present(present: Tensor | None, b: int, device: torch.device) -> Tensor:
    """``present (B,)`` as bool on ``device`` (None: all rows)."""
    if present is None:
        return torch.ones(b, dtype=torch.bool, device=device)
    present = present.to(device=device, dtype=torch.bool).reshape(-1)
    if present.numel() != b:
        raise ValueError(f"present has {present.numel()} rows, z has {b}")
    return present


def reduce_rows(per_row: Tensor, present: Tensor, reduction: str, per_row_count: int,
                num_samples: int | None = None) -> Tensor:
    """Reduce a term given per person row.

    Args:
        per_row: ``(B,)`` the term summed over a row's tokens (and dims).
        present: ``(B,)`` bool, the rows that count.
        reduction: ``"sum"``: sum over present rows / ``num_samples`` (default ``B``);
            ``"mean"``: sum over present rows / (``per_row_count`` x present rows), i.e. the mean
            over the present rows' ``per_row_count`` elements (1 when no row is present).
        per_row_count: elements per row that ``"mean"`` averages over (tokens, or tokens x dims).
    """
    total = torch.where(present, per_row, torch.zeros_like(per_row)).sum()
    if reduction == "sum":
        return total / (per_row.shape[0] if num_samples is None else num_samples)
    if reduction == "mean":
        return total / (present.sum() * per_row_count).clamp(min=1).to(total.dtype)
    raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


class IdentityLatent(nn.Module):
    """SkeletonMAE: no latent space."""

    def __init__(self, dim: int, reduction: str = "mean"):
        super().__init__()
        self.out_dim = dim
        self.reduction = reduction
        self.weights: dict[str, float] = {}

    def forward(self, z: Tensor, generator: torch.Generator | None = None, present: Tensor | None = None,
                num_samples: int | None = None) -> tuple[Tensor, dict, dict]:
        return z, {}, {}


def _check_logvar_init(logvar_init: float | None, logvar_range: tuple[float, float]) -> None:
    if logvar_init is not None and (not math.isfinite(logvar_init)
                                    or not logvar_range[0] <= logvar_init <= logvar_range[1]):
        raise ValueError(f"logvar_init must be a finite number in {list(logvar_range)}, got {logvar_init!r}")


class GaussianLatent(nn.Module):
    """SkeletonMVAE's Gaussian latent, one ``latent_dim`` vector per token (``vae_mode="token"``)."""

    def __init__(self, dim: int, latent_dim: int = 25, beta: float = 0.005,
                 logvar_range: tuple[float, float] = (-30.0, 20.0), logvar_init: float | None = None,
                 reduction: str = "mean"):
        super().__init__()
        self.latent_dim, self.out_dim = latent_dim, latent_dim
        self.logvar_range = tuple(logvar_range)
        self.reduction = reduction
        self.weights = {"kl": float(beta)}
        self.to_stats = nn.Conv2d(dim, 2 * latent_dim, 1)  # per-token linear -> (mu, log sigma^2)
        _check_logvar_init(logvar_init, self.logvar_range)
        if logvar_init is not None:
            with torch.no_grad():
                self.to_stats.bias[latent_dim:].fill_(float(logvar_init))

    def distribution(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``mu, logvar: (B, latent_dim, T', V')``."""
        mu, logvar = self.to_stats(z).chunk(2, 1)
        return mu, logvar.clamp(*self.logvar_range)

    @staticmethod
    def kl_per_element(mu: Tensor, logvar: Tensor) -> Tensor:
        """KL(N(mu, sigma^2) || N(0, 1)) of each coordinate: ``mu, logvar -> same shape`` (nats)."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)

    @staticmethod
    def kl(mu: Tensor, logvar: Tensor) -> Tensor:
        """KL(N(mu, sigma^2) || N(0, I)) summed over the latent dims (dim 1), averaged over the rest
        (every token, whether present or not: the module's terms use :meth:`forward`'s reduction)."""
        return GaussianLatent.kl_per_element(mu, logvar).sum(1).mean()

    def forward(self, z: Tensor, generator: torch.Generator | None = None, present: Tensor | None = None,
                num_samples: int | None = None) -> tuple[Tensor, dict, dict]:
        """``z: (B, D, T', V') -> (B, latent_dim, T', V')``; ``terms["kl"]`` in nats (float32): per
        sample (``"sum"``) or per token (``"mean"``), present rows only."""
        mu, logvar = self.distribution(z)
        if self.training:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
            out = mu + (0.5 * logvar).exp() * eps
        else:
            out = mu
        per_row = self.kl_per_element(mu.float(), logvar.float()).flatten(1).sum(1)  # (B,): over dims, tokens
        keep = _present(present, z.shape[0], z.device)
        kl = reduce_rows(per_row, keep, self.reduction, mu.shape[2] * mu.shape[3], num_samples)
        return out, {"kl": kl}, {}


class SampleGaussianLatent(nn.Module):
    """SkeletonMVAE's Gaussian latent read from the paper's Table 9 (``vae_mode="sample"``): ONE
    ``latent_dim`` vector per person row.

    ``z (B, D, T'k, L*Vk)`` -> flatten ``(B, D*T'k*L*Vk)`` -> two fully connected layers ->
    ``mu, log sigma^2 (B, latent_dim)`` -> ``z = mu + sigma * eps`` (``mu`` in eval) -> one fully
    connected layer -> ``(B, out_channels, T'k, L*Vk)``, the visible grid the decoder embeds.

    Args:
        dim: ``D``, the last encoder block's channels.
        grid: ``(T'k, L*Vk)``, the visible token map's tuples and tuple columns; the layers are
            sized for it, so a different window or mask rate is refused.
        out_channels: channels of the map handed to the decoder (Table 9: ``C`` = 3).
    Parameters: ``2 * (D*T'k*L*Vk * latent_dim + latent_dim) + latent_dim * out_channels*T'k*L*Vk
    + out_channels*T'k*L*Vk``.
    """

    def __init__(self, dim: int, grid: tuple[int, int], latent_dim: int = 25, beta: float = 0.005,
                 out_channels: int = 3, logvar_range: tuple[float, float] = (-30.0, 20.0),
                 logvar_init: float | None = None, reduction: str = "mean"):
        super().__init__()
        self.latent_dim, self.out_dim = latent_dim, out_channels
        self.in_shape = (dim, int(grid[0]), int(grid[1]))
        self.logvar_range = tuple(logvar_range)
        self.reduction = reduction
        self.weights = {"kl": float(beta)}
        features = dim * self.in_shape[1] * self.in_shape[2]
        self.to_mu = nn.Linear(features, latent_dim)
        self.to_logvar = nn.Linear(features, latent_dim)
        self.from_latent = nn.Linear(latent_dim, out_channels * self.in_shape[1] * self.in_shape[2])
        _check_logvar_init(logvar_init, self.logvar_range)
        if logvar_init is not None:
            with torch.no_grad():
                self.to_logvar.bias.fill_(float(logvar_init))

    def _check(self, z: Tensor) -> None:
        if z.dim() != 4 or tuple(z.shape[1:]) != self.in_shape:
            raise ValueError(f"vae_mode='sample' latent was built for a visible map (B, D, T'k, L*Vk) = "
                             f"(B, {', '.join(map(str, self.in_shape))}), got {tuple(z.shape)}: the window "
                             f"(num_frames), mask rates or joint count differ from the model's")

    def distribution(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``mu, logvar: (B, latent_dim)``."""
        self._check(z)
        flat = z.flatten(1)
        return self.to_mu(flat), self.to_logvar(flat).clamp(*self.logvar_range)

    def forward(self, z: Tensor, generator: torch.Generator | None = None, present: Tensor | None = None,
                num_samples: int | None = None) -> tuple[Tensor, dict, dict]:
        """``z: (B, D, T'k, L*Vk) -> (B, out_channels, T'k, L*Vk)``; ``terms["kl"]`` in nats: per
        sample (``"sum"``: the sample's present persons' KLs added) or per present row (``"mean"``)."""
        mu, logvar = self.distribution(z)
        if self.training:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
            s = mu + (0.5 * logvar).exp() * eps
        else:
            s = mu
        out = self.from_latent(s).view(z.shape[0], self.out_dim, self.in_shape[1], self.in_shape[2])
        per_row = GaussianLatent.kl_per_element(mu.float(), logvar.float()).sum(1)  # (B,)
        keep = _present(present, z.shape[0], z.device)
        kl = reduce_rows(per_row, keep, self.reduction, 1, num_samples)
        return out, {"kl": kl}, {}


class VectorQuantizer(nn.Module):
    """SkeletonMVQVAE's codebook of ``K`` codes of dim ``D``, nearest-code quantisation per token."""

    def __init__(self, dim: int, codebook_size: int = 128, beta: float = 0.25, ema: bool = False,
                 ema_decay: float = 0.99, restart_dead: bool = False, restart_after: int = 100,
                 reduction: str = "mean"):
        super().__init__()
        self.dim, self.codebook_size, self.out_dim = dim, codebook_size, dim
        self.ema, self.ema_decay = ema, ema_decay
        self.restart_dead, self.restart_after = restart_dead, restart_after
        self.reduction = reduction
        self.weights = {"codebook": 1.0, "commit": float(beta)}
        init = torch.empty(codebook_size, dim).uniform_(-1.0 / codebook_size, 1.0 / codebook_size)
        if ema:
            # moved by moving averages, not by gradients
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.ones(codebook_size))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # training steps since each code was last chosen (for dead-code restarts)
        self.register_buffer("unused_steps", torch.zeros(codebook_size, dtype=torch.long))

    def quantize(self, tokens: Tensor) -> Tensor:
        """Nearest-code indices: ``tokens (P, D) -> (P,)`` long, in float32 with autocast off (in
        bf16 the +-1/K initial codes are indistinguishable)."""
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            t = tokens.float()
            e = self.codebook.float()
            dist = t.pow(2).sum(1, keepdim=True) - 2.0 * t @ e.t() + e.pow(2).sum(1)[None]
            return dist.argmin(1)

    def lookup(self, indices: Tensor) -> Tensor:
        """Codes of ``indices (...)`` -> ``(..., D)``."""
        return F.embedding(indices, self.codebook)

    @torch.no_grad()
    def _update(self, tokens: Tensor, idx: Tensor, generator: torch.Generator | None) -> None:
        """Training-time codebook maintenance on the present tokens ``(P, D)`` float32: EMA step
        and dead-code restarts (none when no token is present)."""
        if not len(tokens):
            return
        onehot = F.one_hot(idx, self.codebook_size).to(tokens.dtype)  # (P, K)
        counts = onehot.sum(0)
        if self.ema:
            d = self.ema_decay
            self.ema_count.mul_(d).add_(counts, alpha=1 - d)
            self.ema_sum.mul_(d).add_(onehot.t() @ tokens, alpha=1 - d)
            # Laplace smoothing keeps never-chosen codes from dividing by zero
            n = self.ema_count.sum()
            smoothed = (self.ema_count + 1e-5) / (n + self.codebook_size * 1e-5) * n
            self.codebook.copy_(self.ema_sum / smoothed[:, None])
        self.unused_steps.add_(1)
        self.unused_steps[counts > 0] = 0
        if self.restart_dead:
            dead = (self.unused_steps >= self.restart_after).nonzero().flatten()
            if len(dead):
                pick = torch.randint(len(tokens), (len(dead),), generator=generator).to(tokens.device)
                fresh = tokens[pick].to(self.codebook.dtype)
                self.codebook.data[dead] = fresh
                if self.ema:
                    self.ema_count[dead] = 1.0
                    self.ema_sum[dead] = fresh
                self.unused_steps[dead] = 0

    def forward(self, z: Tensor, generator: torch.Generator | None = None, present: Tensor | None = None,
                num_samples: int | None = None) -> tuple[Tensor, dict, dict]:
        """``z: (B, D, T', V') -> (B, D, T', V')`` (codes, straight-through). ``terms["codebook"]``
        and ``terms["commit"]``: squared distances, per sample summed over tokens and dims
        (``"sum"``) or averaged over present tokens and dims (``"mean"``), float32."""
        b, d, tt, v = z.shape
        keep = _present(present, b, z.device)
        with torch.autocast(device_type=z.device.type, enabled=False):
            tokens = _tokens(z).float()  # (B*T'*V', D)
            idx = self.quantize(tokens.detach())
            q = self.lookup(idx).float()
            # per row: summed over its tokens and dims, (B,)
            codebook = reduce_rows((q - tokens.detach()).pow(2).reshape(b, -1).sum(1), keep, self.reduction,
                                   tt * v * d, num_samples)
            commit = reduce_rows((tokens - q.detach()).pow(2).reshape(b, -1).sum(1), keep, self.reduction,
                                 tt * v * d, num_samples)
            if self.ema:
                codebook = codebook.detach()
            token_rows = keep.repeat_interleave(tt * v)  # (B*T'*V',)
            all_present = bool(keep.all())
            used_idx = idx if all_present else idx[token_rows]
            stats = self.usage(used_idx)
            if self.training:
                used_tokens = tokens.detach() if all_present else tokens.detach()[token_rows]
                self._update(used_tokens, used_idx, generator)
            st = tokens + (q - tokens).detach()  # straight-through: forward q, backward identity
        return _untokens(st.to(z.dtype), z), {"codebook": codebook, "commit": commit}, stats

    def usage(self, idx: Tensor) -> dict[str, Tensor]:
        """Detached ``perplexity`` (exp of the entropy of code usage) and ``used_codes`` count of
        the code indices ``idx (P,)`` (no index: perplexity 1, 0 codes)."""
        p = torch.bincount(idx, minlength=self.codebook_size).to(torch.float32) / max(idx.numel(), 1)
        entropy = -(p * torch.log(p.clamp(min=1e-12))).sum()
        return {"perplexity": entropy.exp().detach(), "used_codes": (p > 0).sum().to(torch.float32)}


LATENTS = {"none": IdentityLatent, "vae": GaussianLatent, "vq": VectorQuantizer}
LATENT_OPTIONS = {
    "none": {},
    "vae": {"latent_dim": 25, "beta": 0.005, "logvar_init": None, "vae_mode": "token", "sample_channels": 3},
    "vq": {"codebook_size": 128, "commit_beta": 0.25, "ema": False, "ema_decay": 0.99,
           "restart_dead": False, "restart_after": 100},
}
# what a stored config without the option meant (options added after the first checkpoints)
LATENT_LEGACY = {"vae_mode": "token", "sample_channels": 3, "logvar_init": None}


def build_latent(name: str, dim: int, reduction: str = "mean", grid: tuple[int, int] | None = None,
                 **options) -> nn.Module:
    """The latent space ``name`` ("none" | "vae" | "vq") on encoder features of ``dim`` channels.

    ``options`` are those of :data:`LATENT_OPTIONS` for that name (``vq``: ``commit_beta`` is the
    commitment weight); unknown ones raise ``ValueError`` naming them. ``reduction``: ``"mean"``
    (the default here, as before issue 14) or ``"sum"`` (the pre-training model's default), see the
    module docstring. ``grid``: ``(T'k, L*Vk)`` of the visible token map, required by
    ``vae_mode="sample"``.
    """
    if name not in LATENTS:
        raise ValueError(f"unknown latent {name!r}; expected one of {sorted(LATENTS)}")
    unknown = sorted(set(options) - set(LATENT_OPTIONS[name]))
    if unknown:
        raise ValueError(f"latent {name!r} has no option(s) {unknown}; accepted: {sorted(LATENT_OPTIONS[name])}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss_reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    opts = {**LATENT_OPTIONS[name], **options}
    if name == "vq":
        opts["beta"] = opts.pop("commit_beta")
    if name == "vae":
        mode, channels = opts.pop("vae_mode"), opts.pop("sample_channels")
        if mode not in VAE_MODES:
            raise ValueError(f"vae_mode must be one of {', '.join(VAE_MODES)}, got {mode!r}")
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ValueError(f"sample_channels must be a positive integer, got {channels!r}")
        if mode == "sample":
            if grid is None:
                raise ValueError("vae_mode='sample' needs grid=(T'k, L*Vk), the visible token map it is sized for")
            return SampleGaussianLatent(dim, grid, out_channels=channels, reduction=reduction, **opts)
    return LATENTS[name](dim, reduction=reduction, **opts)
