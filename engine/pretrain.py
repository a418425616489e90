"""Stage P: self-supervised pretraining of the SpectralDiff U-Net with the BDGF forward process.

Paper Alg. 1 (Liu et al., arXiv 2509.23310, §3.1); spec §2.1, §3.3. Random ``tile x tile`` windows are drawn
from the valid area of the scene (memory ~ batch x tile, never the scene), assembled on the DDPM band axis
(:class:`engine.data.inputs.BandLayout`), noised by :func:`engine.models.diffusion.bdgf_forward` with adaptive
modality masking, and the U-Net regresses the noise (L1 loss, Adam).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data.grid import compute_statistics
from .data.inputs import BandLayout
from .errors import Cancelled, EngineError
from .io.artifact import load_checkpoint, load_optimizer, save_checkpoint
from .io.schema import DiffusionInfo
from .models.diffusion import DiffusionConfig, NoiseSchedule, bdgf_forward, mask_probability
from .models.unet import SpectralDiffUNet
from .progress import ensure

__all__ = ["PretrainResult", "pretrain"]


@dataclass
class PretrainResult:
    """Result of :func:`pretrain`.

    unet: trained :class:`SpectralDiffUNet` (on the training device, eval mode). layout: :class:`BandLayout`.
    config: :class:`DiffusionConfig`. history: ``[(iteration, loss)]`` (iteration 1-based, L1 loss).
    stats: the normalisation statistics used (``stats[m][b]`` BandStats), needed again at extraction.
    iteration: iterations done. seconds: wall time of this call.
    """

    unet: SpectralDiffUNet
    layout: BandLayout
    config: DiffusionConfig
    history: list[tuple[int, float]]
    stats: Any = None
    iteration: int = 0
    seconds: float = 0.0

    def tensors(self) -> dict[str, torch.Tensor]:
        """U-Net state dict (CPU, contiguous) for ``artifact.save_model``; keys prefixed ``unet.``."""
        return {f"unet.{k}": v.detach().cpu().contiguous() for k, v in self.unet.state_dict().items()}

    def diffusion_info(self, history: bool = True) -> DiffusionInfo:
        """The model file's diffusion section: config, band layout, iterations (and the loss history)."""
        return DiffusionInfo(self.config.to_dict(), self.layout.to_dict(), self.iteration,
                             [list(h) for h in self.history] if history else [])


def _region(stack: Any, window: Any) -> tuple[int, int, int, int]:
    """(row_off, col_off, height, width) of the sampling region: the whole grid or ``window``."""
    H, W = int(stack.grid.height), int(stack.grid.width)
    if window is None:
        return 0, 0, H, W
    if isinstance(window, dict):
        r, c, h, w = window["row_off"], window["col_off"], window["height"], window["width"]
    elif hasattr(window, "row_off"):
        r, c, h, w = window.row_off, window.col_off, window.height, window.width
    else:
        r, c, h, w = window
    r0, c0 = max(int(r), 0), max(int(c), 0)
    r1, c1 = min(int(r) + int(h), H), min(int(c) + int(w), W)
    if r1 <= r0 or c1 <= c0:
        raise EngineError("the pretraining extent does not overlap the rasters", "choose an extent inside them")
    return r0, c0, r1 - r0, c1 - c0


def _draw_tile(stack: Any, layout: BandLayout, stats: Any, region: tuple[int, int, int, int], tile: int,
               rng: np.random.Generator, min_valid: float, max_tries: int = 200) -> np.ndarray:
    r0, c0, h, w = region
    for _ in range(max_tries):
        r = r0 + int(rng.integers(0, h - tile + 1))
        c = c0 + int(rng.integers(0, w - tile + 1))
        win = stack.read(r, c, tile, tile)
        if float(np.mean(win.valid)) >= min_valid:
            return layout.assemble(win, stats)
    raise EngineError(f"no {tile}x{tile} tile with at least {min_valid:.0%} valid pixels was found in "
                      f"{max_tries} random draws", "check the nodata value and the extent of the rasters")


#: memory layout of the U-Net's weights and inputs while it trains on the CPU: oneDNN's 3-D convolutions, their
#: backward above all, run about 2x faster on channels-last tensors than on PyTorch's default layout (0.12 s vs
#: 0.24 s a ``fast`` iteration on the 2-core CPU, the same loss to float rounding; docs/benchmarks.md). Inference
#: gains nothing from it, so the trained U-Net is handed back in the default layout. CUDA keeps the default (not
#: measured).
CPU_MEMORY_FORMAT = torch.channels_last_3d


def pretrain(stack: Any, config: DiffusionConfig, stats: Any = None, reporter: Any = None,
             device: str | torch.device = "cpu", checkpoint_path: str | None = None, resume: bool = False,
             window: Any = None) -> PretrainResult:
    """Pretrain the SpectralDiff U-Net with the BDGF forward process (paper Alg. 1; spec §2.1, §3.3).

    Every iteration draws ``batch_size`` random ``tile x tile`` windows from the valid area of the scene (or of
    ``window``) through ``stack.read`` (memory ~ batch x tile, never the scene), assembles them with
    :class:`BandLayout`, draws ``t ~ U{0..T-1}``, applies :func:`bdgf_forward` with masking progress
    ``iteration / (iterations - 1)`` and takes an Adam step on the L1 loss between the U-Net output and the
    target (all voxels). bf16 autocast on CUDA.

    Args:
        stack: ``data.grid.RasterStack`` (``modalities``, ``band_counts``, ``grid.height/width``, ``read``).
        config: :class:`DiffusionConfig`. stats: ``compute_statistics(stack)`` output (computed when None).
        reporter: ``progress.Reporter``: task "pretrain" with loss; cancellation between iterations.
        device: torch device. checkpoint_path: safetensors checkpoint written every ``checkpoint_every``
            iterations, at the end and on cancel (then :class:`Cancelled` is re-raised).
        resume: continue from ``checkpoint_path`` (model, optimiser, RNG states, history, masking progress).
        window: optional sampling region: ``(row_off, col_off, height, width)`` or an object/dict with those.
    Returns:
        :class:`PretrainResult`. Deterministic for a fixed seed on CPU (torch and numpy generators).
    """
    rep = ensure(reporter)
    t_start = time.monotonic()
    dev = torch.device(device)
    layout = BandLayout.from_stack(stack, config)
    if stats is None:
        stats = compute_statistics(stack, seed=config.seed, window=window)
    region = _region(stack, window)
    tile = min(config.tile, region[2], region[3])
    if tile < 8:
        raise EngineError(f"the pretraining area ({region[2]}x{region[3]} px) is too small",
                          "use an extent of at least 8x8 pixels")

    from .distributed import info as dist_info
    from .distributed import wrap

    dinfo = dist_info()              # under torchrun: own tiles per process, gradients averaged (DDP)
    torch.manual_seed(config.seed)   # parameter init (identical on every process)
    unet = SpectralDiffUNet(config.width).to(dev)
    memory_format = CPU_MEMORY_FORMAT if dev.type == "cpu" else None
    if memory_format is not None:
        unet.to(memory_format=memory_format)
    model = wrap(unet, dev, find_unused=False)
    opt = torch.optim.Adam(unet.parameters(), lr=config.lr)
    schedule = NoiseSchedule.from_config(config)
    rng = np.random.Generator(np.random.PCG64([config.seed, dinfo.rank]) if dinfo.enabled
                              else np.random.PCG64(config.seed))
    gen = torch.Generator(device=dev)
    gen.manual_seed(config.seed + 1 + 1_000_003 * dinfo.rank)
    history: list[tuple[int, float]] = []
    it = 0
    if resume:
        it, history, rng = _resume(checkpoint_path, unet, opt, rng, gen, layout, config, dinfo, dev)
        rep.info(f"resuming diffusion pretraining at iteration {it}")

    def save() -> None:
        if checkpoint_path and dinfo.is_main:
            tensors = {f"unet.{k}": v for k, v in unet.state_dict().items()}
            save_checkpoint(checkpoint_path, "pretrain", tensors, opt, {
                "iteration": it, "config": config.to_dict(), "layout": layout.to_dict(), "history": history,
                "rng": {"numpy": rng.bit_generator.state, "torch": gen.get_state().tolist()}})

    total = config.iterations
    kinds = layout.kinds
    masking = config.masking and layout.has_auxiliary
    rep.info(f"diffusion pretraining: S={layout.S} bands ({layout.n_aux} auxiliary + {layout.n_spectral} "
             f"spectral, {layout.mode}), width {config.width} "
             f"({sum(p.numel() for p in unet.parameters()):,} parameters), {tile}x{tile} tiles x "
             f"{config.batch_size}, {total} iterations, masking {'on' if masking else 'off'}, device {dev}")
    use_amp = dev.type == "cuda"
    unet.train()
    task = rep.task("pretrain", total)
    try:
        if it:
            task.n = min(it, task.total)
        while it < total:
            rep.check_cancelled()
            x0 = np.stack([_draw_tile(stack, layout, stats, region, tile, rng, config.min_valid_fraction)
                           for _ in range(config.batch_size)])
            p = mask_probability(it / max(total - 1, 1), config.mask_p_scale)
            lv = _step(model, opt, torch.from_numpy(x0).to(dev)[:, None], kinds, schedule, config, p, gen, use_amp,
                       memory_format)
            it += 1
            history.append((it, lv))
            if not math.isfinite(lv):
                raise EngineError(f"diffusion pretraining diverged at iteration {it} (loss {lv})",
                                  "lower the learning rate or check the input statistics")
            if config.checkpoint_every and it % config.checkpoint_every == 0 and it < total:
                save()
            task.update(1, loss=lv, p_mask=round(p, 3))
    except Cancelled:
        save()
        raise
    finally:
        task.close()
    save()
    unet.to(memory_format=torch.contiguous_format).eval()    # what the feature extractor and its exports expect
    return PretrainResult(unet, layout, config, history, stats, it, time.monotonic() - t_start)


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, x0: torch.Tensor, kinds: list, schedule: NoiseSchedule,
          config: DiffusionConfig, p: float, gen: torch.Generator, use_amp: bool,
          memory_format: torch.memory_format | None = None) -> float:
    """One optimiser step on a batch ``x0 (n, 1, S, h, w)``: ``t ~ U{0..T-1}``, BDGF forward process with drop
    probability ``p``, L1 loss between the U-Net output and the target (paper Alg. 1). ``memory_format``: the
    layout the U-Net input is given in (that of the U-Net's weights). Returns the loss."""
    t = torch.randint(0, config.T, (x0.shape[0],), generator=gen, device=x0.device)
    fs = bdgf_forward(x0, t, kinds, schedule, config, p, generator=gen)
    x_t = fs.x_t if memory_format is None else fs.x_t.contiguous(memory_format=memory_format)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
        pred = model(x_t, t)
    loss = F.l1_loss(pred.float(), fs.target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _resume(path: str, unet: SpectralDiffUNet, opt: torch.optim.Optimizer, rng: np.random.Generator,
            gen: torch.Generator, layout: BandLayout, config: DiffusionConfig, dinfo: Any, dev: torch.device
            ) -> tuple[int, list, np.random.Generator]:
    """Load a pretraining checkpoint into the U-Net, optimiser and generators: ``(iteration, history, rng)``.

    Raises:
        EngineError: no checkpoint, or one written for other bands or another U-Net width.
    """
    tensors, meta = load_checkpoint(path, "pretrain")
    if meta["layout"]["S"] != layout.S or meta["config"]["width"] != config.width:
        raise EngineError(f"checkpoint {path} was written for other bands or width",
                          "resume with the same rasters and profile, or start without --resume")
    unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
    unet.to(dev)
    load_optimizer(opt, tensors, meta["optimizer"], dev)
    it = int(meta["iteration"])
    if dinfo.is_main:
        rng.bit_generator.state = meta["rng"]["numpy"]
        gen.set_state(torch.tensor(meta["rng"]["torch"], dtype=torch.uint8))
    else:   # the checkpoint holds rank 0's generators: other processes re-seed from (seed, rank, iteration)
        rng = np.random.Generator(np.random.PCG64([config.seed, dinfo.rank, it]))
        gen.manual_seed(config.seed + 1 + 1_000_003 * dinfo.rank + it)
    return it, [(int(a), float(b)) for a, b in meta["history"]], rng

