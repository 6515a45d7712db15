import json
import math

import pytest
import torch
from torch import nn

from skel.models.classifier import build_classifier
from skel.models.cost import count_flops, count_parameters
from skel.models.latent import GaussianLatent
from skel.models.masking import random_masking
from skel.models.pretrain import PretrainModel, build_pretrain_model, effective_noise

T = 24  # 4 tuples; masked: 12 frames = 2 tuples


def batch(n=3, t=T, seed=0, empty_second=(1,)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, t, 25, 2, generator=g)
    for i in empty_second:
        x[i, ..., 1] = 0  # one-person samples
    return x


@pytest.mark.parametrize("latent", ["none", "vae", "vq"])
def test_forward_contract_and_config_round_trip(latent):
    torch.manual_seed(0)
    model = build_pretrain_model(latent, "tiny", num_frames=T)
    x = batch()
    losses, recon, mask = model(x, generator=torch.Generator().manual_seed(1))
    assert recon.shape == x.shape and mask.shape == (3, T, 25) and mask.dtype == torch.bool
    assert int((~mask).sum()) == 3 * 12 * 15
    assert losses["loss"].requires_grad
    assert all(not v.requires_grad for k, v in losses.items() if k != "loss")
    expected_keys = {"none": set(), "vae": {"kl"}, "vq": {"codebook", "commit", "perplexity", "used_codes"}}
    assert set(losses) == {"loss", "recon"} | expected_keys[latent]
    weights = model.latent.weights
    total = losses["recon"] + sum(w * losses[k] for k, w in weights.items())
    torch.testing.assert_close(losses["loss"].detach(), total)
    # same generator seed -> same mask and (in eval) same output
    model.eval()
    a = model(x, generator=torch.Generator().manual_seed(5))
    b = model(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[2], b[2]) and torch.equal(a[1], b[1])
    cfg = json.loads(json.dumps(model.config))
    again = build_pretrain_model(**cfg)
    assert again.config == model.config
    assert again.load_state_dict(model.state_dict()) is not None


def test_unknown_override_names_key():
    with pytest.raises(ValueError, match=r"codebook_sizee.*accepted"):
        build_pretrain_model("vq", "tiny", codebook_sizee=64)
    with pytest.raises(ValueError, match="latent_dim"):
        build_pretrain_model("none", "tiny", latent_dim=8)
    with pytest.raises(ValueError, match="x has V=20"):
        build_pretrain_model("none", "tiny")(torch.zeros(1, 3, 24, 20, 2))


@pytest.mark.parametrize("latent, options", [
    ("none", {"loss_reduction": "mean"}), ("vae", {"loss_reduction": "mean", "vae_mode": "token"}),
    ("vq", {"loss_reduction": "mean"}), ("none", {}), ("vae", {}), ("vq", {})])  # {}: the paper's sum, per-sample VAE
def test_few_steps_lower_reconstruction_loss(latent, options):
    torch.manual_seed(0)
    model = build_pretrain_model(latent, "tiny", num_frames=12, **options)
    g = torch.Generator().manual_seed(2)
    # smooth motion, so the masked joints are predictable from the visible ones
    t = torch.linspace(0, 3, 12)
    base = torch.randn(2, 3, 1, 25, 2, generator=g)
    x = base + 0.5 * torch.sin(t[None, None, :, None, None] + base)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def recon_loss():
        return model(x, generator=torch.Generator().manual_seed(9))[0]["recon"].item()

    first = recon_loss()
    # the zero-initialised head starts at the all-zeros prediction, so `first` is the error of
    # that trivial predictor; learning must beat it clearly
    masked = model(x, generator=torch.Generator().manual_seed(9))[2][..., None].expand(-1, -1, -1, 2)  # (N, T, V, M)
    if model.loss_reduction == "mean":  # per coordinate of the masked joints
        torch.testing.assert_close(first, ((x ** 2).mean(1)[masked]).mean().item())
    else:  # per sample: the squared norm over its masked joints' coordinates, averaged over the N samples
        torch.testing.assert_close(first, ((x ** 2).sum(1)[masked]).sum().item() / x.shape[0])
    for step in range(30):  # the per-sample VAE's 25-number bottleneck learns the slowest (0.79 after 30)
        opt.zero_grad()
        losses, _, _ = model(x, generator=torch.Generator().manual_seed(100 + step))
        losses["loss"].backward()
        opt.step()
    assert recon_loss() < 0.85 * first


def test_masked_loss_ignores_visible_joints_and_empty_persons():
    torch.manual_seed(0)
    model = build_pretrain_model("none", "tiny", num_frames=T, loss_reduction="mean")
    x = batch()
    _, recon, mask = model(x, generator=torch.Generator().manual_seed(3))
    recon = recon.detach()
    base = model.reconstruction_loss(recon, x, mask)
    # the loss by hand: masked joints of non-empty persons
    present = torch.ones(3, 2, dtype=torch.bool)
    present[1, 1] = False
    w = (mask[..., None] & present[:, None, None, :]).float()
    by_hand = (((recon - x) ** 2).mean(1) * w).sum() / w.sum()
    torch.testing.assert_close(base, by_hand)
    # perturbing visible joints changes nothing
    bumped = recon.clone()
    bumped.permute(0, 2, 3, 4, 1)[~mask] += 10.0
    torch.testing.assert_close(model.reconstruction_loss(bumped, x, mask), base)
    # perturbing the empty person changes nothing
    bumped = recon.clone()
    bumped[1, ..., 1] += 10.0
    torch.testing.assert_close(model.reconstruction_loss(bumped, x, mask), base)
    # perturbing a masked joint of a present person does
    bumped = recon.clone()
    i, t, v = mask.nonzero()[0].tolist()
    bumped[i, :, t, v, 0] += 10.0
    assert model.reconstruction_loss(bumped, x, mask) > base
    # loss_on="all" counts visible joints too
    model_all = build_pretrain_model("none", "tiny", num_frames=T, loss_on="all", loss_reduction="mean")
    bumped = recon.clone()
    bumped.permute(0, 2, 3, 4, 1)[~mask] += 10.0
    assert model_all.reconstruction_loss(bumped, x, mask) > model_all.reconstruction_loss(recon, x, mask)


def test_motion_target_scores_frame_differences_of_masked_joints():
    torch.manual_seed(0)
    model = build_pretrain_model("none", "tiny", num_frames=T, target="motion", loss_reduction="mean")
    assert model.config["target"] == "motion"
    x = batch()
    _, recon, mask = model(x, generator=torch.Generator().manual_seed(3))
    recon = recon.detach()
    # by hand, frame by frame: recon[:, :, t] predicts x[:, :, t + 1] - x[:, :, t] at masked joints of present persons
    present = x.ne(0).flatten(1, 3).any(1)
    num = den = 0.0
    for t in range(T - 1):
        w = (mask[:, t, :, None] & present[:, None, :]).float()  # (N, V, M)
        err = ((recon[:, :, t] - (x[:, :, t + 1] - x[:, :, t])) ** 2).mean(1)
        num, den = num + (err * w).sum(), den + w.sum()
    torch.testing.assert_close(model.reconstruction_loss(recon, x, mask), num / den)
    # the last frame has no successor: its prediction is never scored
    bumped = recon.clone()
    bumped[:, :, -1] += 10.0
    torch.testing.assert_close(model.reconstruction_loss(bumped, x, mask), num / den)
    with pytest.raises(ValueError, match="target"):
        build_pretrain_model("none", "tiny", target="velocity")


def test_skip_empty_persons_runs_present_rows_only():
    torch.manual_seed(0)
    # a Xavier head, so that a present person's reconstruction is non-zero from the start
    model = build_pretrain_model("vq", "tiny", num_frames=T, skip_empty_persons=True, decoder_head_init="xavier")
    x = batch(empty_second=(0, 2))
    losses, recon, mask = model(x, generator=torch.Generator().manual_seed(0))
    assert recon.shape == x.shape
    assert torch.equal(recon[0, ..., 1], torch.zeros_like(recon[0, ..., 1]))
    assert recon[1, ..., 1].abs().sum() > 0
    # 4 of 6 person rows ran: 4 x (2 tuples x 6*15 positions) tokens went through the codebook
    z, rows = model.encoder(x, None)
    assert rows.tolist() == [True, False, True, True, True, False] and z.shape[0] == 4
    losses["loss"].backward()


@pytest.mark.parametrize("latent", ["none", "vae", "vq"])
def test_classifier_loads_exactly_the_encoder(latent, tmp_path):
    torch.manual_seed(0)
    pre = build_pretrain_model(latent, "tiny", num_frames=T)
    with torch.no_grad():
        for p in pre.parameters():
            p.add_(torch.randn_like(p))
    clf = build_classifier("tiny", 10, num_frames=T)
    fc_before = {k: v.clone() for k, v in clf.fc.state_dict().items()}
    ckpt = tmp_path / "pre.pt"
    torch.save({"kind": "pretrain", "model": pre.state_dict(), "epoch": 3}, ckpt)
    for src in (ckpt, str(ckpt), {"model": pre.state_dict()}, pre.state_dict(), pre.encoder.state_dict()):
        clf2 = build_classifier(**clf.config)
        clf2.load_state_dict(clf.state_dict())
        clf2.load_encoder(src)
        for k, v in pre.encoder.state_dict().items():
            assert torch.equal(clf2.encoder.state_dict()[k], v), k
        for k, v in clf2.fc.state_dict().items():
            assert torch.equal(v, fc_before[k])
    x = batch()
    assert clf2(x).shape == (3, 10) and clf2.features(x).shape == (3, 64)


def test_load_encoder_errors(tmp_path):
    clf = build_classifier("tiny", 5, num_frames=T)
    small = build_pretrain_model("none", "small", num_frames=T)
    with pytest.raises(ValueError, match=r"missing keys .*blocks\.0"):
        clf.load_encoder({"model": {"encoder.foo": torch.zeros(1)}})
    with pytest.raises(ValueError, match=r"unexpected keys \['blocks\.2"):
        clf.load_encoder(small.state_dict())
    wide = build_classifier("tiny", 5, num_joints=20, num_frames=T)
    with pytest.raises(ValueError, match=r"shapes differ.*att0: \(1, 3, 120, 120\) vs \(1, 3, 150, 150\)"):
        clf.load_encoder(wide.encoder.state_dict())
    state = build_pretrain_model("none", "tiny", num_frames=T).state_dict()
    state["encoder.extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        clf.load_encoder(state)
    bad = tmp_path / "broken.pt"
    good = tmp_path / "good.pt"
    torch.save({"model": state}, good)
    bad.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="broken.pt"):
        clf.load_encoder(bad)
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        clf.load_encoder(tmp_path / "nothere.pt")


def test_classifier_pools_over_present_persons_only():
    torch.manual_seed(0)
    clf = build_classifier("tiny", 4, num_frames=T, skip_empty_persons=True).eval()
    x = batch(n=2, empty_second=(0,))
    z, rows = clf.encoder(x)
    per_row = z.mean((2, 3))
    feats = clf.features(x)
    torch.testing.assert_close(feats[0], per_row[0])  # sample 0: its one person
    torch.testing.assert_close(feats[1], per_row[1:3].mean(0))
    # paper behaviour: zero persons run and are averaged in
    clf.encoder.skip_empty_persons = False
    z, rows = clf.encoder(x)
    assert rows.all()
    torch.testing.assert_close(clf.features(x)[0], z[:2].mean((2, 3)).mean(0))


def test_count_flops_and_parameters():
    lin = nn.Linear(8, 4)
    assert count_parameters(lin) == 8 * 4 + 4
    assert count_flops(lin, torch.zeros(5, 8)) == 2 * 5 * 8 * 4
    conv = nn.Conv2d(3, 6, (1, 5), padding=(0, 2))
    assert count_flops(conv, torch.zeros(2, 3, 4, 10)) == 2 * (2 * 4 * 10) * (6 * 3 * 5)


def test_as_coordinates_integrates_one_step_of_motion():
    model = build_pretrain_model("none", "tiny", num_frames=T, target="motion")
    x = batch()
    motion = model.target_of(x)  # the true motion
    recon = torch.cat([motion, torch.zeros_like(x[:, :, :1])], dim=2)  # a perfect motion prediction
    torch.testing.assert_close(model.as_coordinates(recon, x), x)
    coords = build_pretrain_model("none", "tiny", num_frames=T)
    assert coords.as_coordinates(recon, x) is recon


# ---- issue 14: loss reduction, present persons in the latent, the per-sample VAE -------------------
def test_sum_reduction_is_the_per_sample_squared_error():
    torch.manual_seed(0)
    model = build_pretrain_model("none", "tiny", num_frames=T)
    assert model.config["loss_reduction"] == "sum"  # the paper preset
    x = batch()
    _, recon, mask = model(x, generator=torch.Generator().manual_seed(3))
    recon = recon.detach() + 0.1 * torch.randn_like(recon)
    # by hand: per sample, the squared error summed over the masked joints' coordinates of its
    # present persons; then the mean over the 3 samples
    per_sample = []
    for n in range(3):
        s = 0.0
        for p in range(2):
            if not x[n, ..., p].ne(0).any():
                continue
            err = ((recon[n, :, :, :, p] - x[n, :, :, :, p]) ** 2).sum(0)  # (T, V)
            s = s + err[mask[n]].sum()
        per_sample.append(s)
    torch.testing.assert_close(model.reconstruction_loss(recon, x, mask), sum(per_sample) / 3)
    # every sample counting the same coordinates: sum / mean = the counted coordinates per sample
    full = batch(empty_second=())
    mean_model = build_pretrain_model("none", "tiny", num_frames=T, loss_reduction="mean")
    counted = 2 * 3 * (T * 25 - 12 * 15)  # 2 persons x 3 coordinates x masked joints
    ratio = model.reconstruction_loss(recon, full, mask) / mean_model.reconstruction_loss(recon, full, mask)
    assert ratio.item() == pytest.approx(counted, rel=1e-5)


def test_latent_terms_leave_out_empty_persons():
    torch.manual_seed(0)
    x = batch(empty_second=(0, 2))  # rows 1 and 5 are all zeros
    present = torch.tensor([True, False, True, True, True, False])
    for reduction in ("sum", "mean"):
        torch.manual_seed(0)
        model = build_pretrain_model("vae", "tiny", num_frames=T, loss_reduction=reduction, vae_mode="token").eval()
        losses, _, _ = model(x, generator=torch.Generator().manual_seed(4))
        mask = random_masking(3, T, 25, 0.4, 0.4, torch.Generator().manual_seed(4))  # the forward's mask
        z, _ = model.encoder(x, mask)
        mu, logvar = model.latent.distribution(z)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)  # (6, 25, T', V')
        per_row = kl.sum((1, 2, 3))[present]
        expected = per_row.sum() / 3 if reduction == "sum" else per_row.sum() / (4 * z.shape[2] * z.shape[3])
        torch.testing.assert_close(losses["kl"], expected)
    # VQ: usage counts the tokens of the 4 present rows only (training mode: BatchNorm on batch
    # statistics keeps the untrained encoder's outputs near unit scale, where distances are well posed)
    torch.manual_seed(0)
    vq = build_pretrain_model("vq", "tiny", num_frames=T)
    losses, _, _ = vq(x, generator=torch.Generator().manual_seed(4))
    z, _ = vq.encoder(x, random_masking(3, T, 25, 0.4, 0.4, torch.Generator().manual_seed(4)))
    tokens = z.permute(0, 2, 3, 1)[present].reshape(-1, z.shape[1])
    idx = torch.cdist(tokens, vq.latent.codebook.detach()).argmin(1)
    p = torch.bincount(idx, minlength=128).float() / len(idx)
    torch.testing.assert_close(losses["perplexity"], torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
    assert losses["used_codes"] == int((p > 0).sum())
    every = torch.cdist(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), vq.latent.codebook.detach()).argmin(1)
    assert losses["used_codes"] != len(every.unique())  # counting the empty rows would differ
    nearest = torch.cdist(tokens, vq.latent.codebook.detach()).min(1).values.pow(2).sum() / 3
    torch.testing.assert_close(losses["codebook"], nearest, rtol=1e-4, atol=1e-6)


def test_stored_configs_without_the_new_keys_keep_their_old_meaning():
    torch.manual_seed(0)
    new = build_pretrain_model("vae", "tiny", num_frames=T, vae_mode="token")  # the architecture old configs built
    old = {k: v for k, v in new.config.items() if k not in ("loss_reduction", "vae_mode", "sample_channels")}
    legacy = PretrainModel(old)
    assert legacy.loss_reduction == "mean" and isinstance(legacy.latent, GaussianLatent)
    legacy.load_state_dict(new.state_dict())
    mean = build_pretrain_model(**{**new.config, "loss_reduction": "mean"})
    mean.load_state_dict(new.state_dict())
    x = batch()
    a = legacy.eval()(x, generator=torch.Generator().manual_seed(1))[0]
    b = mean.eval()(x, generator=torch.Generator().manual_seed(1))[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_new_options_are_checked():
    for bad, match in (({"loss_reduction": "median"}, r"loss_reduction must be one of 'sum', 'mean', got 'median'"),
                       ({"vae_mode": "person"}, r"vae_mode must be one of 'token', 'sample', got 'person'"),
                       ({"sample_channels": 0}, r"sample_channels must be a positive integer, got 0")):
        with pytest.raises(ValueError, match=match):
            build_pretrain_model("vae", "tiny", num_frames=T, **bad)
    with pytest.raises(ValueError, match=r"vae_mode.*accepted"):
        build_pretrain_model("vq", "tiny", vae_mode="sample")


def test_effective_noise():
    r = effective_noise("sum", 0.005)
    assert r["beta"] == 0.005 and r["sigma"] == pytest.approx(0.05)
    # paper shape, masked joints of one person: P = 3 x (120*25 - 72*15); token latents: K = 72 x 15
    r = effective_noise("mean", 0.005, counted_coordinates=3 * 1920, latent_terms=1080)
    assert r["beta"] == pytest.approx(0.005 * 5760 / 1080)
    assert r["sigma"] == pytest.approx(math.sqrt(0.0133333), rel=1e-5)
    assert effective_noise("mean", 0.005, 5760)["sigma"] == pytest.approx(math.sqrt(14.4))
    # the definition: (mean loss) x P = S + beta_eff KL per sample, with the KL averaged over K
    s, kl, p, k, beta = 2.0, 30.0, 5760, 1080, 0.005
    mean_loss = s / p + beta * kl / k
    assert mean_loss * p == pytest.approx(s + effective_noise("mean", beta, p, k)["beta"] * kl)
    with pytest.raises(ValueError, match="loss_reduction"):
        effective_noise("avg", 0.005)


def test_sample_vae_at_the_paper_shape_has_table_9s_layers():
    torch.manual_seed(0)
    mae = build_pretrain_model("none", "paper", decoder_depth=9)
    mvae = build_pretrain_model("vae", "paper", vae_mode="sample")
    assert mvae.config["decoder_depth"] == mae.config["decoder_depth"] == 9
    # visible map at T = 120, Mt = Mj = 0.4: 256 channels x 12 tuples x (6 x 15) columns
    assert mvae.latent.in_shape == (256, 12, 90)
    feats, out = 256 * 72 * 15, 3 * 72 * 15
    latent = 2 * (feats * 25 + 25) + (25 * out + out)  # two FCs to mu, log sigma^2; one FC back
    assert sum(p.numel() for p in mvae.latent.parameters()) == latent
    # the decoder embeds 3 channels instead of 256
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(mvae) - count(mae) == latent + (3 * 256 + 256) - (256 * 256 + 256)
    assert (count(mvae) - count(mae)) / 1e6 == pytest.approx(13.84, abs=0.01)  # Table 8: +14 M
    assert build_pretrain_model("none", "paper").config["decoder_depth"] == 8  # the preset (issue 14)
    # the pre-training model's default is this reading (Table 8 decides; MSR measured a tie)
    assert build_pretrain_model("vae", "tiny", num_frames=12).config["vae_mode"] == "sample"


@pytest.mark.parametrize("mode", ["token", "sample"])
def test_vae_modes_train_one_step(mode):
    torch.manual_seed(0)
    # a Xavier head: with the zero head, the first step's gradient stops at the decoder's output layer
    model = build_pretrain_model("vae", "tiny", num_frames=T, vae_mode=mode, decoder_head_init="xavier")
    x = batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses, recon, _ = model(x, generator=torch.Generator().manual_seed(0))
    assert recon.shape == x.shape and torch.isfinite(losses["loss"]) and losses["kl"] > 0
    before = {k: v.clone() for k, v in model.latent.state_dict().items()}
    losses["loss"].backward()
    opt.step()
    assert all(not torch.equal(before[k], v) for k, v in model.latent.state_dict().items())
    again = build_pretrain_model(**json.loads(json.dumps(model.config)))
    again.load_state_dict(model.state_dict())
    if mode == "sample":
        assert model.latent.in_shape == (64, 2, 90) and model.decoder.embed.in_channels == 3
        with pytest.raises(ValueError, match=r"x has T=36, the model was built for T=24 \(vae_mode='sample'"):
            model(batch(t=36))
