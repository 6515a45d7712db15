import math

import pytest
import torch

from skel.models.encoder import Encoder
from skel.models.latent import GaussianLatent, VectorQuantizer, build_latent


def test_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    lat = build_latent("vae", 16, latent_dim=5)
    z = torch.randn(2, 16, 2, 3)
    mu, logvar = lat.distribution(z)
    kl = GaussianLatent.kl(mu, logvar)
    # Monte Carlo: E_q[log q(z) - log p(z)], per token summed over dims, averaged over tokens
    g = torch.Generator().manual_seed(1)
    s = 20000
    std = (0.5 * logvar).exp()
    eps = torch.randn((s,) + mu.shape, generator=g)
    zs = mu + std * eps
    log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(2)
    log_p = (-0.5 * zs.pow(2) - 0.5 * math.log(2 * math.pi)).sum(2)
    mc = (log_q - log_p).mean()
    assert kl.item() > 0
    assert abs(mc.item() - kl.item()) < 0.03 * kl.item() + 0.01


def test_vae_sampling_train_vs_eval_and_shapes():
    lat = build_latent("vae", 8)
    assert lat.out_dim == 25 and lat.weights == {"kl": 0.005}
    z = torch.randn(3, 8, 2, 6)
    a, terms, _ = lat(z, torch.Generator().manual_seed(0))
    b, _, _ = lat(z, torch.Generator().manual_seed(0))
    c, _, _ = lat(z, torch.Generator().manual_seed(1))
    assert a.shape == (3, 25, 2, 6) and torch.equal(a, b) and not torch.equal(a, c)
    lat.eval()
    mu, _ = lat.distribution(z)
    assert torch.equal(lat(z)[0], mu)
    # the clamp keeps exp finite for huge pre-activations
    _, logvar = lat.distribution(1e6 * z)
    assert logvar.max() <= 20 and logvar.min() >= -30


def test_vq_indices_codes_round_trip_and_losses():
    torch.manual_seed(0)
    vq = build_latent("vq", 16, codebook_size=32)
    codes = vq.codebook.detach()
    idx = torch.randint(0, 32, (50,))
    assert torch.equal(vq.quantize(vq.lookup(idx)), idx)
    z = torch.randn(2, 16, 3, 5)
    out, terms, stats = vq(z)
    tokens = z.permute(0, 2, 3, 1).reshape(-1, 16)
    nearest = torch.cdist(tokens, codes).argmin(1)
    torch.testing.assert_close(out.permute(0, 2, 3, 1).reshape(-1, 16), codes[nearest])
    assert terms["codebook"] >= 0 and terms["commit"] >= 0
    assert torch.allclose(terms["codebook"], terms["commit"])  # same value, different gradients
    assert 1 <= stats["used_codes"] <= 30
    assert 1 <= stats["perplexity"] <= stats["used_codes"] + 1e-4


def test_vq_straight_through_reaches_encoder():
    torch.manual_seed(0)
    enc = Encoder(3, 5, [(8, 16, 4)])
    vq = build_latent("vq", 16, codebook_size=8)
    x = torch.randn(2, 3, 6, 5, 1)
    z, _ = enc(x)
    out, terms, _ = vq(z)
    # the reconstruction path alone (no commitment term) must give encoder gradients
    out.pow(2).sum().backward()
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0
    # the codebook loss moves the codebook, the commitment loss only the encoder
    vq.zero_grad()
    z, _ = enc(x)
    _, terms, _ = vq(z)
    terms["codebook"].backward()
    assert vq.codebook.grad.abs().sum() > 0


def test_vq_dead_code_restart_revives_codes():
    g = torch.Generator().manual_seed(0)
    vq = VectorQuantizer(4, codebook_size=16, restart_dead=True, restart_after=3)
    # encoder outputs far from every code but near one another: one code wins, the rest die
    z = 5.0 + 0.1 * torch.randn(2, 4, 2, 8, generator=g)
    used = []
    for _ in range(3):
        _, _, stats = vq(z, g)
        used.append(int(stats["used_codes"]))
    assert used[0] == 1
    # after restart_after steps the dead codes were reset to encoder outputs: more codes get used
    _, _, stats = vq(z, g)
    assert int(stats["used_codes"]) > 1
    near = torch.cdist(vq.codebook.detach(), z.permute(0, 2, 3, 1).reshape(-1, 4)).min(1).values
    assert int((near < 1e-2).sum()) == 15  # the 15 dead codes now sit on encoder outputs


def test_vq_ema_moves_codebook_to_its_tokens():
    vq = VectorQuantizer(4, codebook_size=4, ema=True, ema_decay=0.5)
    assert not any(p is vq.codebook for p in vq.parameters())
    z = torch.full((1, 4, 1, 3), 2.0)
    before = vq.codebook.clone()
    for _ in range(20):
        out, terms, _ = vq(z)
    idx = vq.quantize(z.permute(0, 2, 3, 1).reshape(-1, 4))[0]
    assert torch.allclose(vq.codebook[idx], torch.full((4,), 2.0), atol=1e-3)
    others = [i for i in range(4) if i != idx]
    # codes that were never chosen are not pulled toward the tokens
    assert (vq.codebook[others] - 2.0).abs().min() > 1.5
    assert not torch.equal(vq.codebook[idx], before[idx])


def test_build_latent_rejects_unknown():
    with pytest.raises(ValueError, match="codebook_size"):
        build_latent("vae", 8, codebook_size=3)
    with pytest.raises(ValueError, match="unknown latent"):
        build_latent("gmm", 8)


def test_logvar_init_sets_the_starting_sigma_and_bad_values_are_refused():
    torch.manual_seed(0)
    default = build_latent("vae", 16, latent_dim=4)
    torch.manual_seed(0)
    low = build_latent("vae", 16, latent_dim=4, logvar_init=-4.0)
    z = torch.randn(2, 16, 3, 5)
    mu_d, logvar_d = default.distribution(z)
    mu, logvar = low.distribution(z)
    # only the log sigma^2 bias moves: mu is the same map, and log sigma^2 shifts by (-4 - old bias) per dim
    torch.testing.assert_close(mu, mu_d)
    old_bias = default.to_stats.bias[4:].detach().view(1, 4, 1, 1)
    torch.testing.assert_close(logvar, logvar_d - old_bias - 4.0)
    # sigma near exp(-2) = 0.135: samples stay close to mu (default sigma is near 1)
    low.train()
    spread = (low(z, torch.Generator().manual_seed(0))[0] - mu).std().item()
    assert 0.08 < spread < 0.25
    for bad in (float("nan"), 25.0, -31.0):
        with pytest.raises(ValueError, match="logvar_init must be a finite number in"):
            build_latent("vae", 16, logvar_init=bad)
