import torch
import torch.nn.functional as F

from skel.models.encoder import ENCODER_PRESETS, Encoder
from skel.models.masking import random_masking
from skel.models.sttformer import STTFormerBlock, from_tuples, to_tuples


def official_block_params(cin: int, cout: int, qk: int, vp: int, h: int = 3) -> int:
    """Parameters of one official STTFormer block, counted from its structure (reference.md s.2)."""
    conv = lambda i, o, k=1: i * o * k + o  # weight + bias
    bn = lambda c: 2 * c
    n = conv(cin, 2 * h * qk)            # to_qkvs: Q and K, no V
    n += h + h * vp * vp                 # alphas, att0s
    n += conv(cin * h, cout, 5) + bn(cout)  # out_nets 1x5
    n += conv(cout, cout) + bn(cout)     # ff_net 1x1
    n += conv(cout, cout, 3) + bn(cout)  # out_nett 3x1
    if cin != cout:
        n += conv(cin, cout) + bn(cout) + conv(cout, cout) + bn(cout)  # ress, rest
    return n


def test_paper_encoder_official_parameter_count():
    vp = 6 * 25
    blocks = ENCODER_PRESETS["paper"]["blocks"]
    assert blocks == [(64, 64, 16)] * 2 + [(64, 128, 32), (128, 128, 32), (128, 256, 64)] + [(256, 256, 64)] * 3
    expected = (3 * 64 + 64 + 2 * 64) + sum(official_block_params(i, o, q, vp) for i, o, q in blocks)
    enc = Encoder(3, 25, blocks, num_heads=3)
    count = sum(p.numel() for p in enc.parameters())
    assert count == expected == 6_218_168
    att0 = sum(p.numel() for n, p in enc.named_parameters() if n.endswith("att0"))
    assert att0 == 8 * 3 * 150 * 150 == 540_000
    # with the official 60-class head the classifier has 6.23 M
    assert count + 256 * 60 + 60 == 6_233_588


def reference_block(blk: STTFormerBlock, x: torch.Tensor) -> torch.Tensor:
    """The official forward written with its einsums, for comparison."""
    n, c, t, v = x.shape
    h, d = blk.num_heads, blk.qk_dim
    xs = x + blk.pe[None, :, None, :]
    q, k = torch.chunk(blk.to_qk(xs).view(n, 2 * h, d, t, v), 2, dim=1)
    a = torch.tanh(torch.einsum("nhctu,nhctv->nhuv", q, k) / (d * t)) * blk.alpha + blk.att0
    y = torch.einsum("nctu,nhuv->nhctv", x, a).reshape(n, h * c, t, v)
    r = blk.res_s(x)
    y = F.leaky_relu(blk.out_s(y) + r, 0.1)
    y = F.leaky_relu(blk.ff(y) + r, 0.1)
    return F.leaky_relu(blk.out_t(y) + blk.res_t(y), 0.1)


def test_block_matches_official_einsums_and_shapes():
    torch.manual_seed(0)
    blk = STTFormerBlock(8, 16, 4, num_positions=6 * 5).eval()
    with torch.no_grad():
        blk.alpha.mul_(0.7)
        blk.att0.add_(0.01 * torch.randn_like(blk.att0))
    x = torch.randn(2, 8, 4, 30)
    out = blk(x)
    assert out.shape == (2, 16, 4, 30)
    torch.testing.assert_close(out, reference_block(blk, x))


def test_masked_positions_index_att0_and_pe():
    torch.manual_seed(1)
    blk = STTFormerBlock(8, 8, 4, num_positions=6 * 5).eval()
    with torch.no_grad():
        blk.att0.copy_(torch.randn_like(blk.att0))
    x = torch.randn(2, 8, 3, 30)
    keep = torch.tensor([0, 2, 3])  # joints kept
    pos = (torch.arange(6)[:, None] * 5 + keep[None]).flatten()  # (18,)
    xm = x[..., pos]
    # attention at the kept columns uses att0 and PE of those columns exactly
    a_full_pe = blk.attention(xm, pos)
    pe = blk.pe[:, pos]
    q, k = blk.to_qk(xm + pe[None, :, None]).view(2, 2, 3, 4 * 3, 18).unbind(1)
    expect = torch.tanh(q.transpose(-1, -2) @ k / 12) * blk.alpha + blk.att0[:, :, pos][:, :, :, pos]
    torch.testing.assert_close(a_full_pe, expect)
    # per-sample positions (N, V'') agree with the shared (V'',) form
    out_shared = blk(xm, pos)
    out_per = blk(xm, pos.expand(2, -1))
    assert out_shared.shape == (2, 8, 3, 18)
    torch.testing.assert_close(out_shared, out_per)


def test_encoder_shapes_full_and_masked():
    enc = Encoder(3, 25, ENCODER_PRESETS["tiny"]["blocks"])
    x = torch.randn(2, 3, 36, 25, 2)
    z, rows = enc(x)
    assert z.shape == (4, 64, 6, 150) and rows.all()
    m = random_masking(2, 36, 25, 0.4, 0.4, generator=torch.Generator().manual_seed(0))
    z, rows = enc(x, m)
    assert z.shape == (4, 64, 24 // 6, 6 * 15)
    # skipping empty persons: a one-person sample runs one row
    enc.skip_empty_persons = True
    x[1, ..., 1] = 0
    z, rows = enc(x, m)
    assert rows.tolist() == [True, True, True, False] and z.shape[0] == 3


def test_tuples_round_trip():
    x = torch.randn(2, 3, 12, 25)
    tx = to_tuples(x, 6)
    assert tx.shape == (2, 3, 2, 150)
    assert torch.equal(tx[:, :, 1, 2 * 25 + 7], x[:, :, 6 + 2, 7])  # tuple 1, frame-in-tuple 2, joint 7
    assert torch.equal(from_tuples(tx, 6), x)


def test_sinusoid_table_cache_holds_a_cpu_tensor_whatever_the_default_device():
    from skel.models.sttformer import sinusoid_table

    sinusoid_table.cache_clear()
    with torch.device("meta"):
        first = sinusoid_table(7, 4)  # the first call fills the cache
    assert first.device.type == "cpu"
    table = sinusoid_table(7, 4)
    assert table.device.type == "cpu" and torch.isfinite(table).all()
    pos = torch.arange(7.0)[:, None]
    torch.testing.assert_close(table[:, 0], torch.sin(pos[:, 0]))  # channel 0: sin(pos / 10000^0)
    torch.testing.assert_close(table[:, 3], torch.cos(pos[:, 0] / 100.0))  # channel 3: cos(pos / 10000^(2/4))
    sinusoid_table.cache_clear()


def test_a_block_built_on_the_meta_device_runs_there():
    with torch.device("meta"):  # shape-only FLOP counts build blocks this way
        block = STTFormerBlock(8, 8, 4, 12, 2)
        y = block(torch.empty(1, 8, 3, 12))
    assert block.pe.device.type == "meta" and y.shape == (1, 8, 3, 12)
    assert STTFormerBlock(8, 8, 4, 12, 2).pe.device.type == "cpu"
