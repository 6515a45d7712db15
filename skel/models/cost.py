"""Parameter and FLOP counts, and the cost table beside the paper's Table 8
(derived in ``notebooks/04_sttformer.ipynb`` §6 Parameters and FLOPs per block, compared in
``notebooks/07_results.ipynb`` §5 Cost).

FLOPs are forward FLOPs as ``torch.utils.flop_counter.FlopCounterMode`` counts them: matrix
multiplies and convolutions, 2 FLOPs per multiply-add (so GMACs = GFLOPs / 2); element-wise
operations, BatchNorm and activations are not counted.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from skel.models.classifier import build_classifier
from skel.paper_numbers import TABLE8_DELTA
from skel.models.pretrain import MODEL_NAMES, build_pretrain_model

# Why our figures differ from Table 8 (see the module docstring and notebooks/07_results.ipynb).
NOTES = {
    "none": ("decoder depth 8 (7 blocks + linear; the paper gives none): the depth whose MVQVAE difference "
             "matches Table 8 best (depth 9: -2.80 M, -35.6 GFLOPs)"),
    "vae": ("per-token latent: 256->2x25 and 25->256 linears replace 256->256, so params and FLOPs barely move "
            "beyond the one extra decoder block (depth 9 vs 8)"),
    "vae-sample": ("Table 9's reading: two fully connected layers on the flattened visible map, "
                   "2 x (256*72*15*25 + 25) = 13.8 M, and 25 -> 3*72*15 back, plus one extra decoder block; "
                   "the FCs add few FLOPs (one 276480 x 50 product per person)"),
    "vq": ("1 fewer decoder block (depth 7 vs 8) at 256 channels on the full 120x25 grid: "
           "-1.41 M params and -17.8 GFLOPs (8.9 GMACs) per block and sample of 2 persons; the codebook adds 128*256"),
    None: "encoder + linear head; ~19 GMACs per person at T=120, as STTFormer reports",
}

# Table 8 of Chen et al. 2025, relative to SkeletonMAE (both readings of MVAE compare with its row).
PAPER_DELTAS = {key: {k: TABLE8_DELTA[latent][k] for k in ("params_M", "gflops")}
                for key, latent in (("none", "none"), ("vae", "vae"), ("vae-sample", "vae"), ("vq", "vq"))}
# the pre-training models of the cost table: (key, latent, options)
VARIANTS = (("none", "none", {}), ("vae", "vae", {"vae_mode": "token"}),
            ("vae-sample", "vae", {"vae_mode": "sample"}), ("vq", "vq", {}))


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_flops(module: nn.Module, *inputs, **kwargs) -> int:
    """Forward FLOPs of ``module(*inputs, **kwargs)`` (run once, without gradients)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs, **kwargs)
    return int(counter.get_total_flops())


def cost_table(num_joints: int = 25, num_persons: int = 2, num_frames: int = 120, num_classes: int = 60,
               in_channels: int = 3, seed: int = 0, decoder_depth_mae: int | None = None) -> list[dict]:
    """One row per model at the ``paper`` preset: SkeletonMAE, SkeletonMVAE (``vae_mode`` token and
    sample), SkeletonMVQVAE (pre-training forward of one sample, masking included) and the
    fine-tuning classifier.

    Row keys: ``model``, ``key`` (``none`` | ``vae`` | ``vae-sample`` | ``vq`` | None), ``latent``,
    ``vae_mode``, ``decoder_depth``, ``params``, ``params_M``, ``gflops`` (per sample), ``gmacs``,
    ``delta_params_M`` / ``delta_gflops`` (vs SkeletonMAE; None for the classifier) and
    ``paper_delta_params_M`` / ``paper_delta_gflops`` (Table 8; None where the paper gives none),
    ``note`` (why ours differ). ``decoder_depth_mae``: SkeletonMAE's decoder depth (None: the preset's).
    Runs the paper-size models once on the CPU (a few seconds each).
    """
    torch.manual_seed(seed)
    x = torch.randn(1, in_channels, num_frames, num_joints, num_persons)
    rows = []
    for key, latent, options in VARIANTS:
        if key == "none" and decoder_depth_mae is not None:
            options = {"decoder_depth": decoder_depth_mae}
        model = build_pretrain_model(latent, "paper", num_joints, num_persons, num_frames, in_channels, **options)
        flops = count_flops(model, x, generator=torch.Generator().manual_seed(seed))
        name = MODEL_NAMES[latent] + (f" ({options['vae_mode']})" if latent == "vae" else "")
        rows.append({"model": name, "key": key, "latent": latent, "vae_mode": model.config.get("vae_mode"),
                     "decoder_depth": model.config["decoder_depth"], "params": count_parameters(model),
                     "flops": flops})
    clf = build_classifier("paper", num_classes, num_joints, num_persons, num_frames, in_channels).eval()
    rows.append({"model": "classifier (fine-tuning)", "key": None, "latent": None, "vae_mode": None,
                 "decoder_depth": None, "params": count_parameters(clf), "flops": count_flops(clf, x)})
    base_params, base_flops = rows[0]["params"], rows[0]["flops"]
    for row in rows:
        row["params_M"] = row["params"] / 1e6
        row["gflops"] = row["flops"] / 1e9
        row["gmacs"] = row["flops"] / 2e9
        paper = PAPER_DELTAS.get(row["key"]) if row["key"] else None
        row["delta_params_M"] = (row["params"] - base_params) / 1e6 if paper else None
        row["delta_gflops"] = (row["flops"] - base_flops) / 1e9 if paper else None
        row["paper_delta_params_M"] = paper["params_M"] if paper else None
        row["paper_delta_gflops"] = paper["gflops"] if paper else None
        row["note"] = NOTES[row["key"]]
        del row["flops"]
    return rows
