"""Accuracy reports: self-contained HTML, JSON and CSV (torch-free, numpy-free rendering).

:func:`render` turns a result dict into one HTML page (inline CSS, no external resources) made of optional
sections, so the same writer serves the assessment (:func:`engine.assessment.assess`) and the training report.
Recognised keys, all optional:

- ``title``, ``created`` (ISO), ``engine_version``, ``kind``
- ``inputs``, ``grid``, ``samples``, ``settings`` / ``config``: dicts shown as key/value tables (nested dicts
  flattened with dotted keys)
- ``accuracy``: an :func:`engine.metrics.accuracy_metrics` dict -> summary (n, OA, AA, kappa), per-class PA / UA /
  F1 table and the confusion matrix as a heat map (cell colour = row-normalised value)
- ``baseline``: another accuracy dict, or ``{"name": "Random forest", "accuracy": {...}}`` -> compared with
  ``accuracy`` in the summary, its own tables in a collapsible block
- ``area``: an :func:`engine.metrics.area_adjusted` dict -> area-adjusted table with 95 % CI
- ``history``: list of per-epoch dicts (``{"epoch": 1, "loss": 0.7, "val_oa": 0.8, ...}``) -> SVG line charts
  (one per numeric key) and a table
- ``metrics``: flat dict of extra figures (shown as key/value table)
- ``sections``: list of ``{"title", "text", "items": {...}, "table": {"columns": [...], "rows": [[...]]}}``
- ``warnings``, ``notes``: lists of strings
- any other top-level dict (e.g. ``split``, ``labels``, ``map_pixel_counts``): a key/value table

The full result is also embedded as JSON (``<script type="application/json" id="bdgf-result">``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import io
import json
import math
import os
from typing import Any, Iterable

from ..files import write_text


# -- helpers -----------------------------------------------------------------------------------------

def sanitize(obj: Any) -> Any:
    """A JSON-safe copy: NaN/inf -> None, numpy scalars/arrays -> Python, tuples -> lists, keys -> str."""
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):
        return sanitize(obj.tolist())
    if hasattr(obj, "item"):
        return sanitize(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def pct(x: Any, digits: int = 1) -> str:
    """Fraction -> ``"91.2 %"``; None/NaN -> ``"–"``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100.0 * float(x):.{digits}f} %"


def num(x: Any, digits: int = 3) -> str:
    """Number for display; integers with thousands separators; None -> ``"–"``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}".replace(",", "\u202f")
    if isinstance(x, float):
        if x != 0 and (abs(x) >= 1e9 or abs(x) < 1e-3):
            return f"{x:.{digits}g}"
        return f"{x:,.{digits}f}".replace(",", "\u202f")
    return _e(x)


def _pm(value: Any, ci: Any, fmt) -> str:
    if value is None:
        return "–"
    return fmt(value) + (f" ± {fmt(ci)}" if ci is not None else "")


def _flatten(d: dict, prefix: str = "") -> Iterable[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _kv_table(d: dict) -> str:
    rows = []
    for k, v in _flatten(d):
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v) if len(v) <= 20 else f"[{len(v)} values]"
        rows.append(f"<tr><th>{_e(k)}</th><td>{_e('' if v is None else v)}</td></tr>")
    return f'<table class="kv">{"".join(rows)}</table>'


def _table(columns: list[str], rows: list[list[str]], cls: str = "") -> str:
    """``rows`` cells are already HTML."""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _swatch(color: str | None) -> str:
    return f'<span class="sw" style="background:{_e(color)}"></span>' if color else ""


# -- sections ----------------------------------------------------------------------------------------

def _accuracy_of(obj: Any) -> tuple[str, dict] | None:
    if not isinstance(obj, dict):
        return None
    if "accuracy" in obj and isinstance(obj["accuracy"], dict):
        return str(obj.get("name") or "Baseline"), obj["accuracy"]
    if "oa" in obj:
        return str(obj.get("name") or "Baseline"), obj
    return None


def summary_section(acc: dict, baseline: tuple[str, dict] | None = None, name: str = "Model") -> str:
    cols = ["", name] + ([baseline[0]] if baseline else [])
    rows = []
    for key, label, fmt in (("n", "Reference pixels (n)", num), ("oa", "Overall accuracy (OA)", pct),
                            ("aa", "Average accuracy (AA)", pct), ("kappa", "Cohen's kappa", lambda v: num(v, 4))):
        row = [f"<b>{label}</b>", fmt(acc.get(key))]
        if baseline:
            row.append(fmt(baseline[1].get(key)))
        rows.append(row)
    return "<h2>Summary</h2>" + _table(cols, rows, "summary")


def per_class_section(acc: dict, colors: dict | None = None, title: str = "Per-class accuracy") -> str:
    colors = colors or {}
    rows = []
    for c in acc.get("per_class", []):
        rows.append([_swatch(colors.get(str(c.get("label")))) + _e(c.get("name")), _e(c.get("label")),
                     pct(c.get("producers_accuracy")), pct(c.get("users_accuracy")), pct(c.get("f1")),
                     num(c.get("support")), num(c.get("predicted"))])
    cols = ["Class", "Value", "Producer's acc. (PA, recall)", "User's acc. (UA, precision)", "F1",
            "Reference pixels", "Mapped pixels"]
    return f"<h2>{_e(title)}</h2>" + _table(cols, rows, "num")


def confusion_section(acc: dict, title: str = "Confusion matrix") -> str:
    cm = acc.get("confusion_matrix") or []
    names = acc.get("names") or [str(x) for x in acc.get("labels", [])]
    head = "".join(f'<th class="rot"><div>{_e(n)}</div></th>' for n in names)
    body = []
    for i, row in enumerate(cm):
        total = sum(row)
        cells = []
        for j, v in enumerate(row):
            f = v / total if total else 0.0
            rgb = "33,113,181" if i == j else "203,24,29"
            fg = "#fff" if f > 0.55 else "#000"
            cells.append(f'<td style="background:rgba({rgb},{f:.3f});color:{fg}" '
                         f'title="{_e(names[i])} → {_e(names[j])}: {v} ({100 * f:.1f} % of the row)">{num(v)}</td>')
        body.append(f"<tr><th>{_e(names[i])}</th>{''.join(cells)}<td class='tot'>{num(total)}</td></tr>")
    col_tot = [sum(r[j] for r in cm) for j in range(len(names))]
    body.append("<tr><th>Total</th>" + "".join(f"<td class='tot'>{num(v)}</td>" for v in col_tot)
                + f"<td class='tot'>{num(sum(col_tot))}</td></tr>")
    return (f"<h2>{_e(title)}</h2><p class='note'>Rows: reference classes; columns: mapped classes. "
            "Cell colour: share of the row (blue on the diagonal = correct, red = confusion).</p>"
            f"<table class='cm'><thead><tr><th>reference \\ map</th>{head}<th>Total</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def area_section(area: dict) -> str:
    rows = []
    for c in area.get("per_class", []):
        rows.append([_e(c.get("name")), num(c.get("map_pixels")), num(c.get("mapped_area_ha"), 2),
                     num(c.get("samples")),
                     _pm(c.get("users_accuracy"), c.get("users_accuracy_ci95"), pct),
                     _pm(c.get("producers_accuracy"), c.get("producers_accuracy_ci95"), pct),
                     _pm(c.get("area_ha"), c.get("area_ha_ci95"), lambda v: num(float(v), 2))])
    cols = ["Class", "Mapped pixels", "Mapped area (ha)", "Reference pixels", "UA ± 95 % CI", "PA ± 95 % CI",
            "Adjusted area (ha) ± 95 % CI"]
    oa = _pm(area.get("oa"), area.get("oa_ci95"), pct)
    return ("<h2>Area-adjusted estimates (Olofsson et al. 2014)</h2>"
            f"<p>Area-adjusted overall accuracy: <b>{oa}</b>; total mapped area {num(area.get('total_area_ha'), 2)} ha."
            "</p>" + (f"<p class='note'>{_e(area['note'])}</p>" if area.get("note") else "")
            + _table(cols, rows, "num"))


def _svg_chart(xs: list, ys: list, label: str, width: int = 360, height: int = 160) -> str:
    pts = [(x, y) for x, y in zip(xs, ys) if isinstance(y, (int, float)) and math.isfinite(y)]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + (abs(y0) or 1) * 0.1
    m = 30

    def sx(x):
        return m + (x - x0) / (x1 - x0) * (width - 2 * m)

    def sy(y):
        return height - m + (y0 - y) / (y1 - y0) * (height - 2 * m)

    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(pts))
    return (f'<figure class="chart"><svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{_e(label)}">'
            f'<rect x="{m}" y="{m}" width="{width - 2 * m}" height="{height - 2 * m}" fill="none" stroke="#ccc"/>'
            f'<path d="{path}" fill="none" stroke="#2171b5" stroke-width="2"/>'
            f'<text x="{m}" y="{m - 8}" font-size="11">{_e(num(y1, 4))}</text>'
            f'<text x="{m}" y="{height - 8}" font-size="11">{_e(num(y0, 4))}</text>'
            f'<text x="{width - m}" y="{height - 8}" font-size="11" text-anchor="end">{_e(num(x1))}</text>'
            f'</svg><figcaption>{_e(label)}</figcaption></figure>')


def history_section(history: list[dict]) -> str:
    if not history:
        return ""
    keys: list[str] = []
    for h in history:
        for k in h:
            if k not in keys:
                keys.append(k)
    xkey = "epoch" if "epoch" in keys else ("iteration" if "iteration" in keys else None)
    xs = [h.get(xkey, i + 1) for i, h in enumerate(history)] if xkey else list(range(1, len(history) + 1))
    charts = "".join(_svg_chart(xs, [h.get(k) for h in history], k) for k in keys
                     if k != xkey and any(isinstance(h.get(k), (int, float)) and not isinstance(h.get(k), bool)
                                          for h in history))
    rows = [[num(h.get(k)) if not isinstance(h.get(k), str) else _e(h.get(k)) for k in keys] for h in history]
    return (f"<h2>Training history</h2><div class='charts'>{charts}</div>"
            f"<details><summary>History table ({len(history)} rows)</summary>{_table(keys, rows, 'num')}</details>")


def generic_section(sec: dict) -> str:
    out = [f"<h2>{_e(sec.get('title', ''))}</h2>"]
    if sec.get("text"):
        out.append(f"<p>{_e(sec['text'])}</p>")
    if isinstance(sec.get("items"), dict):
        out.append(_kv_table(sec["items"]))
    tab = sec.get("table")
    if isinstance(tab, dict):
        out.append(_table([str(c) for c in tab.get("columns", [])],
                          [[num(c) if not isinstance(c, str) else _e(c) for c in r] for r in tab.get("rows", [])],
                          "num"))
    return "".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em;line-height:1.4}
h1{font-size:1.6em;border-bottom:2px solid #2171b5;padding-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}th,td{border:1px solid #ddd;padding:.3em .6em}
thead th{background:#f2f5f9}table.num td{text-align:right}table.num td:first-child{text-align:left}
table.kv th{text-align:left;background:#f7f7f7;font-weight:600}table.summary td{text-align:right;min-width:7em}
table.cm td{text-align:right;min-width:3.5em}table.cm td.tot{background:#f7f7f7;font-weight:600}
th.rot{vertical-align:bottom}.sw{display:inline-block;width:.9em;height:.9em;margin-right:.4em;
border:1px solid #888;vertical-align:-.1em}.note,.meta{color:#666;font-size:.9em}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em 1em}.charts{display:flex;flex-wrap:wrap;gap:1em}
figure.chart{margin:0}figcaption{font-size:.85em;color:#444;text-align:center}details{margin:.5em 0}
"""


def render(result: dict, title: str | None = None) -> str:
    """Render ``result`` (see the module docstring for the recognised keys) as a self-contained HTML page."""
    r = sanitize(result)
    title = title or r.get("title") or ("Accuracy assessment" if r.get("kind") == "assessment" else "BDGF report")
    created = r.get("created") or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    parts = [f"<h1>{_e(title)}</h1>",
             f"<p class='meta'>Created {_e(created)} · BDGF engine {_e(r.get('engine_version', ''))}</p>"]
    if r.get("warnings"):
        parts.append("<div class='warn'><b>Warnings</b><ul>"
                     + "".join(f"<li>{_e(w)}</li>" for w in r["warnings"]) + "</ul></div>")
    colors = {str(c.get("value")): c.get("color") for c in r.get("classes", []) if isinstance(c, dict)}
    acc = r.get("accuracy") if isinstance(r.get("accuracy"), dict) else None
    baseline = _accuracy_of(r.get("baseline"))
    if acc:
        parts.append(summary_section(acc, baseline, name=str(r.get("model_name") or "Classification")))
        parts.append(per_class_section(acc, colors))
        parts.append(confusion_section(acc))
    if isinstance(r.get("area"), dict):
        parts.append(area_section(r["area"]))
    if baseline:
        parts.append(f"<details><summary>{_e(baseline[0])}: per-class accuracy and confusion matrix</summary>"
                     + per_class_section(baseline[1], colors, f"{baseline[0]}: per-class accuracy")
                     + confusion_section(baseline[1], f"{baseline[0]}: confusion matrix") + "</details>")
    if isinstance(r.get("history"), list):
        parts.append(history_section([h for h in r["history"] if isinstance(h, dict)]))
    if isinstance(r.get("metrics"), dict):
        parts.append("<h2>Metrics</h2>" + _kv_table(r["metrics"]))
    for sec in r.get("sections") or []:
        if isinstance(sec, dict):
            parts.append(generic_section(sec))
    for key, label in (("inputs", "Inputs"), ("samples", "Samples"), ("grid", "Grid"),
                       ("settings", "Settings"), ("config", "Configuration")):
        if isinstance(r.get(key), dict) and r[key]:
            parts.append(f"<h2>{label}</h2>" + _kv_table(r[key]))
    handled = {"title", "created", "engine_version", "kind", "warnings", "classes", "accuracy", "baseline", "area",
               "history", "metrics", "sections", "inputs", "samples", "grid", "settings", "config", "notes",
               "model_name", "edge_accuracy"}
    for key, value in r.items():  # anything else that is plain data: a key/value table
        if key not in handled and isinstance(value, dict) and value:
            parts.append(f"<h2>{_e(key.replace('_', ' ').capitalize())}</h2>" + _kv_table(value))
    if r.get("notes"):
        parts.append("<h2>Notes</h2><ul class='note'>" + "".join(f"<li>{_e(n)}</li>" for n in r["notes"]) + "</ul>")
    data = json.dumps(r, ensure_ascii=False).replace("</", "<\\/")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts)
            + f"\n<script type='application/json' id='bdgf-result'>{data}</script>\n</body></html>\n")


# -- writers -----------------------------------------------------------------------------------------

def write_html_report(path: str | os.PathLike, result: dict, title: str | None = None,
                      overwrite: bool = False) -> str:
    """Write :func:`render` output atomically. Returns the absolute path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    return write_text(path, render(result, title), overwrite)


def write_json_report(path: str | os.PathLike, result: dict, overwrite: bool = False) -> str:
    """Write ``result`` as indented UTF-8 JSON (NaN -> null) atomically. Returns the absolute path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    return write_text(path, json.dumps(sanitize(result), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                      overwrite)


def csv_text(result: dict) -> str:
    """CSV with the confusion matrix (rows = reference, columns = map), then per-class metrics, then OA/AA/kappa.

    Accuracies are fractions 0..1; blank cells are undefined values.
    """
    r = sanitize(result)
    acc = r.get("accuracy") or r
    names = acc.get("names") or [str(x) for x in acc.get("labels", [])]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["confusion matrix: rows = reference, columns = map"])
    w.writerow(["reference \\ map"] + names + ["total"])
    for name, row in zip(names, acc.get("confusion_matrix") or []):
        w.writerow([name] + row + [sum(row)])
    w.writerow([])
    area = {str(c.get("label")): c for c in (r.get("area") or {}).get("per_class", [])}
    head = ["class", "value", "producers_accuracy", "users_accuracy", "f1", "reference_pixels", "mapped_pixels"]
    if area:
        head += ["mapped_area_ha", "adjusted_area_ha", "adjusted_area_ha_ci95", "adjusted_users_accuracy",
                 "adjusted_users_accuracy_ci95", "adjusted_producers_accuracy", "adjusted_producers_accuracy_ci95"]
    w.writerow(head)

    def cell(v):
        return "" if v is None else v

    for c in acc.get("per_class", []):
        row = [c.get("name"), c.get("label"), cell(c.get("producers_accuracy")), cell(c.get("users_accuracy")),
               cell(c.get("f1")), c.get("support"), c.get("predicted")]
        if area:
            a = area.get(str(c.get("label")), {})
            row += [cell(a.get(k)) for k in ("mapped_area_ha", "area_ha", "area_ha_ci95", "users_accuracy",
                                             "users_accuracy_ci95", "producers_accuracy", "producers_accuracy_ci95")]
        w.writerow(row)
    w.writerow([])
    w.writerow(["metric", "value"])
    for k in ("n", "oa", "aa", "kappa"):
        w.writerow([k, cell(acc.get(k))])
    if r.get("area"):
        w.writerow(["area_adjusted_oa", cell(r["area"].get("oa"))])
        w.writerow(["area_adjusted_oa_ci95", cell(r["area"].get("oa_ci95"))])
    return buf.getvalue()


def write_csv_table(path: str | os.PathLike, result: dict, overwrite: bool = False) -> str:
    """Write :func:`csv_text` atomically (UTF-8 with BOM so spreadsheet programs read accents). Returns the path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    return write_text(path, "\ufeff" + csv_text(result), overwrite)
