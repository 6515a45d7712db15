"""Masked-reconstruction pre-training: ``python -m skel pretrain`` and :func:`run_pretrain`.

Trains SkeletonMAE (``latent none``), SkeletonMVAE (``vae``) or SkeletonMVQVAE (``vq``) with the
paper's recipe (see :mod:`skel.train.config`), derived in ``notebooks/05_pretraining.ipynb``
(§3 Train, §4 Which checkpoint is kept). Writes to ``out``: ``last.pt`` / ``best.pt`` (lowest validation loss), ``metrics.csv`` / ``metrics.json``
(per epoch: every loss term, lr, codebook perplexity / used codes or KL, epoch time, samples/s)
and ``indices.npz`` (the train / validation / test index sets).

Validation masks come from a generator reseeded before every validation pass, so the validation
loss of different epochs is measured on the same masks and comparable.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from skel.models.pretrain import legacy_options
from skel.train.checkpoint import load_checkpoint
from skel.train.config import PretrainConfig, add_common_arguments
from skel.train.distributed import amp_dtype, autocast, make_scaler, max_weight_difference, unwrap, wrap_model
from skel.train.loop import (Averager, Fit, build_optimizer, fit, make_eval_loader, make_train_loader, prepare_out,
                             prepare_splits, run_command, run_session)

# Fields a resumed run may change; everything else comes from the checkpoint's config.
RUNTIME_KEYS = ("out", "device", "num_workers", "threads", "progress", "resume", "amp")
VAL_MASK_SEED_OFFSET = 1_000_003


def build_model(cfg: PretrainConfig, data) -> torch.nn.Module:
    """The pre-training model for ``cfg`` (resolved) and a dataset split ``data``."""
    from skel.models.pretrain import build_pretrain_model

    overrides = {"mask_frames": cfg.mask_frames, "mask_joints": cfg.mask_joints, **cfg.model_options}
    return build_pretrain_model(cfg.latent, cfg.preset, num_joints=data.num_joints, num_persons=data.num_persons,
                                num_frames=cfg.window, in_channels=data.num_channels, **overrides)


def resume_config(cfg: PretrainConfig | Any, kind: str) -> Any:
    """The checkpoint's config with this call's runtime fields (and ``epochs``, if given) on top."""
    checkpoint = load_checkpoint(Path(cfg.out) / "last.pt", kind=kind)
    saved = checkpoint["config"]
    merged = {**saved, **{k: getattr(cfg, k) for k in RUNTIME_KEYS}}
    model_config = checkpoint.get("model_config") or {}
    if kind == "pretrain" and model_config:
        # options added after the checkpoint was written keep the meaning it trained under (e.g.
        # the per-coordinate mean and the per-token VAE before issue 14): today's defaults would
        # change its loss, or its architecture, halfway through
        merged["model_options"] = {**legacy_options(model_config), **(saved.get("model_options") or {})}
    if cfg.epochs is not None:
        merged["epochs"] = cfg.epochs
    return type(cfg).from_dict(merged)


def run_pretrain(config: PretrainConfig | dict[str, Any]) -> dict[str, Any]:
    """Pre-train; return ``{"out", "last", "best", "best_epoch", "best_val_loss", "epochs" (rows),
    "config" (resolved), "world_size", "ranks_max_weight_diff"}``.

    ``config``: a :class:`PretrainConfig` or a dict for :meth:`PretrainConfig.from_dict`.
    Raises :class:`NonFiniteLossError` (epoch and step named) on a NaN / inf loss.
    """
    cfg = config if isinstance(config, PretrainConfig) else PretrainConfig.from_dict(config)
    if cfg.resume:
        cfg = resume_config(cfg, "pretrain")
    cfg = cfg.resolve()
    return run_session(cfg, _run)


def _run(cfg: PretrainConfig, info) -> dict[str, Any]:
    out = prepare_out(cfg.out, cfg.resume, info)
    torch.manual_seed(cfg.seed)  # model initialisation: the same on every rank
    splits = prepare_splits(cfg, out, info)
    model = build_model(cfg, splits.train_data).to(info.device)
    train_model = wrap_model(model, info, find_unused_parameters=bool(cfg.find_unused_parameters), sync_bn=cfg.sync_bn)
    if train_model is not model:
        model = unwrap(train_model)  # SyncBatchNorm conversion returns a new module
    optimizer, scheduler = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.lr_steps, cfg.lr_gamma)
    dtype = amp_dtype(info.device, cfg.amp)
    loader = make_train_loader(splits.train, cfg.batch_size, cfg.seed, info, cfg.num_workers)
    val_loader = make_eval_loader(splits.val, cfg.batch_size, info, cfg.num_workers)

    def train_step(batch, generator):
        x = batch[0].to(info.device, non_blocking=True)
        losses, _, _ = train_model(x, generator=generator)
        return losses["loss"], {k: v.detach() for k, v in losses.items()}, x.shape[0]

    @torch.no_grad()
    def validate() -> dict[str, float]:
        model.eval()
        generator = torch.Generator().manual_seed(cfg.seed + VAL_MASK_SEED_OFFSET)
        avg = Averager()
        for x, _ in val_loader:
            x = x.to(info.device, non_blocking=True)
            with autocast(info.device, dtype):
                losses, _, _ = model(x, generator=generator)
            avg.add({k: v.item() for k, v in losses.items()}, x.shape[0])
        return avg.means(info, prefix="val_")

    extra = {"model_config": _plain(getattr(model, "config", {})), "dataset": {
        "name": cfg.dataset, "num_joints": splits.train_data.num_joints, "num_persons": splits.train_data.num_persons,
        "in_channels": splits.train_data.num_channels, "num_classes": splits.train_data.num_classes}}
    result = fit(Fit(kind="pretrain", config=cfg.to_dict(), info=info, out=out, model=model, train_model=train_model,
                     optimizer=optimizer, scheduler=scheduler, scaler=make_scaler(info.device, dtype), amp_dtype=dtype,
                     loader=loader, train_step=train_step, validate=validate, monitor="val_loss", mode="min",
                     epochs=cfg.epochs, seed=cfg.seed, extra=extra, progress=cfg.progress), resume=cfg.resume)
    diff = max_weight_difference(model, info)
    log = result["log"]
    log.summary = {"world_size": info.world_size, "device": str(info.device), "amp_dtype": str(dtype),
                   "parameters": sum(p.numel() for p in model.parameters()),
                   "best_epoch": result["best_epoch"], "best_val_loss": result["best"], "ranks_max_weight_diff": diff,
                   "samples": {k: int(len(v)) for k, v in splits.indices.items()}}
    if info.is_main:
        log.write()
    return {"out": str(out), "last": str(out / "last.pt"), "best": str(out / "best.pt"),
            "best_epoch": result["best_epoch"], "best_val_loss": result["best"], "epochs": result["epochs"],
            "config": cfg.to_dict(), "world_size": info.world_size, "ranks_max_weight_diff": diff}


def _plain(obj: Any) -> Any:
    """``model.config`` as plain Python values (a dataclass or a dict), for a weights_only checkpoint."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


# ---- command line -------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, PretrainConfig)
    g = parser.add_argument_group("pre-training")
    g.add_argument("--mask-frames", dest="mask_frames", type=float, default=None, help="frame masking rate Mt (paper 0.4)")
    g.add_argument("--mask-joints", dest="mask_joints", type=float, default=None, help="joint masking rate Mj (paper 0.4)")
    g.add_argument("--model-options", dest="model_options", default=None, metavar="JSON",
                   help='build_pretrain_model overrides, e.g. \'{"decoder_depth": 5, "skip_empty_persons": true}\'')


def main(args: argparse.Namespace) -> int:
    return run_command(PretrainConfig, run_pretrain, args)
