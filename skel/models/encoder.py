"""The STTFormer encoder shared by pre-training and classification (``notebooks/04_sttformer.ipynb``).

``x (N, C, T, V, M)`` -> persons folded into the batch ``(N*M, C, T, V)`` (as the official code
does) -> optional mask (visible tokens only) -> input map (1x1 conv C -> D0, BN, LeakyReLU(0.1)) ->
token position embedding from the ORIGINAL frame and joint index -> tuples of ``L`` frames ->
STTFormer blocks -> ``(B, D, T'k, L*Vk)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from skel.models.masking import Mask, full_mask
from skel.models.sttformer import LRELU_SLOPE, STTFormerBlock, grid_position_embedding, to_tuples

# (in, out, qk_dim) per block. ``paper`` is the official STTFormer stack.
ENCODER_PRESETS: dict[str, dict] = {
    "paper": {"blocks": [(64, 64, 16), (64, 64, 16), (64, 128, 32), (128, 128, 32), (128, 256, 64),
                         (256, 256, 64), (256, 256, 64), (256, 256, 64)], "num_heads": 3},
    "small": {"blocks": [(64, 64, 16), (64, 64, 16), (64, 128, 32), (128, 128, 32)], "num_heads": 3},
    "tiny": {"blocks": [(32, 32, 8), (32, 64, 16)], "num_heads": 3},
}


class Encoder(nn.Module):
    """Input map + token position embedding + STTFormer blocks.

    Args:
        in_channels: ``C`` (3).
        num_joints: ``V`` of the full layout.
        blocks: ``[(in, out, qk_dim), ...]``; ``blocks[0][0]`` is the input map's width.
        num_heads: ``H``.
        tuple_len: ``L`` (6).
        skip_empty_persons: deviation, off in ``paper``: all-zero persons are not run through the
            network (and so are left out of pooling and of the BatchNorm statistics).
    """

    def __init__(self, in_channels: int, num_joints: int, blocks: list[tuple[int, int, int]],
                 num_heads: int = 3, tuple_len: int = 6, skip_empty_persons: bool = False):
        super().__init__()
        self.in_channels, self.num_joints, self.tuple_len = in_channels, num_joints, tuple_len
        self.skip_empty_persons = skip_empty_persons
        self.dim = blocks[-1][1]
        width = blocks[0][0]
        self.input_map = nn.Sequential(nn.Conv2d(in_channels, width, 1), nn.BatchNorm2d(width),
                                       nn.LeakyReLU(LRELU_SLOPE))
        self.blocks = nn.ModuleList(
            STTFormerBlock(i, o, q, tuple_len * num_joints, num_heads) for i, o, q in blocks)
        init_weights(self)

    def present_rows(self, x: Tensor) -> Tensor:
        """``(N*M,)`` bool: which folded person rows to run (all, unless ``skip_empty_persons``)."""
        n, m = x.shape[0], x.shape[-1]
        if not self.skip_empty_persons:
            return torch.ones(n * m, dtype=torch.bool, device=x.device)
        present = x.ne(0).flatten(1, 3).any(1)  # (N, M)
        # a sample with no person at all keeps its first one, so that every sample has features
        present[:, 0] |= ~present.any(1)
        return present.reshape(-1)

    def encode(self, x: Tensor, mask: Mask | None = None) -> Tensor:
        """Folded input ``x: (B, C, T, V)`` (+ a ``B``-row mask) -> ``(B, D, T'k, L*Vk)``."""
        b, _, t, v = x.shape
        if v != self.num_joints:
            raise ValueError(f"encoder built for {self.num_joints} joints, got input with {v}")
        if mask is None:
            m = full_mask(b, t, v, x.device)
            positions = None
        else:
            m = mask
            x = mask.gather(x)
            positions = mask.positions(self.tuple_len)
        h = self.input_map(x)
        h = h + grid_position_embedding(h.shape[1], m.frames, m.joints, m.num_frames, m.num_joints).to(h.dtype)
        h = to_tuples(h, self.tuple_len)
        for block in self.blocks:
            h = block(h, positions)
        return h

    def forward(self, x: Tensor, mask: Mask | None = None) -> tuple[Tensor, Tensor]:
        """``x: (N, C, T, V, M)``; ``mask`` (N rows, one per sample, shared by its persons) or None.

        Returns:
            ``z: (B, D, T'k, L*Vk)`` for the rows that were run, and ``rows: (N*M,)`` bool saying
            which folded rows (``n*M + p``) those are (all True unless ``skip_empty_persons``).
        """
        n, c, t, v, m = x.shape
        if c != self.in_channels:
            raise ValueError(f"encoder built for {self.in_channels} input channels, got {c}")
        rows = self.present_rows(x)
        xf = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
        mf = mask.repeat_persons(m) if mask is not None else None
        if not bool(rows.all()):
            xf = xf[rows]
            mf = mf.select(rows) if mf is not None else None
        return self.encode(xf, mf), rows


def init_weights(module: nn.Module) -> None:
    """The official STTFormer initialisation: convs Kaiming-normal (fan out) with zero bias,
    BatchNorm weight 1 and bias 0 (``att0``, ``alpha`` and mask tokens keep their own init)."""
    for mod in module.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.ones_(mod.weight)
            nn.init.zeros_(mod.bias)


def pool_persons(z: Tensor, rows: Tensor, n: int) -> Tensor:
    """Global average pooling: ``z (B, D, T', V')`` over tuples and positions, then the mean over
    the persons that were run (``rows (N*M,)`` bool) -> ``(N, D)``."""
    per_row = z.mean((2, 3))
    m = rows.numel() // n
    full = per_row.new_zeros(n * m, per_row.shape[1])
    full[rows] = per_row
    counts = rows.view(n, m).sum(1, keepdim=True).clamp(min=1).to(per_row.dtype)
    return full.view(n, m, -1).sum(1) / counts
