"""Spatial-temporal masking (derived in ``notebooks/02_masking.ipynb``, §2-7 and §10).

Per sample: drop frames at rate ``mt``, then drop joints at rate ``mj``; the same joints are dropped
on every kept frame. Kept frames stay in time order and kept joints in index order, so the visible
part of a sequence ``(C, T, V)`` is the dense block ``(C, Tk, Vk)`` that the encoder sees.

Kept counts are exact, not Bernoulli draws:

* ``Tk = L * max(1, round((1 - mt) * T / L))`` with ``L`` the STTFormer tuple length (6): the
  encoder cuts the kept frames into tuples of ``L``, so ``Tk`` must be a multiple of ``L``
  (``T = 120, mt = 0.4 -> Tk = 72`` exactly);
* ``Vk = max(1, round((1 - mj) * V))`` (``V = 25, mj = 0.4 -> Vk = 15``).

All randomness comes from one explicit ``torch.Generator`` (on the CPU), so one seed gives one mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def kept_counts(num_frames: int, num_joints: int, mt: float, mj: float, tuple_len: int = 6) -> tuple[int, int]:
    """``(Tk, Vk)``: how many frames and joints stay visible (see the module docstring)."""
    if not (0.0 <= mt < 1.0 and 0.0 <= mj < 1.0):
        raise ValueError(f"mask rates must be in [0, 1): got mt={mt}, mj={mj}")
    if num_frames % tuple_len:
        raise ValueError(f"num_frames={num_frames} is not a multiple of the tuple length {tuple_len}")
    tk = tuple_len * max(1, round((1.0 - mt) * num_frames / tuple_len))
    vk = max(1, round((1.0 - mj) * num_joints))
    return tk, vk


@dataclass
class Mask:
    """Which frames and joints of each sample stay visible.

    Attributes:
        frames: ``(N, Tk)`` long, kept frame indices per sample, sorted ascending.
        joints: ``(N, Vk)`` long, kept joint indices per sample, sorted ascending.
        num_frames: ``T`` of the full grid.
        num_joints: ``V`` of the full grid.
    """

    frames: Tensor
    joints: Tensor
    num_frames: int
    num_joints: int

    @property
    def batch_size(self) -> int:
        return self.frames.shape[0]

    def to(self, device: torch.device | str) -> "Mask":
        return Mask(self.frames.to(device), self.joints.to(device), self.num_frames, self.num_joints)

    def grid(self) -> Tensor:
        """``(N, T, V)`` bool, True where a joint is masked (not given to the encoder)."""
        n = self.batch_size
        kept_t = torch.zeros(n, self.num_frames, dtype=torch.bool, device=self.frames.device)
        kept_t.scatter_(1, self.frames, True)
        kept_v = torch.zeros(n, self.num_joints, dtype=torch.bool, device=self.joints.device)
        kept_v.scatter_(1, self.joints, True)
        return ~(kept_t[:, :, None] & kept_v[:, None, :])

    def gather(self, x: Tensor) -> Tensor:
        """Visible tokens: ``x (N, C, T, V) -> (N, C, Tk, Vk)``."""
        n, c, t, v = x.shape
        if (n, t, v) != (self.batch_size, self.num_frames, self.num_joints):
            raise ValueError(f"gather: x has shape {tuple(x.shape)}, mask is for (N, T, V) = "
                             f"({self.batch_size}, {self.num_frames}, {self.num_joints})")
        tk, vk = self.frames.shape[1], self.joints.shape[1]
        x = x.gather(2, self.frames[:, None, :, None].expand(n, c, tk, v))
        return x.gather(3, self.joints[:, None, None, :].expand(n, c, tk, vk))

    def restore(self, y: Tensor, fill: Tensor) -> Tensor:
        """Full grid from visible tokens: ``y (N, D, Tk, Vk)`` -> ``(N, D, T, V)``.

        ``fill: (D,)`` (e.g. a learnable mask token) goes to every masked position; gradients
        flow to both ``y`` and ``fill``.
        """
        n, d, tk, vk = y.shape
        if (n, tk, vk) != (self.batch_size, self.frames.shape[1], self.joints.shape[1]):
            raise ValueError(f"restore: y has shape {tuple(y.shape)}, mask keeps (N, Tk, Vk) = "
                             f"({self.batch_size}, {self.frames.shape[1]}, {self.joints.shape[1]})")
        flat = fill.to(y.dtype).view(1, d, 1).expand(n, d, self.num_frames * self.num_joints).clone()
        index = (self.frames[:, :, None] * self.num_joints + self.joints[:, None, :]).view(n, 1, tk * vk)
        flat = flat.scatter(2, index.expand(n, d, tk * vk), y.reshape(n, d, tk * vk))
        return flat.view(n, d, self.num_frames, self.num_joints)

    def positions(self, tuple_len: int = 6) -> Tensor:
        """``(N, L*Vk)`` long: for each column of a visible tuple, its joint-in-tuple position in the
        full layout, ``u = frame_in_tuple * V + joint``.

        The visible frames are cut into tuples of ``L`` in their kept order, so ``frame_in_tuple``
        is the position inside the visible tuple; the ORIGINAL frame index is carried separately by
        the token position embedding (:func:`skel.models.sttformer.grid_position_embedding`).
        """
        f = torch.arange(tuple_len, device=self.joints.device)
        return (f[None, :, None] * self.num_joints + self.joints[:, None, :]).reshape(self.batch_size, -1)

    def repeat_persons(self, m: int) -> "Mask":
        """The same mask for each of ``m`` persons: rows ``(N,) -> (N*M,)``, sample-major (row
        ``n*M + p`` is person ``p`` of sample ``n``, as ``x.permute(0, 4, 1, 2, 3)`` folds them)."""
        return Mask(self.frames.repeat_interleave(m, 0), self.joints.repeat_interleave(m, 0),
                    self.num_frames, self.num_joints)

    def select(self, rows: Tensor) -> "Mask":
        """The rows ``rows`` (bool ``(N,)`` or long index) of this mask."""
        return Mask(self.frames[rows], self.joints[rows], self.num_frames, self.num_joints)


def random_masking(n: int, t: int, v: int, mt: float = 0.4, mj: float = 0.4,
                   generator: torch.Generator | None = None, tuple_len: int = 6,
                   device: torch.device | str = "cpu") -> Mask:
    """Draw one random spatial-temporal mask per sample.

    Args:
        n, t, v: batch size, frames, joints of the full grid.
        mt, mj: frame and joint masking rates.
        generator: CPU ``torch.Generator``; the draws are made on the CPU and moved to ``device``.
        tuple_len: the STTFormer tuple length ``L``; the kept frame count is a multiple of it.

    Returns:
        :class:`Mask` with ``frames (N, Tk)`` and ``joints (N, Vk)``, both sorted.
    """
    tk, vk = kept_counts(t, v, mt, mj, tuple_len)
    # Uniform random subsets of exact size: the first k of a random permutation (argsort of noise).
    frames = torch.rand(n, t, generator=generator).argsort(1)[:, :tk].sort(1).values
    joints = torch.rand(n, v, generator=generator).argsort(1)[:, :vk].sort(1).values
    return Mask(frames.to(device), joints.to(device), t, v)


def full_mask(n: int, t: int, v: int, device: torch.device | str = "cpu") -> Mask:
    """A mask that keeps everything (``Tk = T``, ``Vk = V``)."""
    frames = torch.arange(t, device=device).expand(n, t)
    joints = torch.arange(v, device=device).expand(n, v)
    return Mask(frames, joints, t, v)
