"""The benchmark command: figures present, positive and consistent with each other; isolation works.

Tiny configurations only (window of 12 frames, batch 2, one step): seconds, not minutes.
"""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch

from skel import bench
from skel.models.classifier import build_classifier
from skel.models.cost import count_flops


def _args(tmp_path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args([*argv, "--json", str(tmp_path / "bench.json")])


def _conv_flops(c_in: int, c_out: int, kernel: int, positions: int) -> int:
    return 2 * c_in * c_out * kernel * positions


def classifier_flops(blocks, heads: int, frames: int, joints: int = 25, persons: int = 2, tuple_len: int = 6,
                     classes: int = 60, in_channels: int = 3) -> int:
    """Forward FLOPs per sample of the STTFormer classifier, derived by hand from its layers
    (convs and matrix products, 2 FLOPs per multiply-add), independently of the flop counter."""
    tt, vv = frames // tuple_len, tuple_len * joints
    p = tt * vv  # positions per person
    total = _conv_flops(in_channels, blocks[0][0], 1, frames * joints)  # input map
    for c_in, c_out, d in blocks:
        total += _conv_flops(c_in, 2 * heads * d, 1, p)  # q and k
        total += 2 * heads * d * tt * vv * vv  # scores: sum over d and T'
        total += 2 * heads * c_in * tt * vv * vv  # x A per head
        total += _conv_flops(heads * c_in, c_out, 5, p)  # 1x5 conv
        total += _conv_flops(c_out, c_out, 1, p)  # ff
        total += _conv_flops(c_out, c_out, 3, p)  # 3x1 conv
        if c_in != c_out:
            total += _conv_flops(c_in, c_out, 1, p) + _conv_flops(c_out, c_out, 1, p)  # residual maps
    return persons * total + 2 * blocks[-1][1] * classes  # + the linear head


def test_paper_flops_match_the_hand_count():
    from skel.models.encoder import ENCODER_PRESETS

    preset = ENCODER_PRESETS["paper"]
    expected = classifier_flops(preset["blocks"], preset["num_heads"], frames=120)
    # the official STTFormer at the NTU60 shape: 76.4 GFLOPs forward per sample (2 persons)
    assert expected / 1e9 == pytest.approx(76.4, abs=0.1)
    model = build_classifier("paper", 60).eval()
    assert count_flops(model, torch.zeros(1, 3, 120, 25, 2)) == expected


def test_model_and_train_figures_are_consistent(tmp_path):
    args = _args(tmp_path, "model", "train", "--preset", "tiny", "--frames", "12", "--batch-size", "2",
                 "--steps", "2", "--warmup", "0", "--latents", "none", "vq", "--paths", "fast", "plain",
                 "--matmul-size", "256", "--in-process", "--threads", "1")
    assert bench.main(args) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["machine"]["threads"] == 1 and report["shape"]["num_frames"] == 12
    peak = report["matmul_peak"]
    assert peak["size"] == 256 and peak["gflops"] > 0 and peak["gflops_max"] >= peak["gflops"]

    # model part: one classifier row and four pre-training rows (MVAE in both readings), counted FLOPs
    rows = {r["model"]: r for r in report["model"]}
    assert set(rows) == {"classifier", "SkeletonMAE", "SkeletonMVAE (token)", "SkeletonMVAE (sample)", "SkeletonMVQVAE"}
    assert rows["SkeletonMVAE (token)"]["vae_mode"] == "token" and rows["SkeletonMVAE (sample)"]["vae_mode"] == "sample"
    mae = rows["SkeletonMAE"]
    for name in ("SkeletonMVAE (token)", "SkeletonMVAE (sample)", "SkeletonMVQVAE"):
        r = rows[name]
        assert r["delta_params"] == r["params"] - mae["params"]
        assert r["delta_flops"] == r["flops_per_sample"] - mae["flops_per_sample"]
        assert r["paper_delta_params_M"] is None  # tiny, 12 frames: not the paper's shape
    # the sample latent at tiny, T = 12: visible map (64, 1 tuple, 6 x 15 columns); two FCs to 25 and
    # one from 25 to (3, 1, 90); its decoder embeds 3 channels instead of MAE's 64
    feats, grid = 64 * 1 * 90, 3 * 1 * 90
    sample_latent = 2 * (feats * 25 + 25) + 25 * grid + grid
    assert rows["SkeletonMVAE (sample)"]["params"] - mae["params"] == sample_latent + (3 - 64) * 32
    from skel.models.encoder import ENCODER_PRESETS

    tiny = ENCODER_PRESETS["tiny"]
    assert rows["classifier"]["flops_per_sample"] == classifier_flops(tiny["blocks"], tiny["num_heads"], 12)
    assert all(r["encoder_params"] == rows["classifier"]["encoder_params"] for r in rows.values())
    # masking: the pre-training encoder sees fewer tokens, but the decoder runs on the full grid
    assert all(r["flops_per_sample"] > 0 and r["params"] > r["encoder_params"] for r in rows.values())

    est = report["memory_estimate"]
    assert [r["model"] for r in est] == ["classifier", "SkeletonMAE", "SkeletonMVAE (sample)", "SkeletonMVQVAE"]
    for r in est:
        assert r["batch_size"] == 64 and r["activation_bytes"] > 0 and r["transient_bytes"] > 0
        assert r["estimated_total_bytes"] == pytest.approx(
            r["activation_bytes"] + r["param_grad_optimizer_bytes"] + r["transient_bytes"])
        # weights + gradients + optimiser state: SGD momentum (1 buffer) or Adam (2)
        states = 1 if r["model"] == "classifier" else 2
        assert r["param_grad_optimizer_bytes"] == 4 * rows[r["model"]]["params"] * (2 + states)

    runs = report["runs"]
    kinds = sorted((r["task"], r["latent"], r["path"]) for r in runs)
    assert kinds == sorted([(t, "none", p) for t in ("infer", "finetune") for p in ("fast", "plain")]
                           + [("pretrain", lat, p) for lat in ("none", "vq") for p in ("fast", "plain")])
    for r in runs:
        assert r["batch_size"] == 2 and r["threads"] == 1 and len(r["step_s_all"]) == 2
        assert 0 < r["step_s_min"] <= r["step_s"] <= r["step_s_max"]
        assert r["samples_per_s"] == pytest.approx(2 / r["step_s"])
        factor = 1 if r["task"] == "infer" else 3
        assert r["flop_factor"] == factor
        assert r["achieved_gflops"] == pytest.approx(factor * r["flops_per_sample"] * r["samples_per_s"] / 1e9)
        assert r["fraction_of_peak"] == pytest.approx(r["achieved_gflops"] / peak["gflops"])
        # the peak measured again inside the configuration's own process, before and after its steps
        local = r["local_matmul_peak_gflops"]
        assert len(local) == 2 and min(local) > 0
        assert r["fraction_of_local_peak"] == pytest.approx(r["achieved_gflops"] / (sum(local) / 2))
        assert r["peak_rss_bytes"] >= r["rss_before_steps_bytes"] > 0
        if r["task"] != "pretrain":
            assert r["flops_per_sample"] == rows["classifier"]["flops_per_sample"]
    # the plain and fast paths count the same FLOPs (same maths, different memory traffic)
    by = {(r["task"], r["latent"], r["path"]): r["flops_per_sample"] for r in runs}
    assert all(by[(t, lat, "fast")] == by[(t, lat, "plain")] for t, lat, _ in by)


def test_skipping_empty_persons_counts_fewer_flops(tmp_path):
    args = _args(tmp_path, "train", "--tasks", "finetune", "--preset", "tiny", "--frames", "12",
                 "--batch-size", "4", "--steps", "1", "--warmup", "0", "--skip-empty-persons", "both",
                 "--two-person-fraction", "0.25", "--matmul-size", "128", "--in-process")
    assert bench.main(args) == 0
    runs = {r["skip_empty_persons"]: r for r in json.loads((tmp_path / "bench.json").read_text())["runs"]}
    dense, skip = runs[False]["flops_per_sample"], runs[True]["flops_per_sample"]
    from skel.models.encoder import ENCODER_PRESETS

    head = 2 * ENCODER_PRESETS["tiny"]["blocks"][-1][1] * 60
    # one two-person sample and three one-person ones: 5 persons run instead of 8
    assert (skip - head) == pytest.approx((dense - head) * 5 / 8)


def test_make_batch_zeroes_the_second_person_of_one_person_samples():
    x, y = bench.make_batch(8, 12, 0.25, seed=3, device="cpu")
    assert x.shape == (8, 3, 12, 25, 2) and y.shape == (8,)
    two = x[..., 1].flatten(1).ne(0).any(1)
    assert two.tolist() == [True, True] + [False] * 6
    assert x[..., 0].flatten(1).ne(0).all(1).all()


def test_time_steps_counts_and_rejects_bad_arguments():
    calls = []
    times = bench.time_steps(lambda: calls.append(1), steps=3, warmup=2)
    assert len(calls) == 5 and len(times) == 3 and all(t >= 0 for t in times)
    with pytest.raises(ValueError, match="steps"):
        bench.time_steps(lambda: None, steps=0, warmup=0)


def test_each_configuration_runs_in_its_own_process_with_its_allocator_setting():
    spec = {"task": "finetune", "preset": "tiny", "latent": "none", "batch_size": 2, "steps": 1, "warmup": 0,
            "device": "cpu", "amp": False, "path": "fast", "skip_empty_persons": False,
            "two_person_fraction": 1.0, "frames": 12, "threads": 1, "seed": 0, "matmul_size": 128}
    on = bench._run_isolated(spec, "on", in_process=False)
    off = bench._run_isolated(spec, "off", in_process=False)
    assert on["malloc"] == "on" and on["allocator_tuned"] is True
    assert off["malloc"] == "off" and off["allocator_tuned"] is False
    assert on["flops_per_sample"] == off["flops_per_sample"] > 0
    assert math.isfinite(on["samples_per_s"]) and on["samples_per_s"] > 0


def test_bad_options_are_refused(tmp_path, capsys):
    assert bench.main(_args(tmp_path, "gpu")) == 2
    assert "unknown part" in capsys.readouterr().err
    assert bench.main(_args(tmp_path, "model", "--frames", "100")) == 2
    assert "multiple of" in capsys.readouterr().err
    assert bench.main(_args(tmp_path, "train", "--two-person-fraction", "1.5")) == 2


def test_data_figures(tmp_path):
    args = _args(tmp_path, "data", "--data-samples", "64", "--prepare-files", "8")
    assert bench.main(args) == 0
    data = json.loads((tmp_path / "bench.json").read_text())["data"]
    assert data["feeder"]["samples_per_s"] > 0 and data["feeder"]["n"] == 64
    if "skipped" not in data["prepare_ntu"]:
        assert data["prepare_ntu"]["n_files"] == 8
        assert data["prepare_ntu"]["files_per_s_1_worker"] > 0


def test_saved_activation_bytes_counts_what_backward_keeps():
    # Linear keeps its input, ReLU its output; the weights are not activations
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU())
    x = torch.randn(8, 10)
    assert bench.saved_activation_bytes(model, x) == 4 * (8 * 10 + 8 * 20)
    # activations grow linearly with the batch
    clf = build_classifier("tiny", 5, num_frames=12)
    a2 = bench.saved_activation_bytes(clf, torch.randn(2, 3, 12, 25, 2))
    a4 = bench.saved_activation_bytes(clf, torch.randn(4, 3, 12, 25, 2))
    assert a4 == pytest.approx(2 * a2, rel=0.02)
