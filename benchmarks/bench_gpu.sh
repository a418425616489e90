#!/usr/bin/env bash
# GPU figures in one run (CUDA machine): for the `fast` and `paper` profiles, pretraining iterations/s,
# classification px/s (eager model and fast path) on a window of the embedded Delmarva crop, the peak GPU
# memory of each step (torch.cuda.max_memory_allocated), and which Mamba scan ran (mamba-ssm's CUDA kernel or
# the engine's PyTorch scan).
#
#   bash benchmarks/bench_gpu.sh [PYTHON] [WORKDIR]        (default: .venv/bin/python, a temporary folder)
#
# Environment: BENCH_DEVICE=cpu runs the same steps on the CPU with the fast profile only (a smoke test of this
# script on a machine without a GPU; the figures are then CPU figures). BENCH_ITERATIONS (default 20),
# BENCH_EPOCHS (default 2) and BENCH_SIZE (classified window side in px, default 512) set the budgets.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
WORK="${2:-$(mktemp -d -t bench_gpu_XXXX)}"
mkdir -p "$WORK"
export BENCH_WORK="$WORK"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" - <<'EOF'
import json, os, sys, time
from pathlib import Path

import torch

sys.path.insert(0, os.getcwd())
from engine import api
from engine.data.grid import Modality, RasterStack
from engine.data.windows import Window
from engine.io.artifact import load_model
from engine.models import mamba
from engine.models.classifier import TrainedModel
from engine.models.inference import InferenceBackend
from engine.predict import classify_window

device = os.environ.get("BENCH_DEVICE", "cuda")
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("CUDA is not available: run on a machine with an NVIDIA GPU (or BENCH_DEVICE=cpu for a smoke test)")
work = Path(os.environ["BENCH_WORK"])
iters = int(os.environ.get("BENCH_ITERATIONS", "20"))
epochs = int(os.environ.get("BENCH_EPOCHS", "2"))
size = int(os.environ.get("BENCH_SIZE", "512"))
crop = Path("resources/sample_data/delmarva_s2")
spectral = Modality(sorted(str(p) for p in crop.glob("s2_B*.tif")), "spectral")
cuda = device == "cuda"
print(f"torch {torch.__version__}, device {torch.cuda.get_device_name(0) if cuda else 'cpu'}, workdir {work}")

# which Mamba scan runs on this device: the one the engine reports (mamba.scan_backend), checked on a layer
layer = mamba.Mamba(81, d_state=8).to(device)
print("mamba scan:", mamba.scan_backend() if cuda else "engine PyTorch scan (CPU)")
with torch.no_grad():
    layer(torch.randn(4, 13, 81, device=device))


def peak_reset():
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mib():
    if not cuda:
        return float("nan")
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2 ** 20


rows = []
for profile in (["fast", "paper"] if cuda else ["fast"]):
    pre, model = work / f"pre_{profile}.safetensors", work / f"model_{profile}.safetensors"
    peak_reset()
    t0 = time.perf_counter()
    res = api.pretrain(spectral, [], str(pre), profile=profile, iterations=iters, device=device, overwrite=True)
    t_pre = time.perf_counter() - t0
    row = {"profile": profile, "pretrain_it_per_s": iters / float(res.get("seconds", t_pre)),
           "pretrain_peak_mib": peak_mib()}
    peak_reset()
    api.train(spectral, [], str(crop / "training_polygons.gpkg"), "class_id", str(model), pretrained=str(pre),
              profile=profile, epochs=epochs, validation="none", device=device, overwrite=True)
    row["train_peak_mib"] = peak_mib()
    tensors, meta = load_model(str(model), device="cpu")
    tm = TrainedModel.from_tensors(tensors, meta, device)
    win = Window(128, 128, size, size)
    with RasterStack([spectral]) as stack:
        for name, backend in (("eager", None), ("fast", InferenceBackend(tm, "auto", coarse_to_fine=True))):
            classify_window(tm, stack, Window(0, 0, 32, 32), backend=backend)      # warm-up (CUDA context)
            peak_reset()
            before = backend.patches_run if backend is not None else 0
            t0 = time.perf_counter()
            classify_window(tm, stack, win, backend=backend)
            if cuda:
                torch.cuda.synchronize()
            row[f"classify_{name}_px_per_s"] = size * size / (time.perf_counter() - t0)
            row[f"classify_{name}_peak_mib"] = peak_mib()
            if backend is not None:     # as classify: coarse-to-fine; the share depends on how sure the model is
                ran = backend.patches_run - before
                row["fast_backend"] = (f"{backend.name} {backend.precision}, coarse-to-fine (network on "
                                       f"{100 * ran / (size * size):.0f} % of the pixels)")
    rows.append(row)
    print(json.dumps(row), flush=True)

print(f"\n{'profile':<8}{'pretrain it/s':>14}{'peak MiB':>10}{'classify eager px/s':>21}{'fast px/s':>11}"
      f"{'peak MiB':>10}  fast backend")
for r in rows:
    print(f"{r['profile']:<8}{r['pretrain_it_per_s']:>14.2f}{r['pretrain_peak_mib']:>10.0f}"
          f"{r['classify_eager_px_per_s']:>21.0f}{r['classify_fast_px_per_s']:>11.0f}"
          f"{r['classify_fast_peak_mib']:>10.0f}  {r['fast_backend']}")
EOF
