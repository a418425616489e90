"""qgis_process (headless, hermetic profile): the plugin's algorithms are listed and bdgf:classify runs;
the zip from scripts/build_zip.py installs into a clean profile and its algorithms are listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest


from .conftest import ENGINE_PYTHON, QGIS_PROCESS, REPO, SMALL_EXTENT_STR, band_paths

IDS = ["bdgf:assess", "bdgf:classify", "bdgf:cleanup", "bdgf:enginereport", "bdgf:pretrain", "bdgf:sampledesign",
       "bdgf:setupengine", "bdgf:suggestsamples", "bdgf:train"]


def qp_env(cfg, plugin_path=None):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(cfg),
               QGIS_OPTIONS_PATH=str(cfg), BDGF_ENGINE_PYTHON=ENGINE_PYTHON,
               XDG_RUNTIME_DIR=str(cfg))
    env.pop("QGIS_PLUGINPATH", None)
    if plugin_path:
        env["QGIS_PLUGINPATH"] = str(plugin_path)
    return env


def qp(args, env, timeout=300):
    return subprocess.run([QGIS_PROCESS] + args, env=env, capture_output=True, text=True, timeout=timeout)


def listed(env):
    out = qp(["list"], env, timeout=120).stdout
    return sorted({w for line in out.splitlines() for w in line.split() if w.startswith("bdgf:")})


@pytest.mark.slow
def test_qgis_process_list_and_run_classify(plugin_root, trained_model, tmp_path):
    cfg = tmp_path / "profile"
    cfg.mkdir()
    env = qp_env(cfg, plugin_root)
    assert listed(env) == []  # not enabled yet in the hermetic profile
    r = qp(["plugins", "enable", "bdgf"], env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert listed(env) == IDS
    out = str(tmp_path / "qp_classes.tif")
    args = ["--json", "run", "bdgf:classify", "--", f"MODEL={trained_model['path']}"]
    args += [f"SPECTRAL={p}" for p in band_paths()]
    args += [f"EXTENT={SMALL_EXTENT_STR}", "DEVICE=2", f"OUTPUT={out}"]
    r = qp(args, env, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(r.stdout[r.stdout.index("{"):])
    assert result["results"]["OUTPUT"] == out and os.path.isfile(out)
    assert os.path.isfile(os.path.splitext(out)[0] + ".qml")


def test_zip_installs_into_clean_profile(tmp_path):
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "build_zip.py"), "--output", str(dist)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    zpath = dist / "bdgf-0.1.0.zip"
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        assert all(n.startswith("bdgf/") for n in names)
        for must in ("bdgf/metadata.txt", "bdgf/__init__.py", "bdgf/LICENSE", "bdgf/bdgf_plugin/provider.py",
                     "bdgf/engine/cli.py", "bdgf/resources/icons/bdgf.svg", "bdgf/i18n/bdgf_en.ts"):
            assert must in names, must
        assert not [n for n in names if "/tests/" in n or "/.venv/" in n or "__pycache__" in n or n.endswith(".pyc")]
        cfg = tmp_path / "profile"
        plugins = cfg / "profiles" / "default" / "python" / "plugins"
        plugins.mkdir(parents=True)
        zf.extractall(plugins)
    env = qp_env(cfg)  # no QGIS_PLUGINPATH: only the profile's plugins folder
    assert listed(env) == []
    r = qp(["plugins", "enable", "bdgf"], env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert listed(env) == IDS
    r = qp(["help", "bdgf:train"], env, timeout=120)
    assert "TRAINING" in r.stdout and "CLASS_FIELD" in r.stdout
