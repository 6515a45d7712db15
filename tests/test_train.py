"""Pre-training, fine-tuning and the linear probe end to end on a tiny synthetic set (CPU).

Every run uses the tiny preset, a 12-frame window and one sample per class (12 training samples,
about 4 of them carved out for validation), so an epoch is one or two small batches.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from skel.cli import main as cli_main
from skel.data import load_dataset
from skel.data.feeder import load_indices
from skel.train import finetune as finetune_mod
from skel.train import pretrain as pretrain_mod
from skel.train.checkpoint import load_checkpoint
from skel.train.config import ConfigError, FinetuneConfig
from skel.train.finetune import run_finetune
from skel.train.loop import NonFiniteLossError
from skel.train.pretrain import run_pretrain
from skel.train.probe import knn_accuracy, run_probe

TINY = {"preset": "tiny", "window": 12, "batch_size": 8, "progress": False,
        "dataset_options": {"num_per_class": 1, "length": [12, 24]}, "val_groups": "subject", "val_fraction": 0.3}


def _losses(rows):
    return [{k: v for k, v in r.items() if k.startswith(("train_", "val_")) or k in ("epoch", "lr")} for r in rows]


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    common = {**TINY, "latent": "vae", "lr_steps": [2], "seed": 3}  # vae: masks AND latent noise are random
    straight = run_pretrain({**common, "epochs": 3, "out": str(tmp_path / "straight")})
    run_pretrain({**common, "epochs": 2, "out": str(tmp_path / "split")})
    resumed = run_pretrain({**common, "epochs": 3, "out": str(tmp_path / "split"), "resume": True})
    assert len(straight["epochs"]) == len(resumed["epochs"]) == 3
    assert _losses(resumed["epochs"]) == _losses(straight["epochs"])  # exact equality, every term, every epoch
    assert straight["epochs"][2]["lr"] == pytest.approx(1e-4)  # the schedule stepped after epoch 2 in both
    a = load_checkpoint(tmp_path / "straight" / "last.pt", kind="pretrain")
    b = load_checkpoint(tmp_path / "split" / "last.pt", kind="pretrain")
    assert a["epoch"] == b["epoch"] == 3
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    rows = json.loads((tmp_path / "split" / "metrics.json").read_text())["epochs"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    csv_lines = (tmp_path / "split" / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and "train_kl" in csv_lines[0] and "samples_per_s" in csv_lines[0]
    # the best checkpoint holds the lowest validation loss seen
    best = load_checkpoint(tmp_path / "split" / "best.pt", kind="pretrain")
    val = [r["val_loss"] for r in rows]
    assert best["epoch"] == int(np.argmin(val)) + 1


def test_resuming_a_run_from_before_issue_14_keeps_its_loss_and_its_latent(tmp_path):
    # a SkeletonMVAE checkpoint written before loss_reduction and vae_mode existed: it trained on the
    # per-coordinate mean with one latent per token
    common = {**TINY, "latent": "vae", "seed": 0, "out": str(tmp_path)}
    run_pretrain({**common, "epochs": 1, "model_options": {"loss_reduction": "mean", "vae_mode": "token"}})
    ckpt = load_checkpoint(tmp_path / "last.pt", kind="pretrain")
    for key in ("loss_reduction", "vae_mode", "sample_channels"):
        ckpt["model_config"].pop(key)
    ckpt["config"]["model_options"] = {}
    torch.save(ckpt, tmp_path / "last.pt")
    resumed = run_pretrain({**common, "epochs": 2, "resume": True})  # today's per-sample latent would not load
    assert resumed["config"]["model_options"]["loss_reduction"] == "mean"
    assert resumed["config"]["model_options"]["vae_mode"] == "token"
    after = load_checkpoint(tmp_path / "last.pt", kind="pretrain")["model_config"]
    assert (after["loss_reduction"], after["vae_mode"]) == ("mean", "token")
    # a fresh run of the same config trains on the paper's per-sample sum with one latent per sample
    fresh = run_pretrain({**common, "epochs": 1, "out": str(tmp_path / "fresh")})
    built = load_checkpoint(tmp_path / "fresh" / "last.pt", kind="pretrain")["model_config"]
    assert (built["loss_reduction"], built["vae_mode"]) == ("sum", "sample")
    assert fresh["epochs"][0]["train_loss"] > 10 * resumed["epochs"][0]["train_loss"]


def test_legacy_options_name_only_what_a_stored_config_lacks():
    from skel.models.pretrain import build_pretrain_model, legacy_options

    config = build_pretrain_model("vq", "tiny", num_frames=12).config
    assert legacy_options(config) == {}
    old = {k: v for k, v in config.items() if k not in ("loss_reduction", "decoder_head_init")}
    assert legacy_options(old) == {"loss_reduction": "mean", "decoder_head_init": "xavier"}  # no VAE keys for vq


def test_a_fresh_run_refuses_to_overwrite(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="--resume"):
        run_pretrain({**TINY, "epochs": 1, "out": str(tmp_path)})


def test_non_finite_loss_stops_naming_epoch_and_step(tmp_path, monkeypatch, capsys):
    build = pretrain_mod.build_model
    calls = {"train": 0}

    def poisoned(cfg, data):
        model = build(cfg, data)
        forward = model.forward

        def forward_with_nan(x, generator=None):
            losses, recon, mask = forward(x, generator=generator)
            if model.training:
                calls["train"] += 1
                if calls["train"] == 4:  # epoch 2 (two steps per epoch), step 2
                    losses["loss"] = losses["loss"] * float("nan")
            return losses, recon, mask

        model.forward = forward_with_nan
        return model

    monkeypatch.setattr(pretrain_mod, "build_model", poisoned)
    out = tmp_path / "run"
    rc = cli_main(["pretrain", "--epochs", "3", "--window", "12", "--batch-size", "4", "--out", str(out),
                   "--dataset-options", '{"num_per_class": 1, "length": [12, 24]}', "--val-groups", "subject",
                   "--val-fraction", "0.3", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "non-finite loss" in err and "epoch 2, step 2" in err and "last.pt" in err
    assert load_checkpoint(out / "last.pt", kind="pretrain")["epoch"] == 1  # the last good one is kept
    assert len(json.loads((out / "metrics.json").read_text())["epochs"]) == 1
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 1"):
        calls["train"] = 3
        run_pretrain({**TINY, "epochs": 1, "out": str(tmp_path / "again")})


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """One epoch of pre-training per latent: ``{latent: checkpoint path}``."""
    root = tmp_path_factory.mktemp("pretrained")
    return {latent: run_pretrain({**TINY, "latent": latent, "epochs": 1, "out": str(root / latent)})["last"]
            for latent in ("none", "vae", "vq")}


@pytest.mark.parametrize("latent", ["none", "vae", "vq"])
def test_init_loads_exactly_the_encoder(pretrained, latent):
    ckpt = load_checkpoint(pretrained[latent], kind="pretrain")
    assert any(k.startswith("latent.") or k.startswith("decoder.") for k in ckpt["model"])
    data = load_dataset("synthetic", "train", **TINY["dataset_options"])
    cfg = FinetuneConfig.from_dict({**TINY, "latent": latent, "init": pretrained[latent]}).resolve()
    torch.manual_seed(0)
    model = finetune_mod.build_model(cfg, data)
    torch.manual_seed(0)
    scratch = finetune_mod.build_model(FinetuneConfig.from_dict({**TINY, "latent": latent}).resolve(), data)
    encoder = {k[len("encoder."):]: v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
    mine = model.encoder.state_dict()
    assert set(mine) == set(encoder)
    for k, v in mine.items():
        assert torch.equal(v, encoder[k]), k
    # everything outside the encoder is the fresh initialisation, not something from the checkpoint
    for k, v in model.state_dict().items():
        if not k.startswith("encoder."):
            assert torch.equal(v, scratch.state_dict()[k]), k
    assert not all(torch.equal(v, scratch.encoder.state_dict()[k]) for k, v in mine.items())


def test_the_encoder_runs_as_it_was_pretrained(tmp_path):
    # skip_empty_persons is carried from the pre-training checkpoint into fine-tuning and the probe
    path = run_pretrain({**TINY, "epochs": 1, "model_options": {"skip_empty_persons": True},
                         "out": str(tmp_path / "pre")})["last"]
    data = load_dataset("synthetic", "train", **TINY["dataset_options"])
    inherited = finetune_mod.build_model(FinetuneConfig.from_dict({**TINY, "init": path}).resolve(), data)
    assert inherited.encoder.skip_empty_persons
    overridden = finetune_mod.build_model(FinetuneConfig.from_dict(
        {**TINY, "init": path, "model_options": {"skip_empty_persons": False}}).resolve(), data)
    assert not overridden.encoder.skip_empty_persons
    assert not finetune_mod.build_model(FinetuneConfig.from_dict(TINY).resolve(), data).encoder.skip_empty_persons


def test_init_with_another_preset_is_refused(pretrained):
    with pytest.raises(ConfigError, match="preset 'tiny'.*pass --preset tiny"):
        run_finetune({**TINY, "preset": "small", "init": pretrained["none"], "out": "unused"})


def test_finetune_semi_supervised(pretrained, tmp_path):
    opts = {"num_per_class": 2, "length": [12, 24]}
    result = run_finetune({**TINY, "init": pretrained["vq"], "epochs": 2, "dataset_options": opts,
                           "label_fraction": 0.5, "batch_size": 12, "out": str(tmp_path)})
    assert result["config"]["latent"] == "vq" and result["config"]["lr"] == 1e-2  # the paper's VQ lr, from init
    labels = load_dataset("synthetic", "train", **opts).labels
    idx = load_indices(tmp_path / "indices.npz")
    # 1 of the 2 samples of each class is labelled (stratified); validation is carved from those
    assert np.bincount(labels[np.concatenate([idx["train"], idx["val"]])], minlength=12).tolist() == [1] * 12
    assert len(idx["val"]) > 0 and not set(idx["train"]) & set(idx["val"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr"} <= set(metrics["epochs"][0])
    vals = [r["val_acc"] for r in metrics["epochs"]]
    assert metrics["best_epoch"] == int(np.argmax(vals)) + 1 and metrics["best_val_acc"] == max(vals)
    for key in ("test_last", "test_best_val"):
        test = metrics[key]
        confusion = np.array(test["confusion"])
        assert confusion.shape == (12, 12) and confusion.sum() == test["samples"] == 24
        assert test["top1"] == pytest.approx(np.trace(confusion) / 24)
        assert test["per_class"] == pytest.approx((np.diag(confusion) / confusion.sum(1)).tolist())
        assert test["top1"] <= test["top5"] <= 1.0
    assert metrics["test_last"] == result["test_last"]
    best = load_checkpoint(tmp_path / "best.pt", kind="finetune")
    assert best["epoch"] == metrics["best_epoch"]
    assert best["model_config"] == metrics["model_config"] and best["model_config"]["head_init"] == "xavier"
    from skel.models.classifier import build_classifier

    assert set(build_classifier(**best["model_config"]).state_dict()) == set(best["model"])  # rebuilds the model


def test_linear_probe_and_knn(pretrained, tmp_path):
    result = run_probe({**TINY, "init": pretrained["none"], "epochs": 5, "out": str(tmp_path)})
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["linear"]["test_top1_best_val"] == result["linear"]["test_top1_best_val"]
    assert len(metrics["epochs"]) == 5 and metrics["knn"]["k"] == min(20, 12)
    assert 0.0 <= metrics["knn"]["top1"] <= metrics["knn"]["top5"] <= 1.0
    assert metrics["feature_dim"] == 64  # the tiny encoder's last width
    assert metrics["config"]["bn_recompute"] and metrics["config"]["rotate"] == 0.0
    bn = metrics["bn_recompute"]  # the training split (8 samples here) in one batch
    assert bn["layers"] > 0 and bn["batches"] == 1 and bn["samples"] == metrics["samples"]["train"]


@pytest.mark.parametrize("bn_recompute", [True, False])
def test_probe_features_are_unaugmented_with_batchnorm_statistics_of_unmasked_data(pretrained, tmp_path, monkeypatch,
                                                                                   bn_recompute):
    from skel.train import probe as probe_mod

    seen = {}
    extract = probe_mod.extract_features

    def spy(model, dataset, *args, **kwargs):
        seen.setdefault("state", {k: v.clone() for k, v in model.encoder.state_dict().items()})
        seen.setdefault("train_mode", []).append(dataset.train)
        return extract(model, dataset, *args, **kwargs)

    monkeypatch.setattr(probe_mod, "extract_features", spy)
    result = run_probe({**TINY, "init": pretrained["none"], "epochs": 1, "out": str(tmp_path),
                        "bn_recompute": bn_recompute})
    assert seen["train_mode"] == [False, False, False]  # centre crops, no rotation, for train too
    ckpt = {k[len("encoder."):]: v for k, v in load_checkpoint(pretrained["none"], kind="pretrain")["model"].items()
            if k.startswith("encoder.")}
    for k, v in seen["state"].items():
        if k.endswith("num_batches_tracked"):  # the batches they were estimated on
            assert int(v) == (result["bn_recompute"]["batches"] if bn_recompute else int(ckpt[k])), k
            continue
        # only the BatchNorm statistics are re-estimated, and only with bn_recompute
        assert (not torch.equal(v, ckpt[k])) == (bn_recompute and k.endswith(("running_mean", "running_var"))), k
    assert (result["bn_recompute"] is None) != bn_recompute


def test_knn_weighted_vote_by_hand():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
    bank_y = torch.tensor([0, 0, 1, 1, 2])
    query = torch.tensor([[1.0, 0.05], [0.2, 1.0], [0.6, 0.5]])
    # query 3: cosine 0.77 / 0.83 to class 0, 0.64 / 0.72 to class 1; k=3 picks (0, 0, 1): class 0 wins
    out = knn_accuracy(bank, bank_y, query, torch.tensor([0, 1, 0]), num_classes=3, k=3, temperature=0.1)
    assert out["top1"] == 1.0 and out["k"] == 3 and "top5" not in out
    # all 5 vote for (-1, 0): a sharp weighting lets the one exact match (class 2) win, a flat one
    # (temperature -> inf) counts votes and class 2's single vote loses
    far = torch.tensor([[-1.0, 0.0]])
    assert knn_accuracy(bank, bank_y, far, torch.tensor([2]), num_classes=3, k=5, temperature=0.01)["top1"] == 1.0
    assert knn_accuracy(bank, bank_y, far, torch.tensor([2]), num_classes=3, k=5, temperature=1e6)["top1"] == 0.0


def test_prepare_splits_max_samples_and_groups(tmp_path):
    from skel.train.config import PretrainConfig
    from skel.train.distributed import DistInfo
    from skel.train.loop import prepare_splits

    cfg = PretrainConfig.from_dict({**TINY, "dataset_options": {"num_per_class": 4, "length": [12, 24]},
                                    "max_samples": 24}).resolve()
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    splits = prepare_splits(cfg, tmp_path, info)
    idx = load_indices(tmp_path / "indices.npz")
    assert {k: v.tolist() for k, v in idx.items()} == {k: np.asarray(v).tolist() for k, v in splits.indices.items()}
    kept = np.concatenate([idx["train"], idx["val"]])
    assert np.bincount(splits.train_data.labels[kept], minlength=12).tolist() == [2] * 12  # 24 of 48, per class
    assert np.bincount(splits.test_data.labels[idx["test"]], minlength=12).tolist() == [2] * 12
    subjects = splits.train_data.meta["subject"]
    assert not set(subjects[idx["train"]]) & set(subjects[idx["val"]])  # whole subjects validate
    assert len(splits.train) == len(idx["train"]) and splits.train[0][0].shape == (3, 12, 25, 2)


def test_classifier_head_init_official_xavier_or_the_earlier_normal():
    from skel.models.classifier import CLASSIFIER_OPTIONS, Classifier, build_classifier, encoder_options

    assert CLASSIFIER_OPTIONS["head_init"] == "xavier"
    torch.manual_seed(0)
    xavier = build_classifier("tiny", num_classes=60)  # fc 64 -> 60: 3840 weights
    fan_in, fan_out = xavier.fc.in_features, xavier.fc.out_features
    assert xavier.config["head_init"] == "xavier"
    assert float(xavier.fc.weight.detach().std()) == pytest.approx((2 / (fan_in + fan_out)) ** 0.5, rel=0.05)
    normal = build_classifier("tiny", num_classes=60, head_init="normal")
    assert float(normal.fc.weight.detach().std()) == pytest.approx((2 / 60) ** 0.5, rel=0.05)
    assert not xavier.fc.bias.any() and not normal.fc.bias.any()
    # a config from before the option (no head_init key) is rebuilt with the init it had
    old = dict(xavier.config)
    old.pop("head_init")
    assert float(Classifier(old).fc.weight.detach().std()) == pytest.approx((2 / 60) ** 0.5, rel=0.05)
    with pytest.raises(ValueError, match="head_init must be one of xavier, normal"):
        build_classifier("tiny", num_classes=60, head_init="zero")
    # a head option, never taken from a pre-training checkpoint
    assert encoder_options({"model_config": {"skip_empty_persons": True, "head_init": "normal"}}) == \
        {"skip_empty_persons": True}
