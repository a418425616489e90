"""Classification throughput (pixels/s) and peak memory against scene size.

Runs ``python -m engine classify`` in a fresh subprocess per size (so peaks do not accumulate) on windows of
512 x 512 and 1024 x 1024 pixels (``--extent``) and on the full 1933 x 1947 Delmarva Sentinel-2 scene
(13 bands, ``$BDGF_BENCH_DATA/s2_delmarva``, see ``bench_data``), and prints per size:

- wall time and throughput (classified pixels / s, from the engine's ``--json-progress`` events),
- peak RSS of that subprocess (``os.wait4`` rusage ``ru_maxrss``: the child only, never the benchmark itself),
- on CUDA, ``torch.cuda.max_memory_allocated`` read inside the child after ``torch.cuda.synchronize``.

Slow CPUs: ``--max-seconds`` stops a size after that many seconds (SIGTERM; the engine cancels cleanly and
removes its partial outputs). The throughput is then measured on the partial run (pixels done / seconds since
classification started, both from the progress events) and the full-size time is **extrapolated**; such rows
are marked ``partial`` / ``extrapolated``. Peak RSS of a partial run is the peak over the tiles processed so
far; since every tile has the same size (256 px + halo), the peak is reached on the first tile.

Model: ``--model`` or, by default, a tiny ``fast`` model trained first on the embedded crop
(resources/sample_data/delmarva_s2: pretrain ``--pretrain-iterations``, train ``--epochs``); the model's size
does not depend on these counts, so throughput and memory are those of any ``fast`` model. On CUDA
(``--device auto`` with a GPU, or ``cuda``) a ``paper`` model is also trained and benchmarked
(``--profiles`` to choose).

    nice -n 10 .venv/bin/python benchmarks/bench_classify.py [--sizes 512 1024 full] [--max-seconds 120]
        [--model MODEL.safetensors] [--device auto|cpu|cuda] [--workdir DIR]

The helpers (``run_engine``, ``machine_info``) are shared with bench_accuracy.py and bench_stages.py.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from bench_data import delmarva_scene

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENE = str(delmarva_scene())
CROP = os.path.join(ROOT, "resources", "sample_data", "delmarva_s2")
MiB = 1024 * 1024

# The child: the engine's command line in-process, then (on CUDA) the peak of torch's allocator.
CHILD = r"""
import json, os, sys
sys.path.insert(0, os.getcwd())
from engine.cli import main
rc = 1
try:
    rc = main(sys.argv[1:])
finally:
    out = os.environ.get("BDGF_BENCH_CUDA_OUT")
    if out and "torch" in sys.modules:
        import torch
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
            with open(out, "w") as fh:
                json.dump({"max_memory_allocated": int(torch.cuda.max_memory_allocated()),
                           "max_memory_reserved": int(torch.cuda.max_memory_reserved()),
                           "device_name": torch.cuda.get_device_name(0)}, fh)
sys.exit(rc)
"""


# ------------------------------------------------------------------------------------------------ helpers
def bands(scene_dir: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(scene_dir, "s2_B*.tif"))) or sorted(
        glob.glob(os.path.join(scene_dir, "s2_B*.vrt")))      # make_mosaic_vrt.py's virtual scenes
    if len(files) != 13:
        raise SystemExit(f"expected 13 s2_B*.tif band files in {scene_dir}, found {len(files)}")
    return files


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if cuda_available() else "cpu"
    if name == "cuda" and not cuda_available():
        raise SystemExit("--device cuda: CUDA is not available in this environment")
    return name


def machine_info() -> dict:
    """CPU model, cores, RAM, torch version and CUDA device (if any)."""
    info: dict[str, Any] = {"python": platform.python_version(), "cores": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            info["ram_gib"] = round(int(fh.readline().split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["cuda_device"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        info["torch"] = None
    return info


def run_engine(args: list[str], max_seconds: float | None = None, niceness: int = 10, label: str = "",
               verbose: bool = True) -> dict:
    """Run ``python -m engine ARGS --json-progress`` in a fresh subprocess and measure it.

    Returns a dict: ``rc``, ``wall_s``, ``cpu_s`` (child's user + system CPU seconds, all threads: on a shared
    machine ``cpu_s / threads`` approximates the wall time of an unloaded one), ``peak_rss_mib`` (child's ``ru_maxrss``), ``events`` (list of
    ``(t_seconds_since_start, event_dict)``), ``done`` (the done event's outputs or None), ``stopped`` (True
    when ``max_seconds`` ran out and the run was cancelled), ``cuda`` (allocator peaks on CUDA) and
    ``stderr_tail``.
    """
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    fd, cuda_out = tempfile.mkstemp(prefix="bench_cuda_", suffix=".json")
    os.close(fd)
    os.remove(cuda_out)
    env["BDGF_BENCH_CUDA_OUT"] = cuda_out
    err = tempfile.TemporaryFile(mode="w+")
    cmd = [sys.executable, "-c", CHILD, *args, "--json-progress"]
    inc = max(0, niceness - os.nice(0))          # run at niceness `niceness` (not on top of our own)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                            preexec_fn=(lambda: os.nice(inc)) if inc else None)
    events: list[tuple[float, dict]] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            events.append((time.monotonic() - t0, ev))
            if verbose and ev.get("event") in ("metric", "done", "error"):
                print(f"    [{label}] {json.dumps(ev)[:300]}", flush=True)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    stopped = False
    killed_at = None
    while th.is_alive():
        th.join(0.5)
        el = time.monotonic() - t0
        if max_seconds is not None and not stopped and el > max_seconds:
            stopped = True
            killed_at = el
            proc.send_signal(signal.SIGTERM)
        if stopped and killed_at is not None and el > killed_at + 120:
            proc.kill()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    err.seek(0)
    stderr_tail = err.read()[-2000:]
    err.close()
    cuda = None
    if os.path.exists(cuda_out):
        with open(cuda_out) as fh:
            cuda = json.load(fh)
        os.remove(cuda_out)
    done = next((e["outputs"] for _, e in events if e.get("event") == "done"), None)
    if proc.returncode not in (0, 3) or (proc.returncode == 3 and not stopped):
        print(f"    [{label}] engine exit {proc.returncode}\n{stderr_tail}", flush=True)
        for _, e in events[-5:]:
            print("    ", e)
    return {"rc": proc.returncode, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
            "peak_rss_mib": ru.ru_maxrss / 1024.0, "events": events,
            "done": done, "stopped": stopped, "cuda": cuda, "stderr_tail": stderr_tail}


def first_event_time(events: list[tuple[float, dict]], pred) -> float | None:
    return next((t for t, e in events if pred(e)), None)


def stage_progress(events: list[tuple[float, dict]], stage: str) -> list[tuple[float, float]]:
    return [(t, float(e["value"])) for t, e in events if e.get("event") == "progress" and e.get("stage") == stage]


def train_tiny_model(workdir: str, profile: str, device: str, iterations: int, epochs: int) -> str:
    """pretrain + train a small model of ``profile`` on the embedded crop; returns the model path."""
    b = bands(CROP)
    pre = os.path.join(workdir, f"pre_{profile}.safetensors")
    model = os.path.join(workdir, f"model_{profile}.safetensors")
    common = ["--device", device, "--seed", "0", "--overwrite", "--profile", profile]
    print(f"  training a tiny {profile} model on the embedded crop ({iterations} pretraining iterations, "
          f"{epochs} epochs, {device})", flush=True)
    r = run_engine(["pretrain", "--spectral", *b, "--output", pre, "--iterations", str(iterations), *common],
                   label=f"pretrain {profile}", verbose=False)
    if r["rc"] != 0:
        raise SystemExit("pretraining failed")
    r = run_engine(["train", "--spectral", *b, "--training", os.path.join(CROP, "training_polygons.gpkg"),
                    "--class-field", "class_id", "--pretrained", pre, "--output", model, "--epochs", str(epochs),
                    *common], label=f"train {profile}", verbose=False)
    if r["rc"] != 0:
        raise SystemExit("training failed")
    return model


def scene_windows(scene_dir: str, sizes: list[str]) -> list[tuple[str, list[str] | None, int]]:
    """(name, extent args or None, pixel count) per size: centred windows, or the full scene."""
    import rasterio

    # the reference grid is the finest band (10 m: B02)
    with rasterio.open(next(b for b in bands(scene_dir) if "s2_B02." in b)) as ds:
        W, H, tr = ds.width, ds.height, ds.transform
    out = []
    for s in sizes:
        if s == "full":
            out.append((f"full {W}x{H}", None, W * H))
            continue
        n = int(s)
        n_w, n_h = min(n, W), min(n, H)
        c0, r0 = (W - n_w) // 2, (H - n_h) // 2
        x0, y1 = tr * (c0, r0)
        x1, y0 = tr * (c0 + n_w, r0 + n_h)
        out.append((f"{n_w}x{n_h}", [f"{x0:.3f}", f"{y0:.3f}", f"{x1:.3f}", f"{y1:.3f}"], n_w * n_h))
    return out


# ------------------------------------------------------------------------------------------------ benchmark
def bench_size(model: str, scene_bands: list[str], name: str, extent: list[str] | None, n_px: int, device: str,
               workdir: str, max_seconds: float | None, batch_size: int | None, tile: int | None) -> dict:
    out_tif = os.path.join(workdir, f"classes_{name.split()[0]}.tif")
    args = ["classify", "--model", model, "--spectral", *scene_bands, "--output", out_tif, "--device", device,
            "--overwrite"]
    if extent:
        args += ["--extent", *extent]
    if batch_size:
        args += ["--batch-size", str(batch_size)]
    if tile:
        args += ["--tile", str(tile)]
    r = run_engine(args, max_seconds=max_seconds, label=f"classify {name}", verbose=False)
    ev = r["events"]
    t_start = first_event_time(ev, lambda e: e.get("event") == "log" and str(e.get("message", "")).startswith(
        "Classifying"))
    prog = stage_progress(ev, "classify")
    complete = r["rc"] == 0 and r["done"] is not None
    row = {"size": name, "pixels": n_px, "device": device, "rc": r["rc"], "peak_rss_mib": r["peak_rss_mib"],
           "cpu_s": r["cpu_s"],
           "wall_s": r["wall_s"], "startup_s": t_start, "complete": complete, "cuda": r["cuda"]}
    if complete:
        t_end = prog[-1][0] if prog else r["wall_s"]
        row["classify_s"] = t_end - (t_start or 0.0)
        row["px_per_s"] = n_px / row["classify_s"] if row["classify_s"] > 0 else float("nan")
        row["total_s"] = r["wall_s"]
        row["note"] = "measured"
    elif prog and t_start is not None:
        t_last, pct = prog[-1]
        done_px = pct / 100.0 * n_px
        rate = done_px / max(t_last - t_start, 1e-9)
        row.update(done_px=int(done_px), px_per_s=rate, classify_s=n_px / rate if rate > 0 else float("inf"))
        row["total_s"] = t_start + row["classify_s"]
        row["note"] = (f"partial: {pct:.1f} % ({int(done_px)} px) in {t_last - t_start:.0f} s, "
                       "time extrapolated")
    else:
        row.update(px_per_s=float("nan"), classify_s=float("nan"), total_s=float("nan"),
                   note="no classify progress before the limit" if r["stopped"] else f"failed rc={r['rc']}")
    return row


def print_rows(rows: list[dict], profile: str) -> None:
    print(f"\nclassify, {profile} profile")
    print(f"{'size':<16}{'device':<7}{'pixels':>10}{'px/s':>10}{'classify s':>12}{'total s':>10}"
          f"{'peak RSS MiB':>14}{'CUDA peak MiB':>15}  note")
    for r in rows:
        cuda = f"{r['cuda']['max_memory_allocated'] / MiB:.0f}" if r.get("cuda") else "-"
        print(f"{r['size']:<16}{r['device']:<7}{r['pixels']:>10}{r['px_per_s']:>10.0f}{r['classify_s']:>12.1f}"
              f"{r['total_s']:>10.1f}{r['peak_rss_mib']:>14.0f}{cuda:>15}  {r['note']}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", default=SCENE)
    ap.add_argument("--sizes", nargs="+", default=["512", "1024", "full"],
                    help="window sizes in pixels and/or 'full' (default: 512 1024 full)")
    ap.add_argument("--model", help="fast model to benchmark (default: train a tiny one on the embedded crop)")
    ap.add_argument("--paper-model", help="paper model for the CUDA run (default: train a tiny one)")
    ap.add_argument("--profiles", nargs="+", choices=["fast", "paper"],
                    help="profiles to benchmark (default: fast; fast and paper on CUDA)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto: fast on CPU, and paper on CUDA when a GPU exists")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop each size after this many seconds and extrapolate (default: no limit)")
    ap.add_argument("--pretrain-iterations", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None, help="classify --batch-size (default: the model's)")
    ap.add_argument("--tile", type=int, default=None, help="classify --tile (default: the model's)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_classify_")
    os.makedirs(workdir, exist_ok=True)
    has_cuda = cuda_available()
    profiles = args.profiles or (["fast", "paper"] if (has_cuda and args.device != "cpu") else ["fast"])
    scene_bands = bands(args.scene)
    info = machine_info()
    print("machine:", json.dumps(info))
    print(f"scene: {args.scene} (13 bands); sizes {args.sizes}; max seconds per size: {args.max_seconds}; "
          f"workdir {workdir}", flush=True)
    if not has_cuda:
        print("CUDA: not available -> CPU only (no paper / CUDA figures)")
    windows = scene_windows(args.scene, args.sizes)
    for profile in profiles:
        # fast runs on the CPU (its target); paper on CUDA
        device = "cpu" if profile == "fast" and args.device in ("auto", "cpu") else resolve_device(args.device)
        if profile == "paper" and device == "cpu" and args.profiles is None:
            continue
        model = args.model if profile == "fast" else args.paper_model
        if not model:
            model = train_tiny_model(workdir, profile, device, args.pretrain_iterations, args.epochs)
        rows = []
        for name, extent, n_px in windows:
            print(f"  classify {name} ({profile}, {device}) ...", flush=True)
            rows.append(bench_size(model, scene_bands, name, extent, n_px, device, workdir, args.max_seconds,
                                   args.batch_size, args.tile))
            r = rows[-1]
            print(f"    {r['px_per_s']:.0f} px/s, peak RSS {r['peak_rss_mib']:.0f} MiB, {r['note']}", flush=True)
        print_rows(rows, profile)
        rss = [r["peak_rss_mib"] for r in rows]
        if len(rss) > 1:
            print(f"peak RSS range over sizes: {min(rss):.0f}-{max(rss):.0f} MiB "
                  f"(pixels x{rows[-1]['pixels'] / rows[0]['pixels']:.1f}, RSS x{max(rss) / min(rss):.2f})")
        print("JSON:", json.dumps({"profile": profile, "machine": info, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
