"""Latent spaces between encoder and decoder (derived in ``notebooks/03_latent_spaces.ipynb``).

One interface: ``build_latent(name, dim, **options)`` -> a module with ``out_dim`` (channels it
hands to the decoder), ``weights`` (loss weight of each term it returns) and
``forward(z, generator=None) -> (z_out, terms, stats)`` on ``z: (B, D, T', V')``:

* ``"none"`` (SkeletonMAE): identity.
* ``"vae"`` (SkeletonMVAE): per token, a linear map to ``mu`` and ``log sigma^2`` of ``latent_dim``
  (25); ``z = mu + sigma * eps`` in training, ``mu`` in eval mode. ``out_dim = latent_dim``: the
  decoder's first linear layer is the map back up to the decoder dim. ``terms["kl"]`` =
  KL(q(z|x) || N(0, I)) summed over the latent dims, averaged over tokens and batch; weight
  ``beta = 0.005``. ``log sigma^2`` is clamped to ``[-30, 20]`` so ``exp`` cannot overflow.
  Option ``logvar_init`` (None in the paper preset: PyTorch's default bias init, so sigma starts
  near 1): the starting bias of ``log sigma^2``; e.g. -4 starts sigma at 0.14, so the sampled
  ``z`` is not mostly noise before the decoder has learnt to read it (docs/deviations.md).
* ``"vq"`` (SkeletonMVQVAE): per token, the nearest of ``K`` (128) codes of dim ``D``;
  straight-through gradient. ``terms["codebook"] = mean ||sg[z] - e||^2`` (weight 1) and
  ``terms["commit"] = mean ||z - sg[e]||^2`` (weight ``beta = 0.25``), means over tokens and dims.
  ``stats`` (detached): ``perplexity`` and ``used_codes`` of the batch. Options ``ema`` (codebook
  moved by exponential moving averages, decay 0.99, instead of the codebook loss) and
  ``restart_dead`` (a code unused for ``restart_after`` training steps is reset to a random encoder
  output of the current batch); both off in the paper preset.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _tokens(z: Tensor) -> Tensor:
    """``(B, D, T', V') -> (B*T'*V', D)``."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _untokens(t: Tensor, like: Tensor) -> Tensor:
    b, _, tt, v = like.shape
    return t.view(b, tt, v, -1).permute(0, 3, 1, 2)


class IdentityLatent(nn.Module):
    """SkeletonMAE: no latent space."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim
        self.weights: dict[str, float] = {}

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, dict, dict]:
        return z, {}, {}


class GaussianLatent(nn.Module):
    """SkeletonMVAE's Gaussian latent, one ``latent_dim`` vector per token."""

    def __init__(self, dim: int, latent_dim: int = 25, beta: float = 0.005,
                 logvar_range: tuple[float, float] = (-30.0, 20.0), logvar_init: float | None = None):
        super().__init__()
        self.latent_dim, self.out_dim = latent_dim, latent_dim
        self.logvar_range = tuple(logvar_range)
        self.weights = {"kl": float(beta)}
        self.to_stats = nn.Conv2d(dim, 2 * latent_dim, 1)  # per-token linear -> (mu, log sigma^2)
        if logvar_init is not None:
            if not math.isfinite(logvar_init) or not self.logvar_range[0] <= logvar_init <= self.logvar_range[1]:
                raise ValueError(f"logvar_init must be a finite number in {list(self.logvar_range)}, got {logvar_init!r}")
            with torch.no_grad():
                self.to_stats.bias[latent_dim:].fill_(float(logvar_init))

    def distribution(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``mu, logvar: (B, latent_dim, T', V')``."""
        mu, logvar = self.to_stats(z).chunk(2, 1)
        return mu, logvar.clamp(*self.logvar_range)

    @staticmethod
    def kl(mu: Tensor, logvar: Tensor) -> Tensor:
        """KL(N(mu, sigma^2) || N(0, I)) summed over the latent dims (dim 1), averaged over the rest."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean()

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, dict, dict]:
        mu, logvar = self.distribution(z)
        if self.training:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
            out = mu + (0.5 * logvar).exp() * eps
        else:
            out = mu
        kl = self.kl(mu, logvar)
        return out, {"kl": kl}, {}


class VectorQuantizer(nn.Module):
    """SkeletonMVQVAE's codebook of ``K`` codes of dim ``D``, nearest-code quantisation per token."""

    def __init__(self, dim: int, codebook_size: int = 128, beta: float = 0.25, ema: bool = False,
                 ema_decay: float = 0.99, restart_dead: bool = False, restart_after: int = 100):
        super().__init__()
        self.dim, self.codebook_size, self.out_dim = dim, codebook_size, dim
        self.ema, self.ema_decay = ema, ema_decay
        self.restart_dead, self.restart_after = restart_dead, restart_after
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
        """Nearest-code indices: ``tokens (P, D) -> (P,)`` long."""
        e = self.codebook
        dist = tokens.pow(2).sum(1, keepdim=True) - 2.0 * tokens @ e.t() + e.pow(2).sum(1)[None]
        return dist.argmin(1)

    def lookup(self, indices: Tensor) -> Tensor:
        """Codes of ``indices (...)`` -> ``(..., D)``."""
        return F.embedding(indices, self.codebook)

    @torch.no_grad()
    def _update(self, tokens: Tensor, idx: Tensor, generator: torch.Generator | None) -> None:
        """Training-time codebook maintenance: EMA step and dead-code restarts."""
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

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, dict, dict]:
        tokens = _tokens(z)
        idx = self.quantize(tokens.detach())
        q = self.lookup(idx)
        codebook = F.mse_loss(q, tokens.detach())
        commit = F.mse_loss(tokens, q.detach())
        if self.ema:
            codebook = codebook.detach()
        stats = self.usage(idx)
        if self.training:
            self._update(tokens.detach(), idx, generator)
        st = tokens + (q - tokens).detach()  # straight-through: forward q, backward identity
        return _untokens(st, z), {"codebook": codebook, "commit": commit}, stats

    def usage(self, idx: Tensor) -> dict[str, Tensor]:
        """Detached ``perplexity`` (exp of the entropy of code usage) and ``used_codes`` count."""
        p = torch.bincount(idx, minlength=self.codebook_size).to(torch.float32) / max(idx.numel(), 1)
        entropy = -(p * torch.log(p.clamp(min=1e-12))).sum()
        return {"perplexity": entropy.exp().detach(), "used_codes": (p > 0).sum().to(torch.float32)}


LATENTS = {"none": IdentityLatent, "vae": GaussianLatent, "vq": VectorQuantizer}
LATENT_OPTIONS = {
    "none": {},
    "vae": {"latent_dim": 25, "beta": 0.005, "logvar_init": None},
    "vq": {"codebook_size": 128, "commit_beta": 0.25, "ema": False, "ema_decay": 0.99,
           "restart_dead": False, "restart_after": 100},
}


def build_latent(name: str, dim: int, **options) -> nn.Module:
    """The latent space ``name`` ("none" | "vae" | "vq") on encoder features of ``dim`` channels.

    ``options`` are those of :data:`LATENT_OPTIONS` for that name (``vq``: ``commit_beta`` is the
    commitment weight); unknown ones raise ``ValueError`` naming them.
    """
    if name not in LATENTS:
        raise ValueError(f"unknown latent {name!r}; expected one of {sorted(LATENTS)}")
    unknown = sorted(set(options) - set(LATENT_OPTIONS[name]))
    if unknown:
        raise ValueError(f"latent {name!r} has no option(s) {unknown}; accepted: {sorted(LATENT_OPTIONS[name])}")
    opts = {**LATENT_OPTIONS[name], **options}
    if name == "vq":
        opts["beta"] = opts.pop("commit_beta")
    return LATENTS[name](dim, **opts)
