"""A large virtual scene for memory / throughput benchmarks: each band of a scene repeated ``n x n`` times.

Writes one GDAL VRT per band (``s2_B02.vrt`` ...) into OUTDIR; copy ``(i, j)`` of a band is placed ``i`` scene
heights down and ``j`` scene widths right (in the band's own pixels, rounded), so the 10 m grid of the result
is ``n·W x n·H`` pixels (Delmarva, n = 6: 11 598 x 11 682 px) and every read goes to the real files. No pixel
is copied on disk.

    .venv/bin/python benchmarks/make_mosaic_vrt.py $BDGF_BENCH_DATA/s2_delmarva /tmp/mosaic --copies 6
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from xml.sax.saxutils import escape

import rasterio


def mosaic_vrt(src: str, dst: str, copies: int, scene_w_m: float, scene_h_m: float) -> None:
    with rasterio.open(src) as ds:
        w, h, tr, crs, dtype, nodata = ds.width, ds.height, ds.transform, ds.crs, ds.dtypes[0], ds.nodata
    gdal_type = {"uint16": "UInt16", "int16": "Int16", "uint8": "Byte", "float32": "Float32",
                 "int32": "Int32", "uint32": "UInt32", "float64": "Float64"}[dtype]
    step_x, step_y = round(scene_w_m / tr.a), round(scene_h_m / -tr.e)
    sources = []
    for i in range(copies):
        for j in range(copies):
            sources.append(
                f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(os.path.abspath(src))}</SourceFilename>'
                f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                f'<DstRect xOff="{j * step_x}" yOff="{i * step_y}" xSize="{w}" ySize="{h}"/></SimpleSource>')
    nd = f"<NoDataValue>{nodata}</NoDataValue>" if nodata is not None else ""
    xml = (f'<VRTDataset rasterXSize="{(copies - 1) * step_x + w}" rasterYSize="{(copies - 1) * step_y + h}">'
           f"<SRS>{escape(crs.to_wkt())}</SRS><GeoTransform>{tr.c}, {tr.a}, {tr.b}, {tr.f}, {tr.d}, {tr.e}"
           f'</GeoTransform><VRTRasterBand dataType="{gdal_type}" band="1">{nd}{"".join(sources)}'
           "</VRTRasterBand></VRTDataset>\n")
    with open(dst, "w", encoding="utf-8") as f:
        f.write(xml)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scene", help="folder of s2_B*.tif band files")
    ap.add_argument("outdir")
    ap.add_argument("--copies", type=int, default=6, help="copies per side (default 6)")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.scene, "s2_B*.tif")))
    if not files:
        raise SystemExit(f"no s2_B*.tif in {args.scene}")
    with rasterio.open(os.path.join(args.scene, "s2_B02.tif")) as ref:     # the 10 m grid sets the step
        scene_w_m, scene_h_m = ref.width * ref.transform.a, ref.height * -ref.transform.e
    os.makedirs(args.outdir, exist_ok=True)
    for f in files:
        out = os.path.join(args.outdir, os.path.basename(f)[:-4] + ".vrt")
        mosaic_vrt(f, out, args.copies, scene_w_m, scene_h_m)
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
