"""STTFormer block (Qiu et al. 2022) and the position encodings (derived in
``notebooks/04_sttformer.ipynb``, §1 Tuples from frames to §3 The residual wiring, §7 The masked input).

Layout: a sequence ``(N, C, T, V)`` is cut into tuples of ``L = 6`` frames, ``(N, C, T', V')`` with
``T' = T / L`` and ``V' = L * V``; column ``u = frame_in_tuple * V + joint`` (a plain ``view``).

One block ``(in_c, out_c, qk_dim, H)`` as the official code builds it:

1. ``xs = x + PE`` (sinusoidal over the joint-in-tuple index ``u`` only), used for Q and K only;
2. a 1x1 conv gives Q, K ``(N, H, d, T', V')``; no value projection, the values are ``x`` itself;
3. ``A = tanh(sum_{d,t} q k / (d T')) * alpha + att0``, ``A: (N, H, V', V')``: one map per head and
   sample shared by all tuples (not softmax attention); ``att0`` a learned static map, init ``1/V'``;
4. ``y = x A`` per head, heads stacked on channels ``(N, H*in_c, T', V')``; ``r = res(x)``;
5. ``y = lrelu(BN(conv1x5(y)) + r)``, ``y = lrelu(BN(conv1x1(y)) + r)`` (the same ``r``),
   ``out = lrelu(BN(conv3x1(y)) + res2(y))`` (inter-frame aggregation over tuples).

On a masked input the columns are a subset of the ``V'`` positions: ``positions`` gives each
column's full-layout index ``u`` and the block indexes ``att0`` and the PE with it.

Two paths compute the same block (``tests/test_fast_path.py``; switch with :func:`set_fast_path`):

* fast (default): BatchNorm output, residual and LeakyReLU combined in place, so each
  conv-BN-add-LeakyReLU stage keeps one activation for backward instead of two; ``att0`` broadcast,
  not repeated over the batch; ``x A`` as one product over all heads keeping only a view of ``x``;
* plain: op for op the official STTFormer code (two ``einsum``, a ``permute`` + ``contiguous`` copy,
  ``att0.repeat`` over the batch, out-of-place activations); the baseline of ``python -m skel bench``.

Same FLOPs, less memory traffic and a smaller peak: figures in ``docs/performance.md``.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.1


@functools.lru_cache(maxsize=64)
def sinusoid_table(num_positions: int, dim: int) -> Tensor:
    """``(num_positions, dim)`` transformer sinusoids: ``sin`` on even channels, ``cos`` on odd ones.

    Cached: callers must not modify the returned tensor in place. Always built on the CPU, so a
    first call under ``with torch.device("meta")`` (or "cuda") cannot leave a meta / GPU tensor in
    the cache for every later caller; callers move it with ``.to(device)``."""
    if dim % 2:
        raise ValueError(f"sinusoidal encoding needs an even dim, got {dim}")
    cpu = torch.device("cpu")
    pos = torch.arange(num_positions, dtype=torch.float32, device=cpu)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=cpu) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim, device=cpu)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)
    return table


def grid_position_embedding(dim: int, frames: Tensor, joints: Tensor, num_frames: int, num_joints: int) -> Tensor:
    """Token position embedding from each token's ORIGINAL frame and joint index.

    The first ``dim/2`` channels encode the frame index, the last ``dim/2`` the joint index (two
    sinusoid tables, no parameters: works for any ``T`` and leaves the encoder's parameter count
    the official one).

    Args:
        frames: ``(N, Tk)`` long, original frame index of each kept frame.
        joints: ``(N, Vk)`` long, original joint index of each kept joint.

    Returns:
        ``(N, dim, Tk, Vk)``.
    """
    if dim % 4:
        raise ValueError(f"grid position embedding needs dim divisible by 4, got {dim}")
    half = dim // 2
    tf = sinusoid_table(num_frames, half).to(frames.device)[frames]  # (N, Tk, half)
    tj = sinusoid_table(num_joints, half).to(joints.device)[joints]  # (N, Vk, half)
    n, tk, vk = frames.shape[0], frames.shape[1], joints.shape[1]
    pe_t = tf.permute(0, 2, 1)[:, :, :, None].expand(n, half, tk, vk)
    pe_v = tj.permute(0, 2, 1)[:, :, None, :].expand(n, half, tk, vk)
    return torch.cat([pe_t, pe_v], 1)


def to_tuples(x: Tensor, tuple_len: int) -> Tensor:
    """``(N, C, T, V) -> (N, C, T/L, L*V)``; column ``u = frame_in_tuple * V + joint``."""
    n, c, t, v = x.shape
    if t % tuple_len:
        raise ValueError(f"{t} frames are not a multiple of the tuple length {tuple_len}")
    return x.reshape(n, c, t // tuple_len, tuple_len * v)


def from_tuples(x: Tensor, tuple_len: int) -> Tensor:
    """Inverse of :func:`to_tuples`: ``(N, C, T', L*V) -> (N, C, L*T', V)``."""
    n, c, tt, u = x.shape
    return x.reshape(n, c, tt * tuple_len, u // tuple_len)


def _conv_bn(in_c: int, out_c: int, kernel: tuple[int, int] = (1, 1)) -> nn.Sequential:
    pad = ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
    return nn.Sequential(nn.Conv2d(in_c, out_c, kernel, padding=pad), nn.BatchNorm2d(out_c))


class STTFormerBlock(nn.Module):
    """One STTFormer block (spatio-temporal tuples attention + inter-frame aggregation).

    Args:
        in_channels, out_channels, qk_dim: the official ``(in, out, qkv_dim)`` triple.
        num_positions: ``V' = L * V`` of the full layout (size of ``att0`` and the PE).
        num_heads: ``H`` (3 in the official models).
        kernel_size: ``(temporal, spatial)`` = ``(3, 5)``: the 3x1 conv over tuples, 1x5 over positions.

    Shapes: ``x: (N, in_c, T', V'')`` -> ``(N, out_c, T', V'')`` where ``V''`` is ``V'`` or, with
    ``positions`` (``(V'',)`` or ``(N, V'')`` long), the number of visible columns.

    ``fast`` (default True) picks the fast path, False the plain (official) one; see the module
    docstring and :func:`set_fast_path`.
    """

    fast: bool = True

    def __init__(self, in_channels: int, out_channels: int, qk_dim: int, num_positions: int,
                 num_heads: int = 3, kernel_size: tuple[int, int] = (3, 5)):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.qk_dim, self.num_heads, self.num_positions = qk_dim, num_heads, num_positions
        # the cached table lives on the CPU; the buffer goes where the module is being built
        # (``with torch.device("meta")`` for shape-only FLOP counts, or "cuda")
        here = torch.empty(0).device
        self.register_buffer("pe", sinusoid_table(num_positions, in_channels).t().to(here, copy=True), persistent=False)
        self.to_qk = nn.Conv2d(in_channels, 2 * num_heads * qk_dim, 1)
        self.alpha = nn.Parameter(torch.ones(1, num_heads, 1, 1))
        self.att0 = nn.Parameter(torch.full((1, num_heads, num_positions, num_positions), 1.0 / num_positions))
        self.out_s = _conv_bn(in_channels * num_heads, out_channels, (1, kernel_size[1]))
        self.ff = _conv_bn(out_channels, out_channels)
        self.out_t = _conv_bn(out_channels, out_channels, (kernel_size[0], 1))
        if in_channels != out_channels:
            self.res_s = _conv_bn(in_channels, out_channels)
            self.res_t = _conv_bn(out_channels, out_channels)
        else:
            self.res_s = nn.Identity()
            self.res_t = nn.Identity()

    def _pe_and_att0(self, positions: Tensor | None) -> tuple[Tensor, Tensor]:
        """PE ``(1 or N, C, 1, V'')`` and ``att0`` ``(1 or N, H, V'', V'')`` at the given columns."""
        if positions is None:
            return self.pe[None, :, None, :], self.att0
        if positions.dim() == 1:
            return self.pe[:, positions][None, :, None, :], self.att0[:, :, positions][..., positions]
        pe = self.pe[:, positions].permute(1, 0, 2)[:, :, None, :]  # (N, C, 1, V'')
        att0 = self.att0[0][:, positions[:, :, None], positions[:, None, :]].transpose(0, 1)
        return pe, att0

    def attention(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """The tuple attention maps ``A: (N, H, V'', V'')`` of ``x: (N, in_c, T', V'')``."""
        n, c, t, v = x.shape
        pe, att0 = self._pe_and_att0(positions)
        q, k = self.to_qk(x + pe).view(n, 2, self.num_heads, self.qk_dim * t, v).unbind(1)
        scores = torch.matmul(q.transpose(-1, -2), k)  # sum over d and T': (N, H, V'', V'')
        return torch.tanh(scores / (self.qk_dim * t)) * self.alpha + att0

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        return self._forward_fast(x, positions) if self.fast else self._forward_plain(x, positions)

    def _forward_fast(self, x: Tensor, positions: Tensor | None) -> Tensor:
        n, c, t, v = x.shape
        a = self.attention(x, positions)
        # values are x itself: y[n, h] = x[n] (C*T', V'') @ A[n, h], heads stacked on channels.
        # As one product over all heads (einsum: a single bmm, then one reorder copy) backward keeps
        # only a view of x; a broadcast matmul would keep an H-fold copy of x, and one bmm per head
        # measured slower (three accumulations into the gradient of x).
        y = torch.einsum("nctu,nhuv->nhctv", x, a).reshape(n, self.num_heads * c, t, v)
        r = self.res_s(x)
        # BatchNorm keeps its input, not its output, for backward: add the residual into the BN
        # output and apply LeakyReLU in place (its backward reads the sign of its output).
        y = self.out_s(y)
        y += r
        y = F.leaky_relu_(y, LRELU_SLOPE)
        h = self.ff(y)
        h += r
        h = F.leaky_relu_(h, LRELU_SLOPE)
        out = self.out_t(h)
        out += self.res_t(h)
        return F.leaky_relu_(out, LRELU_SLOPE)

    def _forward_plain(self, x: Tensor, positions: Tensor | None) -> Tensor:
        """Op for op the official STTFormer block (the benchmark's baseline)."""
        n, c, t, v = x.shape
        pe, att0 = self._pe_and_att0(positions)
        xs = pe + x
        q, k = torch.chunk(self.to_qk(xs).view(n, 2 * self.num_heads, self.qk_dim, t, v), 2, dim=1)
        a = torch.tanh(torch.einsum("nhctu,nhctv->nhuv", q, k) / (self.qk_dim * t)) * self.alpha
        a = a + (att0.repeat(n, 1, 1, 1) if att0.shape[0] == 1 else att0)
        y = torch.einsum("nctu,nhuv->nhctv", x, a).contiguous().view(n, self.num_heads * c, t, v)
        r = self.res_s(x)
        y = F.leaky_relu(self.out_s(y) + r, LRELU_SLOPE)
        y = F.leaky_relu(self.ff(y) + r, LRELU_SLOPE)
        return F.leaky_relu(self.out_t(y) + self.res_t(y), LRELU_SLOPE)


def set_fast_path(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Make every :class:`STTFormerBlock` inside ``module`` use the fast path (``enabled``) or the
    plain, official one. Both compute the same outputs; returns ``module``."""
    for sub in module.modules():
        if isinstance(sub, STTFormerBlock):
            sub.fast = bool(enabled)
    return module
