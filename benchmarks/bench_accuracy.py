"""Accuracy: BDGF against a random forest on the same pixels, polygon-held-out validation, several seeds.

On the full Delmarva Sentinel-2 scene (/work/shared/data/s2_delmarva, 13 bands) with the shared training
polygons (training_polygons.gpkg, field ``class_id``), runs ``python -m engine train`` once per seed. The
engine splits the polygons by class into training / validation polygons (``--validation-fraction``, split
by polygon so validation pixels never come from a training polygon), trains BDGF and a random forest on the
same training pixels (centre-pixel spectra), and reports OA / AA / kappa of both on the held-out pixels in its
``done`` event (``metrics.oa`` ... ``metrics.rf_kappa``). The script prints them per seed and mean ± std
(sample std, ddof = 1).

Pretraining (``--pretrain``):
- ``shared`` (default): one pretrain file (seed 0) reused by every seed (``train --pretrained``): the seeds
  then vary the polygon split, the pixel sampling and the network initialisation only;
- ``per-seed``: a pretrain per seed (``pretrain --seed s``), slower;
- or ``--pretrained FILE`` to reuse an existing pretrain file.

Budgets: ``--iterations`` (pretraining) and ``--epochs`` (default: the profile's); both are printed. Profiles:
``fast`` always; ``paper`` too when CUDA is available (``--profiles`` to choose).

    nice -n 10 .venv/bin/python benchmarks/bench_accuracy.py [--seeds 0 1 2] [--iterations N] [--epochs N]
        [--pretrain shared|per-seed] [--pretrained FILE] [--profiles fast paper] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_classify import SCENE, bands, cuda_available, machine_info, resolve_device, run_engine  # noqa: E402

KEYS = [("oa", "BDGF OA"), ("aa", "BDGF AA"), ("kappa", "BDGF kappa"),
        ("rf_oa", "RF OA"), ("rf_aa", "RF AA"), ("rf_kappa", "RF kappa")]


def fmt(x: float | None) -> str:
    return "  -   " if x is None else f"{x:.4f}"


def run_profile(profile: str, device: str, args, scene_bands: list[str], workdir: str) -> dict:
    polygons = os.path.join(args.scene, "training_polygons.gpkg")
    common = ["--device", device, "--overwrite", "--profile", profile]
    iters = ["--iterations", str(args.iterations)] if args.iterations else []
    pre_files: dict[int, str] = {}
    pre_times: dict[int, float] = {}
    if args.pretrained:
        pre_files = {s: args.pretrained for s in args.seeds}
        how = f"reused {args.pretrained}"
    else:
        pre_seeds = [args.seeds[0]] if args.pretrain == "shared" else args.seeds
        for s in pre_seeds:
            path = os.path.join(workdir, f"pre_{profile}_seed{s}.safetensors")
            print(f"  pretrain {profile} seed {s} ...", flush=True)
            r = run_engine(["pretrain", "--spectral", *scene_bands, "--output", path, "--seed", str(s), *iters,
                            *common], label=f"pretrain {profile} s{s}")
            if r["rc"] != 0:
                raise SystemExit("pretraining failed")
            pre_times[s] = r["wall_s"]
            print(f"    pretrain: {r['done'].get('iterations')} iterations, {r['wall_s']:.0f} s wall, "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
            pre_files[s] = path
        if args.pretrain == "shared":
            pre_files = {s: pre_files[args.seeds[0]] for s in args.seeds}
            how = f"one pretrain (seed {args.seeds[0]}) shared by all seeds"
        else:
            how = "one pretrain per seed"
    rows = []
    for s in args.seeds:
        model = os.path.join(workdir, f"model_{profile}_seed{s}.safetensors")
        targs = ["train", "--spectral", *scene_bands, "--training", polygons, "--class-field", "class_id",
                 "--pretrained", pre_files[s], "--output", model, "--seed", str(s),
                 "--validation-fraction", str(args.validation_fraction), *common]
        if args.epochs:
            targs += ["--epochs", str(args.epochs)]
        print(f"  train {profile} seed {s} ...", flush=True)
        r = run_engine(targs, label=f"train {profile} s{s}", verbose=False)
        if r["rc"] != 0 or not r["done"]:
            print(f"    seed {s}: train failed (rc {r['rc']})")
            continue
        m = r["done"].get("metrics", {})
        n_ep = sum(1 for _, e in r["events"] if e.get("event") == "metric" and e.get("name") == "epoch")
        logs = [e.get("message", "") for _, e in r["events"] if e.get("event") == "log"]
        used = next((x for x in logs if "training and" in x and "validation pixels used" in x), "")
        rows.append({"seed": s, "epochs": n_ep, "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"],
                     "pixels": used, **{k: m.get(k) for k, _ in KEYS}})
        print(f"    seed {s}: " + ", ".join(f"{lab} {fmt(m.get(k))}" for k, lab in KEYS)
              + f"  ({n_ep} epochs, {r['wall_s']:.0f} s; {used})", flush=True)
    return {"profile": profile, "device": device, "pretrain": how, "pretrain_wall_s": pre_times, "rows": rows}


def summary(res: dict, args) -> None:
    rows = res["rows"]
    print(f"\n{res['profile']} profile on {res['device']}: {res['pretrain']}; pretraining iterations "
          f"{args.iterations or 'profile default'}, epochs {args.epochs or 'profile default'}, "
          f"validation fraction {args.validation_fraction}")
    print(f"{'seed':<8}" + "".join(f"{lab:>12}" for _, lab in KEYS) + f"{'train s':>10}")
    for r in rows:
        print(f"{r['seed']:<8}" + "".join(f"{fmt(r[k]):>12}" for k, _ in KEYS) + f"{r['wall_s']:>10.0f}")
    if rows:
        cells = []
        for k, _ in KEYS:
            v = [r[k] for r in rows if r[k] is not None]
            if not v:
                cells.append("-")
            elif len(v) == 1:
                cells.append(f"{v[0]:.4f}")
            else:
                cells.append(f"{statistics.mean(v):.4f}±{statistics.stdev(v):.4f}")
        print(f"{'mean±sd':<8}" + "".join(f"{c:>12}" for c in cells) + f"   (n = {len(rows)} seeds)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", default=SCENE)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--profiles", nargs="+", choices=["fast", "paper"],
                    help="default: fast, plus paper when CUDA is available")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto: fast on the CPU, paper on CUDA when available")
    ap.add_argument("--iterations", type=int, default=None, help="pretraining iterations (default: profile)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: profile)")
    ap.add_argument("--pretrain", choices=["shared", "per-seed"], default="shared")
    ap.add_argument("--pretrained", default=None, help="existing pretrain file to reuse for every seed")
    ap.add_argument("--validation-fraction", type=float, default=0.3)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_accuracy_")
    os.makedirs(workdir, exist_ok=True)
    has_cuda = cuda_available()
    profiles = args.profiles or (["fast", "paper"] if has_cuda and args.device != "cpu" else ["fast"])
    info = machine_info()
    print("machine:", json.dumps(info))
    print(f"scene {args.scene}, seeds {args.seeds}, profiles {profiles}, workdir {workdir}")
    if not has_cuda:
        print("CUDA: not available -> fast profile on CPU only (no paper figures)")
    results = []
    for profile in profiles:
        device = "cpu" if profile == "fast" and args.device in ("auto", "cpu") else resolve_device(args.device)
        results.append(run_profile(profile, device, args, bands(args.scene), workdir))
    for res in results:
        summary(res, args)
    print("JSON:", json.dumps({"machine": info, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
