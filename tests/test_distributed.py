"""Two processes on the CPU (gloo): ``torchrun --nproc_per_node=2 -m skel pretrain``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from skel.models.pretrain import build_pretrain_model
from skel.train.checkpoint import load_checkpoint
from skel.utils import repo_root


def test_two_gloo_processes_train_and_write_one_checkpoint(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "skel", "pretrain", "--preset", "tiny", "--latent", "vq", "--device", "cpu", "--epochs", "1",
           "--window", "12", "--batch-size", "2", "--dataset-options", '{"num_per_class": 1, "length": [12, 24]}',
           "--val-groups", "subject", "--val-fraction", "0.3", "--seed", "4", "--no-progress", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: ") == 1  # rank 0 alone reports

    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert files == ["best.pt", "indices.npz", "last.pt", "metrics.csv", "metrics.json"]  # one of each, no temp files
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["ranks_max_weight_diff"] == 0.0  # both ranks ended with identical parameters
    assert len(metrics["epochs"]) == 1 and metrics["epochs"][0]["train_loss"] > 0
    assert "train_perplexity" in metrics["epochs"][0] and "val_used_codes" in metrics["epochs"][0]

    ckpt = load_checkpoint(out / "last.pt", kind="pretrain")
    assert ckpt["epoch"] == 1 and len(ckpt["rng"]) == 2  # each rank's random state, for resume
    assert ckpt["rng"][0]["generators"]["train"].tolist() != ckpt["rng"][1]["generators"]["train"].tolist()
    # it trained: BatchNorm counted one batch per optimiser step of this rank's shard
    from skel.data.feeder import load_indices

    per_rank = len(load_indices(out / "indices.npz")["train"]) // 2
    steps = per_rank // 2 if per_rank > 2 else 1
    tracked = [int(v) for k, v in ckpt["model"].items() if k.endswith("num_batches_tracked")]
    assert tracked and set(tracked) == {steps}
    torch.manual_seed(4)  # the run's initialisation, rebuilt: the weights moved away from it
    init = build_pretrain_model(**ckpt["model_config"]).state_dict()
    assert set(init) == set(ckpt["model"])
    assert not torch.equal(init["encoder.blocks.0.to_qk.weight"], ckpt["model"]["encoder.blocks.0.to_qk.weight"])
