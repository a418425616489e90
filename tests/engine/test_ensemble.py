"""Ensemble members (``network.members``): a model file with several group networks trained on the same patches
with their own seeds, whose class probabilities are averaged; resumable member by member."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from safetensors.torch import load_file

from engine import api
from engine.data.grid import Modality
from engine.errors import Cancelled
from engine.io.schema import read_metadata
from engine.models.classifier import TrainedModel
from engine.models.network import GroupEnsemble, NetworkConfig
from engine.io.artifact import load_model

from .test_training_resume import BANDS, EXTENT, CancelAfterEpoch, _train

MEMBERS = {"network.members": 2}


def _member_tensors(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def test_an_ensemble_model_holds_its_members_and_classifies_with_their_mean(tmp_path):
    run, out, ckpt = _train(tmp_path, epochs=2, overrides=MEMBERS)
    rep = CancelAfterEpoch(-1)
    run(rep)
    assert rep.epochs == [1, 2, 1, 2]                    # each member trains its epochs
    logged = [t for _, t in rep.messages]
    assert "Ensemble member 2 of 2 (seed 7919)" in logged
    meta = read_metadata(out)
    assert meta.network_config["members"] == 2 and [h["epoch"] for h in meta.report["history"]] == [1, 2]
    tensors = load_file(str(out))
    first, second = _member_tensors(tensors, "net.members.0."), _member_tensors(tensors, "net.members.1.")
    assert first.keys() == second.keys() and len(first) > 50
    assert not any(k.startswith("net.") and not k.startswith("net.members.") for k in tensors)
    assert sum(not torch.equal(first[k], second[k]) for k in first) > len(first) // 2   # two different networks
    assert not ckpt.exists()

    model = TrainedModel.from_tensors(*load_model(out))
    assert isinstance(model.net, GroupEnsemble) and len(model.net.members) == 2
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(16, model.net.n_spectral, 5, 5, generator=gen), None,
         torch.rand(16, model.net.n_diffusion, 5, 5, generator=gen))
    with torch.no_grad():
        p = model.net.log_probabilities(model.net(*x)).exp()
        members = torch.stack([m.log_probabilities(m(*x)).exp() for m in model.net.members])
    torch.testing.assert_close(p, members.mean(0))
    assert float((members[0] - members[1]).abs().max()) > 1e-3

    probs = tmp_path / "probs.tif"
    api.classify(str(out), Modality(BANDS, "spectral"), [], str(tmp_path / "map.tif"), probabilities=str(probs),
                 extent=EXTENT, device="cpu", backend="eager")
    with rasterio.open(tmp_path / "map.tif") as src, rasterio.open(probs) as ps:
        labels, stack = src.read(1), ps.read().astype(np.float64)
        values = [c.value for c in meta.classes]
    valid = labels != 0
    assert valid.mean() > 0.9
    np.testing.assert_array_equal(labels[valid], np.asarray(values)[stack.argmax(0)][valid])


def test_a_cancelled_ensemble_resumes_at_the_member_that_was_training(tmp_path):
    """Cancelled after the first member's last epoch: the resumed run keeps that member's weights and trains only
    the second."""
    run, out, ckpt = _train(tmp_path, epochs=2, overrides=MEMBERS)
    with pytest.raises(Cancelled):
        run(CancelAfterEpoch(2))
    assert ckpt.exists() and not out.exists()
    kept = _member_tensors(load_file(str(ckpt)), "member0.")
    assert kept
    resumed = CancelAfterEpoch(-1)
    run(resumed, resume=True)
    logged = [t for _, t in resumed.messages]
    assert resumed.epochs == [1, 2]                      # the second member only
    assert "Ensemble member 2 of 2 (seed 7919)" in logged and not any("member 1 of 2" in t for t in logged)
    saved = _member_tensors(load_file(str(out)), "net.members.0.")
    assert all(torch.equal(saved[k], kept[k]) for k in kept)
    assert len(read_metadata(out).report["history"]) == 2
    assert not ckpt.exists()


def test_members_must_lie_between_one_and_the_maximum():
    with pytest.raises(ValueError, match="members"):
        NetworkConfig(members=0)
    with pytest.raises(ValueError, match="members"):
        NetworkConfig(members=9)
