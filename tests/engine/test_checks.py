"""engine/checks.py and the command line's refusals (issue 11), without QGIS: band identity, value ranges, outputs
that are inputs, unwritable folders, non-finite weights, operating-system errors that are not bugs."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from engine.checks import band_key, check_not_inputs, check_outputs_writable, check_value_ranges, match_bands
from engine.errors import EngineError
from engine.io.schema import Band, BandStatistics, ModalityInfo

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(REPO, "resources", "sample_data", "delmarva_s2")


class Log:
    def __init__(self):
        self.messages = []

    def log(self, level, message):
        self.messages.append((level, message))


def _bands(names, stats=None, files=None):
    return [Band.identify(0, "spectral", (files or {}).get(n, f"s2_{n}.tif"), 1, n,
                          statistics=(stats or {}).get(n)) for n in names]


def _modality(names, stats=None):
    return ModalityInfo("spectral", "spectral", [f"s2_{n}.tif" for n in names], None, _bands(names, stats))


def test_bands_matched_by_name():
    model = _modality(["B02", "B03", "B04", "B08"])
    log = Log()
    assert match_bands(model, _bands(["B02", "B03", "B04", "B08"]), reporter=log) is None
    assert log.messages == []  # the right order says nothing
    assert match_bands(model, _bands(["B08", "B04", "B03", "B02"]), reporter=log) == [3, 2, 1, 0]
    assert match_bands(model, _bands(["B03", "B02", "B04", "B08"]), reporter=log) == [1, 0, 2, 3]
    assert all(level == "info" and "reordered" in m for level, m in log.messages)
    with pytest.raises(EngineError) as exc:
        match_bands(model, _bands(["B02", "B03", "B04", "B05"]), model_file="m.safetensors")
    assert "missing B08" in exc.value.message and "B05" in exc.value.message and "B02" in exc.value.message
    assert "positional" in exc.value.hint
    # renamed files that name other bands: refused by name, taken as given with positional
    renamed = _bands(["B1", "B2", "B3", "B4"])
    assert [band_key(b) for b in renamed] == ["B01", "B02", "B03", "B04"]
    with pytest.raises(EngineError):
        match_bands(model, renamed)
    assert match_bands(model, renamed, order="positional", reporter=log) is None
    assert "positional" in log.messages[-1][1]
    # no names, descriptions or wavelengths: taken in the given order (an info line, no warning)
    anonymous = [Band(0, "spectral", "stack.tif", i + 1) for i in range(4)]
    assert match_bands(model, anonymous, reporter=log) is None and log.messages[-1][0] == "info"
    with pytest.raises(EngineError) as exc:
        match_bands(model, anonymous[:3])
    assert "3 bands" in exc.value.message and "4" in exc.value.message


def _stats(p2, p98):
    return BandStatistics(p2, p98, (p2 + p98) / 2, (p98 - p2) / 4, p2, p98)


def test_value_ranges():
    trained = {"B04": _stats(300.0, 3100.0), "B08": _stats(900.0, 4500.0)}
    model = [_modality(["B04", "B08"], trained)]
    log = Log()
    check_value_ranges(model, [[_stats(350.0, 2900.0), _stats(1000.0, 4700.0)]], reporter=log)
    assert log.messages == []
    with pytest.raises(EngineError) as exc:   # reflectance 0-1 against 0-10000
        check_value_ranges(model, [[_stats(0.03, 0.31), _stats(0.09, 0.45)]], "m.safetensors")
    assert "another scale" in exc.value.message and "B04 0.03 to 0.31 here, 300 to 3100 in training" in exc.value.message
    check_value_ranges(model, [[_stats(3200.0, 6000.0), _stats(1000.0, 4700.0)]], reporter=log)  # shifted: warning
    assert log.messages and log.messages[-1][0] == "warning" and "B04 3200 to 6000 here" in log.messages[-1][1]
    # a homogeneous part of the scene (water): narrower ranges, same scale, same dark end: nothing said
    log.messages.clear()
    check_value_ranges(model, [[_stats(310.0, 700.0), _stats(950.0, 1300.0)]], reporter=log)
    assert log.messages == []
    # an offset of -1000 on every band (processing baseline 04.00 against older data): a warning with the numbers
    base = [_modality(["B04", "B08"], {"B04": _stats(1300.0, 4100.0), "B08": _stats(1900.0, 5500.0)})]
    check_value_ranges(base, [[_stats(300.0, 3100.0), _stats(900.0, 4500.0)]], reporter=log)
    assert log.messages and "shifted" in log.messages[-1][1] and "B04 300 to 3100 here" in log.messages[-1][1]


def test_outputs_never_inputs_and_writable(tmp_path):
    band = os.path.join(DATA, "s2_B02.tif")
    with pytest.raises(EngineError) as exc:
        check_not_inputs({"--output": band}, {"--spectral": [band]})
    assert "--output" in exc.value.message and "--spectral" in exc.value.message
    check_not_inputs({"--output": str(tmp_path / "x.tif")}, {"--spectral": [band]})
    with pytest.raises(EngineError) as exc:
        check_outputs_writable([str(tmp_path / "missing" / "x.tif")])
    assert "does not exist" in exc.value.message
    check_outputs_writable([str(tmp_path / "x.tif"), None])


def test_cli_refuses_output_equal_to_input_even_with_overwrite(tmp_path):
    import shutil

    band = str(tmp_path / "s2_B02.tif")
    shutil.copy(os.path.join(DATA, "s2_B02.tif"), band)
    before = open(band, "rb").read()
    r = subprocess.run([sys.executable, "-m", "engine", "pretrain", "--spectral", band, "--output", band,
                        "--overwrite", "--json-progress"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    errors = [json.loads(line) for line in r.stdout.splitlines() if '"error"' in line]
    assert errors and "is also the input --spectral" in errors[-1]["message"]
    assert open(band, "rb").read() == before


def test_system_errors_are_not_bugs():
    from engine.cli import system_error

    message, hint = system_error(PermissionError(errno.EACCES, "Permission denied", "/data/out.tif"))
    assert "Permission denied" in message and "/data/out.tif" in message and "bug" not in hint
    message, hint = system_error(OSError(errno.ENOSPC, "No space left on device", "/data/out.tif"))
    assert "No space left" in message and "space" in hint
    message, hint = system_error(MemoryError())
    assert "Out of memory" in message and "tile" in hint.lower()


def test_non_finite_weights_refused(tmp_path):
    import torch

    from engine.io.artifact import check_finite

    check_finite("m.safetensors", {"w": torch.ones(3)})
    with pytest.raises(EngineError) as exc:
        check_finite("m.safetensors", {"w": torch.ones(3), "net.head": torch.tensor([1.0, float("nan")])})
    assert "non-finite" in exc.value.message and "net.head" in exc.value.message and "1 of 2" in exc.value.message


def test_scene_grid_is_the_scenes_own(tmp_path):
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    from engine.checks import scene_grid
    from engine.data.grid import Modality
    from engine.io.schema import GridInfo

    src_path = os.path.join(DATA, "s2_B02.tif")
    paths = {}
    with rasterio.open(src_path) as src:
        model_grid = GridInfo(src.crs.to_wkt(), tuple(src.res), tuple(src.bounds))
        for res in (10, 20):   # the crop in the neighbouring UTM zone, at 10 m and at 20 m
            transform, width, height = calculate_default_transform(src.crs, "EPSG:32617", src.width, src.height,
                                                                   *src.bounds, resolution=res)
            profile = dict(src.profile, crs="EPSG:32617", transform=transform, width=width, height=height)
            paths[res] = str(tmp_path / f"b02_utm17_{res}m.tif")
            with rasterio.open(paths[res], "w", **profile) as dst:
                reproject(rasterio.band(src, 1), rasterio.band(dst, 1), resampling=Resampling.bilinear)
    log = Log()
    grid = scene_grid([Modality([paths[10]], "spectral")], model_grid, log)
    with rasterio.open(paths[10]) as scene:
        assert grid.crs.to_epsg() == 32617 and grid.width == scene.width and grid.height == scene.height
    assert "scene's own grid" in log.messages[-1][1] and "nothing is resampled" in log.messages[-1][1]
    grid = scene_grid([Modality([paths[20]], "spectral")], model_grid, log)
    assert grid.crs.to_epsg() == 32617 and tuple(round(r, 6) for r in grid.res) == (10.0, 10.0)
    assert "resampled to 10 m" in log.messages[-1][1] and "20 m" in log.messages[-1][1]
