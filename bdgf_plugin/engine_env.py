"""The engine's private Python environment: find a base Python, create a venv, install the pinned engine
requirements with the right torch build, check it with ``python -m engine doctor`` (stdlib only: no QGIS,
no torch, so every branch is unit-testable, Windows and macOS ones included by passing ``platform=``).

Design (issue 14; the lessons of Deepness, dzetsaka, SCP and EnMAP-Box: never pip into QGIS's Python):

* The environment is a standard ``venv`` (or ``uv venv`` when uv is on PATH) **without** system site
  packages, in a folder outside the plugin (``<QGIS profile>/bdgf/engine`` by default), so a plugin upgrade
  keeps it and QGIS's own numpy / GDAL are never seen, upgraded or shadowed.
* The base interpreter is the user's choice, else QGIS's own interpreter's base installation
  (``sys.base_prefix``: OSGeo4W / the QGIS installer on Windows, the app bundle on macOS, the system Python
  on Linux), else another Python 3.10+ found on the system.
* Every install runs ``<venv python> -m pip`` with ``PIP_REQUIRE_VIRTUALENV=1``; the venv's ``sys.prefix``
  is checked against the target folder first. Nothing ever runs pip with QGIS's interpreter.
* torch: CPU builds from the platform's default source (PyPI on Windows and macOS; on Linux the pip
  configuration when it already yields a ``+cpu`` build, otherwise the PyTorch CPU index), or a CUDA build
  whose minimum NVIDIA driver (from ``nvidia-smi``) is met, newest first.
* A stamp file (``bdgf-env.json``) records what was installed; a second run with the same requirements only
  runs the check.
"""

from __future__ import annotations

import hashlib
import json
import ntpath
import os
import posixpath
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

MIN_PYTHON = (3, 10)
STAMP_FILE = "bdgf-env.json"
REQUIREMENTS = "requirements.txt"
CONSTRAINTS = "constraints.txt"
DEVICE_CHOICES = ("auto", "cpu", "cuda")
PYTORCH_INDEX = "https://download.pytorch.org/whl/{flavor}"

# Windows process-creation flags (values from the Win32 API; the subprocess module only defines them on
# Windows, and tests simulate Windows on Linux).
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000

# CUDA builds of torch, newest first, with the minimum NVIDIA driver of that CUDA release (Linux, Windows),
# from NVIDIA's CUDA toolkit release notes (table "CUDA Toolkit and Corresponding Driver Versions").
CUDA_BUILDS: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("cu130", (580, 65, 6), (580, 88)),
    ("cu129", (575, 51, 3), (576, 2)),
    ("cu128", (570, 26), (570, 65)),
    ("cu126", (560, 28, 3), (560, 76)),
    ("cu124", (550, 54, 14), (551, 61)),
    ("cu121", (530, 30, 2), (531, 14)),
    ("cu118", (520, 61, 5), (520, 6)),
)

# QGIS (and its launchers) set these for QGIS's own Python / GDAL / PROJ; in the engine's interpreter they
# would load QGIS's packages or data of another GDAL/PROJ version.
LEAKY_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__",
                   "VIRTUAL_ENV", "PROJ_LIB", "PROJ_DATA", "GDAL_DATA", "GDAL_DRIVER_PATH", "GDAL_PLUGINS")

PROBE_CODE = (
    "import json, sys, platform, importlib.util as u; print(json.dumps({"
    "'executable': sys.executable, 'version': list(sys.version_info[:3]), 'prefix': sys.prefix, "
    "'base_prefix': getattr(sys, 'base_prefix', sys.prefix), 'machine': platform.machine(), "
    "'system': platform.system(), 'has_venv': u.find_spec('venv') is not None, "
    "'has_ensurepip': u.find_spec('ensurepip') is not None, 'has_pip': u.find_spec('pip') is not None}))"
)

PACKAGES_CODE = (
    "import json, importlib.metadata as m; print(json.dumps(sorted("
    "[(d.metadata['Name'] or '?', d.version) for d in m.distributions()], key=lambda x: x[0].lower())))"
)


class SetupError(Exception):
    """A set-up step failed; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f"\nHint: {self.hint}" if self.hint else "")


class SetupCancelled(SetupError):
    """The user cancelled; the running subprocess was stopped."""


# ---------------------------------------------------------------------------------------------------------
# paths and environment


def is_windows(platform: str | None = None) -> bool:
    return (platform or sys.platform).startswith("win")


def _path(platform: str | None):
    return ntpath if is_windows(platform) else posixpath


def venv_python(env_dir: str, platform: str | None = None) -> str:
    """The interpreter of a venv: ``Scripts\\python.exe`` on Windows, ``bin/python`` elsewhere."""
    if is_windows(platform):
        return ntpath.join(env_dir, "Scripts", "python.exe")
    return posixpath.join(env_dir, "bin", "python")


def default_env_dir(profile_dir: str) -> str:
    """``<QGIS profile folder>/bdgf/engine``: outside the plugin folder, so plugin upgrades keep it."""
    return os.path.join(profile_dir, "bdgf", "engine")


def setup_log_path(env_dir: str) -> str:
    """The set-up log, next to the environment folder (``venv --clear`` empties the folder itself)."""
    return os.path.normpath(env_dir) + "-setup.log"


def same_path(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def is_inside(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or inside it (after resolving links)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def clean_environment(environ: dict | None = None, plugin_dir: str | None = None) -> dict:
    """A copy of ``environ`` for the engine's interpreter and its pip.

    Removes what QGIS sets for its own Python, GDAL and PROJ (:data:`LEAKY_VARIABLES`) and puts
    ``plugin_dir`` (the folder holding the ``engine`` package) on PYTHONPATH. The user site-packages stay
    visible: an *Engine Python* set by hand may rely on ``pip install --user`` (a venv ignores them anyway).
    """
    env = dict(os.environ if environ is None else environ)
    for key in LEAKY_VARIABLES:
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    if plugin_dir:
        env["PYTHONPATH"] = plugin_dir
    return env


def popen_flags(platform: str | None = None) -> dict:
    """Keyword arguments for ``subprocess.Popen``: no console window on Windows (a console would flash for
    each pip call from QGIS desktop) and an own process group everywhere, so a cancel reaches the children."""
    if is_windows(platform):
        return {"creationflags": CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def stop_process_tree(proc: subprocess.Popen, platform: str | None = None, grace_s: float = 3.0,
                      run: Callable = subprocess.run) -> None:
    """Stop ``proc`` and its children: ``taskkill /T /F`` on Windows, SIGTERM then SIGKILL to the process
    group elsewhere (pip may be running a build backend or a compiler)."""
    if proc.poll() is not None:
        return
    if is_windows(platform):
        try:
            run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True,
                **popen_flags(platform))
        except OSError:
            pass
        if proc.poll() is None:
            proc.kill()
    else:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except OSError:
                proc.kill()
            try:
                proc.wait(grace_s)
                break
            except subprocess.TimeoutExpired:
                continue
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass


def run_streamed(cmd: list[str], on_line: Callable[[str], None], is_cancelled: Callable[[], bool] = lambda: False,
                 env: dict | None = None, cwd: str | None = None, log=None, poll_s: float = 0.2,
                 platform: str | None = None) -> int:
    """Run ``cmd``, passing each line of its stdout + stderr to ``on_line`` as it comes.

    Returns the exit code. Raises :class:`SetupCancelled` after stopping the process tree when
    ``is_cancelled()`` turns true (checked every ``poll_s`` seconds, also while the process is silent), and
    SetupError when ``cmd[0]`` cannot be started.
    """
    if log is not None:
        log.write("$ " + subprocess.list2cmdline(cmd) + "\n")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, encoding="utf-8", errors="replace", bufsize=1, env=env, cwd=cwd,
                                **popen_flags(platform))
    except OSError as exc:
        raise SetupError(f"{cmd[0]} could not be started: {exc}", "check that the file exists and can run")
    lines: queue.Queue = queue.Queue()

    def read():
        for text in iter(proc.stdout.readline, ""):
            lines.put(text.rstrip("\r\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            if is_cancelled():
                stop_process_tree(proc, platform)
                raise SetupCancelled("Cancelled: stopped " + os.path.basename(cmd[0]) + f" (process {proc.pid}).")
            try:
                text = lines.get(timeout=poll_s)
            except queue.Empty:
                continue
            if text is None:
                break
            if log is not None:
                log.write(text + "\n")
            if text.strip():
                on_line(text)
        return proc.wait()
    finally:
        if proc.poll() is None:
            stop_process_tree(proc, platform)
        reader.join(1.0)
        proc.stdout.close()


# ---------------------------------------------------------------------------------------------------------
# base Python discovery


@dataclass
class PythonInfo:
    """What :func:`probe_python` learnt about an interpreter."""

    path: str
    executable: str
    version: tuple
    prefix: str
    base_prefix: str
    machine: str = ""
    system: str = ""
    has_venv: bool = True
    has_ensurepip: bool = True
    has_pip: bool = False

    @property
    def is_venv(self) -> bool:
        return os.path.normcase(os.path.normpath(self.prefix)) != os.path.normcase(
            os.path.normpath(self.base_prefix))

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)


def probe_python(path: str, timeout: float = 60.0, env: dict | None = None,
                 platform: str | None = None) -> PythonInfo:
    """Start ``path`` and ask it for its version, prefixes and venv support. Raises SetupError."""
    if not path or not os.path.isfile(path):
        raise SetupError(f"Python interpreter not found: {path}", "give the full path of a python executable")
    try:
        proc = subprocess.run([path, "-I", "-c", PROBE_CODE], capture_output=True, text=True, timeout=timeout,
                              env=clean_environment(env), stdin=subprocess.DEVNULL, **popen_flags(platform))
    except (OSError, subprocess.SubprocessError) as exc:
        raise SetupError(f"{path} does not start: {exc}", "give another Python 3.10+ interpreter")
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (proc.stderr or proc.stdout).strip()[-500:]
        raise SetupError(f"{path} is not a working Python interpreter (exit code {proc.returncode}): {tail}",
                         "give another Python 3.10+ interpreter")
    return PythonInfo(path=path, executable=data["executable"], version=tuple(data["version"]),
                      prefix=data["prefix"], base_prefix=data["base_prefix"], machine=data["machine"],
                      system=data["system"], has_venv=data["has_venv"], has_ensurepip=data["has_ensurepip"],
                      has_pip=data["has_pip"])


def _versions_newest_first(low=MIN_PYTHON, high=(3, 14)) -> list[str]:
    return [f"{low[0]}.{minor}" for minor in range(high[1], low[1] - 1, -1)]


def candidate_base_pythons(platform: str | None = None, executable: str | None = None,
                           base_prefix: str | None = None, version: tuple | None = None,
                           environ: dict | None = None, which: Callable = shutil.which) -> list[str]:
    """Interpreters to try as the venv's base, best first (paths need not exist; duplicates removed).

    Windows (OSGeo4W, QGIS installer): ``<base_prefix>\\python.exe`` (QGIS's ``apps\\Python3xx``), the
    ``python3.exe`` / ``python.exe`` next to QGIS's executable, ``%OSGEO4W_ROOT%\\apps\\Python3*``, then
    ``py``-less PATH lookups. macOS (QGIS.app, Homebrew, python.org): ``<base_prefix>/bin/python3.X``, the
    bundle's ``Contents/MacOS/bin/python3``, then python.org and Homebrew locations. Linux: QGIS's
    interpreter ``<base_prefix>/bin/python3.X`` (the system Python), ``/usr/bin/python3``, then
    ``python3.X`` on PATH.
    """
    platform = platform or sys.platform
    executable = sys.executable if executable is None else executable
    base_prefix = getattr(sys, "base_prefix", sys.prefix) if base_prefix is None else base_prefix
    version = tuple(sys.version_info[:2]) if version is None else tuple(version[:2])
    environ = os.environ if environ is None else environ
    p = _path(platform)
    xy = f"{version[0]}.{version[1]}"
    exe_dir = p.dirname(executable) if executable else ""
    found: list[str] = []
    if is_windows(platform):
        found += [p.join(base_prefix, "python.exe"), p.join(exe_dir, "python3.exe"), p.join(exe_dir, "python.exe")]
        root = environ.get("OSGEO4W_ROOT", "")
        if root:
            found += [p.join(root, "apps", f"Python{v.replace('.', '')}", "python.exe")
                      for v in _versions_newest_first()]
        found += [which(name) or "" for name in ("python3", "python")]
    elif platform == "darwin":
        found += [p.join(base_prefix, "bin", f"python{xy}"), p.join(base_prefix, "bin", "python3"),
                  p.join(exe_dir, "bin", "python3"), p.join(exe_dir, f"python{xy}"), p.join(exe_dir, "python3")]
        for v in _versions_newest_first():
            found += [f"/Library/Frameworks/Python.framework/Versions/{v}/bin/python{v}",
                      f"/opt/homebrew/bin/python{v}", f"/usr/local/bin/python{v}"]
        found += [which(f"python{v}") or "" for v in _versions_newest_first()] + [which("python3") or ""]
    else:
        found += [p.join(base_prefix, "bin", f"python{xy}"), p.join(base_prefix, "bin", "python3"),
                  "/usr/bin/python3"]
        found += [which(f"python{v}") or "" for v in _versions_newest_first()] + [which("python3") or ""]
    unique: list[str] = []
    for path in found:
        if path and path not in unique:
            unique.append(path)
    return unique


def check_base_python(info: PythonInfo, uv: str | None = None) -> str:
    """'' when ``info`` can be a venv base, else the reason it cannot."""
    if info.version[:2] < MIN_PYTHON:
        return f"Python {info.version_text} is older than {MIN_PYTHON[0]}.{MIN_PYTHON[1]}"
    if not uv and not (info.has_venv and info.has_ensurepip):
        return (f"Python {info.version_text} has no venv/ensurepip module (on Debian and Ubuntu: "
                f"sudo apt install python3-venv)")
    return ""


def find_base_python(user_python: str | None = None, uv: str | None = None, log: Callable = lambda m: None,
                     probe: Callable = probe_python, exists: Callable = os.path.isfile,
                     **candidates_kw) -> PythonInfo:
    """The interpreter to build the venv from: ``user_python`` when given (must be usable), else the first
    usable of :func:`candidate_base_pythons`. A virtual environment's interpreter is accepted too (``venv``
    builds from its base installation and never installs into it).

    Raises SetupError listing what was tried and why each was rejected.
    """
    tried: list[str] = []
    paths = [user_python] if user_python else candidate_base_pythons(**candidates_kw)
    for path in paths:
        if not user_python and not exists(path):
            continue
        try:
            info = probe(path)
        except SetupError as exc:
            tried.append(f"{path}: {exc.message}")
            continue
        reason = check_base_python(info, uv)
        if reason:
            tried.append(f"{path}: {reason}")
            continue
        log(f"Base Python: {path} (Python {info.version_text}, {info.system} {info.machine})")
        return info
    if user_python:
        raise SetupError("The given base Python cannot be used: " + "; ".join(tried),
                         "give a Python 3.10 or newer with the venv module (python.org, Homebrew, your "
                         "distribution's python3 + python3-venv)")
    raise SetupError("No usable Python 3.10+ found to build the engine environment. Tried: "
                     + ("; ".join(tried) or "nothing found"),
                     "install Python 3.10 or newer (Linux: your distribution's python3 and python3-venv; "
                     "Windows / macOS: python.org), then give it as 'Base Python'")


# ---------------------------------------------------------------------------------------------------------
# NVIDIA driver and the torch build


@dataclass
class Gpu:
    name: str
    memory_mib: int | None
    driver_version: str


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Rows of ``nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits``."""
    gpus = []
    for row in text.strip().splitlines():
        parts = [part.strip() for part in row.split(",")]
        if len(parts) < 3 or not parts[0]:
            continue
        try:
            memory = int(float(parts[1]))
        except ValueError:
            memory = None
        gpus.append(Gpu(name=parts[0], memory_mib=memory, driver_version=parts[2]))
    return gpus


def nvidia_smi_path(platform: str | None = None, which: Callable = shutil.which,
                    environ: dict | None = None, exists: Callable = os.path.isfile) -> str | None:
    """nvidia-smi on PATH; on Windows also the NVSMI folder where drivers before R450 put it."""
    found = which("nvidia-smi")
    if found or not is_windows(platform):
        return found
    environ = os.environ if environ is None else environ
    program_files = environ.get("ProgramFiles", r"C:\Program Files")
    legacy = ntpath.join(program_files, "NVIDIA Corporation", "NVSMI", "nvidia-smi.exe")
    return legacy if exists(legacy) else None


def query_gpus(platform: str | None = None, which: Callable = shutil.which,
               run: Callable = subprocess.run) -> list[Gpu]:
    """The NVIDIA GPUs and driver that ``nvidia-smi`` reports ([] without a driver or GPU)."""
    exe = nvidia_smi_path(platform, which)
    if not exe:
        return []
    try:
        proc = run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
                   capture_output=True, text=True, timeout=30, **popen_flags(platform))
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(proc.stdout) if proc.returncode == 0 else []


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text or "")[:3])


def cuda_builds_for_driver(driver_version: str, platform: str | None = None) -> list[str]:
    """The CUDA builds (``cu128`` ...) whose minimum driver ``driver_version`` meets, newest first."""
    driver = parse_version(driver_version)
    col = 2 if is_windows(platform) else 1
    return [row[0] for row in CUDA_BUILDS if driver and driver >= row[col]]


@dataclass
class TorchPlan:
    """One way to install torch: a pip requirement and the index it comes from (None: pip's own config)."""

    flavor: str                 # "cpu", "cu128", ... or "custom"
    requirement: str            # e.g. "torch==2.13.0+cpu"
    index_url: str | None = None
    probe: bool = False         # accept only if pip's own configuration resolves it to a "+cpu" build

    def describe(self) -> str:
        source = self.index_url or "the pip configuration"
        return f"{self.requirement} ({self.flavor}) from {source}"


def pinned_version(package: str, *paths: str) -> str | None:
    """The ``==`` version of ``package`` in the first requirements/constraints file that pins it."""
    pattern = re.compile(rf"^\s*{re.escape(package)}\s*==\s*([^\s;#]+)", re.IGNORECASE)
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    match = pattern.match(line)
                    if match:
                        return match.group(1)
        except OSError:
            continue
    return None


def resolve_device(device: str, gpus: list[Gpu], platform: str | None = None) -> str:
    """'cpu' or 'cuda' for the requested ``auto`` / ``cpu`` / ``cuda``. Raises SetupError for impossible CUDA."""
    platform = platform or sys.platform
    if device not in DEVICE_CHOICES:
        raise SetupError(f"Unknown device {device!r}", "use auto, cpu or cuda")
    if device == "cpu":
        return "cpu"
    if platform == "darwin":
        if device == "cuda":
            raise SetupError("CUDA is not available on macOS", "choose Automatic or CPU (torch uses the CPU there)")
        return "cpu"
    if not gpus:
        if device == "cuda":
            raise SetupError("CUDA was requested but nvidia-smi reports no NVIDIA GPU or driver",
                             "install the NVIDIA driver (nvidia-smi must work), or choose CPU")
        return "cpu"
    return "cuda"


def torch_plans(device: str, torch_version: str, gpus: list[Gpu], platform: str | None = None,
                index_url: str | None = None) -> list[TorchPlan]:
    """The torch builds to try, in order, for ``device`` ('cpu' or 'cuda' from :func:`resolve_device`).

    CPU: Windows and macOS take PyPI's torch (CPU-only there). Linux first probes the pip configuration (a
    mirror or wheel folder with a ``+cpu`` build is used as is), then the PyTorch CPU index (PyPI's Linux
    torch is a CUDA build with gigabytes of NVIDIA libraries). CUDA: the builds the driver supports, newest
    first (pip moves on when a build has no wheel for this torch version / Python). ``index_url`` overrides
    the index (one plan). Raises SetupError when the driver is too old for every CUDA build.
    """
    if index_url:
        return [TorchPlan("custom", f"torch=={torch_version}", index_url)]
    if device == "cpu":
        if is_windows(platform) or (platform or sys.platform) == "darwin":
            return [TorchPlan("cpu", f"torch=={torch_version}")]
        return [TorchPlan("cpu", f"torch=={torch_version}", probe=True),
                TorchPlan("cpu", f"torch=={torch_version}+cpu", PYTORCH_INDEX.format(flavor="cpu"))]
    driver = min((g.driver_version for g in gpus), key=parse_version)
    builds = cuda_builds_for_driver(driver, platform)
    if not builds:
        raise SetupError(f"The NVIDIA driver {driver} is too old for the CUDA builds of torch "
                         f"(the oldest, {CUDA_BUILDS[-1][0]}, needs {'.'.join(map(str, CUDA_BUILDS[-1][1]))})",
                         "update the NVIDIA driver, or choose CPU")
    return [TorchPlan(b, f"torch=={torch_version}+{b}", PYTORCH_INDEX.format(flavor=b)) for b in builds]


def torch_flavor_of(version: str) -> str:
    """'cpu', 'cu128', ... from a torch version string such as ``2.13.0+cu128`` ('' without a label)."""
    return version.split("+", 1)[1] if "+" in (version or "") else ""


# disk space an install needs (GiB): torch CPU ~0.8 GB + the rest ~0.4 GB; CUDA builds bring ~3-4 GB of
# NVIDIA libraries, mamba-ssm ~2 GB more; pip also needs room for the downloaded wheels while installing
NEEDED_GIB = {"cpu": 2.5, "cuda": 8.0}


def check_free_space(folder: str, needed_gib: float, disk_usage: Callable = shutil.disk_usage) -> float:
    """Free GiB on the disk that will hold ``folder`` (which may not exist yet). Raises SetupError when less
    than ``needed_gib`` is free, before anything is downloaded."""
    probe = os.path.abspath(folder)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    free = disk_usage(probe).free / 2 ** 30
    if free < needed_gib:
        raise SetupError(f"Only {free:.1f} GB are free on the disk of {folder}; the engine environment needs "
                         f"about {needed_gib:.0f} GB", "free some disk space, or choose another 'Environment folder'")
    return free


# ---------------------------------------------------------------------------------------------------------
# the stamp


def requirements_digest(plugin_dir: str) -> str:
    """sha256 (16 hex) of requirements.txt + constraints.txt: a change means the environment must be updated."""
    digest = hashlib.sha256()
    for name in (REQUIREMENTS, CONSTRAINTS):
        with open(os.path.join(plugin_dir, name), "rb") as fh:
            digest.update(fh.read())
    return digest.hexdigest()[:16]


def read_stamp(env_dir: str) -> dict:
    try:
        with open(os.path.join(env_dir, STAMP_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_stamp(env_dir: str, data: dict) -> None:
    path = os.path.join(env_dir, STAMP_FILE)
    with open(path + ".partial", "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(path + ".partial", path)


# ---------------------------------------------------------------------------------------------------------
# doctor and package versions (run in the engine's interpreter)


def _last_json_object(text: str):
    for line in reversed((text or "").strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, (dict, list)):
            return value
    try:
        return json.loads(text)
    except ValueError:
        return None


def run_doctor(python: str, plugin_dir: str, timeout: float = 300.0, environ: dict | None = None,
               platform: str | None = None) -> dict:
    """``python -m engine doctor`` (JSON: python, torch, torch_cuda_build, cuda, device, device_name, ...).
    Raises SetupError when it fails or torch does not import."""
    try:
        proc = subprocess.run([python, "-m", "engine", "doctor"], cwd=plugin_dir, capture_output=True, text=True,
                              timeout=timeout, env=clean_environment(environ, plugin_dir),
                              stdin=subprocess.DEVNULL, **popen_flags(platform))
    except (OSError, subprocess.SubprocessError) as exc:
        raise SetupError(f"The engine check did not run with {python}: {exc}", "run the set-up again")
    info = _last_json_object(proc.stdout)
    if proc.returncode != 0 or not isinstance(info, dict):
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise SetupError(f"The engine check failed with {python} (exit code {proc.returncode}):\n{tail}",
                         "run the set-up again (with 'Reinstall packages' if it keeps failing)")
    if not info.get("torch"):
        raise SetupError(f"torch does not import in {python}: {info.get('torch_error')}",
                         "run the set-up again (with 'Reinstall packages' if it keeps failing)")
    return info


def installed_packages(python: str, timeout: float = 60.0, platform: str | None = None) -> list[tuple[str, str]]:
    """[(distribution name, version)] installed in ``python``'s environment (importlib.metadata)."""
    proc = subprocess.run([python, "-c", PACKAGES_CODE], capture_output=True, text=True, timeout=timeout,
                          env=clean_environment(), stdin=subprocess.DEVNULL, **popen_flags(platform))
    value = _last_json_object(proc.stdout)
    if proc.returncode != 0 or not isinstance(value, list):
        raise SetupError(f"Could not list the packages of {python}: {(proc.stderr or '').strip()[-300:]}")
    return [(str(name), str(version)) for name, version in value]


# ---------------------------------------------------------------------------------------------------------
# installer commands (pip, or uv when present)


@dataclass
class Installer:
    """Command lines of the standard tools: ``venv`` + ``pip``, or ``uv`` (``uv venv`` / ``uv pip``)."""

    uv: str | None = None

    @classmethod
    def choose(cls, kind: str = "auto", which: Callable = shutil.which) -> "Installer":
        """``auto``: uv when it is on PATH, else pip; ``pip``; ``uv`` (SetupError when not found)."""
        if kind == "pip":
            return cls()
        uv = which("uv")
        if kind == "uv" and not uv:
            raise SetupError("uv was chosen as installer but is not on PATH", "install uv or choose pip")
        return cls(uv=uv or None)

    @property
    def name(self) -> str:
        return "uv" if self.uv else "pip"

    def create_venv(self, base: str, env_dir: str, clear: bool) -> list[str]:
        if self.uv:
            return [self.uv, "venv", "--seed", "--python", base] + (["--clear"] if clear else []) + [env_dir]
        return [base, "-m", "venv"] + (["--clear"] if clear else []) + [env_dir]

    def install(self, python: str, args: list[str]) -> list[str]:
        if self.uv:
            return [self.uv, "pip", "install", "--python", python] + list(args)
        return [python, "-m", "pip", "install", "--progress-bar", "off"] + list(args)

    def resolve_only(self, python: str, requirement: str, report: str) -> list[str]:
        """pip's dry run that writes what it would install to ``report`` (JSON); pip only."""
        return [python, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
                "--report", report, requirement]


# ---------------------------------------------------------------------------------------------------------
# the set-up


@dataclass
class SetupOptions:
    """What :class:`EngineSetup` does (the parameters of ``bdgf:setupengine``)."""

    plugin_dir: str                      # holds engine/, requirements.txt, constraints.txt
    env_dir: str                         # the venv folder (created when missing)
    device: str = "auto"                 # auto | cpu | cuda
    base_python: str | None = None       # None: found automatically
    mamba: bool = False                  # also install mamba-ssm (CUDA on Linux only)
    index_url: str | None = None         # package index for torch (None: chosen from the device)
    installer: str = "auto"              # auto (uv when present) | pip | uv
    reinstall: bool = False              # recreate the venv and reinstall everything, even when the check passes


@dataclass
class SetupResult:
    python: str                          # the engine interpreter (for the Engine Python setting)
    action: str                          # "checked" (nothing installed) | "installed"
    doctor: dict                         # `python -m engine doctor` output
    timings: dict = field(default_factory=dict)   # step -> seconds
    notes: list = field(default_factory=list)     # warnings worth repeating at the end


STEPS = (("venv", 10.0), ("torch", 45.0), ("requirements", 30.0), ("mamba", 5.0), ("check", 10.0))


class EngineSetup:
    """Creates, repairs or checks the engine environment described by :class:`SetupOptions`.

    ``log(message)`` gets status lines, ``console(line)`` every line of pip's output, ``progress(percent)`` a
    monotonic 0-100 value, ``status(step)`` the id of each step as it starts (:data:`STEPS`: venv, torch,
    requirements, mamba, check), and ``is_cancelled()`` is polled while subprocesses run (they are killed then).
    ``protected`` lists interpreter prefixes that must never be the target (QGIS's own ``sys.prefix`` and
    ``sys.base_prefix`` by default).
    """

    def __init__(self, options: SetupOptions, log: Callable = print, console: Callable | None = None,
                 progress: Callable | None = None, is_cancelled: Callable = lambda: False,
                 environ: dict | None = None, protected: Iterable[str] | None = None, gpus: list | None = None,
                 status: Callable | None = None):
        self.o = options
        self.status = status or (lambda step: None)
        self.log = log
        self.console = console or log
        self.progress = progress or (lambda value: None)
        self.is_cancelled = is_cancelled
        self.environ = dict(os.environ if environ is None else environ)
        self.protected = list(protected if protected is not None else {sys.prefix, sys.base_prefix})
        self.gpus = gpus
        self.python = venv_python(options.env_dir, sys.platform)
        self.constraints = os.path.join(options.plugin_dir, CONSTRAINTS)
        self.requirements = os.path.join(options.plugin_dir, REQUIREMENTS)
        self.timings: dict = {}
        self.notes: list = []
        self._log_file = None
        self._done = 0.0

    # ------------------------------------------------------------------ driver
    def run(self) -> SetupResult:
        """Check, and install only what is missing or out of date. Raises SetupError / SetupCancelled."""
        self.check_target()
        if self.gpus is None:
            self.gpus = query_gpus()
        device = resolve_device(self.o.device, self.gpus)
        torch_version = pinned_version("torch", self.constraints, self.requirements)
        if not torch_version:
            raise SetupError(f"{self.constraints} does not pin torch (torch==X.Y.Z)", "reinstall the plugin")
        wanted = {"requirements": requirements_digest(self.o.plugin_dir), "device": device,
                  "mamba": bool(self.o.mamba and device == "cuda"), "index_url": self.o.index_url or "",
                  "torch": torch_version, "python": self.python}
        self.log(self.describe_hardware(device))
        if not self.o.reinstall and self.stamp_matches(read_stamp(self.o.env_dir), wanted):
            try:
                doctor = self.timed("check", lambda: run_doctor(self.python, self.o.plugin_dir, environ=self.environ))
                self.progress(100.0)
                self.log(f"The engine environment in {self.o.env_dir} is up to date: nothing to install.")
                return SetupResult(self.python, "checked", doctor, self.timings, self.notes)
            except SetupError as exc:
                self.log(f"The check failed, repairing the environment: {exc.message}")
        os.makedirs(self.o.env_dir, exist_ok=True)
        with open(setup_log_path(self.o.env_dir), "a", encoding="utf-8") as self._log_file:
            self._log_file.write(f"\n# set-up {time.strftime('%Y-%m-%d %H:%M:%S')} {json.dumps(asdict(self.o))}\n")
            return self.install(wanted)

    def install(self, wanted: dict) -> SetupResult:
        check_free_space(self.o.env_dir, NEEDED_GIB[wanted["device"]])
        installer = Installer.choose(self.o.installer)
        self.log(f"Installer: {installer.name}")
        base = self.timed("venv", lambda: self.ensure_venv(installer))
        self.step_done("venv")
        plan = self.timed("torch", lambda: self.install_torch(installer, wanted))
        self.step_done("torch")
        self.timed("requirements", lambda: self.pip(installer, ["-c", self.constraints, "-r", self.requirements],
                                                   "requirements"))
        self.step_done("requirements")
        mamba = self.timed("mamba", lambda: self.install_mamba(installer)) if wanted["mamba"] else False
        self.step_done("mamba")
        doctor = self.timed("check", lambda: run_doctor(self.python, self.o.plugin_dir, environ=self.environ))
        if wanted["device"] == "cuda" and not doctor.get("cuda"):
            raise SetupError(f"torch {doctor.get('torch')} was installed but does not see the GPU "
                             f"({doctor.get('torch_error') or 'torch.cuda.is_available() is False'})",
                             "check the NVIDIA driver with nvidia-smi, or run the set-up with device CPU")
        write_stamp(self.o.env_dir, dict(wanted, mamba=mamba, torch_installed=doctor.get("torch"),
                                         torch_plan=plan.describe(), base_python=base,
                                         installer=installer.name, created=time.strftime("%Y-%m-%dT%H:%M:%S")))
        self.progress(100.0)
        return SetupResult(self.python, "installed", doctor, self.timings, self.notes)

    # ------------------------------------------------------------------ steps
    def check_target(self) -> None:
        """Refuse a target inside the plugin folder (an upgrade deletes it) or in QGIS's own interpreter."""
        env_dir = self.o.env_dir
        if is_inside(env_dir, self.o.plugin_dir):
            raise SetupError(f"The engine environment folder {env_dir} is inside the plugin folder, which a "
                             f"plugin upgrade deletes", "choose a folder outside the plugin (or leave it empty)")
        for prefix in self.protected:
            if prefix and is_inside(prefix, env_dir):
                raise SetupError(f"{env_dir} holds QGIS's own Python installation ({prefix}); the engine never "
                                 f"installs there", "choose an empty folder of its own (or leave it empty)")
        if os.path.isdir(env_dir) and os.listdir(env_dir) and not os.path.isfile(os.path.join(env_dir, "pyvenv.cfg")):
            raise SetupError(f"{env_dir} exists and is not a Python virtual environment",
                             "choose an empty or new folder (or leave it empty)")

    def stamp_matches(self, stamp: dict, wanted: dict) -> bool:
        if not stamp or not os.path.isfile(self.python):
            return False
        same = all(stamp.get(k) == v for k, v in wanted.items() if k != "mamba")
        return same and (stamp.get("mamba") or not wanted["mamba"])

    def ensure_venv(self, installer: Installer) -> str:
        """Keep a working venv (of the wanted base, when one was given), else create it (emptied first when
        *reinstall* is set: the sure repair); returns the base."""
        current = None
        if os.path.isfile(self.python):
            try:
                current = probe_python(self.python)
            except SetupError as exc:
                self.log(f"The existing environment does not start ({exc.message}); creating it again.")
        if current is not None and current.is_venv and not self.o.base_python and not self.o.reinstall:
            self.log(f"Using the existing environment {self.o.env_dir} (Python {current.version_text}).")
            self.verify_venv(current)
            return current.base_prefix
        base = find_base_python(self.o.base_python, installer.uv, log=self.log)
        if (current is not None and current.is_venv and not self.o.reinstall
                and same_path(current.base_prefix, base.base_prefix)):
            self.verify_venv(current)
            return base.path
        self.log(f"Creating the engine environment in {self.o.env_dir} (this takes a few seconds).")
        clear = os.path.isfile(os.path.join(self.o.env_dir, "pyvenv.cfg"))
        code = self.stream(installer.create_venv(base.path, self.o.env_dir, clear=clear))
        if code != 0 or not os.path.isfile(self.python):
            raise SetupError(f"Creating the virtual environment with {base.path} failed (exit code {code}); "
                             f"see {setup_log_path(self.o.env_dir)}",
                             "on Debian/Ubuntu install python3-venv; or give another Base Python")
        self.verify_venv(probe_python(self.python))
        return base.path

    def verify_venv(self, info: PythonInfo) -> None:
        """The interpreter pip will run must be a venv whose prefix is the target folder."""
        if not info.is_venv or not is_inside(info.prefix, self.o.env_dir):
            raise SetupError(f"{self.python} is not a virtual environment in {self.o.env_dir} "
                             f"(its prefix is {info.prefix}); nothing was installed",
                             "delete the folder and run the set-up again")

    def install_torch(self, installer: Installer, wanted: dict):
        device, version = wanted["device"], wanted["torch"]
        plans = torch_plans(device, version, self.gpus, sys.platform, self.o.index_url)
        have = self.installed_version("torch")
        for plan in plans:
            if have and not self.o.reinstall and self.torch_satisfies(have, plan):
                self.log(f"torch {have} is already installed.")
                return plan
            if plan.probe:
                if self.o.installer == "uv" or not self.pip_config_gives_cpu_torch(installer, plan.requirement):
                    continue
                if installer.uv:  # uv does not read pip's configuration, which is what provides this build
                    self.log("Using pip instead of uv: the pip configuration provides the packages.")
                    installer.uv = None
            self.log(f"Installing {plan.describe()}.")
            args = ["-c", self.constraints, plan.requirement] + (["--index-url", plan.index_url] if plan.index_url else [])
            if self.pip(installer, args, "torch", check=False) == 0:
                return plan
            self.log(f"{plan.requirement} is not available from {plan.index_url or 'the pip configuration'}; "
                     f"trying the next build.")
        raise SetupError(f"torch {version} could not be installed ({', '.join(p.describe() for p in plans)}); "
                         f"see {setup_log_path(self.o.env_dir)}",
                         "check the internet connection or proxy (pip must reach the package index), or give a "
                         "'Package index for torch' that has this torch version")

    @staticmethod
    def torch_satisfies(installed: str, plan: TorchPlan) -> bool:
        public, label = installed.split("+", 1)[0], torch_flavor_of(installed)
        wanted_public = plan.requirement.split("==", 1)[1].split("+", 1)[0]
        if public != wanted_public:
            return False
        if plan.flavor == "custom":
            return True
        return label == torch_flavor_of(plan.requirement.split("==", 1)[1])

    def pip_config_gives_cpu_torch(self, installer: Installer, requirement: str) -> bool:
        """Does plain ``pip install torch==X`` (the user's pip configuration: mirror, wheel folder) resolve
        to a ``+cpu`` build? Then no extra index is needed."""
        report = os.path.join(self.o.env_dir, "torch-resolution.json")
        try:
            code = self.stream(installer.resolve_only(self.python, requirement, report))
            if code != 0:
                return False
            with open(report, encoding="utf-8") as fh:
                items = json.load(fh).get("install", [])
            versions = [i.get("metadata", {}).get("version", "") for i in items]
        except (OSError, ValueError):
            return False
        finally:
            if os.path.exists(report):
                os.remove(report)
        found = any(torch_flavor_of(v) == "cpu" for v in versions)
        self.log(f"The pip configuration resolves {requirement} to {', '.join(versions) or 'nothing'}"
                 + ("" if found else " (not a CPU build: using the PyTorch CPU index)") + ".")
        return found

    def install_mamba(self, installer: Installer) -> bool:
        """mamba-ssm's CUDA kernels (optional; Linux + CUDA torch). A failure is a warning: the engine's own
        selective scan runs without them."""
        if is_windows():
            self.note("mamba-ssm has no Windows builds; the engine uses its own (slower) selective scan.")
            return False
        self.log("Installing mamba-ssm (its CUDA kernels; may compile for a long time when no prebuilt wheel "
                 "matches this torch/CUDA/Python).")
        ok = self.pip(installer, ["-c", self.constraints, "packaging", "wheel", "setuptools", "ninja"],
                      "mamba", check=False) == 0
        ok = ok and self.pip(installer, ["-c", self.constraints, "--no-build-isolation", "mamba-ssm"], "mamba",
                             check=False) == 0
        if not ok:
            self.note(f"mamba-ssm could not be installed (see {setup_log_path(self.o.env_dir)}); the engine uses its "
                      "own selective scan.")
        return ok

    # ------------------------------------------------------------------ helpers
    def pip(self, installer: Installer, args: list[str], step: str, check: bool = True) -> int:
        """Install ``args`` into the venv; with the automatic installer a uv failure is retried with pip
        (and pip is used from then on: uv ignores pip's proxy / mirror configuration)."""
        code = self.stream(installer.install(self.python, args), step)
        if code != 0 and installer.uv and self.o.installer == "auto":
            self.log(f"uv failed (exit code {code}); trying again with pip.")
            installer.uv = None
            code = self.stream(installer.install(self.python, args), step)
        if check and code != 0:
            raise SetupError(f"Installing the engine's packages failed (exit code {code}); the last lines "
                             f"above say why, the whole output is in {setup_log_path(self.o.env_dir)}",
                             "check the internet connection or proxy, then run the set-up again")
        return code

    def stream(self, cmd: list[str], step: str | None = None) -> int:
        start, span = self.span(step) if step else (self._done, 0.0)
        count = [0]

        def on_line(line: str) -> None:
            count[0] += 1
            self.console(line)
            if span:
                self.progress(start + span * (1.0 - 0.93 ** count[0]))

        env = clean_environment(self.environ)
        env["PIP_REQUIRE_VIRTUALENV"] = "1"      # pip refuses to run outside a venv: QGIS's Python is safe
        self.console("$ " + subprocess.list2cmdline(cmd))
        return run_streamed(cmd, on_line, self.is_cancelled, env=env, log=self._log_file)

    def span(self, step: str) -> tuple[float, float]:
        total = sum(w for _, w in STEPS)
        start = 0.0
        for name, weight in STEPS:
            if name == step:
                return 100.0 * start / total, 100.0 * weight / total
            start += weight
        return self._done, 0.0

    def step_done(self, step: str) -> None:
        start, span = self.span(step)
        self._done = start + span
        self.progress(self._done)

    def timed(self, step: str, fn: Callable):
        self.status(step)
        t0 = time.monotonic()
        try:
            return fn()
        finally:
            self.timings[step] = round(time.monotonic() - t0, 1)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.log(text)

    def installed_version(self, distribution: str) -> str | None:
        if not os.path.isfile(self.python):
            return None
        code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
        try:
            proc = subprocess.run([self.python, "-c", code], capture_output=True, text=True, timeout=60,
                                  env=clean_environment(self.environ), stdin=subprocess.DEVNULL, **popen_flags())
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def describe_hardware(self, device: str) -> str:
        if not self.gpus:
            gpu = "no NVIDIA GPU found by nvidia-smi"
        else:
            gpu = "; ".join(f"{g.name} ({g.memory_mib} MiB)" for g in self.gpus) + \
                f", driver {self.gpus[0].driver_version}"
        return f"Requested device: {self.o.device} -> torch build for {device.upper()} ({gpu})."


# ---------------------------------------------------------------------------------------------------------
# diagnostics report


def format_report(sections: list[tuple[str, list[tuple[str, object]]]]) -> str:
    """Plain text for bug reports: ``## title`` then ``key: value`` lines (Markdown-friendly, copyable)."""
    lines = ["# BDGF engine report"]
    for title, rows in sections:
        lines += ["", f"## {title}"]
        width = max((len(str(k)) for k, _ in rows), default=0)
        for key, value in rows:
            lines.append(f"{str(key).ljust(width)} : {'' if value is None else value}")
    return "\n".join(lines) + "\n"


def engine_sections(python: str, origin: str, plugin_dir: str, platform: str | None = None) -> list:
    """The engine side of the report: interpreter, set-up stamp, ``engine doctor``, GPUs, packages.
    Never raises: what cannot be found is reported as such."""
    rows: list = [("Engine Python", python), ("from", origin), ("exists", os.path.isfile(python))]
    env_dir = os.path.dirname(os.path.dirname(python))
    stamp = read_stamp(env_dir)
    if stamp:
        rows += [("set up", stamp.get("created")), ("installer", stamp.get("installer")),
                 ("torch build", stamp.get("torch_plan")), ("base Python", stamp.get("base_python"))]
        try:
            current = requirements_digest(plugin_dir)
            rows.append(("requirements", "up to date" if stamp.get("requirements") == current else
                         "changed since the set-up: run bdgf:setupengine again"))
        except OSError:
            pass
    sections = [("Engine environment", rows)]
    try:
        doctor = run_doctor(python, plugin_dir, platform=platform)
        keys = ("python_version", "engine", "torch", "torch_cuda_build", "cuda", "device", "device_name",
                "device_memory_gib", "compute_capability", "device_count", "cpu_threads", "mamba_ssm",
                "mamba_ssm_version", "rasterio", "gdal", "fiona", "numpy", "safetensors")
        sections.append(("Engine check (python -m engine doctor)", [(k, doctor.get(k)) for k in keys if k in doctor]))
    except SetupError as exc:
        sections.append(("Engine check (python -m engine doctor)", [("error", str(exc).replace("\n", " | "))]))
    gpus = query_gpus(platform)
    sections.append(("NVIDIA GPUs (nvidia-smi)", [(f"GPU {i}", f"{g.name}, {g.memory_mib} MiB, driver {g.driver_version}")
                                                  for i, g in enumerate(gpus)] or [("GPUs", "none found")]))
    try:
        packages = installed_packages(python, platform=platform) if os.path.isfile(python) else []
        sections.append(("Engine packages", packages or [("packages", "none")]))
    except (SetupError, OSError, subprocess.SubprocessError) as exc:
        sections.append(("Engine packages", [("error", str(exc))]))
    return sections
