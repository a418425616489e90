"""Does the area of applicability mark where the map is wrong? Held-out accuracy inside and outside it.

The polygon-grouped cross-validation of ``bench_accuracy.py`` (same data sets, pretraining, patches, folds and
``fast`` recipe; ``train.cross_validate``), and for each fold the area of applicability of that fold's training
pixels (``applicability.fit_applicability``: their centre-pixel inputs and polygons, as ``train`` keeps them in the
model file). Every held-out pixel is then inside or outside the area of applicability of the model that predicted
it, which is how Meyer and Pebesma (2021, §2.4) validate it: accuracy should be lower outside.

Printed per data set: held-out pixels inside / outside, and the OA of BDGF and of the random forest on each part
(pooled over folds and seeds), then the JSON of everything.

    nice -n 5 .venv/bin/python benchmarks/bench_applicability.py [--datasets delmarva crop 87_48 69_24]
        [--seeds 0 1 2] [--folds 5] [--workdir DIR]

``--workdir`` is shared with ``bench_accuracy.py`` (pretrained model and gathered patches are reused).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_data import data_root  # noqa: E402


def run_dataset(name: str, args, device) -> dict:
    """Cross-validate ``name`` for every seed; count held-out pixels and correct ones inside / outside."""
    import numpy as np

    from bench_accuracy import cv_folds, prepare
    from engine.applicability import fit_applicability
    from engine.config import get_profile
    from engine.train import cross_validate, view_labels

    prep = prepare(name, args, device)
    px, centre = prep["pixels"], prep["centre"]
    y = view_labels(prep["data"])
    labels, names = [c.value for c in px.classes], [c.name for c in px.classes]
    counts = {f"{part}_{what}": 0 for part in ("inside", "outside") for what in ("n", "bdgf", "rf")}
    for seed in args.seeds:
        tcfg = get_profile("fast", seed).training
        fold, k, train_only = cv_folds(prep, args.folds, seed, tcfg)
        n = len(px)     # the labelled pixels; whitewater pixels after them never enter the area of applicability

        def on_fold(te, pred, rf_pred, fold=fold):
            train = np.flatnonzero(fold[:n] != fold[te[0]])
            aoa = fit_applicability(centre[train], px.polygon_ids[train], seed)
            outside = aoa.dissimilarity(centre[te]) > aoa.threshold
            for part, mask in (("inside", ~outside), ("outside", outside)):
                counts[f"{part}_n"] += int(mask.sum())
                counts[f"{part}_bdgf"] += int((pred[mask] == y[te][mask]).sum())
                counts[f"{part}_rf"] += int((rf_pred[mask] == y[te][mask]).sum())

        cross_validate(prep["data"], centre, fold, k, prep["make_network"], tcfg, device, labels, names,
                       prep["edge"], on_fold=on_fold, train_only=train_only)
        print(f"    after seed {seed} (running totals): {counts}", flush=True)
    return {"dataset": name, "seeds": args.seeds, **counts}


def _oa(correct: int, n: int) -> str:
    return f"{correct / n:.4f}" if n else "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["delmarva", "crop", "87_48", "69_24"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "bdgf_bench_accuracy"))
    ap.add_argument("--shared", default=str(data_root()), help="folder with s2_delmarva/ and bigearthnet_mm/")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    # what bench_accuracy.prepare reads besides the options above: its defaults
    args.overrides, args.pretrain_iterations, args.pretrain_seed, args.context = {}, None, 0, False
    import torch

    torch.set_num_threads(args.threads)
    results = [run_dataset(name, args, torch.device(args.device)) for name in args.datasets]
    print("\n| data set | held-out px inside / outside | BDGF OA inside / outside | RF OA inside / outside |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} | {r['inside_n']} / {r['outside_n']} | {_oa(r['inside_bdgf'], r['inside_n'])} / "
              f"{_oa(r['outside_bdgf'], r['outside_n'])} | {_oa(r['inside_rf'], r['inside_n'])} / "
              f"{_oa(r['outside_rf'], r['outside_n'])} |")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
