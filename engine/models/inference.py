"""Fast inference for classification (and the diffusion features of patch gathering); the eager model stays
the reference it is tested against (tests/engine/test_fast_inference.py).

Where the time of a classified tile goes (2-core CPU, docs/benchmarks.md): mostly the group network, then the
U-Net encoder of the diffusion features, reading, normalising and cutting patches (``data.windows.PatchCutter``,
shared with the eager path). The fast path therefore changes how the first two run, never what they compute:

* **Exact rewrites of the group network** (:func:`export_copy`, kept only when the copy's logits match the
  original's on a probe batch): the adaptive band pooling of the CNN branch as a product with its fixed
  averaging matrix (:class:`DepthPool`), and the Transformer branch's diffusion stream computed for its cls
  token only in the last layer (:class:`ClsTokenStream`: only ``F_dif[:, 0]`` enters Eqs. 17-19, so the
  ``(P²+1)²`` attention of that layer shrinks to ``1 x (P²+1)``).
* **torch.compile** (Inductor, weights frozen) of the rewritten group network on the CPU, for one fixed batch
  size (short batches padded), from ``contract.COMPILE_MIN_PIXELS`` pixels on or on request (:func:`compile_network`;
  needs a C++ compiler, else the network runs uncompiled and ``compile_note`` says why): about 1.25x on the
  network alone, 1.1x on a whole classified window, after a 20-30 s first compile (docs/benchmarks.md).
* **OpenVINO** (an inference runtime for CPUs, from PyPI, no torch dependency) on the CPU when importable: the
  U-Net encoder is converted once per run with dynamic height and width (every tile size runs through one
  compiled model). The group network runs as the rewritten PyTorch copy by default: on an idle 2-core CPU
  PyTorch's oneDNN kernels classify 5 x 5 and 9 x 9 patches faster than OpenVINO does. With
  ``network="openvino"`` it is converted too (``openvino.convert_model`` traces it; batch axis dynamic; its output
  is the class probabilities) and run in throughput mode (one stream per thread, several batches in flight while
  Python cuts the next patches), faster only on a CPU loaded with other work.

With ``coarse_to_fine`` (classify's default) ``predict.classify_window`` also asks the network for fewer pixels:
those of a 4-px lattice, then only those whose neighbours disagree, are unsure or differ spectrally
(``predict.coarse_to_fine``; the same classes on every measured scene, 3.67x the eager model's speed on the
full Delmarva scene, 2.9x on the field-dominated crop, docs/benchmarks.md).

Precision (of what runs in OpenVINO) is fp32 by default: bf16 (``precision="bf16"``, native on CPUs with
AVX512_BF16 / AMX) is faster but, with the group network in OpenVINO, changed 0.1-0.3 % of the pixels of a
briefly trained model on the embedded crop (docs/benchmarks.md), more than the 0.1 % this path is allowed to
change. Backends: ``"eager"`` (the reference), ``"torch"`` (the rewritten network under ``torch.inference_mode``;
CUDA or no OpenVINO), ``"openvino"``, ``"auto"`` (OpenVINO on the CPU when importable, else torch).
"""

from __future__ import annotations

import copy
import threading
import warnings
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from ..contract import BACKENDS, COMPILE_MIN_PIXELS, COMPILE_MODES
from ..errors import EngineError

__all__ = ["BACKENDS", "PRECISIONS", "COMPILE_MODES", "InferenceBackend", "DepthPool", "ClsTokenStream",
           "export_copy", "openvino_extractor", "compile_requested", "compile_network", "openvino_version"]

PRECISIONS = ("f32", "bf16")
Batch = tuple[int, torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]
#: below this many pixels ``auto`` does not prepare OpenVINO (its set-up, 2-3 s measured for the encoder alone,
#: more with the group network, would outweigh the gain)
OPENVINO_MIN_PIXELS = 250_000


def compile_requested(compile_mode: str, pixels: int | None) -> bool:
    """Whether ``compile_mode`` asks to compile the group network for a run of ``pixels`` pixels: ``"on"``, or
    ``"auto"`` with ``pixels`` known and at least ``contract.COMPILE_MIN_PIXELS`` (CPU runs only; the caller
    checks the device)."""
    return compile_mode == "on" or (compile_mode == "auto" and pixels is not None and pixels >= COMPILE_MIN_PIXELS)


def compile_network(net: nn.Module, probe: tuple[torch.Tensor | None, ...]) -> tuple[nn.Module | None, str]:
    """``torch.compile`` (Inductor, weights frozen into the graph) of a group network for one fixed batch shape.

    Args:
        net: the rewritten network (:func:`export_copy`), eval mode, on the CPU.
        probe: ``(x_spec (B,C_spec,P,P), x_aux | None, f_dif | None)`` of the batch size every later call uses
            (callers pad short batches to it: a new shape would compile again).
    Returns:
        ``(compiled module, "")``, or ``(None, why)`` when compiling fails (no C++ compiler or Python headers,
        an unsupported platform) or its log class probabilities (``GroupNetwork.log_probabilities``) differ from
        ``net``'s by more than 1e-4 relative. Never raises.
    """
    try:
        import torch._inductor.config as inductor_config

        compiled = torch.compile(net, dynamic=False)
        with torch.inference_mode(), inductor_config.patch(freezing=True):
            got = net.log_probabilities(compiled(*probe))
            ref = net.log_probabilities(net(*probe))
    except Exception as exc:  # noqa: BLE001 - any failure means "run the network uncompiled"
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return None, f"{type(exc).__name__}: {first_line[:200]}"
    diff = float((got - ref).abs().max())
    if diff > 1e-4 * max(float(ref.abs().max()), 1.0):
        return None, f"its class log-probabilities differ from the network's by {diff:.2e}"
    return compiled, ""


def openvino_version() -> str | None:
    """Version of an importable OpenVINO, else None (never raises)."""
    try:
        import openvino
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    return str(getattr(openvino, "__version__", "?"))


# ------------------------------------------------------------------------------------------------------------
# Exact rewrites of the group network (same values up to float rounding)
# ------------------------------------------------------------------------------------------------------------
class DepthPool(nn.Module):
    """``AdaptiveAvgPool3d((D_out, H, W))`` on ``(B, C, D_in, H, W)`` with unchanged ``H, W``, as a product with
    the fixed ``(D_out, D_in)`` averaging matrix of adaptive pooling (bin ``i`` = ``[floor(i·D_in/D_out),
    ceil((i+1)·D_in/D_out))``, spec §4.1 ``pool_(D,P,P)``). Other output sizes fall back to the pooling itself."""

    def __init__(self, pool: nn.AdaptiveAvgPool3d):
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d_out, h_out, w_out = self.pool.output_size
        if d_out is None or (h_out, w_out) != tuple(x.shape[-2:]):
            return self.pool(x)
        d_in = int(x.shape[2])
        weights = torch.zeros(d_out, d_in, dtype=x.dtype, device=x.device)
        for i in range(d_out):
            a, b = (i * d_in) // d_out, -((-(i + 1) * d_in) // d_out)
            weights[i, a:b] = 1.0 / (b - a)
        return torch.einsum("bcdhw,ed->bcehw", x, weights)


class ClsTokenStream(nn.Module):
    """A ``network.TokenStream`` of which only the cls token's output is used (the Transformer branch's
    diffusion stream: only ``F_dif[:, 0]`` enters Eqs. 17-19). Its last layer computes the attention of the cls
    query only (keys / values of all tokens, paper Eq. 15) and the MLP of the cls token only.
    forward(tokens (B, n, d)) -> (B, 1, d) = the stream's output at index 0."""

    def __init__(self, stream: nn.Module):
        super().__init__()
        self.stream = stream

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        st = self.stream
        x = torch.cat([st.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1) + st.pos
        layers = list(st.transformer.layers)
        for ln1, attn, ln2, ff in layers[:-1]:
            x = x + attn(ln1(x))
            x = x + ff(ln2(x))
        ln1, attn, ln2, ff = layers[-1]
        b = x.shape[0]
        q, k, v = attn.to_qkv(ln1(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, t.shape[1], attn.heads, -1).transpose(1, 2) for t in (q[:, :1], k, v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)          # (B, heads, 1, dim_head)
        x0 = x[:, :1] + attn.to_out(out.transpose(1, 2).reshape(b, 1, -1))
        return x0 + ff(ln2(x0))


def _pools_as_matmul(net: nn.Module) -> bool:
    changed = False
    for mod in list(net.modules()):
        for name, child in list(mod.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool3d):
                setattr(mod, name, DepthPool(child))
                changed = True
    return changed


def _cls_only_diffusion_stream(net: nn.Module) -> bool:
    changed = False
    for member in getattr(net, "members", [net]):          # one network or each member of an ensemble
        branch = getattr(member, "transformer", None)
        stream = getattr(branch, "stream_dif", None)
        if stream is None or not len(getattr(getattr(stream, "transformer", None), "layers", [])):
            continue
        branch.stream_dif = ClsTokenStream(stream)
        changed = True
    return changed


def export_copy(net: nn.Module, example: tuple[torch.Tensor | None, ...]) -> nn.Module:
    """Deep copy of a group network in eval mode with the exact rewrites of this module.

    Each rewrite is kept only if the copy's log class probabilities (``GroupNetwork.log_probabilities``) on
    ``example = (x_spec, x_aux | None, f_dif | None)``
    (a probe batch) match the original's to 1e-4 relative: a network whose structure differs from what a
    rewrite assumes is exported without it.
    """
    net = net.eval()
    with torch.no_grad():
        ref = net.log_probabilities(net(*example))
    out = copy.deepcopy(net)
    tol = 1e-4 * max(float(ref.abs().max()), 1.0)
    for rewrite in (_pools_as_matmul, _cls_only_diffusion_stream):
        candidate = copy.deepcopy(out)
        if not rewrite(candidate):
            continue
        with torch.no_grad():
            got = candidate.log_probabilities(candidate(*example))
        if float((got - ref).abs().max()) <= tol:
            out = candidate
    return out.eval()


class _Probabilities(nn.Module):
    """Class probabilities ``exp(net.log_probabilities(net(x_spec, x_aux, f_dif)))`` taking only the inputs the
    network uses (for tracing)."""

    def __init__(self, net: nn.Module, has_aux: bool, has_dif: bool):
        super().__init__()
        self.net, self.has_aux, self.has_dif = net, has_aux, has_dif

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        it = iter(inputs)
        x_spec = next(it)
        x_aux = next(it) if self.has_aux else None
        f_dif = next(it) if self.has_dif else None
        return torch.exp(self.net.log_probabilities(self.net(x_spec, x_aux, f_dif)))


class _Encoder(nn.Module):
    """``unet.features(x_t, feature_t)`` with the diffusion step fixed (for tracing)."""

    def __init__(self, unet: nn.Module, feature_t: int):
        super().__init__()
        self.unet, self.feature_t = unet, int(feature_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.full((x.shape[0],), self.feature_t, dtype=torch.int64, device=x.device)
        return self.unet.features(x, t)


class FastExtractor:
    """A ``models.diffusion.FeatureExtractor`` whose U-Net encoder runs through a compiled model: what
    ``data.windows.read_window`` and ``train.gather_patches`` take as the extractor. Other attributes
    (``halo``, ``layout``, ``stats``, ``channels``, ``device`` ...) are the wrapped extractor's."""

    def __init__(self, extractor: Any, encoder: Callable[[torch.Tensor], torch.Tensor]):
        self._extractor = extractor
        self._encoder = encoder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)

    def features_for_array(self, x: Any, row_off: int, col_off: int) -> torch.Tensor:
        return self._extractor.features_for_array(x, row_off, col_off, encoder=self._encoder)


def openvino_extractor(extractor: Any, threads: int | None = None, core: Any = None,
                       precision: str = "f32") -> FastExtractor | None:
    """``extractor`` (a ``models.diffusion.FeatureExtractor``) with its U-Net encoder in OpenVINO, or None.

    The encoder is converted once (in ``precision``, one of :data:`PRECISIONS`; latency mode; height and width
    dynamic, so every window size runs through one compiled model). Its features equal the eager encoder's to
    float rounding, about 4.6x faster on the 2-core CPU (docs/benchmarks.md). Used by classification
    (:class:`InferenceBackend`) and by training's patch gathering.

    Returns None where that is not possible: the U-Net not on the CPU, OpenVINO not importable, or BatchNorm in
    batch-statistics mode (``bn_mode != "eval"``, not a frozen graph). The conversion takes 1.5 s on the 2-core
    CPU: callers decide whether their windows are large enough for it to pay.
    """
    if (next(extractor.unet.parameters()).device.type != "cpu" or extractor.config.bn_mode != "eval"
            or openvino_version() is None):
        return None
    import openvino as ov

    core = core or ov.Core()
    S = extractor.layout.S
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")                # TorchScript tracer warnings on the U-Net's shape checks
        graph = ov.convert_model(_Encoder(copy.deepcopy(extractor.unet).eval(), extractor.config.feature_t),
                                 example_input=(torch.zeros(1, 1, S, 32, 32),),
                                 input=[ov.PartialShape([1, 1, S, -1, -1])])
    compiled = core.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
                                                 "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
    lock = threading.Lock()

    def encoder(x: torch.Tensor) -> torch.Tensor:
        with lock:
            out = compiled(x.detach().cpu().numpy())[0]
        return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))
    return FastExtractor(extractor, encoder)


# ------------------------------------------------------------------------------------------------------------
# Backend
# ------------------------------------------------------------------------------------------------------------
class InferenceBackend:
    """How a ``models.classifier.TrainedModel`` computes class probabilities and diffusion features.

    Args:
        model: the trained model (eval mode). backend: one of :data:`BACKENDS` (see the module docstring).
        precision: OpenVINO inference precision, ``"f32"`` (default) or ``"bf16"``.
        threads: CPU threads (default ``torch.get_num_threads()``).
        pixels: pixels the run will classify, if known: ``"auto"`` takes torch below :data:`OPENVINO_MIN_PIXELS`,
            where preparing OpenVINO (tracing and compiling: 2-3 s, more with ``network="openvino"``) costs more
            than it saves.
        network: under OpenVINO, what runs the group network: ``"torch"`` (default: the rewritten PyTorch copy,
            faster than OpenVINO on an idle CPU for 5 x 5 and 9 x 9 patches alike, docs/benchmarks.md) or
            ``"openvino"``. A fixed choice, not a timing at start-up, so that every run (and every torchrun
            rank) computes the same probabilities. The U-Net encoder runs in OpenVINO either way.
        compile_mode: ``torch.compile`` the PyTorch group network on the CPU (:func:`compile_network`): ``"on"``,
            ``"off"`` or ``"auto"`` (default: when ``pixels`` is at least ``contract.COMPILE_MIN_PIXELS``). Falls
            back to the uncompiled network, saying why in ``compile_note``, where compiling is not possible.
        batch_size: patches per network call; a compiled network runs every batch at this size (short batches
            are padded).
        coarse_to_fine: run the network only where the map is not uniform (``predict.coarse_to_fine``; not with
            ``"eager"``, the reference, which classifies every pixel).
    Attributes:
        name: backend in use (``"openvino"``, ``"torch"`` or ``"eager"``); precision: ``"f32"`` / ``"bf16"``;
        network: what runs the group network (``"openvino"``, ``"torch"`` or ``"eager"``);
        extractor: the feature extractor to read windows with (a :class:`FastExtractor` under OpenVINO).
        patches_run: patches classified by the network so far (with ``coarse_to_fine``, fewer than pixels).
        compiled: whether the group network runs compiled; compile_note: why not, when it was asked or "auto"
            chose it and compiling failed ("" otherwise).
    Raises:
        EngineError: unknown backend / precision; ``"openvino"`` with the model on a GPU or OpenVINO missing.
    """

    def __init__(self, model: Any, backend: str = "auto", precision: str = "f32", threads: int | None = None,
                 pixels: int | None = None, network: str = "torch", compile_mode: str = "auto",
                 batch_size: int = 1024, coarse_to_fine: bool = False):
        if backend not in BACKENDS:
            raise EngineError(f"Unknown inference backend {backend!r}", f"Use one of: {', '.join(BACKENDS)}.")
        if compile_mode not in COMPILE_MODES:
            raise EngineError(f"Unknown compile mode {compile_mode!r}", f"Use one of: {', '.join(COMPILE_MODES)}.")
        if precision not in PRECISIONS:
            raise EngineError(f"Unknown inference precision {precision!r}", f"Use one of: {', '.join(PRECISIONS)}.")
        on_cpu = model.device.type == "cpu"
        if backend == "openvino" and not on_cpu:
            raise EngineError("The OpenVINO backend runs on the CPU only", "Use --device cpu, or --backend torch.")
        if backend == "openvino" and openvino_version() is None:
            raise EngineError("OpenVINO is not installed in the engine's Python",
                              "Install it (pip install openvino, see requirements.txt) or use --backend torch.")
        if backend == "auto":
            big = pixels is None or pixels >= OPENVINO_MIN_PIXELS
            backend = "openvino" if on_cpu and big and openvino_version() is not None else "torch"
        self.model = model
        self.name = backend
        self.precision = precision if backend == "openvino" else "f32"
        self.threads = int(threads or torch.get_num_threads())
        self.extractor = model.extractor
        self._net: Any = model.net
        self.network = "eager" if backend == "eager" else "torch"
        self.batch_size = int(batch_size)
        self.coarse_to_fine = bool(coarse_to_fine) and backend != "eager"
        self.patches_run = 0
        self.compiled, self.compile_note = False, ""
        if backend == "torch":
            self._net = export_copy(model.net, self._probe())
        elif backend == "openvino":
            self._compile_openvino(network)
        if self.network == "torch" and on_cpu and compile_requested(compile_mode, pixels):
            compiled, self.compile_note = compile_network(self._net, self._probe(self.batch_size))
            if compiled is not None:
                self._plain_net, self._net, self.compiled = self._net, compiled, True

    def _probe(self, n: int = 8) -> tuple[torch.Tensor | None, ...]:
        net, P = self.model.net, self.model.patch_size
        gen = torch.Generator().manual_seed(0)
        dev = self.model.device

        def rand(c: int) -> torch.Tensor:
            return torch.rand((n, c, P, P), generator=gen).to(dev)
        return (rand(net.n_spectral), rand(net.n_auxiliary) if net.n_auxiliary else None,
                rand(net.n_diffusion) if net.config.any_guidance else None)

    def _ov_throughput_config(self) -> dict:
        # one stream per thread, batches in flight (measured faster than one 2-thread stream)
        return {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": self.precision,
                "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.threads}

    def _compile_openvino(self, network: str) -> None:
        import openvino as ov

        if network not in ("openvino", "torch"):
            raise EngineError(f"Unknown network runtime {network!r}", "Use openvino or torch.")
        probe = self._probe()
        shapes = [tuple(t.shape[1:]) for t in probe if t is not None]
        has_aux, has_dif = probe[1] is not None, probe[2] is not None
        core = ov.Core()
        rewritten = export_copy(self.model.net, probe)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")            # TorchScript tracer warnings on the networks' shape checks
            self._net, self.network = rewritten, "torch"
            if network == "openvino":
                graph = ov.convert_model(_Probabilities(rewritten, has_aux, has_dif),
                                         example_input=tuple(t for t in probe if t is not None),
                                         input=[ov.PartialShape([-1, *s]) for s in shapes])
                self._net, self.network = core.compile_model(graph, "CPU", self._ov_throughput_config()), "openvino"
        fast = openvino_extractor(self.model.extractor, self.threads, core, precision=self.precision)
        if fast is not None:
            self.extractor = fast

    def window_inputs(self, stack: Any, window: Any) -> Any:
        """``model.window_inputs`` read with this backend's feature extractor (``data.windows.WindowInputs``)."""
        return self.model.window_inputs(stack, window, extractor=self.extractor)

    def probabilities(self, batches: Iterable[Batch], n: int, on_batch: Callable[[int], None] | None = None
                      ) -> np.ndarray:
        """Class probabilities ``(n, K)`` float32 of patch batches ``(start, x_spec, x_aux, f_dif)``.

        ``batches`` is consumed lazily (under OpenVINO the next batch is cut while earlier ones run);
        ``on_batch(count)`` is called as batches complete (progress; may raise ``Cancelled``).
        """
        out = np.zeros((n, len(self.model.classes)), np.float32)
        self.patches_run += n
        if self.network == "openvino":
            self._openvino_probabilities(batches, out, on_batch)
            return out
        with torch.inference_mode():
            for start, xs, xa, fd in batches:
                if self.compiled:
                    p = self._fixed_size_softmax(xs, xa, fd)
                else:
                    p = torch.exp(self.model.net.log_probabilities(self._net(xs, xa, fd)))
                out[start:start + len(p)] = p.cpu().numpy()
                if on_batch is not None:
                    on_batch(len(p))
        return out

    def _fixed_size_softmax(self, *inputs: torch.Tensor | None) -> torch.Tensor:
        """Class probabilities of a batch through the compiled network, in chunks of exactly ``batch_size``
        patches (the last one padded with zeros; BatchNorm runs in eval mode, so patches do not interact)."""
        n, b, parts = int(inputs[0].shape[0]), self.batch_size, []
        for i in range(0, n, b):
            chunk = [None if t is None else t[i:i + b] for t in inputs]
            short = b - int(chunk[0].shape[0])
            if short:
                chunk = [None if t is None else torch.cat([t, t.new_zeros((short, *t.shape[1:]))]) for t in chunk]
            try:
                out = self._net(*chunk)
            except Exception as exc:  # noqa: BLE001 - e.g. a recompile that fails: finish the run uncompiled
                self._net, self.compiled = self._plain_net, False
                self.compile_note = f"the compiled network failed ({type(exc).__name__}); the rest runs uncompiled"
                out = self._net(*chunk)
            parts.append(torch.exp(self.model.net.log_probabilities(out))[:b - short])
        return torch.cat(parts)

    def _openvino_probabilities(self, batches: Iterator[Batch], out: np.ndarray, on_batch: Any) -> None:
        import openvino as ov

        finished: list[int] = []
        queue = ov.AsyncInferQueue(self._net, max(int(self._net.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")), 1))

        def store(request: Any, start: int) -> None:
            res = request.get_output_tensor(0).data
            out[start:start + len(res)] = res
            finished.append(len(res))

        def report() -> None:
            while finished and on_batch is not None:
                on_batch(finished.pop())

        queue.set_callback(store)
        try:
            for start, xs, xa, fd in batches:
                queue.start_async([np.ascontiguousarray(t.cpu().numpy()) for t in (xs, xa, fd) if t is not None],
                                  userdata=start)
                report()
        finally:
            queue.wait_all()
        report()
