"""Windows of the reference grid and the one path from a window to the network's patches.

A :class:`Window` is a rectangle of the reference grid (row/column offsets may be negative or run past the
border: reads are zero-filled there and marked invalid, spec §1.4). :func:`iter_windows` covers a grid or an
extent with windows of a given size (prediction tiles). :func:`read_window` is the single
``window -> diffusion features -> inputs`` step shared by training and prediction: one read of the window plus
the diffusion halo, the DDPM input assembled and its features computed (spec §2.4), the spectral / auxiliary
inputs normalised (spec §1.3). :meth:`WindowInputs.patches` then cuts the ``P x P`` patches around pixels
(:class:`PatchCutter`; :func:`extract_patches`, zero padding beyond the window).

Torch-free itself: the feature extractor is passed in (``engine.models.diffusion.FeatureExtractor``), and
:func:`extract_patches` works on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

import numpy as np

from .grid import StackWindow, as_window

__all__ = ["Window", "iter_windows", "extract_patches", "PatchCutter", "WindowInputs", "read_window"]


@dataclass(frozen=True)
class Window:
    """``height x width`` pixels of the reference grid starting at ``(row_off, col_off)`` (may cross the border)."""

    row_off: int
    col_off: int
    height: int
    width: int

    @classmethod
    def of(cls, window: Any) -> "Window":
        """From a :class:`Window`, a rasterio Window or a ``(row_off, col_off, height, width)`` tuple."""
        return window if isinstance(window, cls) else cls(*as_window(window))

    def grown(self, margin: int) -> "Window":
        """This window with ``margin`` pixels added on every side."""
        m = int(margin)
        return Window(self.row_off - m, self.col_off - m, self.height + 2 * m, self.width + 2 * m)

    def __iter__(self) -> Iterator[int]:
        return iter((self.row_off, self.col_off, self.height, self.width))


def iter_windows(height: int, width: int, size: int, window: Any = None) -> Iterator[Window]:
    """Windows of ``size x size`` pixels (truncated at the end) covering the grid or ``window``, row-major.

    Raises:
        ValueError: ``size`` is not positive.
    """
    size = int(size)
    if size <= 0:
        raise ValueError(f"window size must be positive, got {size}")
    r0, c0, h, w = (0, 0, int(height), int(width)) if window is None else as_window(window)
    for i in range(0, h, size):
        for j in range(0, w, size):
            yield Window(r0 + i, c0 + j, min(size, h - i), min(size, w - j))


def extract_patches(array: Any, rows: Any, cols: Any, size: int) -> Any:
    """Square patches centred on pixels, zero-padded beyond the array (spec §1.4).

    Args:
        array: ``(C, H, W)`` numpy array or torch tensor (indices are moved to its device).
        rows, cols: ``(N,)`` integer centre positions in the array (numpy or torch).
        size: patch side P (odd in practice; the centre is at index ``size // 2``).
    Returns:
        ``(N, C, P, P)`` of the array's type and dtype, contiguous; pixels beyond the array are 0.
    """
    size = int(size)
    half = size // 2
    off = np.arange(size) - half
    rows = np.asarray(_numpy(rows), dtype=np.int64).reshape(-1)
    cols = np.asarray(_numpy(cols), dtype=np.int64).reshape(-1)
    H, W = int(array.shape[-2]), int(array.shape[-1])
    rr = rows[:, None] + off[None, :]                       # (N, P)
    cc = cols[:, None] + off[None, :]
    inside = ((rr >= 0) & (rr < H))[:, :, None] & ((cc >= 0) & (cc < W))[:, None, :]   # (N, P, P)
    ri = np.clip(rr, 0, H - 1)[:, :, None]
    ci = np.clip(cc, 0, W - 1)[:, None, :]
    if isinstance(array, np.ndarray):
        out = np.moveaxis(array[:, ri, ci], 0, 1)           # (N, C, P, P)
        if not inside.all():
            out = out * inside[:, None].astype(array.dtype) if array.dtype != bool else out & inside[:, None]
        return np.ascontiguousarray(out)
    import torch  # only when given a tensor

    dev = array.device
    out = array[:, torch.as_tensor(ri, device=dev), torch.as_tensor(ci, device=dev)].permute(1, 0, 2, 3)
    if not inside.all():
        out = out * torch.as_tensor(inside[:, None], device=dev).to(out.dtype)
    return out.contiguous()


def _numpy(x: Any) -> Any:
    return x.cpu().numpy() if hasattr(x, "cpu") else x


class PatchCutter:
    """Cuts ``P x P`` patches of one window's ``(C, H, W)`` arrays around pixels, many batches from one window.

    The same values as :func:`extract_patches` (tests/engine/test_grid.py), about 5x faster on the CPU for the
    ``C_spec + C_dif`` channels of a classified tile: each array is copied once to channel-last ``(H, W, C)``,
    so a patch is ``P²`` contiguous runs of ``C`` values instead of ``C·P²`` scattered ones. Patches that cross
    the window's border, and arrays on a GPU, go through :func:`extract_patches`.

    Args:
        arrays: ``(C, H, W)`` numpy arrays or torch tensors (None entries stay None), all of one ``(H, W)``.
        size: patch side P.
    """

    def __init__(self, arrays: Any, size: int):
        self.size = int(size)
        self.arrays = list(arrays)
        self._views = [self._channel_last_view(a) for a in self.arrays]

    def _channel_last_view(self, array: Any) -> Any:
        if array is None or (hasattr(array, "device") and array.device.type != "cpu"):
            return None
        hwc = np.ascontiguousarray(np.moveaxis(_numpy(array), 0, -1))
        return np.lib.stride_tricks.sliding_window_view(hwc, (self.size, self.size), axis=(0, 1))   # (H', W', C, P, P)

    def __call__(self, rows: Any, cols: Any) -> tuple:
        """The patches ``(N, C, P, P)`` of every array (numpy or torch as given) centred on ``(rows, cols)``."""
        rows = np.asarray(_numpy(rows), dtype=np.int64).reshape(-1)
        cols = np.asarray(_numpy(cols), dtype=np.int64).reshape(-1)
        half = self.size // 2
        H, W = next(a.shape[-2:] for a in self.arrays if a is not None)      # one (H, W) for all arrays
        inside = (len(rows) > 0 and rows.min() >= half and cols.min() >= half and rows.max() < H - half
                  and cols.max() < W - half)
        out = []
        for array, view in zip(self.arrays, self._views):
            if array is None:
                out.append(None)
                continue
            if view is None or not inside:
                out.append(extract_patches(array, rows, cols, self.size))
                continue
            patches = np.ascontiguousarray(view[rows - half, cols - half])
            if hasattr(array, "device"):
                import torch  # only when given a tensor

                patches = torch.from_numpy(patches)
            out.append(patches)
        return tuple(out)


class WindowInputs(NamedTuple):
    """Every network input of one window (spec §1.3, §2.4).

    spec: ``(C_spec, h, w)``; aux: ``(C_aux, h, w)`` or None; features: diffusion features ``(C_dif, h, w)``;
    valid: bool ``(h, w)``. spec / aux are 0 where invalid. Numpy arrays from :func:`read_window` (features
    a torch tensor on the extractor's device); ``TrainedModel.window_inputs`` gives tensors on the model's device.
    """

    spec: Any
    aux: Any
    features: Any
    valid: np.ndarray

    def patches(self, rows: Any, cols: Any, size: int) -> tuple[Any, Any, Any]:
        """``(spec, aux | None, features)`` patches ``(N, C, P, P)`` centred on window pixels ``(rows, cols)``."""
        return self.patch_cutter(size)(rows, cols)

    def patch_cutter(self, size: int) -> PatchCutter:
        """A :class:`PatchCutter` of ``(spec, aux, features)``: for cutting many batches from this window."""
        return PatchCutter((self.spec, self.aux, self.features), size)


def read_window(stack: Any, extractor: Any, inputs: Any | None, window: Any) -> WindowInputs:
    """The network inputs of a grid window from one read of the window plus the diffusion halo.

    Args:
        stack: ``data.grid.RasterStack``. extractor: ``models.diffusion.FeatureExtractor`` (``halo``,
            ``layout``, ``stats``, ``features_for_array``). inputs: ``data.inputs.ClassifierInputs``, or None
            for the features alone (``spec`` and ``aux`` are then None).
        window: :class:`Window` (or anything :meth:`Window.of` takes).
    Returns:
        :class:`WindowInputs` with numpy ``spec`` / ``aux`` (normalised, 0 where invalid), the raw (unscaled)
        diffusion features ``(C_dif, h, w)`` float32 on the extractor's device, and ``valid``.
    """
    row_off, col_off, height, width = Window.of(window)
    hal = extractor.halo
    big = stack.read(row_off - hal, col_off - hal, height + 2 * hal, width + 2 * hal)
    f = extractor.features_for_array(extractor.layout.assemble(big, extractor.stats), row_off, col_off)
    inner = StackWindow([a[:, hal:hal + height, hal:hal + width] for a in big.arrays],
                        big.valid[hal:hal + height, hal:hal + width], row_off, col_off)
    spec, aux = inputs.transform(inner) if inputs is not None else (None, None)
    return WindowInputs(spec, aux, f, inner.valid)
