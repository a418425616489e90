"""torchrun (torch.distributed, Gloo on the CPU): pretraining and training run data-parallel in 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.io.schema import read_metadata

ROOT = Path(__file__).resolve().parents[2]
DELMARVA = ROOT / "resources" / "sample_data" / "delmarva_s2"
BANDS = sorted(str(p) for p in DELMARVA.glob("s2_B*.tif"))
EXTENT = ["441130", "4172060", "443050", "4173340"]   # water + cropland polygons


def torchrun(*args: str, port: int) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={port}", "-m", "engine", *args, "--json-progress", "--device", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_torchrun_pretrain_and_train(tmp_path):
    pre = tmp_path / "pre.safetensors"
    events = torchrun("pretrain", "--spectral", *BANDS, "--output", str(pre), "--iterations", "3",
                      "--extent", *EXTENT, port=29611)
    # only rank 0 reports: one done event, and one increasing progress sequence (a second reporting process
    # would repeat values)
    assert [e["event"] for e in events].count("done") == 1
    values = [e["value"] for e in events if e["event"] == "progress" and e["stage"] == "pretrain"]
    assert values[-1] == 100.0 and values == sorted(set(values))
    assert any("2 processes" in e.get("message", "") for e in events if e["event"] == "log")
    meta = read_metadata(pre)
    assert meta.world_size == 2 and meta.diffusion.iterations == 3
    model = tmp_path / "model.safetensors"
    events = torchrun("train", "--spectral", *BANDS, "--training", str(DELMARVA / "training_polygons.gpkg"),
                      "--class-field", "class_id", "--pretrained", str(pre), "--output", str(model),
                      "--epochs", "2", "--extent", *EXTENT, port=29612)
    done = [e for e in events if e["event"] == "done"]
    assert len(done) == 1 and done[0]["outputs"]["output"] == str(model)
    meta = read_metadata(model)
    assert meta.kind == "classifier" and meta.world_size == 2
    assert {c.name for c in meta.classes} == {"Water", "Cropland / grassland"}
    assert not list(tmp_path.glob("*.checkpoint.safetensors"))
