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


# ---- issue 14: reductions, present rows, the per-sample VAE, fp32 distances ------------------------
def _kl_by_hand(lat, z_row):
    """KL of one row (D, T', V') of a token VAE, from its 1x1 conv weights and torch.distributions."""
    w = lat.to_stats.weight[:, :, 0, 0]
    stats = torch.einsum("kd,dtv->ktv", w, z_row) + lat.to_stats.bias[:, None, None]
    mu, logvar = stats[: lat.latent_dim], stats[lat.latent_dim:].clamp(-30, 20)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    return torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum()


def test_vae_kl_counts_present_rows_only_in_both_reductions():
    torch.manual_seed(0)
    z = torch.randn(2, 8, 2, 3)  # rows: one sample, person 0 present, person 1 all zeros
    present = torch.tensor([True, False])
    for reduction, per_row_count in (("sum", 1), ("mean", 6)):  # "mean": over the row's 6 tokens
        torch.manual_seed(0)
        lat = build_latent("vae", 8, latent_dim=3, reduction=reduction).eval()
        expected = _kl_by_hand(lat, z[0]).detach() / per_row_count
        _, terms, _ = lat(z, present=present, num_samples=1)
        torch.testing.assert_close(terms["kl"], expected)
        # the empty row's features do not matter
        moved = z.clone()
        moved[1] += 5.0
        torch.testing.assert_close(lat(moved, present=present, num_samples=1)[1]["kl"], expected)
    # "sum" divides by the samples: two samples of one present person each -> the mean of their KLs
    torch.manual_seed(0)
    lat = build_latent("vae", 8, latent_dim=3, reduction="sum")
    both = (_kl_by_hand(lat, z[0]) + _kl_by_hand(lat, z[1])) / 2
    torch.testing.assert_close(lat(z, num_samples=2)[1]["kl"], both)
    # "mean" with every row present is the old per-token mean (GaussianLatent.kl)
    torch.manual_seed(0)
    lat = build_latent("vae", 8, latent_dim=3)
    torch.testing.assert_close(lat(z)[1]["kl"], GaussianLatent.kl(*lat.distribution(z)))


def test_sample_vae_kl_counts_present_rows_only():
    torch.manual_seed(0)
    z = torch.randn(4, 8, 2, 3)  # 2 samples x 2 persons; person 1 of sample 0 is all zeros
    present = torch.tensor([True, False, True, True])
    for reduction, per_row_count in (("sum", 2), ("mean", 3)):  # sum: / samples; mean: / present rows
        torch.manual_seed(0)
        lat = build_latent("vae", 8, grid=(2, 3), latent_dim=3, vae_mode="sample", reduction=reduction).eval()
        mu, logvar = lat.distribution(z)
        assert mu.shape == logvar.shape == (4, 3)  # ONE latent vector per person row
        kl_rows = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
        expected = kl_rows[present].sum().detach() / per_row_count
        _, terms, _ = lat(z, present=present, num_samples=2)
        torch.testing.assert_close(terms["kl"], expected)
        moved = z.clone()
        moved[1] += 5.0  # the empty row's features do not matter
        torch.testing.assert_close(lat(moved, present=present, num_samples=2)[1]["kl"], expected)


def test_vq_terms_and_usage_count_present_rows_only():
    vq = VectorQuantizer(4, codebook_size=8)
    codes = vq.codebook.detach()
    # present row: its 3 tokens sit near codes 0, 0, 1; the empty row's near 2, 3, 4
    off = torch.tensor([[0.01, 0.0, 0.0, 0.0], [0.0, -0.02, 0.0, 0.0], [0.0, 0.0, 0.03, 0.0]])
    row0 = codes[[0, 0, 1]] + off * codes.abs().min()
    row1 = codes[[2, 3, 4]].clone()
    z = torch.stack([row0, row1]).permute(0, 2, 1)[:, :, None, :]  # (2, 4, 1, 3)
    present = torch.tensor([True, False])
    nearest = torch.cdist(row0.double(), codes.double()).min(1).values.pow(2)  # (3,)
    for reduction, expected in (("sum", nearest.sum()), ("mean", nearest.sum() / (3 * 4))):
        vq.reduction = reduction
        out, terms, stats = vq(z, present=present, num_samples=1)
        torch.testing.assert_close(terms["codebook"].double(), expected, rtol=1e-5, atol=1e-12)
        torch.testing.assert_close(terms["commit"].double(), expected, rtol=1e-5, atol=1e-12)
        # usage of the present row only: codes 0, 0, 1 -> p = (2/3, 1/3)
        assert float(stats["used_codes"]) == 2
        perplexity = math.exp(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
        assert float(stats["perplexity"]) == pytest.approx(perplexity, rel=1e-6)
    # all rows present: the old means (F.mse_loss over tokens and dims)
    vq.reduction = "mean"
    out, terms, stats = vq(z)
    tokens = z.permute(0, 2, 3, 1).reshape(-1, 4)
    quantized = out.permute(0, 2, 3, 1).reshape(-1, 4)
    torch.testing.assert_close(terms["codebook"], torch.nn.functional.mse_loss(quantized, tokens))
    assert float(stats["used_codes"]) == 5


def test_vq_ema_and_restarts_use_present_tokens_only():
    g = torch.Generator().manual_seed(0)
    vq = VectorQuantizer(4, codebook_size=4, ema=True, ema_decay=0.5, restart_dead=True, restart_after=1)
    z = torch.cat([torch.full((1, 4, 1, 3), 2.0), torch.full((1, 4, 1, 3), -7.0)])
    present = torch.tensor([True, False])
    for _ in range(20):
        vq(z, g, present=present, num_samples=1)
    # every code is either the present tokens' value (EMA) or a restart on a present token: none at -7
    assert torch.allclose(vq.codebook, torch.full((4, 4), 2.0), atol=1e-3)
    # no present token at all: nothing moves
    before = vq.codebook.clone()
    vq(z, g, present=torch.tensor([False, False]), num_samples=1)
    assert torch.equal(vq.codebook, before)


def test_quantize_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    k, d = 128, 64
    vq = VectorQuantizer(d, codebook_size=k)
    e = vq.codebook.detach()  # uniform in +-1/K
    g = torch.Generator().manual_seed(0)
    i = torch.randint(0, k, (400,), generator=g)
    j = (i + 1 + torch.randint(0, k - 1, (400,), generator=g)) % k
    sign = torch.where(torch.rand(400, generator=g) < 0.5, -1.0, 1.0)
    # tokens 0.1 % of the code gap off the midpoint of codes i and j: the nearest is i (sign +) or j
    tokens = (e[i] + e[j]) / 2 + 1e-3 * sign[:, None] * (e[i] - e[j])
    expected = torch.where(sign > 0, i, j)
    assert torch.equal(torch.cdist(tokens.double(), e.double()).argmin(1), expected)

    def bf16_distances(t):  # what quantize computed before: the matrix product in bf16 under autocast
        return (t.pow(2).sum(1, keepdim=True) - 2.0 * t @ e.t() + e.pow(2).sum(1)[None]).argmin(1)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        flipped = int((bf16_distances(tokens) != expected).sum())
        got = vq.quantize(tokens)
        out, terms, _ = vq(tokens.t().reshape(1, d, 20, 20))
    assert flipped > 0  # the case is one bf16 gets wrong
    assert torch.equal(got, expected) and torch.equal(vq.quantize(tokens), expected)
    # the module's losses are float32 and equal the fp32 computation
    assert terms["codebook"].dtype == torch.float32
    ref_out, ref_terms, _ = vq(tokens.t().reshape(1, d, 20, 20))
    torch.testing.assert_close(terms["codebook"], ref_terms["codebook"])
    assert torch.equal(out, ref_out)


def test_sample_vae_shapes_parameters_and_window_check():
    from skel.models.latent import SampleGaussianLatent

    dim, grid, latent_dim, channels = 16, (2, 18), 5, 3
    lat = build_latent("vae", dim, grid=grid, latent_dim=latent_dim, vae_mode="sample", reduction="sum")
    assert isinstance(lat, SampleGaussianLatent) and lat.out_dim == channels
    feats, out = dim * 2 * 18, channels * 2 * 18
    assert sum(p.numel() for p in lat.parameters()) == 2 * (feats * latent_dim + latent_dim) + latent_dim * out + out
    torch.manual_seed(0)
    z = torch.randn(4, dim, *grid)
    y, terms, _ = lat(z, torch.Generator().manual_seed(0), present=torch.tensor([True, True, True, False]),
                      num_samples=2)
    assert y.shape == (4, channels, *grid)
    # KL by hand: one latent per row, present rows summed, divided by the 2 samples
    mu, logvar = lat.to_mu(z.flatten(1)), lat.to_logvar(z.flatten(1))
    q = torch.distributions.Normal(mu[:3], (0.5 * logvar[:3]).exp())
    by_hand = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum() / 2
    torch.testing.assert_close(terms["kl"], by_hand)
    lat.eval()
    torch.testing.assert_close(lat(z)[0], lat.from_latent(mu).view(4, channels, *grid))
    with pytest.raises(ValueError, match=r"built for a visible map .*\(B, 16, 2, 18\), got \(4, 16, 3, 18\)"):
        lat(torch.randn(4, dim, 3, 18))
    with pytest.raises(ValueError, match="needs grid"):
        build_latent("vae", dim, vae_mode="sample")
    with pytest.raises(ValueError, match="vae_mode must be one of token, sample"):
        build_latent("vae", dim, vae_mode="person")
    with pytest.raises(ValueError, match="loss_reduction must be one of sum, mean"):
        build_latent("vq", dim, reduction="median")
