"""Supervised training: cancel between batches keeps a checkpoint, resume continues from it (Python API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import api
from engine.errors import Cancelled
from engine.data.grid import Modality
from engine.io.schema import read_metadata
from engine.progress import Reporter

ROOT = Path(__file__).resolve().parents[2]
DELMARVA = ROOT / "resources" / "sample_data" / "delmarva_s2"
BANDS = sorted(str(p) for p in DELMARVA.glob("s2_B*.tif"))
EXTENT = {"bounds": (441130.0, 4172060.0, 443050.0, 4173340.0), "crs": None}   # water + cropland polygons


class CancelAfterEpoch(Reporter):
    """A silent reporter that asks for cancellation once the given epoch has finished."""

    def __init__(self, epoch: int):
        super().__init__(quiet=True)
        self.stop_after = epoch
        self.epochs: list[int] = []

    def metric(self, name, value, **extra):
        if name == "epoch":
            self.epochs.append(int(value))
            if int(value) == self.stop_after:
                self.cancel.cancel("test")


def _train(tmp_path, epochs: int):
    """A pretrained model on the extent, then ``train(reporter, resume=False)`` for a final fit of ``epochs``
    epochs without validation folds; returns ``(train, model path, checkpoint path)``."""
    spectral = Modality(BANDS, "spectral")
    pre = tmp_path / "pre.safetensors"
    api.pretrain(spectral, [], str(pre), iterations=3, device="cpu", extent=EXTENT)
    out = tmp_path / "model.safetensors"
    kwargs = dict(pretrained=str(pre), epochs=epochs, device="cpu", extent=EXTENT, validation="none")

    def train(reporter, resume=False):
        api.train(spectral, [], str(DELMARVA / "training_polygons.gpkg"), "class_id", str(out), reporter=reporter,
                  resume=resume, **kwargs)
    return train, out, Path(f"{out}.checkpoint.safetensors")


def test_cancelled_training_resumes_from_its_checkpoint(tmp_path):
    # the final fit is the one checkpointed (cross-validation folds are re-run on resume)
    train, out, ckpt = _train(tmp_path, epochs=4)
    first = CancelAfterEpoch(2)
    with pytest.raises(Cancelled):
        train(first)
    assert first.epochs == [1, 2]
    assert ckpt.exists() and not out.exists()            # nothing half-written, the checkpoint kept

    second = CancelAfterEpoch(-1)
    train(second, resume=True)
    assert second.epochs == [3, 4]                        # continues where it stopped, not from epoch 1
    history = read_metadata(out).report["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert not ckpt.exists()                              # removed once the model is written


def test_cancel_after_the_last_epoch_keeps_the_trained_weights(tmp_path):
    """A cancel that arrives after the final fit's last epoch, before the model file is written, keeps the
    finished training: resume writes the model without training again."""
    train, out, ckpt = _train(tmp_path, epochs=2)
    first = CancelAfterEpoch(2)
    with pytest.raises(Cancelled):
        train(first)
    assert first.epochs == [1, 2] and ckpt.exists() and not out.exists()
    second = CancelAfterEpoch(-1)
    train(second, resume=True)
    assert second.epochs == []                            # nothing trained again
    assert [h["epoch"] for h in read_metadata(out).report["history"]] == [1, 2]
    assert not ckpt.exists()
