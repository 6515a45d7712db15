"""The fast STTFormer path computes what the plain (official, op for op) path computes.

Forward outputs, input and parameter gradients and BatchNorm running statistics agree within float
tolerance, on unmasked inputs and on masked ones (shared and per-sample visible positions), for a
lone block, the classifier and a pre-training model. The fast path must also keep less for the
backward pass (that is what makes it leaner), which is measured, not assumed.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from skel.models import sttformer
from skel.models.classifier import build_classifier
from skel.models.masking import random_masking
from skel.models.pretrain import build_pretrain_model
from skel.models.sttformer import STTFormerBlock, set_fast_path, to_tuples


def _perturb(model: nn.Module, seed: int) -> None:
    """Move every parameter off its initial value (alpha = 1, att0 = 1/V', BN weight 1 and bias 0
    would hide mistakes that only matter once they are trained)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _run(model: nn.Module, fast: bool, *inputs, loss=None, **kwargs):
    """Forward + backward on a copy of ``model`` with the path chosen; returns what to compare."""
    m = set_fast_path(copy.deepcopy(model), fast)
    xs = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = m(*xs, **kwargs)
    value = loss(out) if loss else out.square().mean()
    value.backward()
    grads = {k: p.grad for k, p in m.named_parameters() if p.grad is not None}
    buffers = {k: b.clone() for k, b in m.named_buffers() if "running" in k}
    return out.detach() if loss is None else value.detach(), xs[0].grad, grads, buffers


def _assert_same(a, b, rtol: float, atol: float) -> None:
    out_a, gx_a, grads_a, buf_a = a
    out_b, gx_b, grads_b, buf_b = b
    torch.testing.assert_close(out_a, out_b, rtol=rtol, atol=atol)
    if gx_a is not None or gx_b is not None:
        torch.testing.assert_close(gx_a, gx_b, rtol=rtol, atol=atol)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for k in grads_a:
        torch.testing.assert_close(grads_a[k], grads_b[k], rtol=rtol, atol=atol, msg=lambda m, k=k: f"{k}: {m}")
    assert buf_a.keys() == buf_b.keys()
    for k in buf_a:
        torch.testing.assert_close(buf_a[k], buf_b[k], rtol=rtol, atol=atol)


@pytest.mark.parametrize("in_c,out_c", [(8, 8), (8, 12)])  # identity and mapped residuals
@pytest.mark.parametrize("masking", ["none", "shared", "per-sample"])
def test_block_fast_equals_plain_in_double(in_c, out_c, masking):
    torch.manual_seed(0)
    joints, tuple_len, heads = 5, 6, 3
    block = STTFormerBlock(in_c, out_c, 4, tuple_len * joints, heads).double()
    _perturb(block, 1)
    n, t = 3, 4
    if masking == "none":
        v, positions = tuple_len * joints, None
    else:
        mask = random_masking(n, t * tuple_len, joints, 0.0, 0.4, torch.Generator().manual_seed(2))
        positions = mask.positions(tuple_len)
        v = positions.shape[1]
        if masking == "shared":
            positions = positions[0]
    x = torch.randn(n, in_c, t, v, dtype=torch.float64)
    for train in (True, False):
        block.train(train)
        fast = _run(block, True, x, positions=positions)
        plain = _run(block, False, x, positions=positions)
        _assert_same(fast, plain, rtol=1e-10, atol=1e-12)


def test_classifier_fast_equals_plain_in_float32():
    torch.manual_seed(0)
    model = build_classifier("tiny", 7)
    _perturb(model, 3)
    x = torch.randn(4, 3, 24, 25, 2)
    x[1:, ..., 1] = 0  # one-person samples, as most NTU samples are
    y = torch.tensor([0, 3, 6, 2])
    ce = lambda logits: nn.functional.cross_entropy(logits, y)  # noqa: E731
    _assert_same(_run(model, True, x, loss=ce), _run(model, False, x, loss=ce), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("latent", ["none", "vq"])
def test_pretrain_fast_equals_plain_in_float32(latent):
    torch.manual_seed(0)
    model = build_pretrain_model(latent, "tiny", num_frames=24)
    _perturb(model, 4)
    x = torch.randn(3, 3, 24, 25, 2)
    loss = lambda out: out[0]["loss"]  # noqa: E731
    runs = [_run(model, fast, x, loss=loss, generator=torch.Generator().manual_seed(5)) for fast in (True, False)]
    _assert_same(*runs, rtol=1e-4, atol=1e-5)


def test_set_fast_path_switches_every_block():
    model = build_pretrain_model("none", "tiny")
    blocks = [m for m in model.modules() if isinstance(m, STTFormerBlock)]
    assert blocks and all(b.fast for b in blocks)  # fast by default
    assert set_fast_path(model, False) is model and not any(b.fast for b in blocks)
    set_fast_path(model, True)
    assert all(b.fast for b in blocks)


def _saved_bytes(block: STTFormerBlock, x: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward pass of ``block(x)``."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        block(x.requires_grad_())
    return sum(seen.values())


def test_fast_path_keeps_less_for_backward():
    torch.manual_seed(0)
    block = STTFormerBlock(16, 16, 4, 6 * 25, 3)
    x = to_tuples(torch.randn(4, 16, 24, 25), 6)
    plain = _saved_bytes(set_fast_path(block, False), x.clone())
    fast = _saved_bytes(set_fast_path(block, True), x.clone())
    # the plain path keeps one more activation per conv-BN-add-LeakyReLU stage (the add's output
    # beside the BN's), at least one activation of x's size
    assert fast <= plain - x.numel() * x.element_size()
    assert sttformer.STTFormerBlock.fast is True
