"""Fast inference path (engine/models/inference.py) against the eager reference, on the embedded Delmarva crop,
and classification sharded over 2 torchrun processes (Gloo) against one process."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from engine import api
from engine.data.grid import Modality
from engine.data.windows import Window
from engine.models import diffusion
from engine.models.inference import ClsTokenStream, DepthPool, InferenceBackend, export_copy, openvino_version

ROOT = Path(__file__).resolve().parents[2]
DELMARVA = ROOT / "resources" / "sample_data" / "delmarva_s2"
BANDS = sorted(str(p) for p in DELMARVA.glob("s2_B*.tif"))
EXTENT = {"bounds": (441130.0, 4172060.0, 443050.0, 4173340.0), "crs": None}   # 192 x 128 px, 2 classes
CLASSIFY_EXTENT = ["441130", "4172700", "441770", "4173340"]                    # 64 x 64 px of it
BACKENDS = ["torch"] + (["openvino"] if openvino_version() else [])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    spectral = Modality(BANDS, "spectral")
    api.pretrain(spectral, [], str(d / "pre.safetensors"), iterations=3, device="cpu", extent=EXTENT)
    api.train(spectral, [], str(DELMARVA / "training_polygons.gpkg"), "class_id", str(d / "model.safetensors"),
              pretrained=str(d / "pre.safetensors"), epochs=2, validation="none", device="cpu", extent=EXTENT)
    return str(d / "model.safetensors")


@pytest.fixture(scope="module")
def loaded(model_file):
    from engine.data.grid import RasterStack
    from engine.io.artifact import load_model
    from engine.models.classifier import TrainedModel

    tensors, meta = load_model(model_file, device="cpu")
    spectral = Modality(BANDS, "spectral")
    stack = RasterStack([spectral])
    yield TrainedModel.from_tensors(tensors, meta, "cpu"), stack
    stack.close()


@pytest.fixture(scope="module")
def eager_reference(loaded):
    from engine.predict import classify_window

    tm, stack = loaded
    window = Window(440, 80, 64, 64)                 # water, cropland and their edges
    return window, classify_window(tm, stack, window)


def test_uint32_noise_hash_is_the_int64_hash():
    bands, rows, cols = torch.arange(16), torch.arange(-40, 90), torch.arange(5000, 5070)
    for seed in (0, 7, 2 ** 33 + 5):
        for stream in (0, 1):
            key = diffusion._mix32(torch.tensor(seed & diffusion._M32) + stream * 0x9E3779B9)
            hb = diffusion._mix32(key + bands).view(-1, 1, 1)
            hr = diffusion._mix32(rows & diffusion._M32).view(1, -1, 1)
            hc = diffusion._mix32((cols + 0x5BD1E995) & diffusion._M32).view(1, 1, -1)
            h1 = diffusion._mix32(diffusion._mix32(hb ^ hr) + hc)
            h2 = diffusion._mix32(h1 + 0x68E31DA4)
            got1, got2 = diffusion._hash_u32(seed, stream, bands, rows, cols)
            assert torch.equal(got1, h1) and torch.equal(got2, h2)


def test_exact_rewrites_are_applied_and_keep_the_logits(loaded):
    tm, stack = loaded
    inputs = tm.window_inputs(stack, Window(300, 300, 40, 40))
    rr, cc = np.meshgrid(np.arange(4, 36), np.arange(4, 36), indexing="ij")
    spec, aux, dif = inputs.patches(rr.ravel(), cc.ravel(), tm.patch_size)
    fast = export_copy(tm.net, (spec[:8], aux, dif[:8]))
    assert isinstance(fast.cnn.pool1, DepthPool) and isinstance(fast.transformer.stream_dif, ClsTokenStream)
    with torch.no_grad():
        ref, got = tm.net(spec, aux, dif).logits, fast(spec, aux, dif).logits
    assert float((got - ref).abs().max()) < 1e-4


@pytest.mark.parametrize("backend, network", [(b, "torch") for b in BACKENDS] + [("openvino", "openvino")])
def test_fast_path_agrees_with_the_eager_model(loaded, eager_reference, backend, network):
    from engine.predict import classify_window

    tm, stack = loaded
    window, (cls_ref, _, p_ref) = eager_reference
    fast = InferenceBackend(tm, backend, network=network)
    assert fast.name == backend and fast.precision == "f32"
    assert fast.network == network                  # OpenVINO runs the group network only on request
    cls, _, p = classify_window(tm, stack, window, backend=fast)
    assert (cls_ref >= 0).all()
    assert float(np.mean(cls == cls_ref)) >= 0.999
    assert float(np.abs(p - p_ref).max()) < 1e-3


@pytest.mark.parametrize("backend, network", [(b, "torch") for b in BACKENDS] + [("openvino", "openvino")])
def test_the_mean_of_the_branch_heads_runs_the_same_on_every_path(loaded, backend, network):
    """``prediction="heads"`` (not a profile default) gives the eager model's classes on the fast paths too, and
    they are the argmax of the mean of the heads' softmax, not of the fused head's."""
    import copy

    from engine.predict import classify_window

    tm, stack = loaded
    heads = copy.copy(tm)
    heads.net = copy.deepcopy(tm.net)
    heads.net.config = dataclasses.replace(tm.net.config, prediction="heads")
    window = Window(300, 300, 40, 40)
    cls_ref, _, p_ref = classify_window(heads, stack, window)
    cls, _, p = classify_window(heads, stack, window, backend=InferenceBackend(heads, backend, network=network))
    assert float(np.mean(cls == cls_ref)) >= 0.999 and float(np.abs(p - p_ref).max()) < 1e-3
    inputs = heads.window_inputs(stack, window.grown(heads.margin))
    m = heads.margin
    rr, cc = np.meshgrid(np.arange(m, m + 40), np.arange(m, m + 40), indexing="ij")
    spec, aux, dif = inputs.patches(rr.ravel(), cc.ravel(), heads.patch_size)
    with torch.no_grad():
        out = heads.net(spec, aux, dif)
    mean = sum(torch.softmax(z, dim=1) for z in out.branch_logits.values()) / 3
    assert np.allclose(p_ref.reshape(len(p_ref), -1).T, mean.numpy(), atol=1e-5)


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="torch.compile needs a C++ compiler")
def test_compiled_network_agrees_with_the_eager_model_at_any_batch_length(loaded, eager_reference):
    from engine.predict import classify_window

    tm, stack = loaded
    window, (cls_ref, _, p_ref) = eager_reference
    fast = InferenceBackend(tm, "torch", compile_mode="on", batch_size=1000)   # 4 096 patches: 4 batches + 96 padded
    assert fast.compiled, fast.compile_note
    cls, _, p = classify_window(tm, stack, window, batch_size=1000, backend=fast)
    assert float(np.mean(cls == cls_ref)) >= 0.999
    assert float(np.abs(p - p_ref).max()) < 1e-3
    assert not InferenceBackend(tm, "torch", pixels=64 * 64).compiled         # auto: not for small scenes


def test_a_compiled_network_that_fails_mid_run_hands_over_to_the_uncompiled_one(loaded, eager_reference):
    from engine.predict import classify_window

    tm, stack = loaded
    window, (cls_ref, _, _) = eager_reference
    fast = InferenceBackend(tm, "torch", compile_mode="off", batch_size=1000)

    def broken(*inputs):
        raise RuntimeError("recompile failed")
    fast._plain_net, fast._net, fast.compiled = fast._net, broken, True       # as if compiled
    cls, _, _ = classify_window(tm, stack, window, batch_size=1000, backend=fast)
    assert float(np.mean(cls == cls_ref)) >= 0.999
    assert not fast.compiled and "RuntimeError" in fast.compile_note


@pytest.mark.skipif(not openvino_version(), reason="OpenVINO not installed")
def test_training_gathers_the_same_patches_with_the_openvino_encoder(loaded):
    """Patch gathering (train.gather_patches) with the U-Net encoder in OpenVINO, as training does on the CPU for
    enough pixels: the same spectral patches and diffusion features (stored in float16) as the eager encoder's,
    for every pixel of every polygon of the crop, read once per window."""
    from engine.data.labels import read_polygons
    from engine.models.inference import FastExtractor, openvino_extractor
    from engine.train import gather_patches, gather_windows

    tm, stack = loaded
    px = read_polygons(str(DELMARVA / "training_polygons.gpkg"), "class_id", stack.grid)
    groups = gather_windows(px.rows, px.cols, tm.patch_size, 128, stack.grid.width)
    assert np.array_equal(np.sort(np.concatenate([idx for idx, _ in groups])), np.arange(len(px.rows)))
    fast = openvino_extractor(tm.extractor)
    assert isinstance(fast, FastExtractor)
    y = px.class_index()
    ref, fmin_ref, fmax_ref = gather_patches(stack, px.rows, px.cols, y, tm.extractor, tm.inputs, tm.patch_size)
    got, fmin, fmax = gather_patches(stack, px.rows, px.cols, y, fast, tm.inputs, tm.patch_size)
    np.testing.assert_array_equal(got.spec, ref.spec)
    scale = float(np.abs(ref.dif).max())
    assert scale > 0 and float(np.abs(got.dif.astype(np.float32) - ref.dif.astype(np.float32)).max()) < 1e-3 * scale
    torch.testing.assert_close(fmin, fmin_ref, rtol=1e-4, atol=1e-4 * scale)
    torch.testing.assert_close(fmax, fmax_ref, rtol=1e-4, atol=1e-4 * scale)


def test_auto_backend_choice_and_openvino_refused_on_a_gpu_model(loaded):
    tm, _ = loaded
    assert InferenceBackend(tm, "auto", pixels=64 * 64).name == "torch"       # set-up would outweigh the gain

    class OnGpu:
        device = torch.device("cuda")
    from engine.errors import EngineError

    with pytest.raises(EngineError, match="CPU only"):
        InferenceBackend(OnGpu(), "openvino")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _engine(args: list[str], nproc: int = 1) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    launcher = ([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                 f"--master_port={_free_port()}"] if nproc > 1 else [sys.executable])
    proc = subprocess.run([*launcher, "-m", "engine", *args, "--device", "cpu", "--json-progress"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_torchrun_sharded_classification_equals_one_process(model_file, tmp_path):
    common = ["classify", "--model", model_file, "--spectral", *BANDS, "--extent", *CLASSIFY_EXTENT,
              "--tile", "24", "--backend", "torch"]   # 9 tiles: an odd count, so one rank gets one more
    one, two = tmp_path / "one.tif", tmp_path / "two.tif"
    _engine([*common, "--output", str(one), "--confidence", str(tmp_path / "one_conf.tif")])
    proc = _engine([*common, "--output", str(two), "--confidence", str(tmp_path / "two_conf.tif")], nproc=2)
    assert proc.stdout.count('"event": "done"') == 1          # rank 0 reports, once
    with rasterio.open(one) as a, rasterio.open(two) as b:
        assert a.read(1).tobytes() == b.read(1).tobytes()
        assert b.colormap(1) == a.colormap(1) and a.profile == b.profile
    with rasterio.open(tmp_path / "one_conf.tif") as a, rasterio.open(tmp_path / "two_conf.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))
    assert (tmp_path / "two.qml").exists() and (tmp_path / "two.tif.aux.xml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["one.tif", "one.qml", "one.tif.aux.xml", "one_conf.tif", "two.tif", "two.qml", "two.tif.aux.xml",
         "two_conf.tif"])


HALO = 3    # predict.COARSE_STRIDE - 1: coarse_to_fine classifies the ring around the core only where needed


def _two_fields_and_a_road(h: int = 40, w: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Labels ``(h, w)``: class 0 left, class 1 right, a one-pixel road of class 2 along row 13 (off every
    coarse lattice); one band ``(1, h, w)`` of spectra, 3 standard deviations apart per class."""
    labels = np.zeros((h, w), np.int64)
    labels[:, w // 2:] = 1
    labels[13, :] = 2
    return labels, labels[None].astype(np.float32) * 3.0


def _classifier(labels: np.ndarray, see: np.ndarray | None = None):
    """A stand-in network: probability 0.99 for ``see``'s class of each pixel (default: the true labels)."""
    shown = labels if see is None else see
    calls = []

    def classify(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        calls.append(len(rr))
        p = np.full((len(rr), 3), 0.005, np.float32)
        p[np.arange(len(rr)), shown[rr, cc]] = 0.99
        return p
    return classify, calls


def test_coarse_to_fine_keeps_every_class_and_skips_uniform_areas():
    from engine.predict import coarse_to_fine

    labels, spectra = _two_fields_and_a_road()
    valid = np.ones(labels.shape, bool)
    classify, calls = _classifier(labels)
    probs, computed = coarse_to_fine(valid, 0, 0, classify, 3, spectra)
    core = (slice(HALO, -HALO), slice(HALO, -HALO))                       # the outer ring is the tile's halo
    np.testing.assert_array_equal(probs.argmax(0)[core], labels[core])
    assert computed.sum() == sum(calls) and computed[core].mean() < 0.5  # field interiors are interpolated
    assert computed[13, HALO:-HALO].all()                                 # the road: always classified
    skipped = valid & ~computed
    skipped[:HALO] = skipped[-HALO:] = skipped[:, :HALO] = skipped[:, -HALO:] = False
    assert skipped.sum() > 0.5 * skipped[core].size and np.allclose(probs[:, skipped].max(0), 0.99)


def test_coarse_to_fine_classifies_a_pixel_unlike_its_neighbours_whatever_they_say():
    """A road the network's neighbours do not see (their patches would, in a real model) is kept by the
    spectral check alone; without spectra it would take the fields' class."""
    from engine.predict import coarse_to_fine

    labels, spectra = _two_fields_and_a_road()
    fields = np.where(np.arange(labels.shape[1]) < labels.shape[1] // 2, 0, 1)[None].repeat(len(labels), 0)
    blind = np.where(np.arange(len(labels))[:, None] == 13, labels, fields)   # right on the road only
    valid = np.ones(labels.shape, bool)
    core = (slice(HALO, -HALO), slice(HALO, -HALO))
    probs, _ = coarse_to_fine(valid, 0, 0, _classifier(labels, blind)[0], 3, spectra)
    np.testing.assert_array_equal(probs.argmax(0)[core], labels[core])
    probs, _ = coarse_to_fine(valid, 0, 0, _classifier(labels, blind)[0], 3, None)
    assert (probs.argmax(0)[13, HALO:-HALO] != 2).any()                 # the guard is what keeps it


def test_coarse_to_fine_trusts_adjacent_neighbours_at_a_lower_confidence():
    """A uniform field the network is 93 % sure of: its neighbours 2 px apart are not sure enough (0.97), so the
    2-px lattice is classified; adjacent pixels are (0.9), so the last level, 3/4 of the pixels, is interpolated."""
    from engine.predict import COARSE_MIN_CONFIDENCE, COARSE_MIN_CONFIDENCE_ADJACENT, coarse_to_fine

    assert COARSE_MIN_CONFIDENCE_ADJACENT <= 0.93 < COARSE_MIN_CONFIDENCE
    h = w = 32
    valid = np.ones((h, w), bool)
    spectra = np.zeros((1, h, w), np.float32)

    def classify(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        return np.tile(np.float32([0.93, 0.05, 0.02]), (len(rr), 1))

    probs, computed = coarse_to_fine(valid, 0, 0, classify, 3, spectra)
    core = (slice(HALO, -HALO), slice(HALO, -HALO))
    rows, cols = np.mgrid[0:h, 0:w]
    even = (rows % 2 == 0) & (cols % 2 == 0)
    assert computed[core][even[core]].all() and not computed[core][~even[core]].any()
    np.testing.assert_allclose(probs[:, HALO:-HALO, HALO:-HALO], np.float32([0.93, 0.05, 0.02])[:, None, None] *
                               np.ones((1, h - 2 * HALO, w - 2 * HALO)), rtol=1e-6)
    _, computed = coarse_to_fine(valid, 0, 0, classify, 3, spectra, min_confidence_adjacent=0.97)
    assert computed[core].all()


def test_coarse_to_fine_does_not_depend_on_the_tiling():
    """A window cut out with the ``stride - 1`` px halo gives the same probabilities as the whole array, also
    where the valid mask (nodata, mask polygons) has holes."""
    from engine.predict import COARSE_STRIDE, coarse_to_fine

    assert COARSE_STRIDE - 1 == HALO
    labels, spectra = _two_fields_and_a_road(64, 64)
    rng = np.random.default_rng(0)
    valid = rng.random(labels.shape) > 0.02
    whole, _ = coarse_to_fine(valid, 100, 200, _classifier(labels)[0], 3, spectra)
    g = HALO
    for r0, c0 in [(8, 8), (17, 30), (21, 9)]:
        sl = (slice(r0 - g, r0 + 24 + g), slice(c0 - g, c0 + 24 + g))
        sub_labels = labels[sl]
        part, _ = coarse_to_fine(valid[sl], 100 + r0 - g, 200 + c0 - g, _classifier(sub_labels)[0], 3,
                                 spectra[(slice(None), *sl)])
        np.testing.assert_array_equal(part[:, g:g + 24, g:g + 24], whole[:, r0:r0 + 24, c0:c0 + 24])


@pytest.mark.parametrize("backend", BACKENDS)
def test_coarse_to_fine_fast_path_agrees_with_the_eager_model(loaded, eager_reference, backend, monkeypatch):
    from engine import predict
    from engine.predict import classify_window

    tm, stack = loaded
    window, (cls_ref, conf_ref, p_ref) = eager_reference
    # this briefly trained model is less sure than a real one: take its own 20th percentile as "sure"
    sure = float(np.quantile(conf_ref, 0.2))
    monkeypatch.setattr(predict, "COARSE_MIN_CONFIDENCE", sure)
    monkeypatch.setattr(predict, "COARSE_MIN_CONFIDENCE_ADJACENT", min(sure, predict.COARSE_MIN_CONFIDENCE_ADJACENT))
    fast = InferenceBackend(tm, backend, coarse_to_fine=True)
    cls, conf, p = classify_window(tm, stack, window, backend=fast)
    assert float(np.mean(cls == cls_ref)) >= 0.999
    assert fast.patches_run < 0.75 * cls.size             # water and field interiors are interpolated
    assert float(np.abs(conf - conf_ref).max()) < 1 - predict.COARSE_MIN_CONFIDENCE_ADJACENT
    assert not InferenceBackend(tm, "eager", coarse_to_fine=True).coarse_to_fine     # the reference: every pixel
