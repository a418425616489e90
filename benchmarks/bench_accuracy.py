"""Accuracy: BDGF against a random forest under the same polygon-grouped cross-validation folds, several seeds.

Data sets (``--datasets``): the full shared Sentinel-2 Delmarva scene (13 bands, 55 analyst polygons), ``crop``
(the demo's embedded 768 x 768 px crop of it, 15 polygons) and the two
BigEarthNet-MM Sentinel-1 + Sentinel-2 pairs (87_48, 69_24; 12 S-2 bands + VV/VH in dB) in the
benchmark data folder (``bench_data``: ``$BDGF_BENCH_DATA``). For each data set the diffusion model is
pretrained ONCE (``fast`` profile, its default iterations; self-supervised on the unlabelled image, so sharing
it across folds and seeds leaks no label) and the patches of every labelled pixel are gathered once (with
``--set pseudo_share=S`` also those of up to 20 000 unlabelled pixels, for pseudo-labels). Then, for each seed, the engine's own cross-validation
(``labels.polygon_folds``: K folds grouped by polygon and stratified by class, K = min(--folds, fewest polygons of
a class); ``training.cross_validate``: a fresh BDGF network per fold with the profile's training recipe, and a
random forest on the centre-pixel inputs of the same training pixels) predicts every held-out polygon.

Printed per data set: K, BDGF and random-forest OA / AA / kappa as the mean over all folds of all seeds with a
95 % interval (Student t over the fold values; folds of one seed share training polygons, so the interval is a
rough guide), the pooled (all held-out pixels) figures, the per-seed pooled OA and the wall time. The last line is
the JSON of everything. "edge OA" is the pooled OA of the held-out pixels within 2 px of their polygon's edge
(``train.edge_accuracy``), where a pixel's patch and diffusion features first see beyond the polygon.

    nice -n 10 .venv/bin/python benchmarks/bench_accuracy.py [--datasets delmarva 87_48 69_24] [--seeds 0 1 2]
        [--folds 5] [--epochs N] [--workdir DIR] [--device cpu|cuda|auto] [--set spectral_jitter=0.1 ...]

``--set NAME=VALUE`` overrides a field of the profile's ``TrainingConfig`` (e.g. ``spectral_jitter=0.1``,
``edge_weight=2``) and, prefixed ``net.``, of its ``NetworkConfig`` (e.g. ``net.use_transformer=false``) to
compare recipes under the same folds. Each seed's result is cached in ``WORKDIR/DATASET/`` under a name that
hashes every training and network setting (``cv_seed0_folds5_p5_<hash>.json``), so a changed default is never
answered from an old result.
With the profile's whitewater (``fast``: 0.5; ``--set whitewater=0`` switches it off) the foam-striped water
and swash-zone sand pixels of ``train.gather_whitewater`` (seed 0, cached in
``WORKDIR/NAME/whitewater_SHARE_N_<version>.npz``, the version a hash of the code that draws them) train in every
fold except those that hold out their polygon; they are never held out and never given to the random forest.
``--set patch_size=P`` (odd) also builds the network for P x P patches and feeds it the centre P x P of the
patches, which are gathered once at the larger of P and the paper's 9 (a centre crop is exactly what gathering at
P gives).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_classify import machine_info  # noqa: E402
from bench_data import data_root  # noqa: E402

SHARED = str(data_root())


def dataset(name: str, shared: str):
    """(modalities, polygons) of a data set name."""
    from engine.data.grid import Modality

    if name in ("delmarva", "crop"):     # crop: the 768 x 768 px crop embedded for the demo and the tests
        scene = os.path.join(ROOT, "resources", "sample_data", "delmarva_s2") if name == "crop" \
            else os.path.join(shared, "s2_delmarva")
        return ([Modality(sorted(glob.glob(os.path.join(scene, "s2_B*.tif"))), "spectral")],
                os.path.join(scene, "training_polygons.gpkg"))
    ben = os.path.join(shared, "bigearthnet_mm")
    s2 = glob.glob(os.path.join(ben, "BigEarthNet-S2-Example", f"*_{name}"))
    s1 = glob.glob(os.path.join(ben, "BigEarthNet-S1-Example", f"*_{name}"))
    if not s2 or not s1:
        raise SystemExit(f"no BigEarthNet pair {name} under {ben}")
    return [Modality(sorted(glob.glob(os.path.join(s2[0], "*_B*.tif"))), "spectral"),
            Modality(sorted(glob.glob(os.path.join(s1[0], "*_V[VH].tif"))), "sar_db")], \
        os.path.join(ben, f"training_polygons_{name}.gpkg")


@contextlib.contextmanager
def open_stack(mods, context: dict | None):
    """The data set's stack, with the landscape context of the pretrained model when it has one
    (``engine.data.context.context_inputs``)."""
    from engine.data.context import context_inputs
    from engine.data.grid import RasterStack

    with context_inputs(mods[0], mods[1:], context) as (grid, aux), RasterStack([mods[0], *aux], grid) as stack:
        yield stack


def prepare(name: str, args, device) -> dict:
    """Pretrain once and gather the patches of every labelled pixel, cached in ``WORKDIR/NAME/``
    (``pretrain.safetensors``, ``patches.npz``, ``meta.json``) and reused when present."""
    import dataclasses

    import numpy as np
    import torch

    from engine import api
    from engine.config import get_profile
    from engine.data.grid import RasterStack
    from engine.data.inputs import ClassifierInputs
    from engine.data.labels import ClassInfo, LabelledPixels, drop_invalid, read_polygons
    from engine.io.artifact import load_model
    from engine.models.diffusion import FeatureExtractor
    from engine.models.network import build_network
    from engine.train import edge_pixels, gather_patches

    mods, polygons = dataset(name, args.shared)
    folder = os.path.join(args.workdir, name)
    os.makedirs(folder, exist_ok=True)
    pre, cache = os.path.join(folder, "pretrain.safetensors"), os.path.join(folder, "patches.npz")
    t0 = time.monotonic()
    if not os.path.exists(pre):
        print(f"  {name}: pretraining (fast profile, {args.pretrain_iterations or 'default'} iterations) ...",
              flush=True)
        api.pretrain(mods[0], mods[1:], pre, profile="fast", seed=args.pretrain_seed, device=str(device),
                     iterations=args.pretrain_iterations or None, context=args.context)
    prof = get_profile("fast", 0)
    p = args.overrides.get("patch_size", prof.training.patch_size)
    # gathered once at the larger of P and the paper's 9, so that every smaller patch is a centre crop of it
    p_gather = max(p, get_profile("paper").training.patch_size)
    tensors, meta = load_model(pre, device="cpu")
    extractor = FeatureExtractor.from_tensors(tensors, meta, device)
    if not os.path.exists(cache):
        print(f"  {name}: gathering the patches of every labelled pixel ...", flush=True)
        with open_stack(mods, meta.context) as stack:
            extractor.unet.eval()
            px = drop_invalid(read_polygons(polygons, "class_id", stack.grid), stack)
            inputs = ClassifierInputs(stack.band_counts, meta.statistics())
            ps, fmin, fmax = gather_patches(stack, px.rows, px.cols, px.class_index(), extractor, inputs,
                                            p_gather, prof.training.gather_tile)
        np.savez(cache, spec=ps.spec, aux=ps.aux if ps.aux is not None else np.zeros(0), dif=ps.dif, y=ps.y,
                 pid=px.polygon_ids, rows=px.rows, cols=px.cols, fmin=fmin.numpy(), fmax=fmax.numpy())
        with open(os.path.join(folder, "meta.json"), "w") as fh:
            json.dump({"classes": [c.to_dict() for c in px.classes]}, fh)
    z = dict(np.load(cache))
    p_gathered = z["spec"].shape[-1]
    if p > p_gathered or p % 2 != 1:
        raise SystemExit(f"--set patch_size={p}: use an odd size up to the gathered {p_gathered}")
    r0 = (p_gathered - p) // 2     # the centre P x P of a gathered patch is the patch gathered at P
    for key in ("spec", "aux", "dif"):
        if z[key].ndim == 4:
            z[key] = np.ascontiguousarray(z[key][:, :, r0:r0 + p, r0:r0 + p])
    with open(os.path.join(folder, "meta.json")) as fh:
        classes = [ClassInfo.from_dict(c) for c in json.load(fh)["classes"]]
    values = np.array([c.value for c in classes])[z["y"]]
    px = LabelledPixels(z["rows"], z["cols"], values.astype(np.uint16), z["pid"], classes)
    aux = z["aux"] if z["aux"].size else None
    n_spec, n_aux, n_dif = z["spec"].shape[1], 0 if aux is None else aux.shape[1], z["dif"].shape[1]
    lo, hi = torch.from_numpy(z["fmin"])[:, None, None], torch.from_numpy(z["fmax"])[:, None, None]
    dif = torch.from_numpy(z["dif"])
    nonzero = (dif != 0).any(dim=1, keepdim=True)   # as training._to_tensors: padding stays 0
    scaled = (((dif.float() - lo) / (hi - lo).clamp_min(1e-6)) * nonzero).half()
    data = {"spec": torch.from_numpy(z["spec"]), "aux": None if aux is None else torch.from_numpy(aux),
            "dif": scaled, "y": torch.from_numpy(z["y"])}
    c = p // 2
    centre = z["spec"][:, :, c, c] if aux is None else np.concatenate([z["spec"][:, :, c, c], aux[:, :, c, c]], 1)
    net_cfg = dataclasses.replace(prof.network, patch_size=p,
                                  **{k[4:]: v for k, v in args.overrides.items() if k.startswith("net.")})

    def make_network(seed: int):
        torch.manual_seed(seed)
        return build_network(n_spec, n_aux, n_dif, len(classes), net_cfg)

    pseudo_pixels = int(args.overrides.get("pseudo_pixels", prof.training.pseudo_pixels))
    unlabelled = (unlabelled_patches(folder, mods, px, extractor, meta, p_gathered, p, lo, hi, pseudo_pixels)
                  if float(args.overrides.get("pseudo_share", prof.training.pseudo_share)) else None)
    edge = edge_pixels(px.rows, px.cols, px.polygon_ids, prof.training.edge_radius)
    share = float(args.overrides.get("whitewater", prof.training.whitewater))
    foam = whitewater_patches(folder, mods, px, extractor, meta, p_gathered, p, lo, hi, share,
                              int(args.overrides.get("whitewater_pixels", prof.training.whitewater_pixels))) \
        if share else None
    if foam is not None:     # training-only pixels after the labelled ones (train.synthetic_folds)
        data = {k: v if v is None else torch.cat([v, foam[0][k].to(v.dtype)]) for k, v in data.items()}
        centre = np.concatenate([centre, foam[0]["centre"]])
        edge = np.r_[edge, np.zeros(len(foam[1]), bool)]

    return {"pixels": px, "data": data, "centre": centre, "patch_size": p, "edge": edge,
            "foam_polygons": None if foam is None else foam[1],
            "make_network": make_network, "network_config": net_cfg, "prepare_s": time.monotonic() - t0,
            "unlabelled": unlabelled,
            "counts": np.bincount(z["y"], minlength=len(classes)).tolist(),
            "n_polygons": int(len(np.unique(px.polygon_ids)))}


def unlabelled_patches(folder: str, mods, px, extractor, meta, p_gathered: int, p: int, lo, hi, n: int) -> dict:
    """Patches of up to ``n`` unlabelled pixels for pseudo-labels (``train.sample_unlabelled`` with seed 0, valid
    pixels only, gathered as the labelled ones and cached in ``WORKDIR/NAME/unlabelled_seed0_N.npz``), as training
    tensors with their ``"centre"`` inputs; diffusion features scaled with the labelled pixels' min / max ``lo``,
    ``hi`` (as ``train.patch_tensors`` does with the model's)."""
    import numpy as np

    from engine.data.grid import RasterStack
    from engine.data.inputs import ClassifierInputs
    from engine.data.labels import valid_at
    from engine.train import gather_patches, sample_unlabelled

    cache = os.path.join(folder, f"unlabelled_seed0_{n}.npz")
    if not os.path.exists(cache):
        print(f"  gathering the patches of up to {n} unlabelled pixels ...", flush=True)
        extractor.unet.eval()
        with open_stack(mods, meta.context) as stack:
            rows, cols = sample_unlabelled((stack.grid.height, stack.grid.width), None, px.rows, px.cols, n, 0)
            ok = valid_at(stack, rows, cols)
            inputs = ClassifierInputs(stack.band_counts, meta.statistics())
            ps, _, _ = gather_patches(stack, rows[ok], cols[ok], np.zeros(int(ok.sum()), np.int64), extractor,
                                      inputs, p_gathered, 128)
        np.savez(cache, spec=ps.spec, aux=ps.aux if ps.aux is not None else np.zeros(0), dif=ps.dif)
    return patch_tensors_of(dict(np.load(cache)), p, lo, hi)


def patch_tensors_of(z: dict, p: int, lo, hi) -> dict:
    """Training tensors of gathered patches ``z`` (``spec``, ``aux``, ``dif``, optional ``y``) cut to their centre
    ``p x p``, diffusion features scaled with the labelled pixels' min / max ``lo``, ``hi`` (as
    ``train.patch_tensors`` does with the model's), plus their ``"centre"`` inputs."""
    import numpy as np
    import torch

    r0 = (z["spec"].shape[-1] - p) // 2
    for key in ("spec", "aux", "dif"):
        if z[key].ndim == 4:
            z[key] = np.ascontiguousarray(z[key][:, :, r0:r0 + p, r0:r0 + p])
    dif = torch.from_numpy(z["dif"])
    nonzero = (dif != 0).any(dim=1, keepdim=True)
    aux = z["aux"] if z["aux"].size else None
    c = p // 2
    centre = z["spec"][:, :, c, c] if aux is None else np.concatenate([z["spec"][:, :, c, c], aux[:, :, c, c]], 1)
    y = torch.from_numpy(z["y"]) if "y" in z else torch.zeros(len(dif), dtype=torch.int64)
    return {"spec": torch.from_numpy(z["spec"]), "aux": None if aux is None else torch.from_numpy(aux),
            "dif": (((dif.float() - lo) / (hi - lo).clamp_min(1e-6)) * nonzero).half(), "y": y, "centre": centre}


def whitewater_patches(folder: str, mods, px, extractor, meta, p_gathered: int, p: int, lo, hi, share: float,
                       max_pixels: int) -> tuple[dict, "np.ndarray"] | None:
    """Patches of foam-striped water pixels and swash-zone sand pixels (``train.gather_whitewater`` with seed 0,
    gathered as the labelled ones and cached in ``WORKDIR/NAME/whitewater_SHARE_N_<surf_version>.npz``) as training
    tensors, and their source polygons; None when the data set has no water class (or no band wavelengths)."""
    import dataclasses

    import numpy as np

    from engine.config import get_profile
    from engine.data.grid import RasterStack
    from engine.data.inputs import ClassifierInputs
    from engine.train import gather_whitewater

    cache = os.path.join(folder, f"whitewater_{share:g}_{max_pixels}_{surf_version()}.npz")
    if not os.path.exists(cache):
        print(f"  gathering the patches of the whitewater pixels (share {share:g}) ...", flush=True)
        extractor.unet.eval()
        cfg = dataclasses.replace(get_profile("fast", 0).training, whitewater=share, whitewater_pixels=max_pixels,
                                  patch_size=p_gathered)
        with open_stack(mods, meta.context) as stack:
            got = gather_whitewater(stack, px, extractor, ClassifierInputs(stack.band_counts, meta.statistics()), cfg)
        if got is None:
            np.savez(cache, pid=np.zeros(0, np.int64))
        else:
            ps, pid = got
            np.savez(cache, spec=ps.spec, aux=ps.aux if ps.aux is not None else np.zeros(0), dif=ps.dif, y=ps.y,
                     pid=pid)
    z = dict(np.load(cache))
    if not len(z["pid"]):
        return None
    pid = z.pop("pid")
    return patch_tensors_of(z, p, lo, hi), pid


def surf_version() -> str:
    """8 hex digits of the source that draws the whitewater and swash pixels (``engine.data.whitewater`` and
    ``train.gather_whitewater`` with its helpers), so that their caches and the results trained with them are
    never answered from an older drawing."""
    import hashlib
    import inspect

    import engine.data.whitewater as surf
    import engine.train as training

    parts = [inspect.getsource(surf)] + [inspect.getsource(getattr(training, name)) for name in
                                         ("gather_whitewater", "_gather_stripes", "_gather_swash")]
    return hashlib.sha1("".join(parts).encode()).hexdigest()[:8]


def settings_key(tcfg, prep: dict) -> str:
    """Cache key of one seed's result: a hash of every training and network setting except the seed, and of the
    whitewater drawing when it is on (so a changed default is never answered from a stale cache), e.g.
    ``p5_3f9a0c12``."""
    import dataclasses
    import hashlib

    train = {k: v for k, v in dataclasses.asdict(tcfg).items() if k != "seed"}
    surf = surf_version() if tcfg.whitewater else None
    text = json.dumps({"train": train, "net": prep["network_config"].to_dict(), **({"surf": surf} if surf else {})},
                      sort_keys=True, default=str)
    return f"p{prep['patch_size']}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def cv_folds(prep: dict, n_folds: int, seed: int, tcfg) -> tuple:
    """``(fold (N + F,), K, train_only (N + F,) or None)`` of a seed: the polygon-grouped folds of the labelled
    pixels (``labels.polygon_folds``), extended to the whitewater pixels that follow them in ``prep["data"]``
    (``train.synthetic_folds``: their source polygon's fold, training only)."""
    from engine.data.labels import polygon_folds
    from engine.train import synthetic_folds

    px = prep["pixels"]
    fold, k, _ = polygon_folds(px, n_folds, seed, tcfg.cv_block_size)
    if prep["foam_polygons"] is None:
        return fold, k, None
    fold, train_only = synthetic_folds(fold, px.polygon_ids, prep["foam_polygons"])
    return fold, k, train_only


def run_dataset(name: str, args, device) -> dict:
    import dataclasses

    from engine.config import get_profile
    from engine.train import choose_readout, cross_validate, mean_ci95

    prep = prepare(name, args, device)
    px = prep["pixels"]
    labels, names = [c.value for c in px.classes], [c.name for c in px.classes]
    print(f"  {name}: {len(px)} labelled pixels, {prep['n_polygons']} polygons, per class {prep['counts']}; "
          f"prepared in {prep['prepare_s']:.0f} s", flush=True)
    runs = []
    for seed in args.seeds:
        tcfg = get_profile("fast", seed).training
        if args.epochs:
            tcfg = dataclasses.replace(tcfg, epochs=args.epochs,
                                       milestones=tuple(m for m in tcfg.milestones if m < args.epochs) or (1,))
        tcfg = dataclasses.replace(tcfg, **{k: v for k, v in args.overrides.items() if not k.startswith("net.")})
        cached = os.path.join(args.workdir, name, f"cv_seed{seed}_folds{args.folds}_{settings_key(tcfg, prep)}.json")
        if os.path.exists(cached):     # a seed already run with the same settings (resumable benchmark)
            with open(cached) as fh:
                runs.append(json.load(fh))
            print(f"    seed {seed}: reused {cached}", flush=True)
            continue
        if args.cached_only:
            print(f"    seed {seed}: not run (--cached-only)", flush=True)
            continue
        fold, k, train_only = cv_folds(prep, args.folds, seed, tcfg)
        t0 = time.monotonic()
        cv = cross_validate(prep["data"], prep["centre"], fold, k, prep["make_network"], tcfg, device, labels,
                            names, prep["edge"], unlabelled=prep["unlabelled"] if tcfg.pseudo_share else None,
                            train_only=train_only)
        chosen = choose_readout(cv, tcfg.readout_margin)     # the read-out the final model would keep
        runs.append({"seed": seed, "folds": k, "seconds": time.monotonic() - t0,
                     "readout": chosen or prep["network_config"].prediction,
                     "alternative": {key: (cv.get("alternative") or {}).get(key) for key in ("oa", "aa", "kappa")},
                     "bdgf": {key: cv["bdgf"][key] for key in ("oa", "aa", "kappa")},
                     "rf": {key: cv["rf"][key] for key in ("oa", "aa", "kappa")},
                     "bdgf_folds": {key: cv["bdgf"][f"{key}_folds"]["folds"] for key in ("oa", "aa", "kappa")},
                     "rf_folds": {key: cv["rf"][f"{key}_folds"]["folds"] for key in ("oa", "aa", "kappa")},
                     "bdgf_pa": cv["bdgf"]["producers_accuracy"], "bdgf_ua": cv["bdgf"]["users_accuracy"],
                     "rf_pa": cv["rf"]["producers_accuracy"], "rf_ua": cv["rf"]["users_accuracy"],
                     "edge": cv["edge"]})
        r = runs[-1]
        with open(cached, "w") as fh:
            json.dump(r, fh)
        print(f"    seed {seed}: {k} folds, pooled OA BDGF {_f(r['bdgf']['oa'])} RF {_f(r['rf']['oa'])}, kappa BDGF "
              f"{_f(r['bdgf']['kappa'])} RF {_f(r['rf']['kappa'])}, read-out {r['readout']} (other read-out OA "
              f"{_f(r['alternative']['oa'])}) ({r['seconds']:.0f} s)", flush=True)
    summary = {}
    if not runs:
        raise SystemExit(f"{name}: no seed was run")
    for model in ("bdgf", "rf"):
        for key in ("oa", "aa", "kappa"):
            vals = [v for r in runs for v in r[f"{model}_folds"][key] if v is not None]
            summary[f"{model}_{key}"] = mean_ci95(vals)
            pooled = [r[model][key] for r in runs if r[model][key] is not None]
            summary[f"{model}_{key}_pooled"] = sum(pooled) / len(pooled) if pooled else None
    for model in ("bdgf", "rf"):     # held-out pixels within 2 px of their polygon's edge, pooled over the seeds
        parts = [r["edge"]["edge"] for r in runs if r.get("edge") and r["edge"]["edge"][f"{model}_oa"] is not None]
        n = sum(p["n"] for p in parts)
        summary[f"{model}_edge_oa"] = sum(p["n"] * p[f"{model}_oa"] for p in parts) / n if n else None
    return {"dataset": name, "pixels": len(px), "polygons": prep["n_polygons"], "classes": names,
            "folds": sorted({r["folds"] for r in runs}), "seeds": [r["seed"] for r in runs], "runs": runs,
            "summary": summary,
            "prepare_s": prep["prepare_s"]}


def _f(value) -> str:
    """A figure with 4 decimals; "n/a" for None or NaN (kappa is undefined when a fold's held-out pixels are all
    of one class, and so is its mean over such folds)."""
    return "n/a" if value is None or value != value else f"{value:.4f}"


def parse_overrides(items: list[str]) -> dict:
    """``["spectral_jitter=0.1", "net.use_transformer=false"]`` -> typed ``TrainingConfig`` overrides and, with
    the ``net.`` prefix, ``NetworkConfig`` ones (kept under their prefixed name); the values are typed by the
    engine's ``config.parse_override`` (what ``train --set`` uses).

    Raises:
        SystemExit: unknown field or a value that does not parse as the field's type."""
    import dataclasses

    from engine.config import get_profile, parse_override
    from engine.errors import EngineError

    prof = get_profile("fast")
    fields = {f.name for f in dataclasses.fields(prof.training)}
    fields |= {"net." + f.name for f in dataclasses.fields(prof.network) if f.name not in ("patch_size", "extra")}
    out = {}
    for item in items:
        key, _, text = item.partition("=")
        if key not in fields or not text:
            raise SystemExit(f"--set {item!r}: expected NAME=VALUE with NAME one of {sorted(fields)}")
        stage_key = "network." + key[4:] if key.startswith("net.") else "training." + key
        try:
            out[key] = parse_override(f"{stage_key}={text}")[1]
        except EngineError as e:
            raise SystemExit(f"--set {item!r}: {e}") from e
    return out


def table(results: list[dict]) -> str:
    head = (f"{'data set':<10}{'px':>7}{'pol.':>5}{'K':>3}{'seeds':>6}  {'BDGF OA':>16}{'RF OA':>16}"
            f"{'BDGF kappa':>16}{'RF kappa':>16}{'pooled OA B/RF':>17}{'edge OA B/RF':>17}  read-out per seed")
    lines = [head]
    for r in results:
        s = r["summary"]

        def ci(key):
            m, h = s[key]
            return f"{_f(m)} ± {_f(h)}"
        lines.append(f"{r['dataset']:<10}{r['pixels']:>7}{r['polygons']:>5}{'/'.join(map(str, r['folds'])):>3}"
                     f"{len(r['seeds']):>6}  {ci('bdgf_oa'):>16}{ci('rf_oa'):>16}{ci('bdgf_kappa'):>16}"
                     f"{ci('rf_kappa'):>16}   {_f(s['bdgf_oa_pooled'])}/{_f(s['rf_oa_pooled'])}"
                     f"   {_f(s.get('bdgf_edge_oa'))}/{_f(s.get('rf_edge_oa'))}"
                     f"  {'/'.join(run.get('readout', '?') for run in r['runs'])}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["delmarva", "87_48", "69_24"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the fast profile's)")
    ap.add_argument("--shared", default=SHARED, help="folder with s2_delmarva/ and bigearthnet_mm/")
    ap.add_argument("--workdir", default=None, help="keeps the pretrain files (reused when present)")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--cached-only", action="store_true",
                    help="only print the seeds already run with these settings (results cached in --workdir)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 is much faster on a CPU shared with other jobs)")
    ap.add_argument("--pretrain-iterations", type=int, default=0,
                    help="diffusion pretraining iterations (default: the fast profile's); give each value its own "
                         "--workdir, the pretrained model and patches are cached there")
    ap.add_argument("--pretrain-seed", type=int, default=0,
                    help="seed of the diffusion pretraining (default 0); give each value its own --workdir")
    ap.add_argument("--context", action="store_true",
                    help="pretrain and train with the landscape context (engine pretrain --context); give it its own "
                         "--workdir")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a TrainingConfig field of the fast profile, e.g. spectral_jitter=0.1, or with "
                         "net. a NetworkConfig one, e.g. net.use_transformer=false (repeatable)")
    args = ap.parse_args()
    args.overrides = parse_overrides(args.set)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from engine.device import resolve_device

    device = torch.device(resolve_device(args.device))
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="bench_accuracy_")
    os.makedirs(args.workdir, exist_ok=True)
    info = machine_info()
    print("machine:", json.dumps(info))
    print(f"fast profile, polygon-grouped {args.folds}-fold CV, seeds {args.seeds}, device {device}, "
          f"torch threads {torch.get_num_threads()}, workdir {args.workdir}", flush=True)
    results = []
    for name in args.datasets:
        results.append(run_dataset(name, args, device))
        print(table(results[-1:]), flush=True)
    print("\nBDGF (fast) vs random forest, same polygon-grouped folds; mean over folds x seeds ± 95 % interval")
    print(table(results))
    print("JSON:", json.dumps({"machine": info, "args": vars(args), "results": results}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
