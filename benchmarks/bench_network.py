"""Group-network speed / memory benchmark (engine/models/network.py, spec §4, §5.3).

Prints, for the ``paper`` and ``fast`` network sizes: forward MACs per pixel (one P×P patch = one classified pixel;
torch FlopCounterMode, selective scan and softmax not counted), parameter count, training throughput (patches/s,
forward + backward + Adam step incl. the mutual-learning loss), inference throughput (pixels/s, eval, no grad) and
peak memory, on CPU (and CUDA when available). Each measurement runs in a fresh subprocess so the CPU peak
(ru_maxrss growth over the process after building the model and inputs) is not polluted by earlier runs.

Default data shape: Sentinel-2 (13 spectral bands) + Sentinel-1 (2 SAR bands), 10 classes, S = 16 band-axis
length, so C_dif = 2·width·S = 512 for the paper's DDPM width 16 and 128 for the fast width 4.

    python benchmarks/bench_network.py [--threads 2] [--seconds 3] [--device cpu|cuda|all] [--patch-size P]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PROFILES = {"paper": {"width": 16}, "fast": {"width": 4}}


def _build(profile, c_spec, c_aux, s, classes, device, patch_size=0):
    from engine.models.network import GroupNetwork, NetworkConfig
    cfg = NetworkConfig.paper() if profile == "paper" else NetworkConfig.fast()
    if patch_size:          # another patch side than the profile's (the cost of every layer but the heads ~ P²)
        cfg = dataclasses.replace(cfg, patch_size=patch_size)
    c_dif = 2 * PROFILES[profile]["width"] * s
    net = GroupNetwork(c_spec, c_aux, c_dif, classes, cfg).to(device)
    return net, cfg, c_dif


def _inputs(b, c_spec, c_aux, c_dif, p, device):
    import torch
    return (torch.randn(b, c_spec, p, p, device=device), torch.randn(b, c_aux, p, p, device=device),
            torch.rand(b, c_dif, p, p, device=device))


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(profile, mode, device, args) -> dict:
    """One measurement in this process. mode: macs | train | infer."""
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net, cfg, c_dif = _build(profile, args.c_spec, args.c_aux, args.s, args.classes, device, args.patch_size)
    p = cfg.patch_size
    res = {"profile": profile, "mode": mode, "device": device, "c_dif": c_dif,
           "params": sum(q.numel() for q in net.parameters())}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if mode == "macs":
        from torch.utils.flop_counter import FlopCounterMode
        net.eval()
        x = _inputs(1, args.c_spec, args.c_aux, c_dif, p, device)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            net(*x)
        res["mmac_per_pixel"] = fc.get_total_flops() / 2 / 1e6
        # selective scan (not counted): ~ 6 MAC per (token, d_inner, d_state) element per Mamba block
        n_pix = p * p
        d_inner = cfg.mamba_expand * n_pix
        res["scan_mmac_per_pixel"] = 6 * (args.c_spec + args.c_aux) * d_inner * cfg.mamba_d_state / 1e6
        return res
    b = args.train_batch if mode == "train" else args.infer_batch
    x = _inputs(b, args.c_spec, args.c_aux, c_dif, p, device)
    y = torch.randint(0, args.classes, (b,), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss0 = _rss_mib()
    if mode == "train":
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=4e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            net.loss(net(*x), y).loss.backward()
            opt.step()
    else:
        net.eval()

        def step():
            with torch.no_grad():
                net(*x)
    step()                         # warm-up
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        sync()
        el = time.perf_counter() - t0
        if el >= args.seconds and n >= 2:
            break
    rate = n * b / el
    res["batch"] = b
    res["patches_per_s" if mode == "train" else "pixels_per_s"] = rate
    res["ms_per_batch"] = 1000 * el / n
    if device == "cuda":
        res["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    else:
        res["peak_mib"] = _rss_mib() - rss0
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--profiles", default="paper,fast")
    ap.add_argument("--c-spec", dest="c_spec", type=int, default=13)
    ap.add_argument("--c-aux", dest="c_aux", type=int, default=2)
    ap.add_argument("--s", type=int, default=16)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--train-batch", dest="train_batch", type=int, default=64)
    ap.add_argument("--infer-batch", dest="infer_batch", type=int, default=512)
    ap.add_argument("--patch-size", dest="patch_size", type=int, default=0,
                    help="patch side P instead of the profile's (fast 5, paper 9)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--one", nargs=3, metavar=("PROFILE", "MODE", "DEVICE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args)))
        return
    import torch
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        devices.remove("cuda")
    passthru = [f"--threads={args.threads}", f"--seconds={args.seconds}", f"--c-spec={args.c_spec}",
                f"--c-aux={args.c_aux}", f"--s={args.s}", f"--classes={args.classes}",
                f"--train-batch={args.train_batch}", f"--infer-batch={args.infer_batch}",
                f"--patch-size={args.patch_size}"]
    results = []
    for dev in devices:
        for prof in args.profiles.split(","):
            for mode in (["macs"] if dev == "cpu" else []) + ["train", "infer"]:
                cmd = [sys.executable, os.path.abspath(__file__), *passthru, "--one", prof, mode, dev]
                out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                if out.returncode:
                    print(out.stderr, file=sys.stderr)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results.append(r)
                print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}),
                      flush=True)
    env = {"torch": torch.__version__, "threads": args.threads, "cpu_count": os.cpu_count(),
           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    print(json.dumps(env))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
