"""Fine-tuning: ``python -m skel finetune`` and :func:`run_finetune`.

The encoder (pre-trained with ``init PATH``, or from scratch with ``init none``, the baseline) plus
one linear layer, trained end to end with cross-entropy under the paper's recipe. The model with
the best validation accuracy is kept (the validation set is carved from the training split: the
test set never selects anything). ``label_fraction`` < 1 trains on a class-stratified subset
(the semi-supervised setting; indices saved). Writes ``last.pt``, ``best.pt``, ``indices.npz``,
``metrics.csv`` and ``metrics.json``: the classifier's ``model_config`` (``head_init`` included; also in
the checkpoints), per-epoch curves plus, for the last epoch and for the best
validation epoch, test top-1 / top-5 accuracy, per-class accuracy and the confusion matrix.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.nn.functional as F

from skel.train.checkpoint import load_checkpoint
from skel.train.config import ConfigError, FinetuneConfig, add_common_arguments
from skel.train.distributed import (DistInfo, all_reduce_sum, amp_dtype, autocast, barrier, make_scaler,
                                    max_weight_difference, unwrap, wrap_model)
from skel.train.loop import (Fit, build_optimizer, fit, make_eval_loader, make_train_loader, prepare_out,
                             prepare_splits, run_command, run_session)
from skel.train.pretrain import resume_config


def build_model(cfg: FinetuneConfig, data) -> torch.nn.Module:
    """The classifier for ``cfg`` (resolved) and a dataset split ``data``; the encoder from
    ``cfg.init`` when it is a checkpoint path (the head stays freshly initialised)."""
    from skel.models.classifier import build_classifier, encoder_options

    pre = load_checkpoint(cfg.init, kind="pretrain") if cfg.init != "none" else None
    # the encoder runs as it was pre-trained (skip_empty_persons), unless model_options says otherwise
    options = {**(encoder_options(pre) if pre else {}), **cfg.model_options}
    model = build_classifier(cfg.preset, data.num_classes, num_joints=data.num_joints, num_persons=data.num_persons,
                             num_frames=cfg.window, in_channels=data.num_channels, **options)
    if pre is not None:
        model.load_encoder(pre["model"])
    return model


def init_defaults(cfg: FinetuneConfig) -> FinetuneConfig:
    """Check ``init`` against ``cfg`` (same preset: the encoder's shape); take its window and latent
    when not given. ``latent`` only picks the recipe's lr here (the classifier has no latent)."""
    if cfg.init == "none":
        return cfg
    pre = load_checkpoint(cfg.init, kind="pretrain")["config"]
    if pre["preset"] != cfg.preset:
        raise ConfigError(f"init {cfg.init} was pre-trained with preset {pre['preset']!r}, "
                          f"but this run asks for preset {cfg.preset!r}: pass --preset {pre['preset']} "
                          f"(preset={pre['preset']!r})")
    values = cfg.to_dict()
    if cfg.window is None:
        values["window"] = pre["window"]
    if cfg.latent is None:
        values["latent"] = pre["latent"]
    return FinetuneConfig.from_dict(values)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, num_classes: int, info: DistInfo, dtype=None) -> dict[str, Any]:
    """Accuracy of ``model`` on ``loader`` (summed over ranks).

    Returns ``{"loss", "top1", "top5" (when num_classes >= 5), "per_class" (K, None where a class
    has no sample), "confusion" (K x K counts, row = true class, column = prediction), "samples"}``.
    """
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=info.device)
    loss_sum, top5 = 0.0, 0
    for x, y in loader:
        x, y = x.to(info.device, non_blocking=True), y.to(info.device, non_blocking=True)
        with autocast(info.device, dtype):
            logits = model(x)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        confusion.index_put_((y, logits.argmax(1)), torch.ones_like(y), accumulate=True)
        if num_classes >= 5:
            top5 += (logits.topk(5, dim=1).indices == y[:, None]).any(1).sum().item()
    if info.distributed:
        import torch.distributed as dist

        dist.all_reduce(confusion)
    sums = all_reduce_sum({"loss": loss_sum, "top5": float(top5)}, info)
    confusion = confusion.cpu()
    n = int(confusion.sum())
    per_count = confusion.sum(1)
    result: dict[str, Any] = {
        "loss": sums["loss"] / max(n, 1),
        "top1": float(confusion.diag().sum()) / max(n, 1),
        "per_class": [float(confusion[k, k]) / int(c) if c else None for k, c in enumerate(per_count.tolist())],
        "confusion": confusion.tolist(),
        "samples": n,
    }
    if num_classes >= 5:
        result["top5"] = sums["top5"] / max(n, 1)
    return result


def run_finetune(config: FinetuneConfig | dict[str, Any]) -> dict[str, Any]:
    """Fine-tune; return ``{"out", "last", "best", "best_epoch", "best_val_acc", "test_last",
    "test_best_val", "epochs" (rows), "config" (resolved), "world_size"}``; ``test_*`` are
    :func:`evaluate` results on the test split (last epoch / best validation epoch)."""
    cfg = config if isinstance(config, FinetuneConfig) else FinetuneConfig.from_dict(config)
    if cfg.resume:
        cfg = resume_config(cfg, "finetune")
    cfg = init_defaults(cfg).resolve()
    return run_session(cfg, _run)


def _run(cfg: FinetuneConfig, info: DistInfo) -> dict[str, Any]:
    out = prepare_out(cfg.out, cfg.resume, info)
    torch.manual_seed(cfg.seed)
    splits = prepare_splits(cfg, out, info, label_fraction=cfg.label_fraction)
    num_classes = splits.train_data.num_classes
    model = build_model(cfg, splits.train_data).to(info.device)
    train_model = wrap_model(model, info, sync_bn=cfg.sync_bn)
    model = unwrap(train_model)
    optimizer, scheduler = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.lr_steps, cfg.lr_gamma)
    dtype = amp_dtype(info.device, cfg.amp)
    loader = make_train_loader(splits.train, cfg.batch_size, cfg.seed, info, cfg.num_workers)
    val_loader = make_eval_loader(splits.val, cfg.batch_size, info, cfg.num_workers)
    test_loader = make_eval_loader(splits.test, cfg.batch_size, info, cfg.num_workers)

    def train_step(batch, generator):
        x = batch[0].to(info.device, non_blocking=True)
        y = batch[1].to(info.device, non_blocking=True)
        logits = train_model(x).float()
        loss = F.cross_entropy(logits, y)
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss, {"loss": loss.detach(), "acc": acc}, x.shape[0]

    def validate() -> dict[str, float]:
        val = evaluate(model, val_loader, num_classes, info, dtype)
        row = {"val_loss": val["loss"], "val_acc": val["top1"]}
        if cfg.test_curve:  # plotted only; selection uses val_acc
            row["test_acc"] = evaluate(model, test_loader, num_classes, info, dtype)["top1"]
        return row

    # model_config rebuilds the classifier (build_classifier(**model_config)) and says how its head began (head_init)
    extra = {"model_config": dict(model.config),
             "dataset": {"name": cfg.dataset, "num_classes": num_classes, "class_names": splits.train_data.class_names}}
    result = fit(Fit(kind="finetune", config=cfg.to_dict(), info=info, out=out, model=model, train_model=train_model,
                     optimizer=optimizer, scheduler=scheduler, scaler=make_scaler(info.device, dtype), amp_dtype=dtype,
                     loader=loader, train_step=train_step, validate=validate, monitor="val_acc", mode="max",
                     epochs=cfg.epochs, seed=cfg.seed, extra=extra, progress=cfg.progress), resume=cfg.resume)
    diff = max_weight_difference(model, info)
    test_last = evaluate(model, test_loader, num_classes, info, dtype)
    barrier(info)  # best.pt is written by rank 0
    model.load_state_dict(load_checkpoint(out / "best.pt", kind="finetune")["model"])
    test_best = evaluate(model, test_loader, num_classes, info, dtype)
    log = result["log"]
    log.summary = {
        "world_size": info.world_size, "device": str(info.device), "amp_dtype": str(dtype),
        "init": cfg.init, "model_config": dict(model.config), "label_fraction": cfg.label_fraction,
        "num_classes": num_classes,
        "class_names": splits.train_data.class_names, "samples": {k: int(len(v)) for k, v in splits.indices.items()},
        "best_epoch": result["best_epoch"], "best_val_acc": result["best"],
        "test_last": test_last, "test_best_val": test_best, "ranks_max_weight_diff": diff,
    }
    if info.is_main:
        log.write()
        print(f"finetune: test top-1 {test_last['top1']:.4f} (last epoch), {test_best['top1']:.4f} "
              f"(best validation epoch {result['best_epoch']})")
    return {"out": str(out), "last": str(out / "last.pt"), "best": str(out / "best.pt"),
            "best_epoch": result["best_epoch"], "best_val_acc": result["best"], "test_last": test_last,
            "test_best_val": test_best, "epochs": result["epochs"], "config": cfg.to_dict(),
            "world_size": info.world_size, "ranks_max_weight_diff": diff}


# ---- command line -------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, FinetuneConfig)
    g = parser.add_argument_group("fine-tuning")
    g.add_argument("--init", required=True, metavar="PATH|none",
                   help="a pre-training checkpoint (its encoder is loaded) or 'none' (from scratch)")
    g.add_argument("--label-fraction", dest="label_fraction", type=float, default=None,
                   help="train on this class-stratified fraction of the labels (default 1.0)")
    g.add_argument("--test-curve", dest="test_curve", action="store_true", default=None,
                   help="also log test accuracy per epoch (plots only; never used for selection)")
    g.add_argument("--model-options", dest="model_options", default=None, metavar="JSON",
                   help='build_classifier overrides, e.g. \'{"skip_empty_persons": true}\' or '
                        '\'{"head_init": "normal"}\' (default "xavier", the official STTFormer head)')


def main(args: argparse.Namespace) -> int:
    return run_command(FinetuneConfig, run_finetune, args)
