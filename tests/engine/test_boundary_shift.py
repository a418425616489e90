"""benchmarks/boundary_shift.py: how far one group of classes grows into another on a map, and the moved pixels'
own spectral evidence, on the embedded Delmarva crop."""

import sys
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import boundary_shift  # noqa: E402


def _write_like(path, classes, template):
    with rasterio.open(template) as src:
        profile = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype="uint8", nodata=0,
                       crs=src.crs, transform=src.transform)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes.astype(np.uint8), 1)
    return str(path)


def test_a_forest_grown_by_one_pixel_is_counted_and_its_new_pixels_have_field_spectra(
        tmp_path, delmarva_bands, delmarva_polygons, capsys):
    z, medians = boundary_shift.class_medians(delmarva_bands, delmarva_polygons, "class_id", [4, 5, 6])
    assert sorted(medians) == [4, 5, 6] and z.shape[0] == 13
    # the reference: each pixel's nearest class median among forest (4), cropland (5) and bare field (6)
    reference = boundary_shift.nearest_median_class(z.reshape(13, -1), medians).reshape(z.shape[1:])
    forest = reference == 4
    grown = ndimage.binary_dilation(forest) & np.isin(reference, [5, 6])       # one pixel into the fields
    assert 500 < grown.sum() < forest.sum()
    dilated = np.where(grown, 4, reference)
    assert boundary_shift.shift_counts(dilated, reference, [4], [5, 6]) == (int(grown.sum()), 0)
    assert boundary_shift.shift_counts(reference, dilated, [4], [5, 6]) == (0, int(grown.sum()))

    template = delmarva_bands[1]                                                # B02, 10 m: the grid
    ref_tif = _write_like(tmp_path / "reference.tif", reference, template)
    grown_tif = _write_like(tmp_path / "grown.tif", dilated, template)
    assert boundary_shift.main(["--reference", ref_tif, "--group-a", "4", "--group-b", "5", "6",
                                "--map", f"reference={ref_tif}", "--map", f"grown={grown_tif}",
                                "--spectral", *delmarva_bands, "--training", delmarva_polygons]) == 0
    out = capsys.readouterr().out
    assert f"| grown | {int(grown.sum())} | 0 | {int(grown.sum())} |" in out
    assert "| reference | 0 | 0 | 0 |" in out
    # every moved pixel lies nearest to a field median: none nearest to forest's
    line = next(row for row in out.splitlines() if "grown B -> A" in row)
    assert line.split(";")[1].split(",")[0].strip() == "0.00"
