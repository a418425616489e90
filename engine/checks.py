"""Checks made before the expensive work: outputs, disk space, band identity, value ranges, the scene's grid.

The engine runs these before pretraining, training or classifying, so a run never fails (or, worse, succeeds
with a wrong map) after minutes of work because of something that could be seen at the start:

- :func:`check_outputs_writable` / :func:`check_disk_space`: every output folder accepts a new file and has room;
- :func:`check_not_inputs`: no output is one of the run's inputs (never replaced, even with ``--overwrite``);
- :func:`match_bands`: the given bands are the model's bands (Sentinel-2 name such as ``B04``, band description
  or wavelength, :class:`engine.io.schema.Band`), reordered when they come in another order, refused with the
  expected list when one is missing or unknown; ``positional`` takes them as given (renamed files);
- :func:`check_value_ranges`: robust percentiles of a sample of the new scene against the model's stored
  statistics (spec §1.3 normalisation): another scale (reflectance 0-1 against 0-10000, SAR in linear power
  against dB) is refused with the numbers, an offset or shift (L1C against L2A, processing baseline 04.00's
  +1000) is a warning with the numbers;
- :func:`scene_grid`: the grid a model is applied on: the scene's own CRS and pixel grid, resampled only when its
  pixel size differs from the model's (the network's patches are in pixels, so the pixel size matters).

All raise :class:`engine.errors.EngineError` (message naming the file / band / value, and a hint). torch-free.
"""

from __future__ import annotations

import math
import os
import shutil
from typing import Any, Callable, Sequence

from .contract import write_probe_error
from .errors import EngineError
from .io.schema import Band, BandStatistics, GridInfo, ModalityInfo

__all__ = ["check_outputs_writable", "check_disk_space", "check_not_inputs", "match_bands", "band_key",
           "check_value_ranges", "scene_statistics", "scene_grid", "resolution_m", "BAND_ORDERS"]

#: ``--band-order``: ``name`` matches bands by identity (reorders; refuses missing / unknown bands),
#: ``positional`` takes them in the given order (files renamed after training).
BAND_ORDERS = ("name", "positional")
#: A modality whose values are this many times larger or smaller than the model's is on another scale.
SCALE_FACTOR_REFUSED = 10.0
#: Disk-space margin over the estimated output size.
DISK_MARGIN = 1.2

HINT_BAND_ORDER = ("Give these bands (in any order: they are matched by name and reordered). If the files were "
                   "renamed and hold the same bands in the training order, use --band-order positional ('Band "
                   "order: as given' in QGIS).")


def _logger(reporter: Any) -> Callable[[str, str], None]:
    """``(level, message)`` onto a Reporter, or nothing."""
    return (lambda level, message: None) if reporter is None else reporter.log


# ----------------------------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------------------------
def _folder_error(folder: str) -> str:
    """Why a new file cannot be created in ``folder`` ("" when it can). A real file is tried: permission bits
    say nothing for root, ACLs or read-only mounts."""
    if not os.path.isdir(folder):
        return "the folder does not exist"
    return write_probe_error(folder)


def check_outputs_writable(paths: Sequence[str | None]) -> None:
    """Every output's folder exists and accepts a new file.

    Raises:
        EngineError: naming the folder, the output and the operating system's reason.
    """
    for path in paths:
        if not path:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        problem = _folder_error(folder)
        if problem:
            raise EngineError(f"Cannot write the output {path}: {problem} ({folder})",
                              "Choose an output folder you can write to (and that exists).")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} TB"  # pragma: no cover


def check_disk_space(needs: Sequence[tuple[str | None, float]], margin: float = DISK_MARGIN) -> None:
    """Enough free space for the outputs: ``needs`` is ``[(output path, estimated bytes)]``, summed per file system.

    Raises:
        EngineError: the free space and the estimate, in the folder of the first output on that file system.
    """
    per_device: dict[int, list] = {}
    for path, size in needs:
        if not path or size <= 0:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        try:
            dev = os.stat(folder).st_dev
        except OSError:
            continue  # reported by check_outputs_writable
        entry = per_device.setdefault(dev, [folder, 0.0])
        entry[1] += float(size)
    for folder, size in per_device.values():
        free = shutil.disk_usage(folder).free
        if free < size * margin:
            raise EngineError(f"Not enough disk space in {folder}: the outputs need about {_human(size * margin)}, "
                              f"{_human(free)} is free",
                              "Free some space, choose another output folder, or classify a smaller extent.")


def check_not_inputs(outputs: dict[str, str | None], inputs: dict[str, Sequence[str] | str | None]) -> None:
    """No output is a file the run reads (it would be replaced, even with ``--overwrite``).

    Args:
        outputs: option -> output path. inputs: option -> input path(s).
    Raises:
        EngineError: naming both options and the file.
    """
    def key(p: str) -> str:
        return os.path.normcase(os.path.realpath(p))

    read: dict[str, str] = {}
    for option, paths in inputs.items():
        for p in ([paths] if isinstance(paths, str) else list(paths or [])):
            if p and "://" not in p and os.path.exists(p):
                read[key(p)] = option
    for option, path in outputs.items():
        if path and key(path) in read:
            raise EngineError(f"The output {option} {path} is also the input {read[key(path)]}: it would be "
                              "replaced by the run", "Choose another file name for the output.")


# ----------------------------------------------------------------------------------------------------------------
# band identity
# ----------------------------------------------------------------------------------------------------------------
def band_key(band: Band) -> str | None:
    """What identifies a band across files: its Sentinel-2 name (``B04``), else its description, else its centre
    wavelength (nearest nm); None when the file says nothing about it."""
    if band.name:
        return band.name
    if band.description and band.description.strip():
        return band.description.strip().lower()
    if band.wavelength_nm:
        return f"{round(band.wavelength_nm)} nm"
    return None


def _short(band: Band) -> str:
    return band.name or band.description or f"{band.file}:{band.index}"


def _expected(model: ModalityInfo) -> str:
    return ", ".join(b.label() for b in model.bands)


def match_bands(model: ModalityInfo, given: Sequence[Band], order: str = "name", model_file: str = "the model",
                reporter: Any = None) -> list[int] | None:
    """Match the given bands of one modality to the model's.

    Args:
        model: the modality as stored in the model file (its bands in training order).
        given: the bands of the new inputs, in the order given.
        order: ``name`` (match by :func:`band_key`, reorder) or ``positional`` (take them as given).
        model_file: how messages name the model.
        reporter: ``engine.progress.Reporter`` for the log (None: silent).

    Returns:
        ``idx`` with ``idx[k]`` = position in ``given`` of the model's band ``k``; None when the given order is
        already the model's (nothing to reorder). Nothing is logged when the order is right.
    Raises:
        EngineError: a different band count, or (by name) a missing or unknown band; the message lists the bands
            the model expects.
    """
    log = _logger(reporter)
    kind = model.kind
    if order not in BAND_ORDERS:
        raise EngineError(f"--band-order {order!r} is not one of {', '.join(BAND_ORDERS)}", "Use name or positional.")
    want = [band_key(b) for b in model.bands]
    have = [band_key(b) for b in given]
    identified = (None not in want and None not in have and len(set(want)) == len(want)
                  and len(set(have)) == len(have))
    if order == "name" and identified:
        missing = [b for b, k in zip(model.bands, want) if k not in have]
        unknown = [b for b, k in zip(given, have) if k not in want]
        if missing or unknown:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(_short(b) for b in missing))
            if unknown:
                parts.append("not in the model " + ", ".join(b.label() for b in unknown))
            raise EngineError(f"The {kind} bands do not match {model_file} ({len(have)} bands given, {len(want)} "
                              f"expected): {'; '.join(parts)}. The model expects: {_expected(model)}",
                              HINT_BAND_ORDER)
        idx = [have.index(k) for k in want]
        if idx == list(range(len(idx))):
            return None
        log("info", f"{kind} bands reordered to the model's order: given "
                    f"{', '.join(_short(b) for b in given)}; used {', '.join(_short(b) for b in model.bands)}")
        return idx
    if len(given) != len(want):
        raise EngineError(f"The {kind} inputs have {len(given)} bands but {model_file} was trained with "
                          f"{len(want)}: {_expected(model)}", HINT_BAND_ORDER)
    if order == "positional":
        differ = [f"{_short(g)} as {_short(m)}" for g, m in zip(given, model.bands) if band_key(g) != band_key(m)]
        log("info", f"{kind} bands taken in the given order (--band-order positional)"
                    + (f": {', '.join(differ)}" if differ else ""))
    else:
        log("info", f"{kind} bands taken in the given order: the files do not name every band (no Sentinel-2 "
                    "band name, description or wavelength), so they cannot be matched by name")
    return None


# ----------------------------------------------------------------------------------------------------------------
# value ranges
# ----------------------------------------------------------------------------------------------------------------
def _magnitude(st: BandStatistics) -> float:
    """The size of a band's values: the larger of |p2| and |p98| (robust to a homogeneous scene, unlike the spread)."""
    return max(abs(st.p2), abs(st.p98), 1e-12)


def _spread(st: BandStatistics) -> float:
    return max(st.p98 - st.p2, 1e-12)


def _shifted(now: BandStatistics, then: BandStatistics) -> bool:
    """Percentile ranges that do not overlap; the dark end (p2) moved by half the training spread; or both ends
    moved the same way by 30 % of it (an offset such as L1C against L2A, or the +1000 of Sentinel-2 processing
    baseline 04.00). A brighter or more uniform scene moves one end only."""
    spread = _spread(then)
    d2, d98 = now.p2 - then.p2, now.p98 - then.p98
    return (now.p2 > then.p98 or now.p98 < then.p2 or abs(d2) >= 0.5 * spread
            or (d2 * d98 > 0 and min(abs(d2), abs(d98)) >= 0.3 * spread))


def _ranges(items: Sequence[tuple]) -> str:
    return "; ".join(f"{_short(b)} {n.p2:.4g} to {n.p98:.4g} here, {t.p2:.4g} to {t.p98:.4g} in training"
                     for b, n, t in items[:4])


def check_value_ranges(model: Sequence[ModalityInfo], scene: Sequence[Sequence[BandStatistics]],
                       model_file: str = "the model", reporter: Any = None) -> None:
    """Compare the scene's robust band statistics with the model's (spec §1.3 normalises with the training ones).

    A spectral or SAR modality whose values are ``SCALE_FACTOR_REFUSED`` times larger or smaller than in training
    (median over its bands of the ratio of max(|p2|, |p98|)) is on another scale and refused. Values shifted
    against training (no overlap of the 2nd-98th percentile ranges in a band, or the 2nd percentile moved by half
    the training spread in at least half of the bands) give a warning with the numbers.

    Raises:
        EngineError: another scale, with both ranges of up to four bands and the factor.
    """
    log = _logger(reporter)
    for info, stats in zip(model, scene):
        pairs = [(b, now, b.statistics) for b, now in zip(info.bands, stats) if b.statistics is not None]
        if not pairs or info.kind == "context":     # derived from the spectral bands, checked there
            continue
        logs = sorted(math.log10(_magnitude(n) / _magnitude(t)) for _, n, t in pairs)
        median = logs[len(logs) // 2]
        if abs(median) >= math.log10(SCALE_FACTOR_REFUSED) and info.kind != "elevation":
            what = ("SAR in linear power against dB? check the auxiliary kind" if info.kind.startswith("sar")
                    else "reflectance 0-1 against 0-10000?")
            raise EngineError(f"The {info.kind} values of this scene are on another scale than the data "
                              f"{model_file} was trained on (about {10 ** median:.3g} times the training values; "
                              f"{what}). 2nd-98th percentiles: {_ranges(pairs)}",
                              "Give the scene in the units of the training data (rescale it with the Raster "
                              "Calculator, or choose the matching auxiliary kind), or train a model on this "
                              "kind of data.")
        shifted = [p for p in pairs if _shifted(p[1], p[2])]
        disjoint = [p for p in shifted if p[1].p2 > p[2].p98 or p[1].p98 < p[2].p2]
        if disjoint or 2 * len(shifted) >= len(pairs) or abs(median) >= math.log10(SCALE_FACTOR_REFUSED):
            log("warning", f"The {info.kind} values of this scene are shifted against the training data in "
                           f"{len(shifted)} of {len(pairs)} band(s) (another processing level or baseline, haze, "
                           f"another season?): {_ranges(shifted or pairs)}. The map may be unreliable.")


def scene_statistics(stack: Any, window: Any = None, seed: int = 0, reporter: Any = None) -> list:
    """Robust statistics of a sample of the scene (``compute_statistics`` with a smaller sample).

    Raises:
        EngineError: no valid pixel in the scene (or the window): every pixel is nodata or NaN in some band.
    """
    from .data.grid import compute_statistics

    try:
        return compute_statistics(stack, sample_pixels=20_000, seed=seed, window=window, min_blocks=256,
                                  reporter=reporter)
    except EngineError as exc:
        files = ", ".join(os.path.basename(p) for m in stack.modalities for p in m.paths)
        raise EngineError(f"No valid pixel to classify in {files}" + (" inside the extent" if window else "")
                          + ": every pixel is nodata or NaN in at least one band",
                          "Check the files (an empty or failed export?), their nodata values "
                          "(--nodata-spectral / --nodata-aux) and the extent.") from exc


# ----------------------------------------------------------------------------------------------------------------
# the scene's grid
# ----------------------------------------------------------------------------------------------------------------
def resolution_m(crs: Any, res: Sequence[float], bounds: Sequence[float] | None = None) -> tuple[float, float]:
    """Pixel size in metres: projected CRS through their unit; geographic CRS at the latitude of ``bounds``."""
    from pyproj import CRS

    c = CRS.from_user_input(crs if isinstance(crs, str) else crs.to_wkt())
    if c.is_geographic:
        lat = 0.0 if bounds is None else (bounds[1] + bounds[3]) / 2.0
        metres = 111_320.0
        return abs(res[0]) * metres * math.cos(math.radians(lat)), abs(res[1]) * metres
    factor = c.axis_info[0].unit_conversion_factor if c.axis_info else 1.0
    return abs(res[0]) * factor, abs(res[1]) * factor


def scene_grid(modalities: Sequence[Any], model_grid: GridInfo | None, reporter: Any = None) -> Any:
    """The grid a model is applied on: the scene's own (CRS, alignment), at the model's pixel size.

    The finest spectral raster's grid (``default_grid``) is kept when its pixel size is the model's (within 1 %);
    otherwise the scene is resampled, in its own CRS, to the model's pixel size (said in the log).
    """
    from .data.grid import crs_name, default_grid

    log = _logger(reporter)
    grid = default_grid(modalities)
    if model_grid is None:
        return grid
    from pyproj import CRS

    here = resolution_m(grid.crs, grid.res, _geo_bounds(grid))
    then = resolution_m(model_grid.crs, model_grid.res, _geo_bounds_info(model_grid))
    if max(abs(a - b) / b for a, b in zip(here, then)) <= 0.01:
        log("info", f"The map is written on the scene's own grid: {crs_name(grid.crs)}, {grid.width} x "
                    f"{grid.height} px at {here[0]:g} m (the model was trained at {then[0]:g} m in "
                    f"{CRS.from_wkt(model_grid.crs).name}); nothing is resampled for the model")
        return grid
    scale = here[0] / grid.res[0], here[1] / abs(grid.res[1])   # metres per CRS unit, per axis
    res = (then[0] / scale[0], then[1] / scale[1])
    new = default_grid(modalities, crs=grid.crs, res=res)
    log("info", f"The scene's pixel size is {here[0]:g} m but the model was trained at {then[0]:g} m: the scene is "
                f"resampled to {then[0]:g} m in its own CRS ({crs_name(grid.crs)}); the map is written on that "
                f"grid, {new.width} x {new.height} px")
    return new


def _geo_bounds(grid: Any) -> tuple[float, float, float, float] | None:
    try:
        from rasterio.warp import transform_bounds

        return transform_bounds(grid.crs, "EPSG:4326", *grid.bounds)
    except Exception:  # pragma: no cover - only used for the latitude of geographic grids
        return None


def _geo_bounds_info(info: GridInfo) -> tuple[float, float, float, float] | None:
    try:
        from rasterio.warp import transform_bounds

        return transform_bounds(info.crs, "EPSG:4326", *info.bounds)
    except Exception:  # pragma: no cover
        return None
