import pytest
import torch

from skel.models.masking import kept_counts, random_masking


def test_counts_sorted_and_unique():
    g = torch.Generator().manual_seed(0)
    m = random_masking(8, 120, 25, 0.4, 0.4, generator=g)
    assert m.frames.shape == (8, 72) and m.joints.shape == (8, 15)
    assert (m.frames.diff(dim=1) > 0).all() and (m.joints.diff(dim=1) > 0).all()
    assert m.frames.min() >= 0 and m.frames.max() < 120 and m.joints.max() < 25
    grid = m.grid()
    assert grid.shape == (8, 120, 25)
    # visible = kept frames x kept joints, exactly
    assert ((~grid).sum((1, 2)) == 72 * 15).all()
    # the same joints on every kept frame; dropped frames entirely masked
    for i in range(8):
        vis = ~grid[i]
        rows = vis.any(1).nonzero().flatten()
        assert torch.equal(rows, m.frames[i])
        assert torch.equal(vis[rows], vis[rows[:1]].expand(len(rows), 25))
        assert torch.equal(vis[rows[0]].nonzero().flatten(), m.joints[i])


def test_kept_frames_multiple_of_tuple():
    assert kept_counts(120, 25, 0.4, 0.4) == (72, 15)
    assert kept_counts(36, 25, 0.6, 0.8) == (12, 5)  # 0.4*36/6 = 2.4 -> 2 tuples
    assert kept_counts(24, 20, 0.9, 0.5) == (6, 10)  # at least one tuple
    with pytest.raises(ValueError, match="multiple of the tuple length"):
        kept_counts(64, 25, 0.4, 0.4)


def test_determinism():
    a = random_masking(4, 36, 25, generator=torch.Generator().manual_seed(7))
    b = random_masking(4, 36, 25, generator=torch.Generator().manual_seed(7))
    c = random_masking(4, 36, 25, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.frames, b.frames) and torch.equal(a.joints, b.joints)
    assert not (torch.equal(a.frames, c.frames) and torch.equal(a.joints, c.joints))
    # samples of one batch get different masks
    assert not torch.equal(a.frames[0], a.frames[1]) or not torch.equal(a.joints[0], a.joints[1])


def test_gather_restore_round_trip():
    g = torch.Generator().manual_seed(1)
    m = random_masking(3, 24, 25, 0.5, 0.6, generator=g)
    x = torch.randn(3, 4, 24, 25, generator=g)
    vis = m.gather(x)
    assert vis.shape == (3, 4, 12, 10)
    # gathered values are x at (kept frame, kept joint)
    i, a, b = 2, 5, 7
    assert torch.equal(vis[i, :, a, b], x[i, :, m.frames[i, a], m.joints[i, b]])
    fill = torch.tensor([10.0, 20.0, 30.0, 40.0])
    full = m.restore(vis, fill)
    grid = m.grid()
    keep = ~grid[:, None].expand_as(x)
    assert torch.equal(full[keep], x[keep])
    assert torch.equal(full.permute(0, 2, 3, 1)[grid], fill.expand(int(grid.sum()), 4))
    # gradients reach both the visible tokens and the fill
    vis.requires_grad_(True)
    fill.requires_grad_(True)
    m.restore(vis, fill).sum().backward()
    assert torch.equal(vis.grad, torch.ones_like(vis))
    assert torch.equal(fill.grad, torch.full((4,), float(grid.sum())))


def test_positions_and_persons():
    m = random_masking(2, 24, 25, generator=torch.Generator().manual_seed(3))
    pos = m.positions(6)
    assert pos.shape == (2, 6 * 15)
    assert torch.equal(pos[1, 15:30], 25 + m.joints[1])
    mp = m.repeat_persons(2)
    assert torch.equal(mp.frames[2], m.frames[1]) and torch.equal(mp.frames[3], m.frames[1])
