"""The reconstruction decoder (derived in ``notebooks/05_pretraining.ipynb``,
§1 One forward pass by hand).

Visible latent tokens ``(B, D_in, T'k, L*Vk)`` -> linear ``D_in -> dim`` -> a learnable mask token
at every dropped position, back to the full ``T x V`` grid -> position embedding of each token's
ORIGINAL frame and joint -> ``depth - 1`` STTFormer blocks at ``dim`` -> a final linear layer to the
``C`` coordinates -> ``(B, C, T, V)``.

``depth`` counts as the paper counts it: STTFormer blocks + the final linear layer (9 for
SkeletonMVAE, 7 for SkeletonMVQVAE). The paper does not give SkeletonMAE's; we use 8 at the
``paper`` preset, the depth whose costs match Table 8's MVQVAE-minus-MAE differences best
(measured at T = 120, V = 25, M = 2, Mt = Mj = 0.4 with ``skel.models.cost``: MAE depth 8 gives
-1.38 M parameters and -17.7 GFLOPs, depth 9 gives -2.80 M and -35.6 GFLOPs, against the paper's
-1 M and -6.5 GFLOPs). Before issue 14 it was 9 (equal to MVAE's); ``decoder_depth=9`` restores it.
The ``small`` and ``tiny`` presets keep MAE's depth equal to MVAE's (4 and 2): no cost table
constrains them, and ``small``'s MVAE / MVQVAE depths (4 / 3) have no depth in between.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from skel.models.encoder import init_weights
from skel.models.masking import Mask
from skel.models.sttformer import STTFormerBlock, from_tuples, grid_position_embedding, to_tuples

# (dim, depth per latent, qk_dim)
DECODER_PRESETS: dict[str, dict] = {
    "paper": {"dim": 256, "depth": {"none": 8, "vae": 9, "vq": 7}, "qk_dim": 64},
    "small": {"dim": 128, "depth": {"none": 4, "vae": 4, "vq": 3}, "qk_dim": 32},
    "tiny": {"dim": 32, "depth": {"none": 2, "vae": 2, "vq": 2}, "qk_dim": 8},
}


HEAD_INITS = ("zero", "xavier")


class Decoder(nn.Module):
    """Mask tokens + position embedding + STTFormer blocks + final linear layer.

    Args:
        in_dim: channels of the latent output (the encoder dim, or ``latent_dim`` for the VAE).
        out_channels: ``C`` (3).
        num_joints: ``V``.
        dim: decoder width (256 in the paper).
        depth: blocks + final layer (>= 1).
        qk_dim, num_heads, tuple_len: of the STTFormer blocks.
    """

    def __init__(self, in_dim: int, out_channels: int, num_joints: int, dim: int = 256, depth: int = 9,
                 qk_dim: int = 64, num_heads: int = 3, tuple_len: int = 6, head_init: str = "zero"):
        super().__init__()
        if head_init not in HEAD_INITS:
            raise ValueError(f"decoder head_init must be one of {', '.join(HEAD_INITS)}, got {head_init!r}")
        if depth < 1:
            raise ValueError(f"decoder depth counts blocks + the final layer, must be >= 1, got {depth}")
        self.tuple_len, self.dim, self.depth = tuple_len, dim, depth
        self.embed = nn.Conv2d(in_dim, dim, 1)  # per-token linear
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = nn.ModuleList(
            STTFormerBlock(dim, dim, qk_dim, tuple_len * num_joints, num_heads) for _ in range(depth - 1))
        self.head = nn.Conv2d(dim, out_channels, 1)  # per-token linear to the coordinates
        init_weights(self)
        # The targets are coordinates in metres (s.d. ~0.16 m): Kaiming fan-out, or even Xavier
        # (~1.4 m RMS at init), starts the output ~10x too large, and the model then spent its
        # pre-training unlearning it: the masked-joint error stalled at the error of the mean pose
        # (docs/deviations.md). A zero head starts at the centred origin and learns the scale it needs.
        if head_init == "zero":
            nn.init.zeros_(self.head.weight)
        else:
            nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, z: Tensor, mask: Mask) -> Tensor:
        """``z: (B, D_in, T'k, L*Vk)`` visible tokens, ``mask``: B rows -> ``(B, C, T, V)``."""
        h = from_tuples(self.embed(z), self.tuple_len)  # (B, dim, Tk, Vk)
        h = mask.restore(h, self.mask_token)  # (B, dim, T, V)
        t, v = h.shape[2], h.shape[3]
        frames = torch.arange(t, device=h.device)[None]
        joints = torch.arange(v, device=h.device)[None]
        h = h + grid_position_embedding(self.dim, frames, joints, t, v).to(h.dtype)
        h = to_tuples(h, self.tuple_len)
        for block in self.blocks:
            h = block(h)
        return from_tuples(self.head(h), self.tuple_len)
