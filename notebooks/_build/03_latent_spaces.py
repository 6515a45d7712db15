# %% [markdown]
# # 03 · Latent spaces: a Gaussian (MVAE) and a codebook (MVQVAE)
#
# SkeletonMAE sends the encoder's output straight to the decoder. SkeletonMVAE and
# SkeletonMVQVAE put a **latent space** in between, applied to every encoder token
# $z \in \mathbb{R}^D$:
#
# * **MVAE**: the token is mapped to a Gaussian $q(z \mid x) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)$,
#   a sample goes to the decoder, and the loss adds $\beta\,\mathrm{KL}(q \,\|\, \mathcal{N}(0, I))$;
# * **MVQVAE**: the token is replaced by its nearest vector of a learned codebook of $K$ entries,
#   and the loss adds a codebook and a commitment term.
#
# This notebook derives both from scratch on toy problems, checks that `skel.models.latent`
# computes the same quantities, watches both latents fail silently (posterior collapse, codebook
# collapse on real encoder tokens), works out what $\beta$ means under the pre-training loss's two
# reductions, and ends with three exercises.

# %% tags=["parameters"]
seed: int = 0  # one seed for every random draw in this notebook
mc_samples: int = 200_000  # Monte Carlo samples for the KL check
betas: list[float] = [0.0, 0.01, 0.1, 0.5, 2.0]  # beta sweep on the toy VAE (paper's skeleton VAE: 0.005)
vae_steps: int = 200  # training steps per beta on the toy VAE
vq_codes: int = 32  # K on the toy VQ (paper: 128)
vq_steps: int = 300  # training steps on the toy VQ
vq_batch: int = 256  # points per toy-VQ step
restart_after: int = 20  # toy VQ: steps a code may stay unused before it is restarted (skel default: 100)

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from skel.data import load_dataset
from skel.data.feeder import Feeder
from skel.models.encoder import ENCODER_PRESETS, Encoder
from skel.models.latent import GaussianLatent, VectorQuantizer, build_latent
from skel.models.masking import kept_counts, random_masking
from skel.models.pretrain import build_pretrain_model, effective_noise
from skel.notebook import check, check_parameters, cmp, setup

check_parameters(globals(), __annotations__)  # papermill passes strings for bad values: fail here
g = setup(seed, threads=1)  # tiny tensors: a second thread only adds synchronisation


# %% [markdown]
# ## 1 · The evidence lower bound
#
# A latent-variable model $p(x) = \int p(x \mid z)\,p(z)\,dz$ has an intractable likelihood. Any
# distribution $q(z \mid x)$ (the encoder) gives a lower bound by Jensen's inequality
# ($\log$ is concave):
#
# $$\log p(x) = \log \mathbb{E}_{q(z\mid x)}\Big[\frac{p(x\mid z)\,p(z)}{q(z\mid x)}\Big]
#   \;\ge\; \underbrace{\mathbb{E}_{q(z\mid x)}\big[\log p(x \mid z)\big]}_{\text{reconstruction}}
#   \;-\; \underbrace{\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)}_{\text{regulariser}} .$$
#
# The gap is exactly $\mathrm{KL}(q(z\mid x)\,\|\,p(z \mid x))$, so maximising the bound both fits
# the data and pulls $q$ towards the true posterior. With a Gaussian decoder
# $p(x\mid z) = \mathcal{N}(f(z), s^2 I)$, $-\log p(x\mid z) = \|x - f(z)\|^2 / (2 s^2) + \text{const}$:
# the negative ELBO becomes a squared error plus a weighted KL,
#
# $$\mathcal{L} = \|x - f(z)\|^2 + \beta\,\mathrm{KL}, \qquad \beta = 2 s^2 .$$
#
# $\beta$ is therefore a statement about the decoder's noise level, and its value only means
# something together with how both terms are reduced (sums or means, section 13).

# %% [markdown]
# ## 2 · The Gaussian KL in closed form
#
# For $q = \mathcal{N}(\mu, \sigma^2)$ and $p = \mathcal{N}(0, 1)$ in one dimension,
#
# $$\mathrm{KL}(q\,\|\,p) = \mathbb{E}_q[\log q - \log p]
#  = \mathbb{E}_q\Big[-\log\sigma - \frac{(z-\mu)^2}{2\sigma^2} + \frac{z^2}{2}\Big]
#  = -\log\sigma - \frac12 + \frac{\mu^2 + \sigma^2}{2},$$
#
# and a diagonal Gaussian sums this over its $D$ dimensions. With the encoder predicting
# $\ell = \log\sigma^2$ (unconstrained, numerically safe):
#
# $$\mathrm{KL} = \frac12 \sum_{d=1}^{D} \big(\mu_d^2 + e^{\ell_d} - 1 - \ell_d\big).$$

# %%
def kl_closed(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the last dim."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


def kl_monte_carlo(mu, logvar, n, generator):
    """Mean of log q(z) - log p(z) over n samples z ~ q; returns (estimate, standard error)."""
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(n, mu.shape[-1], generator=generator, dtype=mu.dtype)
    log_q = (-0.5 * ((z - mu) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    d = log_q - log_p
    return d.mean(), d.std() / n**0.5


mu = torch.tensor([0.8, -1.5, 0.0, 0.3], dtype=torch.float64)
logvar = torch.tensor([-1.0, 0.5, 0.0, -2.5], dtype=torch.float64)
g_mc = torch.Generator().manual_seed(seed)
est, se = kl_monte_carlo(mu, logvar, mc_samples, g_mc)
print(f"closed form: {kl_closed(mu, logvar):.4f}")
print(f"Monte Carlo: {est:.4f} +- {se:.4f} (1 s.e., {mc_samples} samples)")
assert abs(est - kl_closed(mu, logvar)) < 4 * se

# %%
ns = [10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000]
g_mc = torch.Generator().manual_seed(seed + 1)
runs = torch.tensor([[kl_monte_carlo(mu, logvar, n, g_mc)[0].item() for n in ns] for _ in range(20)])
fig, ax = plt.subplots(figsize=(5.5, 3))
ax.fill_between(ns, runs.min(0).values, runs.max(0).values, alpha=0.3, label="20 MC estimates (range)")
ax.plot(ns, runs.mean(0), "o-", ms=3, label="mean of the 20")
ax.axhline(kl_closed(mu, logvar).item(), color="k", ls="--", label="closed form")
ax.set(xscale="log", xlabel="samples per estimate", ylabel="KL", title="Monte Carlo KL converges to the closed form")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3 · Reparameterisation
#
# The reconstruction term $\mathbb{E}_{q}[\,\cdot\,]$ must be differentiated with respect to
# $\mu$ and $\sigma$, but a sample drawn by `torch.normal(mu, sigma)` carries no useful gradient (torch
# differentiates it as a constant). Writing
# the same sample as a deterministic function of the parameters and parameter-free noise,
#
# $$z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I),$$
#
# moves the randomness out of the way: $\partial z / \partial \mu = 1$,
# $\partial z / \partial \sigma = \varepsilon$. Check on $f(z) = z^2$, where
# $\mathbb{E}[z^2] = \mu^2 + \sigma^2$ gives the exact gradients $2\mu$ and $2\sigma$.

# %%
mu1 = torch.tensor(0.7, requires_grad=True)
sigma1 = torch.tensor(1.3, requires_grad=True)
eps = torch.randn(mc_samples, generator=torch.Generator().manual_seed(seed))
z = mu1 + sigma1 * eps
(z**2).mean().backward()
print(f"d/dmu    E[z^2]: reparameterised {mu1.grad:.4f}, exact {2 * mu1.item():.4f}")
print(f"d/dsigma E[z^2]: reparameterised {sigma1.grad:.4f}, exact {2 * sigma1.item():.4f}")
mu1.grad = sigma1.grad = None
z_plain = torch.normal(mu1.expand(mc_samples), sigma1.expand(mc_samples), generator=torch.Generator().manual_seed(seed))
(z_plain**2).mean().backward()
print(f"through torch.normal: d/dmu {mu1.grad:.4f}, d/dsigma {sigma1.grad:.4f} (a backward exists, but the gradient is zero)")


# %% [markdown]
# ## 4 · What $\beta$ trades: a toy VAE
#
# A tiny VAE on 2-D points (a noisy ring), 2-D latent. With $\beta = 0$ the encoder may put the
# posteriors anywhere with almost no variance: an ordinary autoencoder, low error, large KL. As
# $\beta$ grows the posteriors are pulled onto the prior; the KL (the *rate*, in nats) falls and
# the reconstruction error (the *distortion*) rises. Each $\beta$ picks one point of this
# rate-distortion curve.

# %%
def ring(n, generator):
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    r = 1 + 0.05 * torch.randn(n, generator=generator)
    return torch.stack([r * angle.cos(), r * angle.sin()], 1)


class ToyVAE(torch.nn.Module):
    def __init__(self, dim=2, hidden=64):
        super().__init__()
        self.enc = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 2 * dim))
        self.dec = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 2))

    def forward(self, x, generator):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator)
        return self.dec(z), mu, logvar


def train_toy_vae(beta, steps, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = ToyVAE()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        x = ring(256, gen)
        recon, mu, logvar = model(x, gen)
        mse = (recon - x).pow(2).sum(1).mean()
        kl = kl_closed(mu, logvar).mean()
        opt.zero_grad()
        (mse + beta * kl).backward()
        opt.step()
    with torch.no_grad():  # evaluate on fresh points
        x = ring(4096, gen)
        recon, mu, logvar = model(x, gen)
        return (recon - x).pow(2).sum(1).mean().item(), kl_closed(mu, logvar).mean().item(), model


results = {beta: train_toy_vae(beta, vae_steps, seed) for beta in betas}
print("\n".join(f"beta={b:5.2f}: distortion (MSE) {results[b][0]:.4f}   rate (KL, nats) {results[b][1]:.4f}" for b in betas))

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].plot([results[b][1] for b in betas], [results[b][0] for b in betas], "o-")
for b in betas:
    axes[0].annotate(f"β={b:g}", (results[b][1], results[b][0]), textcoords="offset points", xytext=(4, 4), fontsize=8)
axes[0].set(xlabel="rate: KL (nats)", ylabel="distortion: MSE", title="the β sweep traces a rate-distortion curve")
gen = torch.Generator().manual_seed(seed + 2)
xs = ring(400, gen)
with torch.no_grad():
    for b, colour in zip([betas[0], betas[-2], betas[-1]], ["tab:blue", "tab:orange", "tab:red"]):
        mu_b = results[b][2].enc(xs).chunk(2, 1)[0]
        axes[1].scatter(mu_b[:, 0], mu_b[:, 1], s=3, color=colour, label=f"β={b:g}")
axes[1].add_patch(plt.Circle((0, 0), 2, fill=False, ls="--", color="k"))
axes[1].set(aspect="equal", title="posterior means μ(x); dashed: 2σ of the prior")
axes[1].legend(markerscale=3, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
plt.tight_layout()
plt.show()

# %% [markdown]
# **Posterior collapse.** At the largest $\beta$ the rate is almost zero: every posterior
# $q(z \mid x)$ sits on the prior (the red means pile up at the origin), $z$ carries no information
# about $x$, and the decoder, having nothing to decode, outputs one point, the data mean. This is
# *posterior collapse*, and nothing in the loss signals it: the distortion simply equals the
# data's variance $\mathbb{E}\|x - \bar x\|^2$. The reading $\beta = 2s^2$ of section 1 explains
# when it happens. For a linear Gaussian decoder (probabilistic PCA) the optimum keeps a latent
# direction only where the data varies by more than the decoder noise $s^2$; the ring varies by
# about $0.5$ along every direction, so $\beta = 2$ ($s^2 = 1$) keeps none, while $\beta = 0.5$
# ($s^2 = 0.25$) still keeps some. Our toy decoder is not linear, but it follows the same rule:

# %%
b_top = max(betas)
gen = torch.Generator().manual_seed(seed + 3)
x = ring(4096, gen)
with torch.no_grad():
    recon, mu_top, logvar_top = results[b_top][2](x, gen)
print(f"beta={b_top:g} (s^2 = beta/2 = {b_top / 2:g}): KL {kl_closed(mu_top, logvar_top).mean():.4f} nats, "
      f"posterior sigma {(0.5 * logvar_top).exp().mean():.3f} (prior: 1), spread of mu over x {mu_top.std(0).mean():.3f}")
print(f"decoder output spread over x {recon.std(0).mean():.3f} vs data {x.std(0).mean():.3f}; "
      f"distortion {(recon - x).pow(2).sum(1).mean():.4f} vs data variance {(x - x.mean(0)).pow(2).sum(1).mean():.4f}")

# %% [markdown]
# ## 5 · The VAE latent in `skel`
#
# `build_latent("vae", dim)` maps each encoder token with a linear layer (a $1\times1$ convolution
# over the token grid) to $\mu$ and $\ell = \log\sigma^2$ (latent dim 25 in the paper), clamps
# $\ell$ to $[-30, 20]$ so that $e^{\ell}$ cannot overflow, and samples with the
# reparameterisation in training ($z = \mu$ in eval mode). The decoder's first linear layer maps
# the sample back up to its width. That is the per-token reading (`vae_mode="token"`, the default
# of `build_latent`). The pre-training model's default is `vae_mode="sample"`, the reading of the
# paper's Tables 8 and 9: the whole visible map of a person is flattened, two fully connected
# layers give ONE $\mu$ and $\ell$ of dim 25, and one maps the sample back to a $3 \times T_k
# \times V_k$ grid for the decoder (+13.8 M parameters at the paper's shape, Table 8's +14 M;
# `docs/deviations.md` says how the measurement chose it). The KL below is the same formula either
# way, summed over one vector per token or one per person.
#
# **The reduction** is chosen when the latent is built: `reduction="mean"` (the default of
# `build_latent`) sums the KL over the latent dimensions and *averages* it over the tokens;
# `reduction="sum"` (what the pre-training model uses by default, its `loss_reduction`) sums it over
# the latent dimensions *and the tokens of a sample*, and averages over samples only. Which one is
# in force changes what $\beta = 0.005$ means; section 13 works it out. We recompute both from
# the module's own $\mu$, $\ell$ and noise.

# %%
torch.manual_seed(seed)
vae = build_latent("vae", 16, latent_dim=4).train()
tokens = torch.randn(2, 16, 3, 12, generator=g)  # (N, D, T', V'): encoder output
with torch.no_grad():
    z_out, terms, stats = vae(tokens, generator=torch.Generator().manual_seed(seed))
    mu_s, logvar_s = vae.distribution(tokens)  # (N, latent_dim, T', V') each
print("z_out:", tuple(z_out.shape), "| terms:", sorted(terms), "| loss weights:", vae.weights)

# %%
eps_s = torch.randn(mu_s.shape, generator=torch.Generator().manual_seed(seed))
cmp("sample mu + sigma*eps", z_out, mu_s + (0.5 * logvar_s).exp() * eps_s)
# tokens on the last axis: sum over latent dims, mean over (N, T', V')
cmp("kl term", terms["kl"], kl_closed(mu_s.movedim(1, -1), logvar_s.movedim(1, -1)).mean())
vae_sum = build_latent("vae", 16, latent_dim=4, reduction="sum").train()
vae_sum.load_state_dict(vae.state_dict())
with torch.no_grad():  # sum over dims and a sample's tokens, mean over the N = 2 samples
    cmp("kl term, reduction=sum", vae_sum(tokens)[1]["kl"], kl_closed(mu_s.movedim(1, -1), logvar_s.movedim(1, -1)).sum() / 2)
with torch.no_grad():
    cmp("eval mode gives mu", vae.eval()(tokens)[0], mu_s)


# %% [markdown]
# ## 6 · Vector quantisation: the nearest codebook vector
#
# MVQVAE replaces each token $z \in \mathbb{R}^D$ by the nearest of $K$ codebook vectors
# $e_1, \dots, e_K$:
#
# $$k^*(z) = \arg\min_k \|z - e_k\|^2 = \arg\min_k \big(\|e_k\|^2 - 2\, z^\top e_k\big),$$
#
# since $\|z\|^2$ does not depend on $k$. The expanded form is one matrix product, no
# $N \times K \times D$ difference tensor.

# %%
def nearest_code(z, codebook):
    """z (n, D), codebook (K, D) -> (n,) index of the nearest code."""
    return (codebook.pow(2).sum(1)[None, :] - 2 * z @ codebook.T).argmin(1)


zq_in = torch.randn(1000, 8, generator=g)
book = torch.randn(32, 8, generator=g)
cmp("argmin via matmul", nearest_code(zq_in, book), torch.cdist(zq_in, book).argmin(1))

# %% [markdown]
# ## 7 · The straight-through gradient
#
# $\arg\min$ has no useful gradient: the decoder's gradient cannot reach the encoder through the
# lookup $z_q = e_{k^*(z)}$. The straight-through estimator copies the gradient across instead,
#
# $$z_q = z + \operatorname{sg}[\,e_{k^*} - z\,],$$
#
# whose value is $e_{k^*}$ and whose Jacobian with respect to $z$ is the identity
# ($\operatorname{sg}$ = stop-gradient, `.detach()`). For a loss $\sum_i w_i\, z_{q,i}$ the encoder must
# receive exactly $w$:

# %%
z = torch.randn(5, 8, generator=g, requires_grad=True)
w = torch.randn(5, 8, generator=g)
e_star = book[nearest_code(z.detach(), book)]

z_q = z + (e_star - z).detach()  # straight-through
(w * z_q).sum().backward()
cmp("value = nearest code", z_q, e_star)
cmp("grad to z = w", z.grad, w)

codes_t = book.clone().requires_grad_(True)
z_q_plain = codes_t[nearest_code(z, codes_t)]  # plain lookup: the graph runs to the codes only
(grad_z,) = torch.autograd.grad((w * z_q_plain).sum(), [z], allow_unused=True, materialize_grads=True)
print(f"plain lookup: |grad to z| = {grad_z.norm():.4f} (the encoder learns nothing from the decoder)")

# %% [markdown]
# ## 8 · Codebook and commitment terms
#
# The straight-through estimator trains the encoder, but nothing yet moves the codebook. The VQ-VAE
# loss adds two squared distances with opposite stop-gradients:
#
# $$\mathcal{L}_{\text{VQ}} = \underbrace{\|\operatorname{sg}[z] - e_{k^*}\|^2}_{\text{codebook: moves } e}
#   + \beta\, \underbrace{\|z - \operatorname{sg}[e_{k^*}]\|^2}_{\text{commitment: moves } z},
#   \qquad \beta = 0.25 .$$
#
# The codebook term pulls each used code to the mean of the tokens assigned to it (k-means, one
# gradient step at a time); the commitment term keeps the encoder's outputs from drifting away from
# the codes. Check with autograd that each term reaches only its side.

# %%
z = torch.randn(6, 8, generator=g, requires_grad=True)
codes = book.clone().requires_grad_(True)
e_star = codes[nearest_code(z.detach(), codes.detach())]
codebook_loss = F.mse_loss(e_star, z.detach())
commit_loss = F.mse_loss(z, e_star.detach())
gz_cb, ge_cb = torch.autograd.grad(codebook_loss, [z, codes], allow_unused=True, materialize_grads=True)
gz_cm, ge_cm = torch.autograd.grad(commit_loss, [z, codes], allow_unused=True, materialize_grads=True)
print(f"codebook term:   |grad z| = {gz_cb.norm():.4f}   |grad e| = {ge_cb.norm():.4f}")
print(f"commitment term: |grad z| = {gz_cm.norm():.4f}   |grad e| = {ge_cm.norm():.4f}")

# %% [markdown]
# ## 9 · Codebook collapse, made visible
#
# A code receives gradient only when it is some token's nearest neighbour. Initialise the
# codebook badly, here all $K$ codes in a small blob far from the data, and the few codes nearest
# the data win every assignment, move into the data and keep winning; the rest never move again.
# The loss goes down, nothing crashes, the model just uses a handful of codes. The symptom is in
# the usage statistics: with $p_k$ the fraction of tokens assigned to code $k$, the **perplexity**
#
# $$\mathrm{PPL} = \exp\Big(-\sum_k p_k \log p_k\Big) \in [1, K]$$
#
# is the effective number of codes in use. We quantise 2-D points (a mixture of 16 blobs) directly,
# the encoder being the identity, and train only the codebook.

# %%
centres = torch.stack(torch.meshgrid(torch.linspace(-1.5, 1.5, 4), torch.linspace(-1.5, 1.5, 4), indexing="ij"), -1).view(-1, 2)


def blobs(n, generator):
    pick = torch.randint(0, len(centres), (n,), generator=generator)
    return centres[pick] + 0.15 * torch.randn(n, 2, generator=generator)


def bad_init(K, generator):
    return torch.tensor([4.0, 4.0]) + 0.3 * torch.randn(K, 2, generator=generator)


def perplexity(idx, K):
    p = torch.bincount(idx, minlength=K).float() / idx.numel()
    return torch.exp(-(p * p.clamp_min(1e-12).log()).sum())


gen = torch.Generator().manual_seed(seed)
codebook = bad_init(vq_codes, gen).requires_grad_(True)
opt = torch.optim.Adam([codebook], lr=0.05)
ppl_plain = []
for _ in range(vq_steps):
    x = blobs(vq_batch, gen)
    idx = nearest_code(x, codebook.detach())
    loss = F.mse_loss(codebook[idx], x)  # codebook term (identity encoder: commitment moves nothing)
    opt.zero_grad()
    loss.backward()
    opt.step()
    ppl_plain.append(perplexity(idx, vq_codes).item())
x_eval = blobs(4096, gen)
idx_eval = nearest_code(x_eval, codebook.detach())
used = torch.bincount(idx_eval, minlength=vq_codes)
print(f"plain VQ after {vq_steps} steps: {(used > 0).sum().item()} of {vq_codes} codes used, "
      f"perplexity {perplexity(idx_eval, vq_codes):.2f}, quantisation MSE {F.mse_loss(codebook[idx_eval], x_eval):.4f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
axes[0].scatter(x_eval[:1500, 0], x_eval[:1500, 1], s=2, color="lightgrey", label="data")
cb = codebook.detach()
axes[0].scatter(cb[used == 0, 0], cb[used == 0, 1], marker="x", color="tab:red", label="dead codes")
axes[0].scatter(cb[used > 0, 0], cb[used > 0, 1], marker="o", color="tab:blue", label="used codes")
axes[0].set(aspect="equal", title="plain VQ from a bad initialisation")
axes[0].legend(fontsize=8, loc="lower right")
axes[1].bar(range(vq_codes), used.float() / used.sum(), color="tab:blue")
axes[1].set(xlabel="code k", ylabel="usage p_k", title="usage histogram")
plt.tight_layout()
plt.show()


# %% [markdown]
# ## 10 · Two cures, as options of `skel.models.latent`
#
# * **EMA codebook** (`ema=True`): instead of a gradient step, each code becomes an exponential
#   moving average of the tokens assigned to it, $N_k \leftarrow \gamma N_k + (1-\gamma) n_k$,
#   $m_k \leftarrow \gamma m_k + (1-\gamma)\sum_{i: k^*_i = k} z_i$, $e_k = m_k / N_k$. Used codes jump
#   to their cluster means quickly (no learning rate), but a code nobody picks still never moves.
#   (`skel` adds Laplace smoothing to $N_k$ so a never-chosen code does not divide by zero.)
# * **Dead-code restart** (`restart_dead=True`): a code unused for `restart_after` training steps
#   is re-initialised at a randomly chosen token of the current batch, so it lands in the data and
#   can start winning assignments.
#
# Same toy and same bad initialisation, now through `skel`'s VQ module (identity encoder: the
# module's input is the data itself, as tokens $(N, D{=}2, 1, n)$), three runs:
#
# * `plain`: gradient updates of the codebook term, the paper's setting. It must retrace our own
#   loop of section 9 exactly (same draws, same loss);
# * `EMA`: moving-average updates; the codebook is the ratio of two buffers, so the bad
#   initialisation is written into both;
# * `restart`: gradient updates plus dead-code restarts after `restart_after` unused steps.

# %%
def run_skel_vq(steps, **options):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vq = build_latent("vq", 2, codebook_size=vq_codes, **options)
    with torch.no_grad():
        vq.codebook.copy_(bad_init(vq_codes, gen))
        if vq.ema:
            vq.ema_sum.copy_(vq.codebook)  # codebook = ema_sum / ema_count, counts start at 1
    params = [p for p in vq.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=0.05) if params else None
    curve = []
    vq.train()
    for _ in range(steps):
        x = blobs(vq_batch, gen).T[None, :, None, :]  # (1, 2, 1, n) tokens
        _, terms, stats = vq(x, generator=gen)
        if opt is not None:
            loss = terms["codebook"]  # identity encoder: the commitment term moves nothing
            opt.zero_grad()
            loss.backward()
            opt.step()
        curve.append(float(stats["perplexity"]))
    return vq, curve


variants = {"plain": {}, "EMA": {"ema": True},
            "restart": {"restart_dead": True, "restart_after": restart_after}}
curves, books, lines = {}, {}, []
for name, options in variants.items():
    vq, curves[name] = run_skel_vq(vq_steps, **options)
    books[name] = vq.codebook.detach().clone()
    idx = nearest_code(x_eval, books[name])
    lines.append(f"{name:8s}: {torch.unique(idx).numel():2d} of {vq_codes} codes used, perplexity {perplexity(idx, vq_codes):6.2f}, "
                 f"quantisation MSE {F.mse_loss(books[name][idx], x_eval):.4f}")
print("\n".join(lines))  # one print: stored outputs do not depend on stream timing
cmp("skel plain == our plain", torch.tensor(curves["plain"]), torch.tensor(ppl_plain))

# %%
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
for name in variants:
    axes[0].plot(curves[name], label=name)
axes[0].plot(ppl_plain, color="k", ls=":", label="our plain VQ")
axes[0].set(xlabel="step", ylabel="perplexity", title="codes in use", ylim=(0, vq_codes + 1))
axes[0].legend(fontsize=7)
for ax, name in zip(axes[1:], variants):
    ax.scatter(x_eval[:1500, 0], x_eval[:1500, 1], s=2, color="lightgrey")
    live = torch.bincount(nearest_code(x_eval, books[name]), minlength=vq_codes) > 0
    ax.scatter(books[name][~live, 0], books[name][~live, 1], s=14, marker="x", color="tab:red")
    ax.scatter(books[name][live, 0], books[name][live, 1], s=14, color="tab:blue")
    ax.set(aspect="equal", title=name, xlim=(-2.5, 5.5), ylim=(-2.5, 5.5))
plt.tight_layout()
plt.show()

# %% [markdown]
# EMA alone does not help here: the two live codes settle faster, but the thirty dead ones are
# never anyone's nearest code, so no average ever moves them. Restarts put every dead code onto a
# data point after `restart_after` steps; from then on they compete for the data and the
# perplexity jumps to most of the codebook. On real encoders collapse is rarely this total, but
# it is just as silent, which is why the pre-training loop logs `perplexity` and `used_codes`.

# %% [markdown]
# ## 11 · The same collapse from `skel`'s own initialisation, on real encoder tokens
#
# Section 9 started from an obviously bad codebook. `skel`'s `VectorQuantizer` starts the way VQ-VAE
# code usually does: every code uniform in $[-1/K, 1/K]^D$, so all $K = 128$ codes sit in a tiny
# cube around the origin, of norm at most $\sqrt{D}/K$. The encoder's tokens look nothing like that:
# an STTFormer block ends in a LeakyReLU(0.1), so a token has norm of order $\sqrt{D}$, with
# about half its entries positive and the rest shrunk to a tenth. For such a token
#
# $$\|z - e_k\|^2 = \|z\|^2 - 2 z^\top e_k + \|e_k\|^2 \approx \|z\|^2 - 2 z^\top e_k ,$$
#
# so at the start the nearest code is simply the one best *aligned* with the token. We take the
# tokens of a fresh `tiny` encoder ($D = 64$; 16 synthetic clips of 24 frames, first person,
# masked at the paper's rates, BatchNorm in training mode as in pre-training), freeze them, and
# train `skel`'s codebook on them with its default initialisation: `plain` (the paper's Adam,
# learning rate $10^{-2}$, codebook term), `EMA`, and `restart`. How many of the 128 codes are
# chosen at the start, and after `vq_steps` steps?

# %%
clip_feed = Feeder(load_dataset("synthetic", "train", seed=seed), window=24, train=False)
clips = torch.stack([clip_feed[i][0] for i in range(0, len(clip_feed), len(clip_feed) // 16)][:16])[..., :1]
torch.manual_seed(seed)
encoder = Encoder(3, 25, **ENCODER_PRESETS["tiny"]).train()  # batch statistics, as in pre-training
with torch.no_grad():
    z_enc, _ = encoder(clips, random_masking(len(clips), 24, 25, 0.4, 0.4, torch.Generator().manual_seed(seed)))
enc_tokens = z_enc.permute(0, 2, 3, 1).reshape(-1, z_enc.shape[1])  # (P, D): one row per visible token
D_enc = enc_tokens.shape[1]
print(f"{len(enc_tokens)} tokens of dim {D_enc}: norm {enc_tokens.norm(dim=1).mean():.2f} on average, "
      f"{(enc_tokens > 0).float().mean():.1%} of entries positive, negative ones >= {enc_tokens.min():.2f}; "
      f"code norms <= sqrt(D)/K = {D_enc ** 0.5 / 128:.4f}")


def train_codebook(steps, **options):
    """skel's VQ (K = 128, its own init) trained on the frozen tokens; used codes at the start, per step, at the end."""
    torch.manual_seed(seed)
    vq = build_latent("vq", D_enc, **options).train()
    start = vq.quantize(enc_tokens)
    params = [p for p in vq.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2) if params else None
    gen = torch.Generator().manual_seed(seed)
    per_step = []
    for _ in range(steps):
        batch = enc_tokens[torch.randint(len(enc_tokens), (1024,), generator=gen)]
        _, terms, stats = vq(batch.T[None, :, None, :], generator=gen)  # (1, D, 1, 1024) tokens
        if opt is not None:
            opt.zero_grad()
            terms["codebook"].backward()
            opt.step()
        per_step.append(int(stats["used_codes"]))
    return start, per_step, vq.quantize(enc_tokens)


token_runs = {name: train_codebook(vq_steps, **options) for name, options in
              {"plain": {}, "EMA": {"ema": True}, "restart": {"restart_dead": True, "restart_after": restart_after}}.items()}
print("\n".join(f"{name:8s}: codes chosen at the start {torch.unique(start).numel():3d} of 128 "
                f"(perplexity {perplexity(start, 128):6.2f}), after {vq_steps} steps {torch.unique(end).numel():3d} "
                f"(perplexity {perplexity(end, 128):6.2f})" for name, (start, _, end) in token_runs.items()))
per_step = token_runs["plain"][1]
low = min(range(len(per_step)), key=per_step.__getitem__)
print(f"plain, codes chosen per batch: {per_step[0]} at step 0, fewest {per_step[low]} at step {low}, {per_step[-1]} at the end")

# %%
fig, ax = plt.subplots(figsize=(5.5, 3))
for name, (_, per_step, _) in token_runs.items():
    ax.plot(per_step, label=name)
ax.set(xlabel="step", ylabel="codes chosen in the batch", ylim=(0, 130),
       title="skel's codebook (K = 128) on tiny-encoder tokens")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# At the start most codes are chosen: the tokens point in many directions, and each direction has
# some best-aligned code. Collapse comes with training. The first gradient steps pull every chosen
# code towards the mean of its tokens, out of the cube; a code that has moved out is closer to the
# tokens around it than any code still near the origin, so it takes over their assignments, and a
# code that loses all its tokens receives no more gradient and stays behind: usage falls from
# about 95 codes per batch to about 30 within the first 60 steps, and only some come back later.
# With EMA the chosen codes jump to their means at once and fewer survive; restarts put the
# losers back onto tokens and keep the codebook in use. So on real tokens the silent failure is
# not a bad start but the first steps of training: watch `used_codes` and `perplexity` from step
# one (notebook 05 plots them).

# %% [markdown]
# ## 12 · `skel`'s VQ against the derivation
#
# On one batch of tokens: the indices are the nearest codes, the output is the straight-through
# $z_q$ (value $e_{k^*}$, gradient the identity), and the terms are the codebook and commitment
# distances, means over tokens and dimensions (`reduction="mean"`, the default of `build_latent`;
# section 13 for `"sum"`). The terms come back unweighted; the module's `weights` dict carries the
# paper's $\beta = 0.25$ for the commitment term.

# %%
torch.manual_seed(seed)
vq = build_latent("vq", 8, codebook_size=32).train()
with torch.no_grad():
    vq.codebook.normal_(generator=g)  # spread the codes out so that many are used
tokens = torch.randn(2, 8, 3, 12, generator=g, requires_grad=True)  # (N, D, T', V')
z_out, terms, stats = vq(tokens)
flat = tokens.detach().permute(0, 2, 3, 1).reshape(-1, 8)  # one row per token
idx = nearest_code(flat, vq.codebook.detach())
e_star = vq.codebook.detach()[idx].view(2, 3, 12, 8).permute(0, 3, 1, 2)
cmp("z_out = nearest code", z_out, e_star)
cmp("codebook term", terms["codebook"], F.mse_loss(e_star, tokens.detach()))
cmp("commit term", terms["commit"], F.mse_loss(tokens.detach(), e_star))
print("loss weights:", vq.weights)
cmp("perplexity", stats["perplexity"], perplexity(idx, 32))
cmp("used codes", stats["used_codes"], torch.tensor(float(torch.unique(idx).numel())))
w = torch.randn(z_out.shape, generator=g)
(w * z_out).sum().backward()
cmp("straight-through grad", tokens.grad, w)

# %% [markdown]
# ## 13 · Sum or mean: what $\beta$ means in the pre-training loss
#
# Take one sample whose loss counts $P$ coordinates (3 per masked joint of its present persons)
# and $K$ latent vectors (the visible tokens of its present persons), each of $D$ dimensions. Write
# $S = \sum \|x - \hat x\|^2$ over the $P$ coordinates, $\mathrm{KL}_s$ for the KL summed over
# the latent dims and the $K$ tokens, and $Q_s$ for a VQ term summed over the $K$ tokens and
# $D$ dims. The pre-training model's option `loss_reduction` picks one of two losses per sample:
#
# | | reconstruction | VAE | VQ |
# |---|---|---|---|
# | `"sum"` (the paper's $\|x - \hat x\|^2$, the default) | $S$ | $\beta\,\mathrm{KL}_s$ | $Q_s$ terms |
# | `"mean"` (per coordinate, per token; before issue 14) | $S/P$ | $\beta\,\mathrm{KL}_s/K$ | $Q_s/(KD)$ terms |
#
# **VAE.** The negative ELBO with a Gaussian decoder of noise $\sigma$ is $S/(2\sigma^2) + \mathrm{KL}_s$;
# times $2\sigma^2$ (which does not move the minimum) it is $S + 2\sigma^2\,\mathrm{KL}_s$. With
# `"sum"` the loss has this form with $\beta = 2\sigma^2$: $\beta = 0.005$ means
# $\sigma = \sqrt{\beta/2} = 0.05$ m, a decoder that expects 5 cm errors per coordinate. With
# `"mean"`, multiply the loss by $P$ to get the same form, $S + \beta\frac{P}{K}\mathrm{KL}_s$: the
# effective weight is $\beta_{\text{eff}} = \beta P/K$ and $\sigma = \sqrt{\beta P / (2K)}$. At the paper's
# shape ($T = 120$, $V = 25$, $M_t = M_j = 0.4$, one person) $P = 3(3000 - 1080) = 5760$ and
# $K = 1080$: $\beta_{\text{eff}} = 0.0267$, $\sigma = 0.115$ m. So runs with `"mean"` charged
# each nat of KL 5.3 times more, against the reconstruction, than the same $\beta$ does with
# `"sum"`: they assumed a decoder noise of 11.5 cm instead of 5 cm, and by section 4 a larger
# assumed noise pushes towards posterior collapse.
#
# **VQ.** There is no noise to read off (the VQ-VAE's KL is the constant $\log K$), only a balance:
# going from `"mean"` to `"sum"` multiplies the codebook and commitment terms, relative to the
# reconstruction, by $KD/P$: $1080 \cdot 256 / 5760 = 48$ at the paper's shape, with $D = 256$
# channels out of the `paper` encoder.
#
# `skel.models.pretrain.effective_noise(reduction, beta, P, K)` gives $\beta_{\text{eff}}$ and
# $\sigma$. Below we check it against two `tiny` pre-training models that differ only in
# `loss_reduction`: same weights, same mask, same noise, so the ratio of their reported terms is
# exactly the ratio of the reductions.

# %%
clip_pair = torch.stack([clip_feed[i][0] for i in (0, 1)])  # (2, C, 24, V, M): one-person clips, second person all zero
T_c, V_c = clip_pair.shape[2], clip_pair.shape[3]
tk_c, vk_c = kept_counts(T_c, V_c, 0.4, 0.4)
P_c, K_c = 3 * (T_c * V_c - tk_c * vk_c), tk_c * vk_c  # per sample: masked coordinates, visible tokens
terms_by = {}
for latent in ("vae", "vq"):
    for reduction in ("sum", "mean"):
        torch.manual_seed(seed)
        model = build_pretrain_model(latent, "tiny", num_frames=T_c, loss_reduction=reduction).train()
        with torch.no_grad():
            terms_by[latent, reduction], recon_c, _ = model(clip_pair, generator=torch.Generator().manual_seed(seed))
        terms_by[latent, reduction]["recon_grid"] = recon_c
        if latent == "vae":
            beta = model.latent.weights["kl"]  # the paper's 0.005
ratio = {k: terms_by["vae", "sum"][k] / terms_by["vae", "mean"][k] for k in ("recon", "kl")}
print(f"per sample: P = {P_c} counted coordinates, K = {K_c} visible tokens (T = {T_c}, T_k = {tk_c}, V_k = {vk_c})")
print(f"sum/mean ratios: recon {ratio['recon']:.1f}, kl {ratio['kl']:.1f}, "
      f"codebook {terms_by['vq', 'sum']['codebook'] / terms_by['vq', 'mean']['codebook']:.1f}")

# %%
cmp("same forward pass", terms_by["vae", "sum"]["recon_grid"], terms_by["vae", "mean"]["recon_grid"])
cmp("recon: (sum/mean) / P", ratio["recon"] / P_c, torch.tensor(1.0))
cmp("kl: (sum/mean) / K", ratio["kl"] / K_c, torch.tensor(1.0))
cmp("beta_eff of mean", beta * ratio["recon"] / ratio["kl"], torch.tensor(effective_noise("mean", beta, P_c, K_c)["beta"]))
cmp("VQ: (sum/mean) / (K*D)", terms_by["vq", "sum"]["commit"] / terms_by["vq", "mean"]["commit"]
    / (K_c * ENCODER_PRESETS["tiny"]["blocks"][-1][1]), torch.tensor(1.0))
tk_p, vk_p = kept_counts(120, 25, 0.4, 0.4)
P_p, K_p = 3 * (120 * 25 - tk_p * vk_p), tk_p * vk_p
for reduction in ("sum", "mean"):
    eff = effective_noise(reduction, 0.005, P_p, K_p)
    print(f"paper shape, loss_reduction={reduction!r}: beta 0.005 -> beta_eff {eff['beta']:.4f}, decoder sigma {eff['sigma']:.3f} m")
print(f"paper shape, VQ terms relative to the reconstruction, sum over mean: K*D/P = {K_p * 256 / P_p:g}")

# %% [markdown]
# ## Summary
#
# * The VAE loss is the negative ELBO: reconstruction plus $\beta\,$KL, with a closed-form KL for
#   diagonal Gaussians (checked by Monte Carlo) and the reparameterisation
#   $z = \mu + \sigma\varepsilon$ to differentiate through the sample. $\beta$ moves the model
#   along a rate-distortion curve; too large a $\beta$ (a decoder noise above the data's spread)
#   ends in posterior collapse, with a KL near zero.
# * The VQ latent is a nearest-neighbour lookup with a straight-through gradient, plus a codebook
#   term (moves codes) and a commitment term (moves the encoder).
# * Codebook collapse is silent: watch perplexity and used codes. From `skel`'s $\pm 1/K$
#   initialisation most codes are chosen at first and the collapse happens in the first training
#   steps; EMA updates move used codes fast, restarts revive dead ones.
# * $\beta$ means a decoder noise only together with the reduction: $\sigma = \sqrt{\beta/2}$ with
#   `loss_reduction="sum"` (0.05 m for the paper's 0.005), $\sqrt{\beta P/(2K)}$ with `"mean"`;
#   the reduction also sets the weight of the VQ terms ($KD/P$ times heavier with `"sum"`).
#
# ## Exercises
#
# Write your answer into the variable of the cell below each exercise, then run the checking cell
# after it. The checker (`skel.notebook.check`) computes the true value with `skel`, independently
# of your answer, and prints `correct`, `not yet: expected ...`, or `not answered yet` (for
# `None`). The answers come filled in, so that CI checks them against `skel` on every run: set
# them to `None` before you start. A worked solution is folded under each exercise.

# %% [markdown]
# **Exercise 1.** A one-dimensional posterior has $\mu = 1$ and $\sigma^2 = 0.5$. What is its KL
# to $\mathcal{N}(0, 1)$, in nats?
#
# <details><summary>Solution</summary>
#
# $\frac12(\mu^2 + \sigma^2 - 1 - \log\sigma^2) = \frac12(1 + 0.5 - 1 + 0.693) = 0.597$.
# </details>

# %%
ex1_kl = 0.597

# %%
check("Exercise 1 (KL)", ex1_kl, GaussianLatent.kl_per_element(torch.tensor(1.0), torch.tensor(0.5).log()).item())

# %% [markdown]
# **Exercise 2.** Set $\beta = 0$ and train the toy VAE of section 4 twice as long
# (`2 * vae_steps` steps). Does its KL end higher or lower than after `vae_steps` steps? Answer
# `"higher"` or `"lower"`.
#
# <details><summary>Solution</summary>
#
# Higher. With $\beta = 0$ nothing charges for the rate, and every bit of posterior noise costs
# reconstruction error, so training keeps shrinking $\sigma$ (and spreading $\mu$): the KL grows
# without bound, by about one nat per doubling of the steps here. A $\beta = 0$ "VAE" is a plain
# autoencoder whose KL you should not read as a rate.
# </details>

# %%
ex2_direction = "higher"

# %%
kl_short = train_toy_vae(0.0, vae_steps, seed)[1]
kl_long = train_toy_vae(0.0, 2 * vae_steps, seed)[1]
check("Exercise 2 (KL with twice the steps)", ex2_direction, "higher" if kl_long > kl_short else "lower")

# %% [markdown]
# **Exercise 3.** An older run trained SkeletonMVAE with `loss_reduction="mean"`, $\beta = 0.005$,
# at the paper's shape ($T = 120$, $V = 25$, $M_t = M_j = 0.4$, token latents, one person). Which
# decoder noise $\sigma$ (in metres) did that $\beta$ imply? And with `"sum"`?
#
# <details><summary>Solution</summary>
#
# $P = 3(3000 - 72 \cdot 15) = 5760$, $K = 72 \cdot 15 = 1080$,
# $\sigma = \sqrt{0.005 \cdot 5760 / (2 \cdot 1080)} = 0.115$ m; with `"sum"`,
# $\sigma = \sqrt{0.005/2} = 0.05$ m.
# </details>

# %%
ex3_sigma_mean = 0.115
ex3_sigma_sum = 0.05

# %%
tk3, vk3 = kept_counts(120, 25, 0.4, 0.4)
check("Exercise 3 (sigma mean, sigma sum)", (ex3_sigma_mean, ex3_sigma_sum),
      (effective_noise("mean", 0.005, 3 * (120 * 25 - tk3 * vk3), tk3 * vk3)["sigma"], effective_noise("sum", 0.005)["sigma"]))

# %% [markdown]
# Next, **04_sttformer**: the encoder and decoder blocks these latents sit between.
