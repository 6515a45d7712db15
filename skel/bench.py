"""Speed and memory benchmark: ``python -m skel bench [data] [model] [train]`` (default: all three).

What it measures, on the NTU60 shape ``(N, 3, 120, 25, 2)`` with 60 classes, for each preset:

* ``model``: parameters and forward FLOPs per sample (``torch.utils.flop_counter``, counted, not
  estimated) of the classifier and of the pre-training models (SkeletonMVAE in both readings,
  ``vae_mode`` token and sample), their differences to SkeletonMAE beside the paper's Table 8
  differences; inference samples/s.
* ``train``: training-step samples/s (forward, loss, backward, optimiser step) for fine-tuning
  (encoder + head) and for pre-training with each latent (``none``, ``vae``, ``vq``: the encoder
  sees the visible tokens only), peak memory, and the achieved GFLOP/s (forward + backward counted
  as 3 x the counted forward FLOPs) as a fraction of the machine's fp32 matrix-multiply peak,
  measured in the same run.
* ``data``: samples/s of the feeder (crop, resize, rotation, collation; one core) and files/s of
  ``prepare-ntu`` (one worker and all cores), from ``skel.data.feeder.benchmark`` and
  ``skel.data.prepare.benchmark``.

Timings: ``--warmup`` steps, then the median (and min / max) of ``--steps`` steps. Every
configuration runs in a fresh Python process (``python -m skel.bench --worker SPEC``) so that its
peak memory (``ru_maxrss`` on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU) is its own and
allocator state never leaks from one configuration to the next; ``--in-process`` skips that (fast,
for tests; peaks are then process-wide).

Paths (``--paths``): ``fast`` is the project's block (``skel.models.sttformer``), ``plain`` the
same weights computed op for op as the official STTFormer code does (einsum + permute copy,
``att0.repeat``, out-of-place activations); both compute the same outputs (``tests/test_fast_path.py``).
``--malloc on|off|both`` runs with ``skel``'s glibc allocator tuning (the default of every
``import skel``) and/or without it (``SKEL_TUNE_MALLOC=0``), see ``skel/runtime.py``.
``--two-person-fraction F`` makes only a fraction F of the samples two-person (the rest have an
all-zero second person, as most NTU samples do), to measure ``--skip-empty-persons``.

Figures and how to read them: ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

PARTS = ("data", "model", "train")
LATENTS = ("none", "vae", "vq")
PATHS = ("fast", "plain")
# NTU60 at the STTFormer window: (N, C=3, T=120, V=25, M=2), 60 classes
SHAPE = {"in_channels": 3, "num_frames": 120, "num_joints": 25, "num_persons": 2, "num_classes": 60}
RESULT_TAG = "BENCH_RESULT "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("parts", nargs="*", metavar="PART", help="what to measure: data, model, train (default: all)")
    parser.add_argument("--preset", nargs="+", default=["paper", "small"], help="encoder presets (default: paper small)")
    parser.add_argument("--batch-size", nargs="+", type=int, default=[4, 8], help="batch sizes (default: 4 8)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration; the median is reported")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", action="store_true", help="also measure with mixed precision (bf16 autocast; GPU)")
    parser.add_argument("--latents", nargs="+", choices=LATENTS, default=list(LATENTS),
                        help="pre-training latents to time (default: none vae vq)")
    parser.add_argument("--tasks", nargs="+", choices=["finetune", "pretrain"], default=["finetune", "pretrain"],
                        help="training steps to time in the train part")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=["fast"],
                        help="block implementation: fast (the project's) and/or plain (op for op the official code)")
    parser.add_argument("--malloc", choices=["on", "off", "both"], default="on",
                        help="glibc allocator tuning of skel/runtime.py: on (default), off, or both")
    parser.add_argument("--skip-empty-persons", choices=["off", "on", "both"], default="off",
                        help="encoder option skip_empty_persons for the timed models (default off, as in paper)")
    parser.add_argument("--two-person-fraction", type=float, default=1.0,
                        help="fraction of samples with a second person; the rest have it all zero (default 1.0)")
    parser.add_argument("--frames", type=int, default=SHAPE["num_frames"], help="window T (default 120)")
    parser.add_argument("--matmul-size", type=int, default=None, help="square fp32 matmul size for the peak")
    parser.add_argument("--estimate-batch", type=int, default=64,
                        help="batch size of the training-memory estimate of the model part (default 64)")
    parser.add_argument("--data-samples", type=int, default=2000, help="feeder benchmark samples")
    parser.add_argument("--prepare-files", type=int, default=200, help="prepare-ntu benchmark files")
    parser.add_argument("--in-process", action="store_true",
                        help="run every configuration in this process (fast; peak memory is then process-wide)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--seed", type=int, default=0)


# ----------------------------------------------------------------------------------- measurements
def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_steps(step, steps: int, warmup: int, device: str = "cpu") -> list[float]:
    """Run ``step()`` ``warmup`` times untimed, then ``steps`` times; the seconds of each timed step."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        begin = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - begin)
    return times


def matmul_peak(device: str = "cpu", size: int | None = None, repeats: int = 7) -> dict:
    """The machine's fp32 matrix-multiply rate: median GFLOP/s of ``repeats`` square ``torch.mm``.

    ``2 n^3`` FLOPs per product. TF32 stays as torch's default (off for matmul) on GPUs.
    """
    size = size or (8192 if device == "cuda" else 2048)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    out = torch.empty(size, size, device=device)
    times = time_steps(lambda: torch.mm(a, b, out=out), repeats, warmup=2, device=device)
    med = statistics.median(times)
    return {"gflops": 2 * size ** 3 / med / 1e9, "size": size, "repeats": repeats,
            "gflops_max": 2 * size ** 3 / min(times) / 1e9, "threads": torch.get_num_threads()}


def make_batch(n: int, frames: int, two_person_fraction: float, seed: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (N, 3, T, 25, 2)`` standard normal and labels ``(N,)``; the second person of the last
    ``round((1 - fraction) * N)`` samples is all zeros (one-person samples)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, SHAPE["in_channels"], frames, SHAPE["num_joints"], SHAPE["num_persons"], generator=gen)
    one_person = n - round(two_person_fraction * n)
    if one_person:
        x[n - one_person:, ..., 1:] = 0
    y = torch.randint(0, SHAPE["num_classes"], (n,), generator=gen)
    return x.to(device), y.to(device)


def build_model(task: str, preset: str, latent: str, frames: int, path: str, skip_empty_persons: bool):
    """The model a task times: the classifier (``finetune``, ``infer``) or a pre-training model."""
    from skel.models import sttformer
    from skel.models.classifier import build_classifier
    from skel.models.pretrain import build_pretrain_model

    shape = dict(num_joints=SHAPE["num_joints"], num_persons=SHAPE["num_persons"], num_frames=frames,
                 in_channels=SHAPE["in_channels"])
    if task == "pretrain":
        model = build_pretrain_model(latent, preset, skip_empty_persons=skip_empty_persons, **shape)
    else:
        model = build_classifier(preset, SHAPE["num_classes"], skip_empty_persons=skip_empty_persons, **shape)
    sttformer.set_fast_path(model, path == "fast")
    return model


def run_config(spec: dict) -> dict:
    """Time one configuration. ``spec`` keys: task (finetune | pretrain | infer), preset, latent,
    batch_size, steps, warmup, device, amp, path, skip_empty_persons, two_person_fraction, frames,
    threads, seed. Returns the spec plus the figures."""
    from skel.models.cost import count_flops

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device, task, n = spec["device"], spec["task"], spec["batch_size"]
    torch.manual_seed(spec["seed"])
    model = build_model(task, spec["preset"], spec["latent"], spec["frames"], spec["path"],
                        spec["skip_empty_persons"]).to(device)
    x, y = make_batch(n, spec["frames"], spec["two_person_fraction"], spec["seed"], device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=spec["amp"])
    gen = torch.Generator().manual_seed(spec["seed"])

    # Forward FLOPs per sample, counted on the timed batch itself when persons may be skipped (the
    # count then depends on the data), else on one sample.
    dense = not spec["skip_empty_persons"] or spec["two_person_fraction"] >= 1.0
    xc = x[:1] if dense else x
    model.eval()
    if task == "pretrain":
        flops = count_flops(model, xc, generator=torch.Generator().manual_seed(spec["seed"]))
    else:
        flops = count_flops(model, xc)
    flops_per_sample = flops / xc.shape[0]

    if task == "infer":
        model.eval()

        def step():
            with torch.no_grad(), autocast:
                model(x)
    else:
        model.train()
        if task == "finetune":  # the official STTFormer recipe's optimiser
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=4e-4)
        else:  # the paper's pre-training optimiser
            opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast:
                if task == "finetune":
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                else:
                    loss = model(x, generator=gen)[0]["loss"]
            loss.backward()
            opt.step()

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = peak_rss_bytes()
    # the matmul peak again, in this process just before and after the steps: on a shared machine
    # the run-level peak may have been taken under other load than this configuration's
    local_peaks = [matmul_peak(device, spec.get("matmul_size"))["gflops"]]
    times = time_steps(step, spec["steps"], spec["warmup"], device)
    local_peaks.append(matmul_peak(device, spec.get("matmul_size"))["gflops"])
    med = statistics.median(times)
    sps = n / med
    factor = 1 if task == "infer" else 3  # forward + backward = 3 x forward
    out = dict(spec)
    out.update({
        "step_s": med, "step_s_min": min(times), "step_s_max": max(times), "step_s_all": times,
        "samples_per_s": sps, "flops_per_sample": flops_per_sample, "flop_factor": factor,
        "achieved_gflops": factor * flops_per_sample * sps / 1e9,
        "local_matmul_peak_gflops": local_peaks,
        "fraction_of_local_peak": factor * flops_per_sample * sps / 1e9 / statistics.mean(local_peaks),
        "peak_rss_bytes": peak_rss_bytes(), "rss_before_steps_bytes": rss_before,
        "threads": torch.get_num_threads(),
        "allocator_tuned": _allocator_tuned(),
    })
    if device == "cuda":
        out["peak_cuda_bytes"] = int(torch.cuda.max_memory_allocated())
    return out


def _allocator_tuned() -> bool:
    from skel.runtime import allocator_settings

    return allocator_settings() is not None


def _pretrain_name(latent: str, config: dict) -> str:
    """SkeletonMAE / SkeletonMVQVAE, or SkeletonMVAE with its reading: "SkeletonMVAE (sample)"."""
    from skel.models.pretrain import MODEL_NAMES

    return MODEL_NAMES[latent] + (f" ({config['vae_mode']})" if latent == "vae" else "")


def model_costs(presets: list[str], frames: int, seed: int) -> list[dict]:
    """Parameters and forward FLOPs per sample of the classifier and the pre-training models.

    Pre-training rows: SkeletonMAE, SkeletonMVAE in both readings (model ``"SkeletonMVAE (token)"``,
    one latent per token; ``"SkeletonMVAE (sample)"``, the paper's Table 9 reading and the default)
    and SkeletonMVQVAE,
    each with ``decoder_depth``, ``delta_params`` / ``delta_flops`` (vs the preset's SkeletonMAE)
    and ``paper_delta_params_M`` / ``paper_delta_gflops`` (Table 8, :data:`skel.models.cost.PAPER_DELTAS`;
    only at the paper's shape, preset ``paper`` and T = 120, else None).
    """
    from skel.models.classifier import build_classifier
    from skel.models.cost import PAPER_DELTAS, VARIANTS, count_flops, count_parameters
    from skel.models.pretrain import build_pretrain_model

    shape = dict(num_joints=SHAPE["num_joints"], num_persons=SHAPE["num_persons"], num_frames=frames,
                 in_channels=SHAPE["in_channels"])
    x = make_batch(1, frames, 1.0, seed, "cpu")[0]
    rows = []
    for preset in presets:
        clf = build_classifier(preset, SHAPE["num_classes"], **shape).eval()
        rows.append({"preset": preset, "model": "classifier", "params": count_parameters(clf),
                     "encoder_params": count_parameters(clf.encoder), "flops_per_sample": count_flops(clf, x)})
        paper_shape = preset == "paper" and frames == SHAPE["num_frames"]
        base = None
        for key, latent, options in VARIANTS:
            m = build_pretrain_model(latent, preset, **shape, **options).eval()
            row = {"preset": preset, "model": _pretrain_name(latent, m.config),
                   "latent": latent, "vae_mode": m.config.get("vae_mode"), "decoder_depth": m.config["decoder_depth"],
                   "params": count_parameters(m), "encoder_params": count_parameters(m.encoder),
                   "flops_per_sample": count_flops(m, x, generator=torch.Generator().manual_seed(seed))}
            base = base or row
            row["delta_params"] = row["params"] - base["params"]
            row["delta_flops"] = row["flops_per_sample"] - base["flops_per_sample"]
            row["paper_delta_params_M"] = PAPER_DELTAS[key]["params_M"] if paper_shape else None
            row["paper_delta_gflops"] = PAPER_DELTAS[key]["gflops"] if paper_shape else None
            rows.append(row)
    return rows


def format_model_costs(rows: list[dict]) -> str:
    """The model part's table: parameters, FLOPs and the pre-training models' differences to
    SkeletonMAE beside the paper's Table 8 differences (where the shape is the paper's)."""
    head = (f"{'preset':6} {'model':24} {'depth':>5} {'params (M)':>10} {'encoder (M)':>11} {'fwd GFLOP/sample':>16} "
            f"{'dParams M':>9} {'dGFLOP':>8} {'Table 8':>14}")
    lines = [head, "-" * len(head)]
    for r in rows:
        name = r["model"]
        delta = (f"{r['delta_params'] / 1e6:+9.2f} {r['delta_flops'] / 1e9:+8.2f}" if "delta_params" in r
                 else f"{'':9} {'':8}")
        paper = (f"{r['paper_delta_params_M']:+5.1f} M {r['paper_delta_gflops']:+5.1f} G"
                 if r.get("paper_delta_params_M") is not None else "")
        lines.append(f"{r['preset']:6} {name:24} {r.get('decoder_depth') or '-':>5} {r['params'] / 1e6:10.3f} "
                     f"{r['encoder_params'] / 1e6:11.3f} {r['flops_per_sample'] / 1e9:16.2f} {delta} {paper:>14}")
    return "\n".join(lines)


def saved_activation_bytes(model: torch.nn.Module, *inputs, **kwargs) -> int:
    """Bytes of the distinct tensors autograd keeps from ``model(*inputs)`` for the backward pass
    (training mode), parameters and buffers excepted: the activation memory of a training step."""
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in own:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*inputs, **kwargs)
    return sum(seen.values())


def memory_estimate(presets: list[str], frames: int, batch: int, seed: int, measure_batch: int = 2) -> list[dict]:
    """ESTIMATED training memory at ``batch`` for each model (to size a GPU without having one).

    Activations are measured at ``measure_batch`` (:func:`saved_activation_bytes`, fast path) and
    scaled linearly to ``batch``; parameters, gradients and optimiser state (fine-tuning: SGD
    momentum, 1 buffer; pre-training: Adam, 2) are counted; the transient buffers of the backward
    pass are taken as twice the largest layer output, which the allocator's caching can exceed.
    fp32; mixed precision roughly halves the activation part.
    """
    x = make_batch(measure_batch, frames, 1.0, seed, "cpu")[0]
    rows = []
    for preset in presets:
        for task, latent in [("finetune", "none"), *[("pretrain", lat) for lat in LATENTS]]:
            torch.manual_seed(seed)
            model = build_model(task, preset, latent, frames, "fast", False)
            extra = {"generator": torch.Generator().manual_seed(seed)} if task == "pretrain" else {}
            largest = 0

            def track(_module, _inputs, output):
                nonlocal largest
                if isinstance(output, torch.Tensor):
                    largest = max(largest, output.numel() * output.element_size())

            hooks = [m.register_forward_hook(track) for m in model.modules() if not list(m.children())]
            act = saved_activation_bytes(model, x, **extra)
            for h in hooks:
                h.remove()
            params = sum(p.numel() * p.element_size() for p in model.parameters())
            states = 1 if task == "finetune" else 2
            scale = batch / measure_batch
            total = act * scale + params * (2 + states) + 2 * largest * scale
            rows.append({"preset": preset, "model": "classifier" if task == "finetune" else _pretrain_name(latent, model.config),
                         "task": task, "batch_size": batch, "measured_at_batch": measure_batch,
                         "activation_bytes": act * scale, "param_grad_optimizer_bytes": params * (2 + states),
                         "transient_bytes": 2 * largest * scale, "estimated_total_bytes": total})
    return rows


def data_figures(args: argparse.Namespace) -> dict:
    """Feeder samples/s (one core) and prepare-ntu files/s (one worker and all cores)."""
    from skel.data import feeder, prepare
    from skel.utils import shared_data_dir

    out: dict[str, Any] = {"feeder": feeder.benchmark(n=args.data_samples, window=args.frames, seed=args.seed)}
    if shared_data_dir() is None:
        out["prepare_ntu"] = {"skipped": "no shared data folder with real NTU .skeleton samples"}
    else:
        out["prepare_ntu"] = prepare.benchmark(n_files=args.prepare_files)
    return out


# ------------------------------------------------------------------------------- process handling
def _run_isolated(spec: dict, malloc: str, in_process: bool) -> dict:
    """Run one configuration in a fresh interpreter (or here with ``in_process``)."""
    if in_process:
        if malloc == "off" and _allocator_tuned():
            raise ValueError("--malloc off needs fresh processes (the allocator is tuned in this one)")
        result = spec_runner(spec)
        result["malloc"] = malloc
        return result
    env = dict(os.environ)
    env["SKEL_TUNE_MALLOC"] = "1" if malloc == "on" else "0"
    proc = subprocess.run([sys.executable, "-m", "skel.bench", "--worker", json.dumps(spec)],
                          env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker failed for {spec} (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len(RESULT_TAG):])
    result["malloc"] = malloc
    return result


def spec_runner(spec: dict) -> dict:
    return matmul_peak(spec["device"], spec.get("size")) if spec["task"] == "matmul" else run_config(spec)


def _worker(spec_json: str) -> int:
    spec = json.loads(spec_json)
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    print(RESULT_TAG + json.dumps(spec_runner(spec)), flush=True)
    return 0


# ------------------------------------------------------------------------------------------ report
def _gb(b: float) -> str:
    return f"{b / 2**30:.2f}"


def format_runs(runs: list[dict], peak: float) -> str:
    head = (f"{'task':9} {'preset':6} {'latent':6} {'path':5} {'malloc':6} {'skip':4} {'amp':4} {'batch':>5} "
            f"{'step s':>7} {'(min-max)':>13} {'samples/s':>9} {'GFLOP/smp':>9} {'GFLOP/s':>8} {'%peak':>6} {'%local':>6} "
            f"{'peak GiB':>8}")
    lines = [head, "-" * len(head)]
    for r in runs:
        mem = r.get("peak_cuda_bytes", r["peak_rss_bytes"])
        lines.append(
            f"{r['task']:9} {r['preset']:6} {r['latent'] if r['task'] == 'pretrain' else '-':6} {r['path']:5} "
            f"{r['malloc']:6} {'on' if r['skip_empty_persons'] else 'off':4} {'bf16' if r['amp'] else 'fp32':4} "
            f"{r['batch_size']:5d} {r['step_s']:7.3f} {r['step_s_min']:6.3f}-{r['step_s_max']:<6.3f} "
            f"{r['samples_per_s']:9.3f} {r['flops_per_sample'] / 1e9:9.2f} {r['achieved_gflops']:8.1f} "
            f"{100 * r['achieved_gflops'] / peak:5.1f}% {100 * r['fraction_of_local_peak']:5.1f}% {_gb(mem):>8}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    parts = list(dict.fromkeys(args.parts)) or list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        print(f"error: unknown part(s) {unknown}; expected some of {list(PARTS)}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 2
    if args.frames % 6:
        print(f"error: --frames {args.frames} is not a multiple of the STTFormer tuple length 6", file=sys.stderr)
        return 2
    if not 0.0 <= args.two_person_fraction <= 1.0:
        print(f"error: --two-person-fraction must be in [0, 1], got {args.two_person_fraction}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    mallocs = ["on", "off"] if args.malloc == "both" else [args.malloc]
    skips = {"off": [False], "on": [True], "both": [False, True]}[args.skip_empty_persons]
    amps = [False, True] if args.amp else [False]
    report: dict[str, Any] = {
        "command": " ".join(["python -m skel bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else None,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "threads": threads, "torch": torch.__version__,
                    "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
                    "isolated_processes": not args.in_process},
        "shape": {**SHAPE, "num_frames": args.frames},
    }
    print(f"skel bench: {', '.join(parts)} | device {report['machine']['device']} | torch {torch.__version__} | "
          f"{threads} threads of {os.cpu_count()} cores | "
          f"{'one process' if args.in_process else 'a fresh process per configuration'}")

    if "data" in parts:
        report["data"] = data_figures(args)
        f = report["data"]["feeder"]
        print(f"\nfeeder (crop, resize, rotation, collation; 1 thread, window {f['window']}): "
              f"{f['samples_per_s']:.0f} samples/s")
        for key, value in f.items():
            if isinstance(value, float) and key != "samples_per_s":
                print(f"  {key}: {value:.0f}")
        p = report["data"]["prepare_ntu"]
        if "skipped" in p:
            print(f"prepare-ntu: skipped ({p['skipped']})")
        else:
            print(f"prepare-ntu ({p['n_files']} files):")
            for key, value in p.items():
                if isinstance(value, float):
                    print(f"  {key}: {value:.1f}")

    if "model" in parts or "train" in parts:
        peaks = [_run_isolated({"task": "matmul", "device": args.device, "size": args.matmul_size,
                                "threads": args.threads}, mallocs[0], args.in_process)]
        report["matmul_peak"] = peaks[0]
        peak = peaks[0]["gflops"]
        print(f"\nfp32 matmul peak ({peaks[0]['size']}^2, median of {peaks[0]['repeats']}, "
              f"{peaks[0]['threads']} threads): {peak:.1f} GFLOP/s")

    if "model" in parts:
        report["model"] = model_costs(args.preset, args.frames, args.seed)
        print("\nparameters and forward FLOPs per sample; pre-training models: difference to SkeletonMAE "
              "(dParams, dGFLOP) beside the paper's Table 8 (at the paper's shape: preset paper, T = 120)")
        print(format_model_costs(report["model"]))
        report["memory_estimate"] = memory_estimate(args.preset, args.frames, args.estimate_batch, args.seed)
        print(f"\nESTIMATED training memory at batch {args.estimate_batch}, fp32 (activations measured at batch 2 "
              f"and scaled; see docs/performance.md)")
        print(f"{'preset':6} {'model':24} {'activations':>11} {'weights+grad+opt':>16} {'transient':>9} {'total GiB':>9}")
        for r in report["memory_estimate"]:
            print(f"{r['preset']:6} {r['model']:24} {_gb(r['activation_bytes']):>11} "
                  f"{_gb(r['param_grad_optimizer_bytes']):>16} {_gb(r['transient_bytes']):>9} "
                  f"{_gb(r['estimated_total_bytes']):>9}")

    specs = []
    base = {"steps": args.steps, "warmup": args.warmup, "device": args.device, "frames": args.frames,
            "threads": args.threads, "seed": args.seed, "two_person_fraction": args.two_person_fraction,
            "matmul_size": args.matmul_size}
    for preset in args.preset:
        for n in args.batch_size:
            for amp in amps:
                for skip in skips:
                    common = {**base, "preset": preset, "batch_size": n, "amp": amp, "skip_empty_persons": skip}
                    if "model" in parts:
                        specs += [{**common, "task": "infer", "latent": "none", "path": p} for p in args.paths]
                    if "train" in parts and "finetune" in args.tasks:
                        specs += [{**common, "task": "finetune", "latent": "none", "path": p} for p in args.paths]
                    if "train" in parts and "pretrain" in args.tasks:
                        specs += [{**common, "task": "pretrain", "latent": lat, "path": p}
                                  for lat in args.latents for p in args.paths]
    runs = []
    for spec in specs:
        for malloc in mallocs:
            r = _run_isolated(spec, malloc, args.in_process)
            r["fraction_of_peak"] = r["achieved_gflops"] / report["matmul_peak"]["gflops"]
            runs.append(r)
            print(format_runs([r], report["matmul_peak"]["gflops"]).splitlines()[-1]
                  if len(runs) > 1 else "\n" + format_runs([r], report["matmul_peak"]["gflops"]), flush=True)
    if runs:
        report["runs"] = runs
    if args.json:
        from skel.utils import atomic_write_json

        atomic_write_json(args.json, report)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        raise SystemExit(_worker(sys.argv[2]))
    cli = argparse.ArgumentParser(prog="python -m skel.bench")
    add_arguments(cli)
    raise SystemExit(main(cli.parse_args()))
