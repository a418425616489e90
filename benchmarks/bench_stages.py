"""Wall time and peak RSS per stage (pretrain, train, classify) per profile, on the embedded Delmarva crop.

Each stage is one ``python -m engine`` subprocess on resources/sample_data/delmarva_s2 (768 x 768 px at 10 m,
13 bands, 15 training polygons); peak RSS is that subprocess's ``ru_maxrss`` (``os.wait4``), and on CUDA the
child also reports ``torch.cuda.max_memory_allocated`` (after ``torch.cuda.synchronize``).

Budgets are given per profile (``--fast-iterations``, ``--fast-epochs``, ``--paper-iterations``,
``--paper-epochs``) and the figures are **extrapolated** to the profile's defaults from the measured run:

- pretrain: the per-iteration time is the slope of the progress events (stage ``pretrain``) between the
  first and the last event, so start-up (imports, statistics) is not counted per iteration;
  profile time = start-up + per-iteration time x the profile's iterations;
- train: per-epoch time from the ``epoch`` metric events (first to last); the time before the first epoch
  (loading, patch gathering with diffusion features) is fixed and counted once; profile time = fixed +
  per-epoch time x the profile's epochs (the random forest after the last epoch is included in the fixed
  part when measured; it is small);
- classify: ``--classify-extent`` pixels (default: the whole crop) with ``--classify-max-seconds``; a run
  stopped by the limit is extrapolated from its progress events (as in bench_classify.py).

The ``paper`` profile is meant for a GPU; on a CPU it is run only with tiny budgets (defaults: 1 iteration,
1 epoch, classification stopped after ``--classify-max-seconds``) and its rows are extrapolations.

    nice -n 10 .venv/bin/python benchmarks/bench_stages.py [--profiles fast paper] [--device auto|cpu|cuda]
        [--fast-iterations 20] [--fast-epochs 3] [--paper-iterations 1] [--paper-epochs 1]
        [--classify-max-seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_classify import (CROP, MiB, bands, cuda_available, first_event_time, machine_info,  # noqa: E402
                            resolve_device, run_engine, stage_progress)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def profile_defaults(profile: str) -> tuple[int, int]:
    from engine.config import get_profile

    p = get_profile(profile)
    return p.diffusion.iterations, p.training.epochs


def slope(points: list[tuple[float, float]]) -> float | None:
    """Seconds per unit between the first and the last (t, units) point."""
    if len(points) < 2 or points[-1][1] <= points[0][1]:
        return None
    return (points[-1][0] - points[0][0]) / (points[-1][1] - points[0][1])


def bench_profile(profile: str, device: str, iters: int, epochs: int, cls_extent: list[str] | None,
                  cls_max_s: float | None, workdir: str) -> list[dict]:
    b = bands(CROP)
    def_it, def_ep = profile_defaults(profile)
    pre = os.path.join(workdir, f"pre_{profile}.safetensors")
    model = os.path.join(workdir, f"model_{profile}.safetensors")
    common = ["--device", device, "--seed", "0", "--overwrite", "--profile", profile]
    rows = []

    # -- pretrain ---------------------------------------------------------------------------------------------
    print(f"  {profile}: pretrain {iters} iterations ...", flush=True)
    r = run_engine(["pretrain", "--spectral", *b, "--output", pre, "--iterations", str(iters), *common],
                   label=f"pretrain {profile}", verbose=False)
    if r["rc"] != 0:
        raise SystemExit(f"{profile} pretraining failed")
    prog = stage_progress(r["events"], "pretrain")            # value = % of iterations
    pts = [(t, v / 100.0 * iters) for t, v in prog]
    t_first_it = first_event_time(r["events"], lambda e: e.get("event") == "log"
                                  and "diffusion pretraining:" in str(e.get("message", "")))
    per_it = slope(pts)
    if per_it is None and pts and t_first_it is not None:      # a single iteration: from the set-up log line
        per_it = (pts[-1][0] - t_first_it) / max(pts[-1][1], 1)
    startup = (pts[-1][0] - per_it * iters) if (pts and per_it) else None
    proj = startup + per_it * def_it if per_it is not None and startup is not None else None
    rows.append({"stage": "pretrain", "run": f"{iters} it", "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"],
                 "cpu_s": r["cpu_s"], "unit_s": per_it, "unit": "s/it", "default": f"{def_it} it", "projected_s": proj,
                 "cuda": r["cuda"]})

    # -- train ------------------------------------------------------------------------------------------------
    print(f"  {profile}: train {epochs} epochs ...", flush=True)
    r = run_engine(["train", "--spectral", *b, "--training", os.path.join(CROP, "training_polygons.gpkg"),
                    "--class-field", "class_id", "--pretrained", pre, "--output", model, "--epochs", str(epochs),
                    *common], label=f"train {profile}", verbose=False)
    if r["rc"] != 0:
        raise SystemExit(f"{profile} training failed")
    ep = [(t, float(e["value"])) for t, e in r["events"] if e.get("event") == "metric" and e.get("name") == "epoch"]
    t_net = first_event_time(r["events"], lambda e: e.get("event") == "log"
                             and str(e.get("message", "")).startswith("Group network"))
    per_ep = slope(ep)
    if per_ep is None and ep and t_net is not None:
        per_ep = (ep[-1][0] - t_net) / max(ep[-1][1], 1)
    fixed = r["wall_s"] - per_ep * len(ep) if per_ep is not None else None
    proj = fixed + per_ep * def_ep if per_ep is not None else None
    rows.append({"stage": "train", "run": f"{len(ep)} ep", "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"],
                 "cpu_s": r["cpu_s"], "unit_s": per_ep, "unit": "s/epoch", "default": f"{def_ep} ep", "projected_s": proj,
                 "fixed_s": fixed, "cuda": r["cuda"], "metrics": (r["done"] or {}).get("metrics")})

    # -- classify ---------------------------------------------------------------------------------------------
    import rasterio

    with rasterio.open(os.path.join(CROP, "s2_B02.tif")) as ds:
        W, H = ds.width, ds.height
    n_px = W * H
    args = ["classify", "--model", model, "--spectral", *b, "--output", os.path.join(workdir, f"cls_{profile}.tif"),
            "--device", device, "--overwrite"]
    if cls_extent:
        args += ["--extent", *cls_extent]
        with rasterio.open(os.path.join(CROP, "s2_B02.tif")) as ds:
            w = ds.window(*[float(v) for v in cls_extent])
            n_px = int(round(w.width)) * int(round(w.height))
    print(f"  {profile}: classify {n_px} px (limit {cls_max_s} s) ...", flush=True)
    r = run_engine(args, max_seconds=cls_max_s, label=f"classify {profile}", verbose=False)
    t_start = first_event_time(r["events"], lambda e: e.get("event") == "log"
                               and str(e.get("message", "")).startswith("Classifying"))
    prog = stage_progress(r["events"], "classify")
    if r["rc"] == 0 and r["done"]:
        rate = n_px / max((prog[-1][0] if prog else r["wall_s"]) - (t_start or 0), 1e-9)
        proj, note = r["wall_s"], "measured"
    elif prog and t_start is not None and prog[-1][1] > 0:
        rate = prog[-1][1] / 100.0 * n_px / max(prog[-1][0] - t_start, 1e-9)
        proj, note = t_start + n_px / rate, f"partial {prog[-1][1]:.1f} %"
    else:
        rate, proj, note = None, None, "no progress before the limit"
    rows.append({"stage": "classify", "run": note, "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"],
                 "cpu_s": r["cpu_s"], "unit_s": (1000.0 / rate) if rate else None, "unit": "s/1000 px", "default": f"{n_px} px",
                 "projected_s": proj, "px_per_s": rate, "cuda": r["cuda"]})
    return rows


def show(profile: str, device: str, rows: list[dict]) -> None:
    print(f"\n{profile} profile on {device} (embedded crop 768 x 768 px, 13 bands)")
    print(f"{'stage':<10}{'run':<16}{'wall s':>9}{'CPU s':>8}{'peak RSS MiB':>14}{'CUDA MiB':>10}{'per unit':>18}"
          f"{'profile default':>17}{'projected s':>13}")
    for r in rows:
        unit = f"{r['unit_s']:.2f} {r['unit']}" if r["unit_s"] is not None else "-"
        cuda = f"{r['cuda']['max_memory_allocated'] / MiB:.0f}" if r.get("cuda") else "-"
        proj = f"{r['projected_s']:.0f}" if r["projected_s"] is not None else "-"
        print(f"{r['stage']:<10}{r['run']:<16}{r['wall_s']:>9.1f}{r['cpu_s']:>8.1f}{r['peak_rss_mib']:>14.0f}{cuda:>10}{unit:>18}"
              f"{r['default']:>17}{proj:>13}", flush=True)
    tr = next(r for r in rows if r["stage"] == "train")
    if tr.get("fixed_s") is not None:
        print(f"train: {tr['fixed_s']:.0f} s fixed (loading, patch gathering, random forest) + per-epoch time")
    if tr.get("metrics"):
        print("train metrics (tiny budget, crop):", json.dumps(tr["metrics"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", nargs="+", choices=["fast", "paper"], default=["fast", "paper"])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto: CUDA for paper (and fast on CPU) when available, else CPU")
    ap.add_argument("--fast-iterations", type=int, default=20)
    ap.add_argument("--fast-epochs", type=int, default=3)
    ap.add_argument("--paper-iterations", type=int, default=None, help="default: 1 on CPU, the profile's on CUDA")
    ap.add_argument("--paper-epochs", type=int, default=None, help="default: 1 on CPU, 5 on CUDA")
    ap.add_argument("--classify-extent", nargs=4, default=None, metavar=("XMIN", "YMIN", "XMAX", "YMAX"),
                    help="classify only this extent of the crop (default: the whole crop)")
    ap.add_argument("--classify-max-seconds", type=float, default=60.0)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_stages_")
    os.makedirs(workdir, exist_ok=True)
    info = machine_info()
    print("machine:", json.dumps(info))
    has_cuda = cuda_available()
    if not has_cuda:
        print("CUDA: not available -> every profile on the CPU; paper with tiny budgets, extrapolated")
    results = {}
    for profile in args.profiles:
        if profile == "fast":
            device = "cpu" if args.device in ("auto", "cpu") else resolve_device(args.device)
            iters, epochs = args.fast_iterations, args.fast_epochs
        else:
            device = resolve_device(args.device)
            on_gpu = device == "cuda"
            iters = args.paper_iterations or (profile_defaults("paper")[0] if on_gpu else 1)
            epochs = args.paper_epochs or (5 if on_gpu else 1)
        results[profile] = (device, bench_profile(profile, device, iters, epochs, args.classify_extent,
                                                  args.classify_max_seconds, workdir))
    for profile, (device, rows) in results.items():
        show(profile, device, rows)
    print("JSON:", json.dumps({"machine": info, "results": {k: v[1] for k, v in results.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
