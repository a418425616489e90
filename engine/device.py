"""Compute-device resolution (imports torch lazily, inside the functions)."""

from __future__ import annotations

from typing import Any

from .contract import DEVICES
from .errors import EngineError
from .progress import Reporter


def resolve_device(name: str | None = "auto", reporter: Reporter | None = None, log: bool = True) -> str:
    """Turn ``auto`` / ``cuda`` / ``cpu`` (``contract.DEVICES``) into a concrete torch device string and log it.

    One device per process: under torchrun, ``distributed.setup`` moves each process to ``cuda:LOCAL_RANK``.

    Args:
        name: ``auto`` (CUDA when available, else CPU), ``cuda`` (must be available), ``cpu``.
        reporter: where the log line goes (``Device: cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB, compute 9.0)``
            or ``Device: cpu (16 threads)``).
        log: set False to resolve silently.

    Returns:
        ``"cpu"`` or ``"cuda:0"``.

    Raises:
        EngineError: unknown device name, or CUDA requested but unavailable.
    """
    import torch

    text = (name or "auto").strip().lower()
    if text not in DEVICES:
        raise EngineError(f"Unknown device {name!r}", f"use one of {', '.join(DEVICES)}")
    if text == "auto":
        dev = "cuda:0" if torch.cuda.is_available() else "cpu"
    elif text == "cpu":
        dev = "cpu"
    else:
        if not torch.cuda.is_available():
            raise EngineError(
                f"--device {name} was requested but CUDA is not available to torch {torch.__version__} "
                f"(built for CUDA {torch.version.cuda or 'none'})",
                "use --device cpu or auto, or install a CUDA build of torch that matches the NVIDIA driver "
                "(run `python -m engine doctor`)")
        dev = "cuda:0"
    if log and reporter is not None:
        reporter.info("Device: " + describe_device(dev))
        if dev.startswith("cuda"):
            from .models.mamba import scan_backend

            reporter.info("Mamba branch: " + scan_backend())
    return dev


def describe_device(dev: str) -> str:
    """``"cuda:0 (NVIDIA ..., 79.1 GiB, compute 9.0)"`` or ``"cpu (N threads)"``."""
    import torch

    if dev.startswith("cuda"):
        index = int(dev.split(":", 1)[1]) if ":" in dev else 0
        p = torch.cuda.get_device_properties(index)
        return f"{dev} ({p.name}, {p.total_memory / 2 ** 30:.1f} GiB, compute {p.major}.{p.minor})"
    return f"cpu ({torch.get_num_threads()} threads)"


def doctor_info() -> dict[str, Any]:
    """Environment facts for ``python -m engine doctor``; never raises (missing parts are reported)."""
    import platform
    import sys

    from . import __version__

    info: dict[str, Any] = {"python": sys.executable, "python_version": platform.python_version(),
                            "platform": platform.platform(), "engine": __version__}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda_build"] = torch.version.cuda
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            p = torch.cuda.get_device_properties(0)
            info.update(device="cuda:0", device_name=p.name, device_memory_gib=round(p.total_memory / 2 ** 30, 2),
                        device_count=torch.cuda.device_count(), compute_capability=f"{p.major}.{p.minor}")
        else:
            info.update(device="cpu", device_name=platform.processor() or platform.machine(),
                        cpu_threads=torch.get_num_threads())
    except Exception as exc:  # torch missing or broken
        info.update(torch=None, torch_error=f"{type(exc).__name__}: {exc}", cuda=False, device="cpu",
                    device_name=None)
    try:
        import mamba_ssm  # noqa: F401

        info["mamba_ssm"] = True
        info["mamba_ssm_version"] = getattr(mamba_ssm, "__version__", None)
    except Exception as exc:
        info["mamba_ssm"] = False
        info["mamba_ssm_error"] = f"{type(exc).__name__}: {exc}"[:300]
    for mod in ("rasterio", "fiona", "safetensors", "numpy"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    try:
        import rasterio

        info["gdal"] = rasterio.__gdal_version__
    except Exception:
        info["gdal"] = None
    return info
