"""Model files: header validation, atomic save, round trip, tensor checksum; atomic outputs (engine.files)."""

import json
import os
import struct

import pytest
import torch
from safetensors.torch import save_file

from engine import __version__
from engine.errors import EXIT_OUTPUT_EXISTS, Cancelled, EngineError, OutputExistsError
from engine.files import atomic_output, check_output, temporary_name
from engine.io.artifact import load_model, save_model
from engine.io.schema import FORMAT, FORMAT_VERSION, Category, ModelMetadata, read_metadata


def _meta(**kw):
    """A small valid metadata (a checkpoint needs no modalities)."""
    return ModelMetadata(kind="checkpoint", state={"stage": "train", "epoch": 3, "nested": {"a": 1.5}}, **kw)


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(3, 4, generator=g), "b": torch.arange(5, dtype=torch.int64),
            "h": torch.randn(2, 2, generator=g).half(), "t": torch.randn(4, 4, generator=g).t()}


def test_round_trip(tmp_path):
    path = tmp_path / "model.safetensors"
    meta = _meta(classes=[Category(3, "Forêt", "#00ff00")])
    tensors = _tensors()
    save_model(path, tensors, meta)
    loaded, m = load_model(path)
    assert set(loaded) == set(tensors)
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v)
    assert m.classes == [Category(3, "Forêt", "#00ff00")] and m.state["nested"] == {"a": 1.5}
    assert m.to_dict()["format"] == FORMAT and m.format_version == FORMAT_VERSION
    assert m.engine_version == __version__ and m.created.endswith("+00:00")
    assert len(m.tensors_sha256) == 64
    assert read_metadata(path) == m
    assert os.listdir(tmp_path) == ["model.safetensors"]  # no temporary left


def test_no_pickle_in_engine():
    import engine
    root = os.path.dirname(engine.__file__)
    names = [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs if f.endswith(".py")]
    assert "io/artifact.py" in names
    for name in names:
        text = open(os.path.join(root, name), encoding="utf-8").read()
        for bad in ("torch.save(", "torch.load(", "import pickle"):
            assert bad not in text, f"{bad} in engine/{name}"


def test_overwrite(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, {"a": torch.zeros(2)}, _meta())
    with pytest.raises(OutputExistsError) as e:
        save_model(path, {"a": torch.ones(2)}, _meta())
    assert e.value.exit_code == EXIT_OUTPUT_EXISTS
    assert str(path) in e.value.message and "--overwrite" in e.value.hint
    save_model(path, {"a": torch.ones(2)}, _meta(), overwrite=True)
    assert torch.equal(load_model(path)[0]["a"], torch.ones(2))


def _refused(path, *words):
    with pytest.raises(EngineError) as e:
        load_model(path)
    msg = str(e.value)
    assert str(path) in e.value.message
    for w in words:
        assert w in msg, msg
    assert e.value.hint
    with pytest.raises(EngineError):
        read_metadata(path)
    return msg


def test_missing(tmp_path):
    _refused(tmp_path / "nope.safetensors", "does not exist")


def test_corrupt_random_bytes(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(os.urandom(4096))
    _refused(path, "not a model file")


def test_corrupt_small_and_non_json(tmp_path):
    small = tmp_path / "small.safetensors"
    small.write_bytes(b"abc")
    _refused(small, "not a model file")
    nonjson = tmp_path / "nonjson.safetensors"
    nonjson.write_bytes(struct.pack("<Q", 10) + b"not json!!" + b"\0" * 20)
    _refused(nonjson, "not JSON")


def test_truncated(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, {"w": torch.randn(100, 100)}, _meta())
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 1000])
    _refused(cut, "truncated")
    cut.write_bytes(data[:20])  # inside the header
    _refused(cut, "truncated")


def test_foreign(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    _refused(path, "foreign")
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    _refused(path, "foreign")
    save_file({"w": torch.zeros(3)}, str(path), metadata={"bdgf": json.dumps({"format": "other"})})
    _refused(path, "foreign")


def test_damaged_tensors_fail_their_checksum(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, {"w": torch.zeros(64)}, _meta())
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF                                    # one flipped byte inside the tensor data
    path.write_bytes(bytes(data))
    read_metadata(path)                                 # the header alone is still readable
    with pytest.raises(EngineError, match="checksum"):
        load_model(path)
    with pytest.raises(EngineError, match="checksum"):
        read_metadata(path, verify=True)


def test_newer_version(tmp_path):
    path = tmp_path / "new.safetensors"
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION + 1, "engine_version": "9.9.9"}
    save_file({"w": torch.zeros(3)}, str(path), metadata={"bdgf": json.dumps(meta)})
    msg = _refused(path, "newer engine version 9.9.9", "update the plugin")
    assert "9.9.9" in msg


# -- engine.files ----------------------------------------------------------------------------------

def test_check_output(tmp_path):
    p = tmp_path / "x.tif"
    assert check_output(p) == str(p)
    p.write_text("x")
    with pytest.raises(OutputExistsError) as e:
        check_output(p)
    assert str(p) in e.value.message and "--overwrite" in e.value.hint and "another" in e.value.hint
    check_output(p, overwrite=True)
    with pytest.raises(EngineError):
        check_output(tmp_path / "missing_dir" / "x.tif")


def test_atomic_output_success_and_sidecars(tmp_path):
    target = tmp_path / "out.tif"
    target.write_text("old")
    (tmp_path / "out.tif.aux.xml").write_text("stale")
    with atomic_output(target, overwrite=True) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        assert os.path.basename(tmp).startswith(".out.partial-") and tmp.endswith(".tif")
        assert tmp == temporary_name(target)
        open(tmp, "w").write("new")
        open(tmp + ".ovr", "w").write("ovr")
    assert target.read_text() == "new"
    assert (tmp_path / "out.tif.ovr").read_text() == "ovr"
    assert not (tmp_path / "out.tif.aux.xml").exists()  # stale sidecar of the replaced file
    assert sorted(os.listdir(tmp_path)) == ["out.tif", "out.tif.ovr"]


@pytest.mark.parametrize("exc", [RuntimeError, Cancelled, KeyboardInterrupt])
def test_atomic_output_failure_leaves_nothing(tmp_path, exc):
    target = tmp_path / "out.tif"
    with pytest.raises(exc):
        with atomic_output(target) as tmp:
            open(tmp, "w").write("partial")
            open(tmp + ".aux.xml", "w").write("partial")
            raise exc("boom")
    assert os.listdir(tmp_path) == []
    # an existing target survives a failed overwrite
    target.write_text("keep")
    with pytest.raises(RuntimeError):
        with atomic_output(target, overwrite=True) as tmp:
            open(tmp, "w").write("partial")
            raise RuntimeError
    assert target.read_text() == "keep" and os.listdir(tmp_path) == ["out.tif"]


def test_atomic_output_refuses_existing_before_block(tmp_path):
    target = tmp_path / "out.tif"
    target.write_text("keep")
    ran = []
    with pytest.raises(OutputExistsError):
        with atomic_output(target) as tmp:
            ran.append(tmp)
    assert ran == [] and target.read_text() == "keep"
