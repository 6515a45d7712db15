"""BatchNorm re-estimation for the frozen-encoder evaluation (skel.train.bn) and the probe's splits."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from skel.models.classifier import build_classifier
from skel.train.bn import batchnorm_layers, recompute_batchnorm

BN_KEYS = ("running_mean", "running_var", "num_batches_tracked")


class Net(nn.Module):
    """Conv, dropout, two BatchNorms (one without affine) and a buffer that is not BatchNorm's."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.drop = nn.Dropout(0.5)
        self.bn1 = nn.BatchNorm2d(4, momentum=0.3)
        self.bn2 = nn.BatchNorm1d(4, affine=False)
        self.register_buffer("scale", torch.tensor([2.0, 3.0]))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.bn2(self.bn1(self.drop(self.conv(x))).mean((2, 3)))


def _batches(n=3, size=8, seed=0, shift=1.5):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(size, 3, 5, 6, generator=g) * 2 + shift for _ in range(n)]


def _split(model):
    """(BatchNorm buffers, everything else) of the state dict, by name."""
    state = model.state_dict()
    bn = {k: v.clone() for k, v in state.items() if k.rsplit(".", 1)[-1] in BN_KEYS}
    return bn, {k: v.clone() for k, v in state.items() if k not in bn}


def test_only_the_batchnorm_statistics_change():
    torch.manual_seed(0)
    model = Net()
    with torch.no_grad():  # statistics as pre-training would have left them
        model.bn1.running_mean.fill_(0.3)
        model.bn1.running_var.fill_(0.1)
        model.bn1.num_batches_tracked.fill_(500)
    model.train()
    bn_before, rest_before = _split(model)
    counts = recompute_batchnorm(model, [(x, 0) for x in _batches()])  # (x, label) as a DataLoader gives
    assert counts == {"layers": 2, "batches": 3, "samples": 24}
    bn_after, rest_after = _split(model)
    assert set(rest_after) == set(rest_before) and "scale" in rest_after and "conv.weight" in rest_after
    for k, v in rest_before.items():  # parameters and other buffers: bitwise equal
        assert torch.equal(v, rest_after[k]), k
    for k, v in bn_before.items():  # every statistic of every BatchNorm is new
        assert not torch.equal(v, bn_after[k]), k
    assert int(model.bn1.num_batches_tracked) == int(model.bn2.num_batches_tracked) == 3
    assert all(p.grad is None for p in model.parameters())
    assert (model.bn1.momentum, model.bn2.momentum) == (0.3, 0.1)  # each layer's own momentum back
    assert not any(m.training for m in model.modules())  # eval mode after


def test_statistics_are_the_inputs_mean_and_unbiased_variance():
    bn = nn.BatchNorm2d(3)
    model = nn.Sequential(nn.Dropout(0.9), bn)  # dropout stays off: the statistics are the raw input's
    batches = _batches(n=4)
    recompute_batchnorm(model, batches[:1])  # one batch: exactly its per-channel mean and variance
    x = batches[0]
    torch.testing.assert_close(bn.running_mean, x.mean((0, 2, 3)))
    torch.testing.assert_close(bn.running_var, x.var((0, 2, 3), unbiased=True))
    recompute_batchnorm(model, batches)  # several: the mean of the per-batch means and variances
    torch.testing.assert_close(bn.running_mean, torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([b.var((0, 2, 3)) for b in batches]).mean(0))
    torch.testing.assert_close(bn.running_mean, torch.cat(batches).mean((0, 2, 3)))  # equal-sized batches
    assert int(bn.num_batches_tracked) == 4
    recompute_batchnorm(model, iter(batches), max_batches=2)
    assert int(bn.num_batches_tracked) == 2
    torch.testing.assert_close(bn.running_mean, torch.cat(batches[:2]).mean((0, 2, 3)))


def test_a_model_without_batchnorm_is_left_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Dropout(0.5))
    model.train()
    before = copy.deepcopy(model.state_dict())
    seen = []
    assert recompute_batchnorm(model, _batches(), forward=lambda m, x: seen.append(x)) == \
        {"layers": 0, "batches": 0, "samples": 0}
    assert not seen and model.training  # not run, mode unchanged
    for k, v in before.items():
        assert torch.equal(v, model.state_dict()[k])


def test_no_batch_or_a_failing_forward_leaves_the_statistics_as_they_were():
    model = Net()
    with torch.no_grad():
        model.bn1.running_mean.fill_(0.3)
    bn_before, _ = _split(model)
    with pytest.raises(ValueError, match="no batch"):
        recompute_batchnorm(model, [])

    def failing(m, x):
        m(x)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        recompute_batchnorm(model, _batches(), forward=failing)
    bn_after, _ = _split(model)
    for k, v in bn_before.items():
        assert torch.equal(v, bn_after[k]), k
    assert model.bn1.momentum == 0.3
    with pytest.raises(ValueError, match="max_batches"):
        recompute_batchnorm(model, _batches(), max_batches=0)


def test_the_encoder_statistics_are_deterministic_and_every_layer_is_reset():
    from skel.data import load_dataset
    from skel.data.feeder import Feeder

    data = load_dataset("synthetic", "train", num_per_class=1, length=[12, 24])
    batches = list(torch.utils.data.DataLoader(Feeder(data, 12, train=False), batch_size=6))
    torch.manual_seed(0)
    a = build_classifier("tiny", data.num_classes, num_joints=data.num_joints, num_frames=12)
    b = copy.deepcopy(a)
    rest = {k: v.clone() for k, v in a.state_dict().items()}
    counts = recompute_batchnorm(a, batches, forward=lambda m, x: m.features(x))
    recompute_batchnorm(b, batches, forward=lambda m, x: m.features(x))
    assert counts["layers"] == len(batchnorm_layers(a)) > 0 and counts["batches"] == 2 and counts["samples"] == 12
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k  # the same data, the same statistics, bitwise
        if k.endswith(BN_KEYS[:2]):
            assert not torch.equal(v, rest[k]), k
        elif not k.endswith(BN_KEYS[2]):
            assert torch.equal(v, rest[k]), k
    with torch.no_grad():  # eval mode, the new statistics: batch composition no longer matters
        torch.testing.assert_close(a.features(batches[0][0][:2]), a.features(batches[0][0])[:2])
