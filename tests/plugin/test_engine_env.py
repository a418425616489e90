"""Engine environment set-up logic (bdgf_plugin/engine_env.py, stdlib only): interpreter discovery, venv
layout, process flags and cancellation on Linux, and on Windows and macOS by simulation (``platform=`` and
injected lookups), the torch build chosen from the NVIDIA driver, and the check-only second run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from bdgf.bdgf_plugin import engine_env as ee

from .conftest import ENGINE_PYTHON, REPO


def fake_probe(versions: dict, ensurepip=True):
    """probe_python stand-in: path -> (major, minor, micro); unknown paths do not start."""

    def probe(path):
        if path not in versions:
            raise ee.SetupError(f"{path} does not start")
        return ee.PythonInfo(path=path, executable=path, version=versions[path], prefix="/p", base_prefix="/p",
                             has_venv=True, has_ensurepip=ensurepip)

    return probe


# ------------------------------------------------------------------------------------------ paths, discovery


def test_venv_python_layout_per_system():
    assert ee.venv_python("/home/u/.local/share/QGIS/QGIS3/profiles/default/bdgf/engine", "linux") == \
        "/home/u/.local/share/QGIS/QGIS3/profiles/default/bdgf/engine/bin/python"
    assert ee.venv_python("/Users/u/Library/Application Support/QGIS/QGIS3/profiles/default/bdgf/engine",
                          "darwin").endswith("/bdgf/engine/bin/python")
    assert ee.venv_python(r"C:\Users\u\AppData\Roaming\QGIS\QGIS3\profiles\default\bdgf\engine", "win32") == \
        r"C:\Users\u\AppData\Roaming\QGIS\QGIS3\profiles\default\bdgf\engine\Scripts\python.exe"


def test_windows_osgeo4w_candidates_start_with_qgis_python():
    found = ee.candidate_base_pythons(
        platform="win32", executable=r"C:\OSGeo4W\bin\qgis-bin.exe", base_prefix=r"C:\OSGeo4W\apps\Python312",
        version=(3, 12), environ={"OSGEO4W_ROOT": r"C:\OSGeo4W"}, which=lambda name: None)
    assert found[0] == r"C:\OSGeo4W\apps\Python312\python.exe"
    assert r"C:\OSGeo4W\bin\python3.exe" in found
    assert r"C:\OSGeo4W\apps\Python313\python.exe" in found and len(found) == len(set(found))
    # the standalone QGIS installer has the same layout under Program Files
    found = ee.candidate_base_pythons(
        platform="win32", executable=r"C:\Program Files\QGIS 3.40.4\bin\qgis-ltr-bin.exe",
        base_prefix=r"C:\Program Files\QGIS 3.40.4\apps\Python312", version=(3, 12), environ={},
        which=lambda name: r"C:\Python311\python.exe" if name == "python" else None)
    assert found[0] == r"C:\Program Files\QGIS 3.40.4\apps\Python312\python.exe"
    assert found[-1] == r"C:\Python311\python.exe"


def test_macos_candidates_bundle_then_python_org_and_homebrew():
    found = ee.candidate_base_pythons(
        platform="darwin", executable="/Applications/QGIS-LTR.app/Contents/MacOS/QGIS",
        base_prefix="/Applications/QGIS-LTR.app/Contents/Frameworks/Python.framework/Versions/3.12",
        version=(3, 12), environ={}, which=lambda name: None)
    assert found[0] == "/Applications/QGIS-LTR.app/Contents/Frameworks/Python.framework/Versions/3.12/bin/python3.12"
    assert "/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3" in found
    assert "/Library/Frameworks/Python.framework/Versions/3.12/bin/python3.12" in found
    assert "/opt/homebrew/bin/python3.11" in found
    assert "/usr/bin/python3" not in found  # Apple's 3.9 stub is too old


def test_linux_candidates_system_python_first():
    found = ee.candidate_base_pythons(platform="linux", executable="/usr/bin/qgis", base_prefix="/usr",
                                      version=(3, 11), environ={}, which=lambda name: None)
    assert found[:3] == ["/usr/bin/python3.11", "/usr/bin/python3", "/usr/bin/python3"][:2] + found[2:3]
    assert found[0] == "/usr/bin/python3.11"


def test_find_base_python_skips_old_and_broken_interpreters_on_simulated_windows():
    candidates = dict(platform="win32", executable=r"C:\OSGeo4W\bin\qgis-bin.exe",
                      base_prefix=r"C:\OSGeo4W\apps\Python39", version=(3, 9), environ={"OSGEO4W_ROOT": r"C:\OSGeo4W"},
                      which=lambda name: None)
    probe = fake_probe({r"C:\OSGeo4W\apps\Python39\python.exe": (3, 9, 18),
                        r"C:\OSGeo4W\apps\Python312\python.exe": (3, 12, 8)})
    info = ee.find_base_python(probe=probe, exists=lambda p: True, **candidates)
    assert info.path == r"C:\OSGeo4W\apps\Python312\python.exe"
    with pytest.raises(ee.SetupError) as exc:
        ee.find_base_python(probe=fake_probe({r"C:\OSGeo4W\apps\Python39\python.exe": (3, 9, 18)}),
                            exists=lambda p: True, **candidates)
    assert "Python39" in exc.value.message and "older than 3.10" in exc.value.message
    assert "python.org" in exc.value.hint


def test_given_base_python_must_be_usable():
    with pytest.raises(ee.SetupError) as exc:
        ee.find_base_python("/opt/old/python3.8", probe=fake_probe({"/opt/old/python3.8": (3, 8, 10)}))
    assert "/opt/old/python3.8" in exc.value.message and "older than 3.10" in exc.value.message
    with pytest.raises(ee.SetupError) as exc:
        ee.find_base_python("/opt/py/python3", probe=fake_probe({"/opt/py/python3": (3, 12, 1)}, ensurepip=False))
    assert "python3-venv" in exc.value.message
    # with uv, ensurepip is not needed
    assert ee.find_base_python("/opt/py/python3", uv="/usr/bin/uv",
                               probe=fake_probe({"/opt/py/python3": (3, 12, 1)}, ensurepip=False)).version[:2] == (3, 12)


def test_real_base_python_found_here():
    info = ee.find_base_python()
    assert info.version[:2] >= ee.MIN_PYTHON and info.has_venv and info.has_ensurepip
    assert not info.is_venv
    probed = ee.probe_python(ENGINE_PYTHON)  # the developer venv: recognised as a venv, not a base
    assert probed.is_venv
    with pytest.raises(ee.SetupError):
        ee.probe_python("/no/such/python")


# ------------------------------------------------------------------------------------------ processes


def test_popen_flags_per_system():
    flags = ee.popen_flags("win32")["creationflags"]
    assert flags & 0x08000000 and flags & 0x00000200  # CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP
    assert ee.popen_flags("linux") == {"start_new_session": True}
    assert ee.popen_flags("darwin") == {"start_new_session": True}


def test_windows_cancel_kills_the_process_tree_with_taskkill():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    calls = []

    def fake_run(cmd, **kw):
        calls.append((cmd, kw))
        return subprocess.CompletedProcess(cmd, 0)

    try:
        ee.stop_process_tree(proc, platform="win32", grace_s=5, run=fake_run)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert calls[0][0] == ["taskkill", "/F", "/T", "/PID", str(proc.pid)]
    assert calls[0][1]["creationflags"] & 0x08000000
    assert proc.poll() is not None  # the fallback kill ran since the fake taskkill did nothing


def test_run_streamed_passes_lines_and_cancel_kills_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        for i in range(3):
            print("Collecting package", i, flush=True)
        time.sleep(120)
    """)
    lines = []
    start = time.monotonic()
    with pytest.raises(ee.SetupCancelled):
        ee.run_streamed([sys.executable, "-c", script], lines.append, is_cancelled=lambda: len(lines) >= 3)
    assert lines == [f"Collecting package {i}" for i in range(3)]
    assert time.monotonic() - start < 30
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child), "pip's children must die with it (process group)"
    assert ee.run_streamed([sys.executable, "-c", "import sys; print('x'); sys.exit(3)"], lines.append) == 3
    with pytest.raises(ee.SetupError, match="could not be started"):
        ee.run_streamed(["/no/such/uv", "pip", "install"], lines.append)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def test_clean_environment_drops_qgis_python_and_gdal_variables():
    qgis_env = {"PYTHONHOME": r"C:\OSGeo4W\apps\Python312", "PYTHONPATH": r"C:\OSGeo4W\apps\qgis\python",
                "GDAL_DRIVER_PATH": r"C:\OSGeo4W\apps\gdal\lib\gdalplugins", "PROJ_LIB": r"C:\OSGeo4W\share\proj",
                "__PYVENV_LAUNCHER__": "/Applications/QGIS.app/Contents/MacOS/QGIS", "PATH": "/usr/bin"}
    env = ee.clean_environment(qgis_env, plugin_dir="/plugins/bdgf")
    assert env["PYTHONPATH"] == "/plugins/bdgf" and env["PATH"] == "/usr/bin" and env["PYTHONUNBUFFERED"] == "1"
    for key in ("PYTHONHOME", "GDAL_DRIVER_PATH", "PROJ_LIB", "__PYVENV_LAUNCHER__"):
        assert key not in env
    assert qgis_env["PYTHONHOME"]  # the caller's mapping is not changed


# ------------------------------------------------------------------------------------------ torch build


def test_nvidia_smi_parsing_and_cuda_build_from_driver():
    gpus = ee.parse_nvidia_smi("NVIDIA H200, 143771, 570.124.06\nNVIDIA RTX A4000, 16376, 570.124.06\n")
    assert [g.name for g in gpus] == ["NVIDIA H200", "NVIDIA RTX A4000"] and gpus[0].memory_mib == 143771
    assert ee.cuda_builds_for_driver("570.124.06", "linux")[0] == "cu128"
    assert ee.cuda_builds_for_driver("580.95.05", "linux")[0] == "cu130"
    assert ee.cuda_builds_for_driver("566.36", "win32")[0] == "cu126"  # Windows numbering: 570.65 for 12.8
    assert ee.cuda_builds_for_driver("470.82.01", "linux") == []
    plans = ee.torch_plans("cuda", "2.13.0", gpus, "linux")
    assert plans[0].requirement == "torch==2.13.0+cu128"
    assert plans[0].index_url == "https://download.pytorch.org/whl/cu128"
    assert [p.flavor for p in plans][:3] == ["cu128", "cu126", "cu124"]
    with pytest.raises(ee.SetupError) as exc:
        ee.torch_plans("cuda", "2.13.0", ee.parse_nvidia_smi("Tesla K80, 11441, 470.82.01"), "linux")
    assert "470.82.01" in exc.value.message and "update the NVIDIA driver" in exc.value.hint


def test_cpu_plans_per_system_and_index_override():
    linux = ee.torch_plans("cpu", "2.13.0", [], "linux")
    assert linux[0].probe and linux[0].index_url is None  # the pip configuration first (local wheels, mirrors)
    assert linux[1].requirement == "torch==2.13.0+cpu" and linux[1].index_url.endswith("/whl/cpu")
    for system in ("win32", "darwin"):
        (plan,) = ee.torch_plans("cpu", "2.13.0", [], system)
        assert plan.requirement == "torch==2.13.0" and plan.index_url is None
    (plan,) = ee.torch_plans("cuda", "2.13.0", [], "linux", index_url="https://mirror.example/torch")
    assert plan.index_url == "https://mirror.example/torch" and plan.flavor == "custom"
    assert ee.EngineSetup.torch_satisfies("2.13.0+cpu", linux[1])
    assert not ee.EngineSetup.torch_satisfies("2.13.0+cu128", linux[1])
    assert not ee.EngineSetup.torch_satisfies("2.12.1+cpu", linux[1])


def test_device_resolution():
    gpu = ee.parse_nvidia_smi("NVIDIA L4, 23034, 575.57.08")
    assert ee.resolve_device("auto", gpu, "linux") == "cuda"
    assert ee.resolve_device("auto", [], "linux") == "cpu"
    assert ee.resolve_device("auto", gpu, "darwin") == "cpu"
    assert ee.resolve_device("cpu", gpu, "win32") == "cpu"
    with pytest.raises(ee.SetupError, match="nvidia-smi reports no NVIDIA GPU"):
        ee.resolve_device("cuda", [], "win32")
    with pytest.raises(ee.SetupError, match="macOS"):
        ee.resolve_device("cuda", gpu, "darwin")


def test_query_gpus_uses_nvidia_smi_and_tolerates_its_absence():
    def run(cmd, **kw):
        assert cmd[0] == "/usr/bin/nvidia-smi" and "--query-gpu=name,memory.total,driver_version" in cmd
        return subprocess.CompletedProcess(cmd, 0, stdout="NVIDIA A100-SXM4-80GB, 81920, 550.54.15\n")

    gpus = ee.query_gpus("linux", which=lambda name: "/usr/bin/nvidia-smi", run=run)
    assert gpus[0].driver_version == "550.54.15"
    assert ee.query_gpus("linux", which=lambda name: None) == []
    assert ee.pinned_version("torch", os.path.join(REPO, "constraints.txt")) == "2.13.0"


def test_installer_command_lines():
    pip = ee.Installer.choose("auto", which=lambda name: None)
    assert pip.name == "pip"
    assert pip.create_venv("/usr/bin/python3.11", "/env", clear=False) == ["/usr/bin/python3.11", "-m", "venv", "/env"]
    assert pip.install("/env/bin/python", ["-r", "r.txt"])[:4] == ["/env/bin/python", "-m", "pip", "install"]
    uv = ee.Installer.choose("auto", which=lambda name: "/usr/local/bin/uv")
    assert uv.create_venv("/usr/bin/python3.11", "/env", clear=True) == [
        "/usr/local/bin/uv", "venv", "--seed", "--python", "/usr/bin/python3.11", "--clear", "/env"]
    assert uv.install("/env/bin/python", ["torch"]) == ["/usr/local/bin/uv", "pip", "install", "--python",
                                                        "/env/bin/python", "torch"]
    assert ee.Installer.choose("pip", which=lambda name: "/usr/local/bin/uv").name == "pip"
    with pytest.raises(ee.SetupError):
        ee.Installer.choose("uv", which=lambda name: None)


# ------------------------------------------------------------------------------------------ the set-up


def test_target_folder_checks(tmp_path):
    def setup(env_dir, protected=()):
        return ee.EngineSetup(ee.SetupOptions(plugin_dir=REPO, env_dir=str(env_dir)), log=lambda m: None,
                              protected=list(protected), gpus=[])

    with pytest.raises(ee.SetupError, match="inside the plugin folder"):
        setup(os.path.join(REPO, ".engine")).check_target()
    qgis_prefix = tmp_path / "qgis" / "apps" / "Python312"
    qgis_prefix.mkdir(parents=True)
    with pytest.raises(ee.SetupError, match="QGIS's own Python"):
        setup(tmp_path / "qgis", protected=[str(qgis_prefix)]).check_target()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.odt").write_text("x")
    with pytest.raises(ee.SetupError, match="not a Python virtual environment"):
        setup(tmp_path / "docs").check_target()
    setup(tmp_path / "new").check_target()  # a new folder is fine


def test_second_run_only_checks(tmp_path, monkeypatch):
    """A matching stamp + a working interpreter: the engine check runs, pip never does."""
    env_dir = tmp_path / "engine"
    (env_dir / "bin").mkdir(parents=True)
    venv = os.path.dirname(os.path.dirname(ENGINE_PYTHON))  # the developer venv, seen through links
    (env_dir / "pyvenv.cfg").write_text(open(os.path.join(venv, "pyvenv.cfg")).read())
    os.symlink(os.path.join(venv, "lib"), env_dir / "lib")
    os.symlink(ENGINE_PYTHON, env_dir / "bin" / "python")
    opts = ee.SetupOptions(plugin_dir=REPO, env_dir=str(env_dir), device="cpu")
    steps = []
    setup = ee.EngineSetup(opts, log=lambda m: None, gpus=[], status=steps.append)
    wanted = {"requirements": ee.requirements_digest(REPO), "device": "cpu", "mamba": False, "index_url": "",
              "torch": "2.13.0", "python": setup.python}
    ee.write_stamp(str(env_dir), dict(wanted, torch_installed="2.13.0+cpu"))

    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run on a check-only run")

    monkeypatch.setattr(ee, "run_streamed", no_pip)
    result = setup.run()
    assert result.action == "checked" and result.doctor["torch"].startswith("2.13.0")
    assert set(result.timings) == {"check"} and steps == ["check"]
    # a changed requirement (plugin upgrade) is noticed: the next run installs
    stamp = json.loads((env_dir / ee.STAMP_FILE).read_text())
    assert setup.stamp_matches(stamp, wanted)
    assert not setup.stamp_matches(dict(stamp, requirements="0" * 16), wanted)
    assert not setup.stamp_matches(stamp, dict(wanted, mamba=True))


def test_report_text_is_copyable(tmp_path):
    text = ee.format_report([("System", [("platform", "Linux"), ("CPU cores", 2)]),
                             ("Engine packages", [("torch", "2.13.0+cpu"), ("rasterio", "1.4.4")])])
    assert text.startswith("# BDGF engine report") and "## Engine packages" in text
    assert "torch    : 2.13.0+cpu" in text
    sections = dict(ee.engine_sections("/no/such/python", "setting", REPO))
    assert sections["Engine environment"][2] == ("exists", False)
    assert "error" in dict(sections["Engine check (python -m engine doctor)"])


def test_disk_space_is_checked_before_downloading(tmp_path):
    class Usage:
        def __init__(self, free_gib):
            self.free = free_gib * 2 ** 30

    target = tmp_path / "not" / "yet" / "there"
    assert ee.check_free_space(str(target), 2.5, disk_usage=lambda p: Usage(40.0)) == 40.0
    with pytest.raises(ee.SetupError) as exc:
        ee.check_free_space(str(target), ee.NEEDED_GIB["cuda"], disk_usage=lambda p: Usage(3.2))
    assert "3.2 GB" in exc.value.message and "8 GB" in exc.value.message


def test_setup_on_simulated_windows_uses_scripts_python(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "win32")
    setup = ee.EngineSetup(ee.SetupOptions(plugin_dir=REPO, env_dir=r"C:\Users\u\AppData\Roaming\QGIS\QGIS3"
                                                                     r"\profiles\default\bdgf\engine"),
                           log=lambda m: None, gpus=[])
    assert setup.python == r"C:\Users\u\AppData\Roaming\QGIS\QGIS3\profiles\default\bdgf\engine\Scripts\python.exe"
    assert ee.is_windows() and ee.popen_flags()["creationflags"] == 0x08000200
    assert ee.torch_plans("cpu", "2.13.0", [], None)[0].requirement == "torch==2.13.0"  # PyPI: CPU-only on Windows
    assert ee.nvidia_smi_path(which=lambda name: None, environ={}, exists=lambda p: False) is None
    assert ee.nvidia_smi_path(which=lambda name: None, environ={"ProgramFiles": r"D:\Programs"},
                              exists=lambda p: True) == r"D:\Programs\NVIDIA Corporation\NVSMI\nvidia-smi.exe"


def test_automatic_installer_falls_back_from_uv_to_pip(tmp_path, monkeypatch):
    """uv ignores pip's configuration (proxy, mirror): when it fails, the automatic choice retries with pip."""
    commands = []

    def fake_run(cmd, on_line, is_cancelled=None, **kw):
        commands.append(cmd)
        return 1 if cmd[0].endswith("uv") else 0

    monkeypatch.setattr(ee, "run_streamed", fake_run)
    setup = ee.EngineSetup(ee.SetupOptions(plugin_dir=REPO, env_dir=str(tmp_path / "engine")), log=lambda m: None,
                           gpus=[])
    installer = ee.Installer(uv="/usr/local/bin/uv")
    assert setup.pip(installer, ["-r", "requirements.txt"], "requirements") == 0
    assert commands[0][:3] == ["/usr/local/bin/uv", "pip", "install"]
    assert commands[1][1:4] == ["-m", "pip", "install"] and installer.name == "pip"
    # chosen explicitly, uv is not replaced
    setup.o.installer = "uv"
    with pytest.raises(ee.SetupError):
        setup.pip(ee.Installer(uv="/usr/local/bin/uv"), ["-r", "requirements.txt"], "requirements")


def test_cuda_install_moves_to_the_next_build_when_one_has_no_wheel(tmp_path, monkeypatch):
    """Driver 575 allows cu129 first; pretend only cu126 has a torch 2.13.0 wheel for this Python."""
    commands = []

    def fake_run(cmd, on_line, is_cancelled=None, **kw):
        commands.append(cmd)
        return 0 if "torch==2.13.0+cu126" in cmd else 1

    monkeypatch.setattr(ee, "run_streamed", fake_run)
    gpus = ee.parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564, 575.64.03")
    setup = ee.EngineSetup(ee.SetupOptions(plugin_dir=REPO, env_dir=str(tmp_path / "engine"), device="cuda",
                                           installer="pip"), log=lambda m: None, gpus=gpus)
    monkeypatch.setattr(setup, "installed_version", lambda name: None)
    plan = setup.install_torch(ee.Installer(), {"device": "cuda", "torch": "2.13.0"})
    assert plan.flavor == "cu126"
    tried = [c[c.index("--index-url") + 1].rsplit("/", 1)[1] for c in commands]
    assert tried == ["cu129", "cu128", "cu126"]
    # a torch already installed with the right build is kept
    commands.clear()
    monkeypatch.setattr(setup, "installed_version", lambda name: "2.13.0+cu129")
    assert setup.install_torch(ee.Installer(), {"device": "cuda", "torch": "2.13.0"}).flavor == "cu129"
    assert commands == []


def test_reinstall_recreates_the_venv_from_scratch(tmp_path, monkeypatch):
    env_dir = tmp_path / "engine"
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (env_dir / "bin" / "python").write_text("")
    venv = ee.PythonInfo(path=str(env_dir / "bin" / "python"), executable="", version=(3, 11, 2),
                         prefix=str(env_dir), base_prefix="/usr")
    base = ee.PythonInfo(path="/usr/bin/python3.11", executable="", version=(3, 11, 2), prefix="/usr",
                         base_prefix="/usr")
    commands = []
    monkeypatch.setattr(ee, "probe_python", lambda path, **kw: venv)
    monkeypatch.setattr(ee, "find_base_python", lambda *a, **kw: base)
    monkeypatch.setattr(ee, "run_streamed", lambda cmd, *a, **kw: commands.append(cmd) or 0)
    opts = ee.SetupOptions(plugin_dir=REPO, env_dir=str(env_dir))
    ee.EngineSetup(opts, log=lambda m: None, gpus=[]).ensure_venv(ee.Installer())
    assert commands == []  # a working venv is kept
    opts.reinstall = True
    ee.EngineSetup(opts, log=lambda m: None, gpus=[]).ensure_venv(ee.Installer())
    assert commands == [["/usr/bin/python3.11", "-m", "venv", "--clear", str(env_dir)]]
