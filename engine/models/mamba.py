"""Mamba block with exactly ``mamba_ssm.Mamba``'s parameters; mamba_ssm's CUDA scan when available, an own
pure-PyTorch sequential scan otherwise (spec §7.3).

* Parameters (names, shapes, init) are those of ``mamba_ssm.modules.mamba_simple.Mamba`` so a state_dict loads
  with ``strict=True`` in both directions: ``A_log (d_inner, d_state)``, ``D (d_inner,)``,
  ``in_proj.weight (2·d_inner, d_model)``, ``conv1d.weight (d_inner, 1, d_conv)``, ``conv1d.bias (d_inner,)``,
  ``x_proj.weight (dt_rank + 2·d_state, d_inner)``, ``dt_proj.weight (d_inner, dt_rank)``,
  ``dt_proj.bias (d_inner,)``, ``out_proj.weight (d_model, d_inner)``.
* Backend per call: ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn`` when the input is on CUDA, in
  fp32/fp16/bf16, and the lazy import succeeds (any exception => pure-PyTorch fallback, stated by
  :func:`scan_backend`, which the engine logs through its Reporter when it runs on CUDA); otherwise
  :func:`selective_scan`. Override with the environment variable ``ENGINE_MAMBA_BACKEND=auto|torch|cuda``
  or the constructor argument ``backend``.
* mamba_ssm is never imported at engine import time (it takes seconds and pulls in triton).
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Mamba", "selective_scan", "selective_scan_reference_loop", "cuda_selective_scan_fn", "scan_backend"]

_CUDA_SCAN = None          # cached selective_scan_fn, or False once the import failed
_CUDA_SCAN_ERROR = ""


def cuda_selective_scan_fn():
    """Lazily import ``mamba_ssm``'s ``selective_scan_fn``; returns the function or ``None``.

    Any exception (missing ``selective_scan_cuda`` extension, ABI mismatch, triton / tilelang version errors)
    disables the CUDA backend for the process; :func:`scan_backend` says why.
    """
    global _CUDA_SCAN, _CUDA_SCAN_ERROR
    if _CUDA_SCAN is None:
        try:
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: PLC0415
            _CUDA_SCAN = selective_scan_fn
        except Exception as exc:  # noqa: BLE001 - any failure means "no fast kernel"
            _CUDA_SCAN = False
            _CUDA_SCAN_ERROR = f"{type(exc).__name__}: {exc}"
    return _CUDA_SCAN or None


def scan_backend() -> str:
    """The selective scan CUDA inputs get: mamba_ssm's kernel, or the pure-PyTorch scan and why (one line)."""
    if cuda_selective_scan_fn() is not None:
        return "mamba_ssm CUDA selective scan"
    return f"pure-PyTorch selective scan (mamba_ssm unavailable: {_CUDA_SCAN_ERROR[:200]})"


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                   delta_bias: torch.Tensor | None = None, delta_softplus: bool = False) -> torch.Tensor:
    """Pure-PyTorch selective scan, same signature / layout / math as ``mamba_ssm``'s ``selective_scan_fn``
    (spec §7.3; the exact math of mamba_ssm's ``selective_scan_ref``).

    Recurrence per batch b, channel d, state n (time l = 0..L−1, h_{−1} = 0)::

        δ   = softplus(delta + delta_bias)            (softplus only if delta_softplus)
        h_l = exp(δ_l A) ⊙ h_{l−1} + δ_l B_l u_l
        y_l = <h_l, C_l> + D ⊙ u_l ;   out = y ⊙ SiLU(z)   (when z is given)

    Computed in fp32 (fp64 inputs stay fp64, for gradcheck) and cast back to ``u.dtype``. The loop iterates over
    ``unbind(2)`` views with ``torch.addcmul``, so autograd is O(L) (no ``x[:, t]`` indexing).

    Args:
        u: (b, d, L) input.  delta: (b, d, L) raw step sizes.  A: (d, n) (negative real).
        B, C: (b, n, L) input-dependent projections.  D: (d,) skip.  z: (b, d, L) gate.  delta_bias: (d,).
    Returns:
        (b, d, L) tensor of ``u.dtype``.
    """
    dtype_in = u.dtype
    wd = torch.float64 if u.dtype == torch.float64 else torch.float32
    u_, dl = u.to(wd), delta.to(wd)
    if delta_bias is not None:
        dl = dl + delta_bias.to(wd)[None, :, None]
    if delta_softplus:
        dl = F.softplus(dl)
    A_, B_, C_ = A.to(wd), B.to(wd), C.to(wd)
    # One (b, d, n) state per step, built from per-step (b, d) / (b, n) slices (``unbind``: O(L) autograd).
    # Never materialising the (b, L, d, n) tensors of exp(δA) and δBu is 3-5x faster on the CPU (memory traffic).
    h = u_.new_zeros(u_.shape[0], u_.shape[1], A_.shape[1])
    ys = []
    for d_l, u_l, b_l, c_l in zip(dl.unbind(2), u_.unbind(2), B_.unbind(2), C_.unbind(2)):
        d_l = d_l.unsqueeze(-1)                                         # (b, d, 1)
        h = torch.addcmul((d_l * u_l.unsqueeze(-1)) * b_l.unsqueeze(1), torch.exp(d_l * A_), h)
        ys.append(torch.bmm(h, c_l.unsqueeze(-1)).squeeze(-1))         # <h_l, C_l>: (b, d)
    if not ys:
        return u.new_zeros(u.shape)
    y = torch.stack(ys, dim=-1)                                         # (b, d, L)
    if D is not None:
        y = y + D.to(wd)[None, :, None] * u_
    if z is not None:
        y = y * F.silu(z.to(wd))
    return y.to(dtype_in)


def selective_scan_reference_loop(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Naive element-wise reference of :func:`selective_scan` (same arguments and shapes), meant for tests:
    explicit Python loops over time in the input dtype, no vectorised tricks. Not for training (O(L²) autograd).
    """
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    b, d, L = u.shape
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(L):
        h = torch.exp(delta[:, :, t, None] * A) * h + delta[:, :, t, None] * B[:, None, :, t] * u[:, :, t, None]
        y = (h * C[:, None, :, t]).sum(-1)
        if D is not None:
            y = y + D * u[:, :, t]
        ys.append(y)
    out = torch.stack(ys, dim=-1)
    if z is not None:
        out = out * F.silu(z)
    return out


class Mamba(nn.Module):
    """Selective state-space block (Gu & Dao 2023) with ``mamba_ssm.Mamba``'s parameterisation (spec §7.1–§7.3,
    paper Eq. 20 "in_proj FC → (SSM∘conv, SiLU gate ⊗) → out_proj FC").

    Forward ``x (B, L, d_model) -> (B, L, d_model)``::

        (x_i, z) = split(in_proj(x));  x_i = SiLU(causal depthwise conv1d_{d_conv}(x_i))
        (δ_raw, B, C) = split(x_proj(x_i), [dt_rank, d_state, d_state]);  δ = dt_proj.weight · δ_raw
        y = selective_scan(x_i, δ, −exp(A_log), B, C, D, z, delta_bias=dt_proj.bias, delta_softplus=True)
        out = out_proj(y)

    ``dt_proj.bias`` is applied inside the scan (as ``delta_bias``), never in ``dt_proj`` itself (as in mamba_ssm).
    The residual / normalisation of Eq. 20 live in the caller (engine/network.py ``MambaSequenceBlock``).

    Args mirror ``mamba_ssm.Mamba``; ``use_fast_path`` and ``layer_idx`` are accepted and ignored; ``backend`` is
    ``"auto"`` (default; env ``ENGINE_MAMBA_BACKEND`` overrides), ``"torch"`` or ``"cuda"`` (raises if the
    mamba_ssm kernel is unusable).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: float = 2, dt_rank="auto",
                 dt_min: float = 0.001, dt_max: float = 0.1, dt_init: str = "random", dt_scale: float = 1.0,
                 dt_init_floor: float = 1e-4, conv_bias: bool = True, bias: bool = False,
                 use_fast_path: bool = True, layer_idx=None, device=None, dtype=None, backend: str = "auto"):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.layer_idx = layer_idx
        if backend not in ("auto", "torch", "cuda"):
            raise ValueError(f"backend must be auto, torch or cuda, not {backend!r}")
        self.backend = backend

        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias, **fk)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner,
                                padding=d_conv - 1, bias=conv_bias, **fk)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **fk)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **fk)

        dt_init_std = self.dt_rank ** -0.5 * dt_scale
        with torch.no_grad():
            if dt_init == "constant":
                nn.init.constant_(self.dt_proj.weight, dt_init_std)
            elif dt_init == "random":
                nn.init.uniform_(self.dt_proj.weight, -dt_init_std, dt_init_std)
            else:
                raise NotImplementedError(f"dt_init {dt_init!r}")
            dt = torch.exp(torch.rand(self.d_inner, **fk) * (math.log(dt_max) - math.log(dt_min))
                           + math.log(dt_min)).clamp(min=dt_init_floor)
            inv_dt = dt + torch.log(-torch.expm1(-dt))          # inverse of softplus
            self.dt_proj.bias.copy_(inv_dt)
        self.dt_proj.bias._no_reinit = True

        A = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))                 # S4D-real init, fp32
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(self.d_inner, device=device))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **fk)

    def _use_cuda_kernel(self, x: torch.Tensor) -> bool:
        backend = self.backend
        if backend == "auto":
            backend = os.environ.get("ENGINE_MAMBA_BACKEND", "auto").strip().lower() or "auto"
        if backend == "torch":
            return False
        usable = x.is_cuda and x.dtype in (torch.float32, torch.float16, torch.bfloat16) and self.d_state <= 256
        if backend == "cuda":
            if not usable or cuda_selective_scan_fn() is None:
                raise RuntimeError("Mamba backend 'cuda' requested but unusable (needs a CUDA fp32/fp16/bf16 "
                                   f"input and an importable mamba_ssm): {_CUDA_SCAN_ERROR or 'input not on CUDA'}")
            return True
        return usable and cuda_selective_scan_fn() is not None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``hidden_states (B, L, d_model) -> (B, L, d_model)`` (spec §7.3 forward, paper Eq. 20)."""
        _, seqlen, _ = hidden_states.shape
        xz = self.in_proj(hidden_states).transpose(1, 2)                   # (B, 2·d_inner, L)
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :seqlen])                           # causal depthwise conv
        x_dbl = self.x_proj(x.transpose(1, 2))                             # (B, L, r + 2n)
        dt, Bm, Cm = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)             # (B, d_inner, L), no bias here
        Bm = Bm.transpose(1, 2).contiguous()                               # (B, n, L)
        Cm = Cm.transpose(1, 2).contiguous()
        A = -torch.exp(self.A_log.to(torch.promote_types(self.A_log.dtype, torch.float32)))   # (d_inner, n)
        if self._use_cuda_kernel(hidden_states):
            scan = cuda_selective_scan_fn()
            y = scan(x.contiguous(), dt.contiguous(), A, Bm, Cm, self.D.float(), z=z.contiguous(),
                     delta_bias=self.dt_proj.bias.float(), delta_softplus=True)
        else:
            y = selective_scan(x, dt, A, Bm, Cm, self.D, z=z, delta_bias=self.dt_proj.bias,
                               delta_softplus=True)
        return self.out_proj(y.transpose(1, 2).to(hidden_states.dtype))
