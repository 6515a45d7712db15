"""Linear probe and k-nearest-neighbour accuracy: ``python -m skel linear-probe`` and :func:`run_probe`.

The pre-trained encoder is frozen; its features ``(N, D)`` (test-time centre crop, no masking, no
rotation, for every split, the training one included) are extracted once for the training,
validation and test samples. First (``bn_recompute``, on by default) the encoder's BatchNorm
statistics are re-estimated on the unmasked training split (:mod:`skel.train.bn`): pre-training
ran the encoder on the visible 36 % of the tokens only (60 % of the frames x 60 % of the
joints), and the variance entering its BatchNorm layers is larger on whole sequences. The weights
never change. Then, on the cached features:

* **linear probe**: features standardised with the training mean / std, one linear layer trained
  with cross-entropy (mini-batch Adam, or full-batch L-BFGS); the epoch with the best validation
  accuracy is selected, test accuracy reported for it and for the last epoch;
* **kNN**: cosine similarity between L2-normalised test and training features (training bank =
  train + validation samples), the ``k`` nearest vote with weights ``exp(sim / temperature)``
  (the weighted vote of Wu et al. 2018, temperature 0.07).

Single process (the features are cheap to fit); ``metrics.json`` in ``out`` holds both results.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from skel.train.bn import recompute_batchnorm
from skel.train.checkpoint import load_checkpoint
from skel.train.config import ConfigError, ProbeConfig, add_common_arguments
from skel.train.distributed import DistInfo, amp_dtype, autocast, deterministic, resolve_device
from skel.train.loop import MetricsLog, apply_threads, make_eval_loader, prepare_splits, run_command


def probe_splits(splits, window: int, seed: int = 0) -> dict[str, Any]:
    """``{"train", "val", "test"}`` feeders of ``splits`` (:func:`skel.train.loop.prepare_splits`), all
    in evaluation mode: centre crops, no rotation. ``splits.train`` itself crops at random (and
    rotates): the probe's training features and BatchNorm statistics use this one instead."""
    from skel.data.feeder import Feeder

    return {"train": Feeder(splits.train_data, window, train=False, indices=splits.indices["train"], seed=seed),
            "val": splits.val, "test": splits.test}


def recompute_encoder_batchnorm(model: torch.nn.Module, train_feeder, batch_size: int, info: DistInfo, dtype=None,
                                seed: int = 0, max_batches: int | None = None, num_workers: int = 0) -> dict[str, Any]:
    """Re-estimate ``model``'s BatchNorm statistics on ``train_feeder`` (unmasked, unaugmented) with
    :func:`skel.train.bn.recompute_batchnorm`, through ``model.features``.

    Batches are drawn in a seeded random order (``seed``; sorted by class they would each hold one
    class, and a mean of per-batch variances would miss the variance between classes), all of
    ``batch_size`` samples (the last, smaller one is dropped when there is more than one batch).
    Returns ``recompute_batchnorm``'s counts and ``time_s``."""
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_feeder, batch_size=batch_size, shuffle=True, generator=generator,
                        drop_last=len(train_feeder) > batch_size, num_workers=num_workers,
                        pin_memory=info.device.type == "cuda")
    t0 = time.perf_counter()
    counts = recompute_batchnorm(model, loader, max_batches=max_batches, forward=lambda m, x: m.features(x),
                                 device=info.device, autocast=lambda: autocast(info.device, dtype))
    return {**counts, "time_s": time.perf_counter() - t0}


@torch.no_grad()
def extract_features(encoder_model: torch.nn.Module, dataset, batch_size: int, info: DistInfo,
                     dtype=None, num_workers: int = 0, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (N, D) float32 on the CPU, labels (N,) int64)`` of ``dataset`` via ``.features``."""
    encoder_model.eval()
    feats, labels = [], []
    loader = make_eval_loader(dataset, batch_size, info, num_workers)
    for x, y in tqdm(loader, desc="features", leave=False, disable=not progress):
        with autocast(info.device, dtype):
            f = encoder_model.features(x.to(info.device, non_blocking=True))
        feats.append(f.float().cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels).long()


def knn_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                 num_classes: int, k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> dict[str, Any]:
    """Weighted kNN on cosine similarity: ``train_f (Nb, D)``, ``test_f (Nq, D)``.

    Each of the ``k`` nearest training samples votes for its class with ``exp(sim / temperature)``.
    Returns ``{"k", "temperature", "top1", "top5" (num_classes >= 5)}``.
    """
    k = min(k, len(train_f))
    bank = F.normalize(train_f, dim=1)
    correct1 = correct5 = 0
    for i in range(0, len(test_f), chunk):
        q = F.normalize(test_f[i:i + chunk], dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)  # (B, k)
        votes = torch.zeros(len(q), num_classes)
        votes.scatter_add_(1, train_y[idx], (sim / temperature).exp())
        y = test_y[i:i + chunk]
        ranked = votes.argsort(dim=1, descending=True)
        correct1 += int((ranked[:, 0] == y).sum())
        correct5 += int((ranked[:, :5] == y[:, None]).any(1).sum())
    n = max(len(test_f), 1)
    result: dict[str, Any] = {"k": k, "temperature": temperature, "top1": correct1 / n}
    if num_classes >= 5:
        result["top5"] = correct5 / n
    return result


def train_linear(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor], num_classes: int, cfg: ProbeConfig) -> dict[str, Any]:
    """Fit a linear classifier on standardised features; select the epoch by validation accuracy.

    Returns ``{"best_epoch", "val_top1_best", "test_top1_best_val", "test_top1_last", "curve": rows}``.
    """
    mean, std = train[0].mean(0), train[0].std(0).clamp_min(1e-6)
    xs = [(f - mean) / std for f in (train[0], val[0], test[0])]
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    head = torch.nn.Linear(xs[0].shape[1], num_classes)

    def acc(x, y):
        with torch.no_grad():
            return float((head(x).argmax(1) == y).float().mean()) if len(y) else float("nan")

    if cfg.probe_optimizer == "adam":
        opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.LBFGS(head.parameters(), lr=cfg.lr, max_iter=20, history_size=10, line_search_fn="strong_wolfe")
    rows, best, best_state = [], None, None
    for epoch in range(1, cfg.epochs + 1):
        if cfg.probe_optimizer == "adam":
            total = 0.0
            for idx in torch.randperm(len(xs[0]), generator=gen).split(cfg.batch_size):
                loss = F.cross_entropy(head(xs[0][idx]), train[1][idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            train_loss = total / len(xs[0])
        else:
            def closure():
                opt.zero_grad()
                loss = F.cross_entropy(head(xs[0]), train[1])
                loss = loss + cfg.weight_decay * head.weight.pow(2).sum() / 2
                loss.backward()
                return loss
            train_loss = float(opt.step(closure))
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": acc(xs[0], train[1]),
               "val_acc": acc(xs[1], val[1]), "test_acc": acc(xs[2], test[1])}
        rows.append(row)
        if best is None or row["val_acc"] > best["val_acc"]:
            best, best_state = row, {k: v.clone() for k, v in head.state_dict().items()}
    return {"best_epoch": best["epoch"], "val_top1_best": best["val_acc"], "test_top1_best_val": best["test_acc"],
            "test_top1_last": rows[-1]["test_acc"], "curve": rows, "head": best_state}


def run_probe(config: ProbeConfig | dict[str, Any]) -> dict[str, Any]:
    """Linear probe + kNN on the frozen encoder of ``config.init``; return
    ``{"out", "linear": {...}, "knn": {...}, "feature_dim", "samples", "bn_recompute", "config"}`` (also in
    metrics.json); ``bn_recompute`` is ``{"layers", "batches", "samples", "time_s"}`` of the BatchNorm
    re-estimation, or None when ``config.bn_recompute`` is False."""
    cfg = config if isinstance(config, ProbeConfig) else ProbeConfig.from_dict(config)
    pre = load_checkpoint(cfg.init, kind="pretrain")
    if pre["config"]["preset"] != cfg.preset:
        raise ConfigError(f"init {cfg.init} was pre-trained with preset {pre['config']['preset']!r}, "
                          f"but this run asks for preset {cfg.preset!r}: pass --preset {pre['config']['preset']} "
                          f"(preset={pre['config']['preset']!r})")
    if cfg.window is None:
        cfg = ProbeConfig.from_dict({**cfg.to_dict(), "window": pre["config"]["window"]})
    cfg = cfg.resolve()
    apply_threads(cfg.threads)
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=resolve_device(cfg.device))
    with deterministic(cfg.deterministic, info.device):
        return _run(cfg, pre, info)


def _run(cfg: ProbeConfig, pre: dict[str, Any], info: DistInfo) -> dict[str, Any]:
    from skel.models.classifier import build_classifier, encoder_options

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = prepare_splits(cfg, out, info)
    data = splits.train_data
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.preset, data.num_classes, num_joints=data.num_joints, num_persons=data.num_persons,
                             num_frames=cfg.window, in_channels=data.num_channels, **encoder_options(pre)).to(info.device)
    model.load_encoder(pre["model"])
    dtype = amp_dtype(info.device, cfg.amp)
    feeders = probe_splits(splits, cfg.window, cfg.seed)
    bn = None
    if cfg.bn_recompute:
        bn = recompute_encoder_batchnorm(model, feeders["train"], cfg.batch_size, info, dtype, cfg.seed,
                                         cfg.bn_batches, cfg.num_workers)
    t0 = time.perf_counter()
    feats = {name: extract_features(model, feeders[name], cfg.batch_size, info, dtype, cfg.num_workers,
                                    cfg.progress) for name in ("train", "val", "test")}
    extract_s = time.perf_counter() - t0
    linear = train_linear(feats["train"], feats["val"], feats["test"], data.num_classes, cfg)
    linear.pop("head")
    bank_f = torch.cat([feats["train"][0], feats["val"][0]])
    bank_y = torch.cat([feats["train"][1], feats["val"][1]])
    knn = knn_accuracy(bank_f, bank_y, *feats["test"], data.num_classes, cfg.knn_k, cfg.knn_temperature)
    summary = {"init": cfg.init, "feature_dim": int(feats["train"][0].shape[1]), "extract_time_s": extract_s,
               "bn_recompute": bn, "samples": {k: int(len(v)) for k, v in splits.indices.items()},
               "linear": linear, "knn": knn}
    log = MetricsLog(out, cfg.to_dict(), linear["curve"])  # the linear probe's epochs are the rows
    log.summary = {**summary, "linear": {k: v for k, v in linear.items() if k != "curve"}}
    log.write()
    print(f"linear probe: test top-1 {linear['test_top1_best_val']:.4f} (best validation epoch "
          f"{linear['best_epoch']}), {linear['test_top1_last']:.4f} (last); kNN k={knn['k']}: top-1 {knn['top1']:.4f}")
    return {"out": str(out), **summary, "config": cfg.to_dict()}


# ---- command line -------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, ProbeConfig)
    g = parser.add_argument_group("linear probe and kNN")
    g.add_argument("--init", required=True, metavar="PATH", help="the pre-training checkpoint whose encoder is probed")
    g.add_argument("--knn-k", dest="knn_k", type=int, default=None, help="neighbours (default 20)")
    g.add_argument("--knn-temperature", dest="knn_temperature", type=float, default=None,
                   help="vote weight exp(sim / T) (default 0.07)")
    g.add_argument("--probe-optimizer", dest="probe_optimizer", choices=("adam", "lbfgs"), default=None,
                   help="adam: mini-batch epochs; lbfgs: full-batch (default adam)")
    g.add_argument("--no-bn-recompute", dest="bn_recompute", action="store_false", default=None,
                   help="keep the encoder's BatchNorm statistics from (masked) pre-training instead of "
                        "re-estimating them on the unmasked training split (the default)")
    g.add_argument("--bn-batches", dest="bn_batches", type=int, default=None, metavar="N",
                   help="re-estimate the BatchNorm statistics on at most N training batches (default: all)")


def main(args: argparse.Namespace) -> int:
    return run_command(ProbeConfig, run_probe, args)
