"""Checkpoints: round trip, clear errors on corrupt / truncated / wrong files, RNG states."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from skel.train.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state


def _real_checkpoint(path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), torch.nn.BatchNorm2d(8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 4, 5)).sum().backward()
    opt.step()
    save_checkpoint(path, kind="pretrain", model=model.state_dict(), optimizer=opt.state_dict(), epoch=3,
                    config={"preset": "tiny", "lr_steps": [1, 2]}, rng=rng_state())
    return model


def test_round_trip(tmp_path):
    model = _real_checkpoint(tmp_path / "a.pt")
    ckpt = load_checkpoint(tmp_path / "a.pt", kind="pretrain")
    assert ckpt["epoch"] == 3 and ckpt["config"] == {"preset": "tiny", "lr_steps": [1, 2]}
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_truncated_file_names_the_file(tmp_path):
    _real_checkpoint(tmp_path / "a.pt")
    data = (tmp_path / "a.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "cut.pt")
    assert "cut.pt" in str(err.value) and "corrupt or truncated" in str(err.value) and "expected" in str(err.value)


def test_garbage_file(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint\n" * 10)
    with pytest.raises(CheckpointError, match=r"junk\.pt.*cannot be read"):
        load_checkpoint(tmp_path / "junk.pt")


def test_wrong_kind_and_shape(tmp_path):
    _real_checkpoint(tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match=r"a\.pt: is a 'pretrain' checkpoint, expected kind 'finetune'"):
        load_checkpoint(tmp_path / "a.pt", kind="finetune")
    torch.save({"model": {}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"partial\.pt: missing key\(s\) kind, epoch, config"):
        load_checkpoint(tmp_path / "partial.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list\.pt: holds a list"):
        load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"missing\.pt: no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")


class Thing:
    """Any class: weights_only loading must refuse to build it."""


def test_arbitrary_objects_are_not_unpickled(tmp_path):
    torch.save({"kind": "pretrain", "model": {}, "epoch": 0, "config": {}, "x": Thing()}, tmp_path / "obj.pt")
    with pytest.raises(CheckpointError, match=r"obj\.pt"):
        load_checkpoint(tmp_path / "obj.pt")


def test_save_refuses_incomplete_payload(tmp_path):
    with pytest.raises(ValueError, match="lacks epoch, config"):
        save_checkpoint(tmp_path / "x.pt", kind="pretrain", model={})


def test_rng_states_survive_a_checkpoint(tmp_path):
    gen = torch.Generator().manual_seed(5)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = rng_state({"train": gen})
    expected = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item())
    save_checkpoint(tmp_path / "r.pt", kind="pretrain", model={}, epoch=0, config={}, rng=state)
    random.seed(9), np.random.seed(9), torch.manual_seed(9), gen.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"], {"train": gen})
    assert (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item()) == expected
