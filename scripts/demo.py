"""The README's main job: the whole BDGF workflow on the embedded real data, through the real QGIS client.

Runs ``qgis_process`` (QGIS 3.22, headless) with this plugin enabled in a throw-away profile:
pretrain -> train -> classify -> assess on the Sentinel-2 Delmarva crop (fast profile), then the same on the
BigEarthNet Sentinel-1 + Sentinel-2 pair 87_48 (SAR + MSI). Prints where every output is, the validation
OA / kappa next to the random-forest baseline, the stage timings, and renders each classified map to a PNG
with a legend (QGIS renderer, paletted style from the training layer).

Usage: ``bash scripts/demo.sh [--output DIR] [--device auto|cuda|cpu] [--quick]`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
SAMPLE = ROOT / "resources" / "sample_data"
DEVICES = ["auto", "cuda", "cpu"]


def band_files(folder: Path, pattern: str) -> list[str]:
    return sorted(str(p) for p in folder.glob(pattern))


class QgisProcess:
    """``qgis_process.bin`` in a hermetic profile with the plugin folder enabled as ``bdgf``."""

    def __init__(self, work: Path, engine_python: str):
        self.profile = work / "qgis-profile"
        plugins = work / "plugins"
        self.profile.mkdir(parents=True)
        plugins.mkdir()
        (plugins / "bdgf").symlink_to(ROOT, target_is_directory=True)
        self.env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(self.profile),
                        QGIS_OPTIONS_PATH=str(self.profile), QGIS_PLUGINPATH=str(plugins),
                        BDGF_ENGINE_PYTHON=engine_python, XDG_RUNTIME_DIR=str(work))
        r = subprocess.run([QGIS_PROCESS, "plugins", "enable", "bdgf"], env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"Could not enable the plugin in qgis_process:\n{r.stdout}\n{r.stderr}")

    def run(self, alg: str, params: list[tuple[str, str]], label: str) -> float:
        """Run one algorithm, echoing qgis_process's log and progress as it comes; returns the seconds."""
        args = [QGIS_PROCESS, "run", alg, "--"] + [f"{k}={v}" for k, v in params]
        print(f"\n== {label}: qgis_process run {alg}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1)
        tail = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-60:]
            if line and not line.startswith(("<string>", "QStandardPaths")):
                print("   " + line, flush=True)
        proc.wait()
        seconds = time.monotonic() - t0
        if proc.returncode != 0:
            sys.exit(f"{alg} failed (exit {proc.returncode}):\n" + "\n".join(tail))
        print(f"   done in {seconds:.0f} s", flush=True)
        return seconds


def workflow(qp: QgisProcess, name: str, out: Path, spectral: list[str], polygons: str, device: int,
             aux: list[str] | None = None, extent: str | None = None, iterations: int = 100,
             epochs: int = 20) -> dict:
    out.mkdir(parents=True)
    common = [("DEVICE", str(device)), ("PROFILE", "0"), ("SEED", "0")]
    inputs = [("SPECTRAL", p) for p in spectral]
    if aux:
        inputs += [("AUXILIARY", p) for p in aux] + [("AUXILIARY_KIND", "0")]   # SAR in dB
    timings = {}
    timings["pretrain"] = qp.run("bdgf:pretrain", inputs + common + [
        ("ITERATIONS", str(iterations)), ("OUTPUT_MODEL", str(out / "pretrained.safetensors"))],
        f"{name}: pretrain the diffusion model")
    timings["train"] = qp.run("bdgf:train", inputs + common + [
        ("TRAINING", polygons), ("CLASS_FIELD", "class_id"), ("PRETRAINED", str(out / "pretrained.safetensors")),
        ("EPOCHS", str(epochs)), ("OUTPUT_MODEL", str(out / "model.safetensors")),
        ("OUTPUT_REPORT", str(out / "training_report.html"))], f"{name}: train the classifier")
    cls_params = [("MODEL", str(out / "model.safetensors"))] + inputs + common[:1] + [
        ("OUTPUT", str(out / "classification.tif")), ("OUTPUT_CONFIDENCE", str(out / "confidence.tif")),
        ("OUTPUT_APPLICABILITY", str(out / "applicability.tif"))]
    if extent:
        cls_params.append(("EXTENT", extent))
    timings["classify"] = qp.run("bdgf:classify", cls_params, f"{name}: classify")
    timings["assess"] = qp.run("bdgf:assess", [
        ("CLASSIFICATION", str(out / "classification.tif")), ("REFERENCE", polygons), ("CLASS_FIELD", "class_id"),
        ("OUTPUT_REPORT", str(out / "assessment.html")), ("OUTPUT_TABLE", str(out / "assessment.csv"))],
        f"{name}: assess against the polygons")
    sys.path.insert(0, str(ROOT))
    from engine.io.schema import read_metadata   # stdlib only: the model file's JSON header

    report = read_metadata(out / "model.safetensors").report or {}
    acc = report.get("accuracy") or {}
    rf = (report.get("baseline") or {}).get("accuracy") or {}
    metrics = {"oa": acc.get("oa"), "aa": acc.get("aa"), "kappa": acc.get("kappa"),
               "rf_oa": rf.get("oa"), "rf_aa": rf.get("aa"), "rf_kappa": rf.get("kappa"),
               "edge": report.get("edge_accuracy")}
    names = {int(c.value): c.name for c in read_metadata(out / "model.safetensors").classes}
    metrics["outside"], metrics["outside_worst"] = outside_share(out / "applicability.tif",
                                                                 out / "classification.tif", names)
    png = out / "classification.png"
    render_png(out / "classification.tif", png, f"BDGF classification: {name}")
    return {"name": name, "dir": out, "metrics": metrics, "timings": timings, "png": png}


def outside_share(applicability: Path, classification: Path, names: dict) -> tuple[float, tuple[str, float]]:
    """Share of the classified pixels outside the model's area of applicability (``classify --applicability``),
    and the predicted class with the largest share of its pixels outside, ``(name, share)``."""
    import numpy as np
    import rasterio

    with rasterio.open(applicability) as src:
        di, threshold = src.read(1), float(src.tags()["BDGF_AOA_THRESHOLD"])
    with rasterio.open(classification) as src:
        classes = src.read(1)
    classified = np.isfinite(di)
    far = classified & (di > threshold)
    shares = {v: float(far[classes == v].mean()) for v in names if (classes == v).any()}
    worst = max(shares, key=shares.get)
    return float(far.sum() / max(1, classified.sum())), (names[worst], shares[worst])


def render_png(raster: Path, png: Path, title: str) -> None:
    """Render the classified raster with its QML style (QGIS map renderer) and a legend, to PNG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication, QgsMapRendererCustomPainterJob, QgsMapSettings, QgsRasterLayer
    from qgis.PyQt.QtCore import QRectF, QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    app = QgsApplication.instance() or QgsApplication([], False)
    if not getattr(render_png, "_init", False):
        app.initQgis()
        render_png._init = True
    layer = QgsRasterLayer(str(raster), "classification")
    if not layer.isValid():
        raise RuntimeError(f"QGIS cannot open {raster}")
    layer.loadNamedStyle(str(raster.with_suffix(".qml")))
    classes = layer.renderer().classes() if layer.renderer().type() == "paletted" else []
    map_px, legend_w = 640, 260
    ext = layer.extent()
    height = int(map_px * ext.height() / ext.width())
    img = QImage(QSize(map_px + legend_w, height + 40), QImage.Format_ARGB32)
    img.fill(QColor("white"))
    ms = QgsMapSettings()
    ms.setLayers([layer])
    ms.setExtent(ext)
    ms.setOutputSize(QSize(map_px, height))
    ms.setDestinationCrs(layer.crs())
    painter = QPainter(img)
    painter.translate(0, 40)
    job = QgsMapRendererCustomPainterJob(ms, painter)
    job.renderSynchronously()
    painter.translate(0, -40)
    painter.setPen(QColor("black"))
    painter.setFont(QFont("Sans", 12, QFont.Bold))
    painter.drawText(QRectF(8, 6, map_px + legend_w - 16, 28), Qt.AlignLeft | Qt.AlignVCenter, title)
    painter.setFont(QFont("Sans", 10))
    y = 52
    for c in classes:
        painter.fillRect(QRectF(map_px + 16, y, 22, 16), c.color)
        painter.drawRect(QRectF(map_px + 16, y, 22, 16))
        painter.drawText(QRectF(map_px + 46, y - 2, legend_w - 50, 20), Qt.AlignLeft | Qt.AlignVCenter,
                         f"{int(c.value)}  {c.label}")
        y += 24
    painter.end()
    img.save(str(png))
    del layer


def fmt(x) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output", help="output folder (default: demo_output/run-<date>-<time>)")
    ap.add_argument("--device", choices=DEVICES, default="auto")
    ap.add_argument("--quick", action="store_true", help="classify only the southern 768 x 256 px strip of the "
                    "Delmarva crop (default: the whole 768 x 768 px crop)")
    ap.add_argument("--iterations", type=int, default=100, help="diffusion pretraining iterations (fast profile: "
                    "100)")
    ap.add_argument("--epochs", type=int, default=20, help="training epochs (fast profile: 20)")
    args = ap.parse_args()
    out = Path(args.output or ROOT / "demo_output" / dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")).resolve()
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} exists and is not empty: choose another --output (nothing is overwritten)")
    engine_python = str(ROOT / ".venv" / "bin" / "python")
    device = DEVICES.index(args.device)
    t_all = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bdgf-demo-") as work:
        qp = QgisProcess(Path(work), engine_python)
        dm = SAMPLE / "delmarva_s2"
        # southern strip of the crop (rows 512-768): water, salt marsh, beach, cropland
        extent = "440530,448210,4169860,4172420 [EPSG:32618]" if args.quick else None
        runs.append(workflow(qp, "Sentinel-2 Delmarva crop", out / "delmarva", band_files(dm, "s2_B*.tif"),
                             str(dm / "training_polygons.gpkg"), device, extent=extent,
                             iterations=args.iterations, epochs=args.epochs))
        ben = SAMPLE / "bigearthnet_mm"
        s2 = next((ben / "BigEarthNet-S2-Example").glob("*_87_48"))
        s1 = next((ben / "BigEarthNet-S1-Example").glob("*_87_48"))
        runs.append(workflow(qp, "BigEarthNet 87_48 Sentinel-1 + Sentinel-2", out / "bigearthnet_87_48",
                             band_files(s2, "*_B*.tif"), str(ben / "training_polygons_87_48.gpkg"), device,
                             aux=band_files(s1, "*_V[VH].tif"), iterations=args.iterations,
                             epochs=args.epochs))
    print("\n" + "=" * 78)
    print(f"BDGF demo finished in {time.monotonic() - t_all:.0f} s. Outputs in {out}")
    for r in runs:
        m = r["metrics"]
        print(f"\n{r['name']}  ({r['dir']})")
        print("  cross-validation by polygon        OA     AA   kappa")
        print(f"    BDGF (fast profile)            {fmt(m.get('oa'))}  {fmt(m.get('aa'))}  {fmt(m.get('kappa'))}")
        print(f"    random forest, same pixels     {fmt(m.get('rf_oa'))}  {fmt(m.get('rf_aa'))}  {fmt(m.get('rf_kappa'))}")
        edge = m.get("edge")
        if edge and edge["edge"]["n"]:
            e = edge["edge"]
            print(f"  held-out pixels within {edge['radius']} px of their polygon's edge ({e['n']} px): OA BDGF "
                  f"{fmt(e['bdgf_oa']).strip()}, random forest {fmt(e['rf_oa']).strip()}")
        print(f"  outside the area of applicability: {fmt(m['outside'])} % of the classified pixels (unlike every "
              "training polygon: the map extrapolates there)")
        print(f"    most of all {m['outside_worst'][0]}: {fmt(m['outside_worst'][1]).strip()} % of its pixels")
        print("  stage timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["timings"].items()))
        for f in ("classification.tif", "classification.qml", "confidence.tif", "applicability.tif",
                  "model.safetensors",
                  "training_report.html", "assessment.html", "assessment.csv", "classification.png"):
            print(f"    {r['dir'] / f}")
    print("\nThe assessment reports compare the maps with the training polygons themselves (optimistic);"
          "\nthe validation figures above come from cross-validation folds grouped by polygon (each fold's"
          "\npolygons held out of its training); the final model is then refit on every polygon.")


if __name__ == "__main__":
    main()
