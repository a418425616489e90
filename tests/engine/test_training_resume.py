"""Supervised training: cancel between batches keeps a checkpoint, resume continues from it (Python API): the
final fit, the finished cross-validation folds and the pretraining stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import api
from engine.errors import Cancelled, EngineError
from engine.data.grid import Modality
from engine.io.schema import read_metadata
from engine.progress import Reporter

ROOT = Path(__file__).resolve().parents[2]
DELMARVA = ROOT / "resources" / "sample_data" / "delmarva_s2"
BANDS = sorted(str(p) for p in DELMARVA.glob("s2_B*.tif"))
EXTENT = {"bounds": (441130.0, 4172060.0, 443050.0, 4173340.0), "crs": None}   # water + cropland polygons


class CancelAfterEpoch(Reporter):
    """A silent reporter that asks for cancellation once the given epoch (or cross-validation fold) has finished;
    it records the epochs and folds it saw run."""

    def __init__(self, epoch: int, metric: str = "epoch"):
        super().__init__(quiet=True)
        self.stop_after = epoch
        self.watch = metric
        self.epochs: list[int] = []
        self.folds: list[int] = []

    def metric(self, name, value, **extra):
        if name == "epoch":
            self.epochs.append(int(value))
        if name == "cv_fold":
            self.folds.append(int(value))
        if name == self.watch and int(value) == self.stop_after:
            self.cancel.cancel("test")


def _train(tmp_path, epochs: int, validation: str = "none", out_name: str = "model.safetensors", **options):
    """A pretrained model on the extent, then ``train(reporter, resume=False)`` for a final fit of ``epochs``
    epochs (without validation folds unless ``validation`` says so); returns ``(train, model path, checkpoint
    path)``."""
    spectral = Modality(BANDS, "spectral")
    pre = tmp_path / "pre.safetensors"
    if not pre.exists():
        api.pretrain(spectral, [], str(pre), iterations=3, device="cpu", extent=EXTENT)
    out = tmp_path / out_name
    kwargs = dict(pretrained=str(pre), epochs=epochs, device="cpu", extent=EXTENT, validation=validation, **options)

    def train(reporter, resume=False):
        api.train(spectral, [], str(DELMARVA / "training_polygons.gpkg"), "class_id", str(out), reporter=reporter,
                  resume=resume, **kwargs)
    return train, out, Path(f"{out}.checkpoint.safetensors")


def test_cancelled_training_resumes_from_its_checkpoint(tmp_path):
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


def test_resume_takes_the_finished_cross_validation_folds(tmp_path):
    """Cancelled in the second fold: resume runs only that fold and gives the figures of an uninterrupted run.
    (The extent holds two cropland polygons and one water polygon: two folds that test cropland.)"""
    whole, whole_out, _ = _train(tmp_path, epochs=2, validation="cv:2", out_name="whole.safetensors")
    uninterrupted = CancelAfterEpoch(-1)
    whole(uninterrupted)
    assert uninterrupted.folds == [1, 2]

    train, out, ckpt = _train(tmp_path, epochs=2, validation="cv:2")
    cv_ckpt = Path(f"{ckpt}.cv")
    first = CancelAfterEpoch(1, metric="cv_fold")
    with pytest.raises(Cancelled):
        train(first)
    assert first.folds == [1] and cv_ckpt.exists() and not out.exists()
    second = CancelAfterEpoch(-1)
    train(second, resume=True)
    assert second.folds == [2]                            # fold 1 came from the checkpoint
    assert second.epochs == [1, 2, 1, 2]                  # fold 2, then the final fit
    resumed, reference = read_metadata(out).report["accuracy"], read_metadata(whole_out).report["accuracy"]
    assert resumed["confusion_matrix"] == reference["confusion_matrix"]
    assert resumed["oa_folds"]["folds"] == reference["oa_folds"]["folds"]
    assert not cv_ckpt.exists() and not ckpt.exists()     # both removed once the model is written


def test_resume_without_a_checkpoint_is_refused_before_any_work(tmp_path):
    train, out, _ = _train(tmp_path, epochs=2)
    with pytest.raises(EngineError, match="No checkpoint to resume from"):
        train(CancelAfterEpoch(-1), resume=True)
    assert not out.exists()


def test_resume_does_not_pretrain_again(tmp_path):
    """``train`` without a pretrained model pretrains first; cancelled later (in the final fit), the resumed run
    takes the finished pretraining from its checkpoint instead of running it again."""
    spectral = Modality(BANDS, "spectral")
    out = tmp_path / "model.safetensors"
    pre_ckpt = Path(f"{out}.checkpoint.safetensors.pre")

    def train(reporter, resume=False):
        api.train(spectral, [], str(DELMARVA / "training_polygons.gpkg"), "class_id", str(out), iterations=3,
                  epochs=2, device="cpu", extent=EXTENT, validation="none", reporter=reporter, resume=resume)
    first = CancelAfterEpoch(1)
    with pytest.raises(Cancelled):
        train(first)
    assert pre_ckpt.exists()                              # the finished pretraining is kept with the final fit's
    second = CancelAfterEpoch(-1)
    train(second, resume=True)
    logged = [text for _, text in second.messages]
    assert "resuming diffusion pretraining at iteration 3" in logged     # 3 of 3: nothing left to run
    assert second.epochs == [2]
    assert read_metadata(out).diffusion.iterations == 3
    assert not pre_ckpt.exists()


def test_early_stopping_never_picks_weights_on_the_held_out_folds(tmp_path):
    """With early stopping, every fold's network still trains all its epochs and is measured at the last one (its
    held-out loss per epoch is only recorded), so the cross-validated figures are those of a run without it; the
    final model is trained for the epoch count where the folds' mean held-out loss is lowest."""
    import numpy as np

    plain, plain_out, _ = _train(tmp_path, epochs=4, validation="cv:2", out_name="plain.safetensors")
    plain(Reporter(quiet=True))
    early, early_out, _ = _train(tmp_path, epochs=4, validation="cv:2", out_name="early.safetensors",
                                 early_stopping=True)
    rep = CancelAfterEpoch(-1)
    early(rep)
    reference, stopped = read_metadata(plain_out).report, read_metadata(early_out).report
    assert stopped["accuracy"]["oa_folds"]["folds"] == reference["accuracy"]["oa_folds"]["folds"]
    assert stopped["accuracy"]["confusion_matrix"] == reference["accuracy"]["confusion_matrix"]
    assert rep.epochs[:8] == [1, 2, 3, 4, 1, 2, 3, 4]     # both folds ran every epoch
    logged = [text for _, text in rep.messages]
    assert not any(t.startswith("Early stopping: using the weights") for t in logged)
    chosen = next(t for t in logged if t.startswith("Early stopping: the mean held-out loss"))
    best = int(chosen.split("after epoch ")[1].split(";")[0])
    assert 1 <= best <= 4 and rep.epochs[8:] == list(range(1, best + 1))
    assert len(stopped["history"]) == best
    # without validation folds there is nothing to choose from: said, and the profile's epochs are trained
    none, none_out, _ = _train(tmp_path, epochs=2, out_name="none.safetensors", early_stopping=True)
    rep = CancelAfterEpoch(-1)
    none(rep)
    assert any(level == "warning" and "--validation none" in text for level, text in rep.messages)
    assert rep.epochs == [1, 2]
