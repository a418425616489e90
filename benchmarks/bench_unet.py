"""SpectralDiff 3-D U-Net throughput and memory for the ``paper`` and ``fast`` diffusion profiles.

Prints, per profile and device (CPU always, CUDA when available):
  - forward (no_grad, eval BN, fp32) throughput in input voxels/s (voxel = one band x one pixel),
  - forward+backward (train, L1 loss; bf16 autocast on CUDA as in ``diffusion.pretrain``) throughput,
  - peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the peak resident set size of a fresh
    subprocess per measurement (includes the Python/torch baseline, printed separately),
  - encoder-only feature extraction (``FeatureExtractor.features_for_array``) seconds per 512 x 512 pixels.
With ``--pretrain`` it also times ``diffusion.pretrain`` (fast profile) on a 512 x 512 window of the embedded
Delmarva Sentinel-2 crop (real reads through ``grid.RasterStack``) and feature extraction over that window.

CPU-s = process CPU time (all threads): on a shared machine wall time is inflated by other processes, CPU time
divided by the thread count approximates the wall time of an unloaded machine.

Usage:  python benchmarks/bench_unet.py [--profiles paper fast] [--threads N] [--pretrain [ITERS]]
Spec: engine-spec.md §2.3 (architecture, 950 272 MACs per input voxel at width 16), §5.3 (compute notes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# profile -> (width, S, tile, batch used for the benchmark); S = 16 (Sentinel-2 13 bands in compact mode)
PROFILES = {"paper": (16, 16, 64, 2), "fast": (4, 16, 32, 4)}
MACS_PER_VOXEL_W16 = 950_272  # spec §1.5 / §2.3 (thop count); scales ~ width^2


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(profile: str, device: str, mode: str, reps: int, threads: int) -> dict:
    """One measurement in this process: mode = fwd | fwdbwd | feat | baseline."""
    import torch
    import torch.nn.functional as F

    from engine.data.inputs import BandLayout
    from engine.models.diffusion import DiffusionConfig, FeatureExtractor
    from engine.models.unet import SpectralDiffUNet

    torch.set_num_threads(threads)
    width, S, tile, batch = PROFILES[profile]
    dev = torch.device(device)
    if mode == "baseline":
        return {"rss_mb": _maxrss_mb()}
    torch.manual_seed(0)
    unet = SpectralDiffUNet(width).to(dev)
    cuda = dev.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if mode == "feat":
        cfg = DiffusionConfig(width=width)
        layout = BandLayout(["spectral"], [S])
        fx = FeatureExtractor(unet.eval(), layout, cfg, stats=None, device=dev)
        core, halo = 128, fx.halo
        x = torch.randn(S, core + 2 * halo, core + 2 * halo)
        fx.features_for_array(x, 0, 0)  # warm-up
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            fx.features_for_array(x, 0, 0)
        sync()
        per_tile = (time.perf_counter() - t0) / reps
        cpu_tile = (time.process_time() - c0) / reps
        out = {"s_per_512x512": per_tile * (512 // core) ** 2, "cpu_s_per_512x512": cpu_tile * (512 // core) ** 2,
               "tile": core, "halo": halo, "channels": fx.channels}
    else:
        x = torch.randn(batch, 1, S, tile, tile, device=dev)
        t = torch.randint(0, 500, (batch,), device=dev)
        target = torch.randn_like(x)
        opt = torch.optim.Adam(unet.parameters(), lr=1e-4)

        def step() -> None:
            if mode == "fwd":
                with torch.no_grad():
                    unet.eval()(x, t)
            else:
                unet.train()
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                    pred = unet(x, t)
                loss = F.l1_loss(pred.float(), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        step()  # warm-up
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            step()
        sync()
        dt = (time.perf_counter() - t0) / reps
        vox = batch * S * tile * tile
        out = {"s_per_call": dt, "cpu_s_per_call": (time.process_time() - c0) / reps, "voxels_per_s": vox / dt,
               "batch": batch, "tile": tile, "S": S,
               "gmac_fwd_per_call": vox * MACS_PER_VOXEL_W16 * (width / 16) ** 2 / 1e9}
    if cuda:
        out["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        out["rss_mb"] = _maxrss_mb()
    return out


def run_sub(args: list[str]) -> dict:
    """Run one measurement in a fresh interpreter (clean peak RSS)."""
    res = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", *args], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_pretrain(iters: int, threads: int) -> None:
    """Fast-profile pretraining and feature extraction on a 512 x 512 window of the Delmarva crop."""
    import glob

    import torch

    from engine.data.grid import Modality, RasterStack, compute_statistics
    from engine.data.windows import Window, read_window
    from engine.models.diffusion import DiffusionConfig, FeatureExtractor
    from engine.pretrain import pretrain

    torch.set_num_threads(threads)
    paths = sorted(glob.glob(os.path.join(ROOT, "resources", "sample_data", "delmarva_s2", "s2_B*.tif")))
    window = (128, 128, 512, 512)
    for name, cfg in (("fast", DiffusionConfig.fast(iterations=iters)),):
        with RasterStack([Modality(paths, "spectral")]) as stack:
            t0 = time.perf_counter()
            stats = compute_statistics(stack, seed=0, window=window)
            t_stats = time.perf_counter() - t0
            c0 = time.process_time()
            res = pretrain(stack, cfg, stats, window=window)
            cpu = time.process_time() - c0
            losses = [l for _, l in res.history]
            k = max(1, len(losses) // 10)
            fx = FeatureExtractor.from_pretrain(res)
            t0, c0 = time.perf_counter(), time.process_time()
            for r in range(0, 512, 128):
                for c in range(0, 512, 128):
                    read_window(stack, fx, None, Window(window[0] + r, window[1] + c, 128, 128))
            t_feat, c_feat = time.perf_counter() - t0, time.process_time() - c0
        print(f"pretrain[{name}] {res.iteration} it in {res.seconds:.1f} s = "
              f"{res.seconds / res.iteration:.3f} s/it wall, {cpu / res.iteration:.3f} CPU-s/it "
              f"(stats {t_stats:.1f} s); loss first10% {sum(losses[:k]) / k:.3f} -> last10% "
              f"{sum(losses[-k:]) / k:.3f}; features 512x512 (16 tiles of 128 + halo {fx.halo}) "
              f"{t_feat:.1f} s wall, {c_feat:.1f} CPU-s, C_dif = {fx.channels}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profiles", nargs="+", default=["paper", "fast"], choices=sorted(PROFILES))
    ap.add_argument("--threads", type=int, default=max(1, min(os.cpu_count() or 1, 16)))
    ap.add_argument("--pretrain", nargs="?", const=150, type=int, default=None,
                    help="also time fast pretraining (ITERS iterations, default 150) on Delmarva 512x512")
    ap.add_argument("--one", nargs=5, metavar=("PROFILE", "DEVICE", "MODE", "REPS", "THREADS"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        p, d, m, reps, th = a.one
        print(json.dumps(measure(p, d, m, int(reps), int(th))))
        return
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {a.threads}, devices {devices}"
          + (f" ({torch.cuda.get_device_name(0)})" if "cuda" in devices else ""), flush=True)
    base = run_sub(["fast", "cpu", "baseline", "1", str(a.threads)])["rss_mb"]
    print(f"CPU baseline RSS (python + torch + engine import): {base:.0f} MB", flush=True)
    for dev in devices:
        for prof in a.profiles:
            width, S, tile, batch = PROFILES[prof]
            reps = 2 if (dev == "cpu" and prof == "paper") else (5 if dev == "cpu" else 20)
            fwd = run_sub([prof, dev, "fwd", str(reps), str(a.threads)])
            fb = run_sub([prof, dev, "fwdbwd", str(reps), str(a.threads)])
            ft = run_sub([prof, dev, "feat", str(max(1, reps // 2)), str(a.threads)])
            mem = "peak_mb" if dev == "cuda" else "rss_mb"
            print(f"[{dev}] {prof:5s} width {width:2d}, batch {batch} x (1,{S},{tile},{tile}) "
                  f"[{fwd['gmac_fwd_per_call']:.1f} GMAC fwd]: "
                  f"fwd {fwd['voxels_per_s'] / 1e3:9.1f} kvox/s ({fwd['s_per_call']:.3f} s, "
                  f"{fwd['cpu_s_per_call']:.2f} CPU-s, {mem} {fwd[mem]:.0f}); "
                  f"fwd+bwd {fb['voxels_per_s'] / 1e3:9.1f} kvox/s ({fb['s_per_call']:.3f} s, "
                  f"{fb['cpu_s_per_call']:.2f} CPU-s, {mem} {fb[mem]:.0f}); "
                  f"features {ft['s_per_512x512']:.2f} s per 512x512 ({ft['cpu_s_per_512x512']:.1f} CPU-s, "
                  f"C_dif {ft['channels']}, {mem} {ft[mem]:.0f})",
                  flush=True)
    if a.pretrain:
        bench_pretrain(a.pretrain, a.threads)


if __name__ == "__main__":
    main()
