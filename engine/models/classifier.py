"""The trained BDGF model: everything needed to classify a window (spec §4).

:class:`TrainedModel` bundles the diffusion feature extractor (U-Net), the group network, the input
normalisation, the diffusion-feature scaling and the classes; it is what a classifier model file holds and what
:mod:`engine.predict` runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..applicability import Applicability
from ..data.inputs import ClassifierInputs
from ..data.windows import Window, WindowInputs, read_window
from ..io.schema import Category, ModelMetadata
from .diffusion import FeatureExtractor
from .network import NetworkConfig, build_network

__all__ = ["TrainedModel"]


class TrainedModel:
    """U-Net feature extractor + group network + input normalisation + classes.

    Attributes:
        extractor: ``diffusion.FeatureExtractor`` (C_dif channels, halo pixels).
        inputs: :class:`ClassifierInputs`. net: ``network.GroupNetwork``, or a ``network.GroupEnsemble`` of them
            (``NetworkConfig.members``; eval mode after training).
        feat_min, feat_max: ``(C_dif,)`` float32 per-channel min / max of the diffusion features over the
            training windows: features are scaled to [0, 1] with them (spec §1.3 ``max_min``).
        classes: :class:`engine.io.schema.Category` list; network class index ``k`` is ``classes[k]``.
        patch_size: P.
        applicability: ``engine.applicability.Applicability`` (the training pixels and the threshold of the
            area of applicability), or None for a model file written before the engine kept them.
    """

    def __init__(self, extractor: FeatureExtractor, inputs: ClassifierInputs, net: GroupNetwork,
                 feat_min: torch.Tensor, feat_max: torch.Tensor, classes: list[Category], patch_size: int,
                 applicability: Any = None):
        self.extractor = extractor
        self.inputs = inputs
        self.net = net
        self.feat_min = feat_min.float()
        self.feat_max = feat_max.float()
        self.classes = classes
        self.patch_size = int(patch_size)
        self.applicability = applicability

    @property
    def device(self) -> torch.device:
        return self.extractor.device

    @property
    def margin(self) -> int:
        """Patch margin P // 2 (pixels)."""
        return self.patch_size // 2

    def scale_features(self, f: torch.Tensor, valid: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(C_dif, h, w)`` raw features -> [0, 1]-scaled, 0 where ``valid`` is False."""
        lo = self.feat_min.to(f.device)[:, None, None]
        span = (self.feat_max.to(f.device) - self.feat_min.to(f.device)).clamp_min(1e-6)[:, None, None]
        v = torch.as_tensor(valid, device=f.device)
        return ((f - lo) / span) * v.to(f.dtype)

    def window_inputs(self, stack: Any, window: Window, extractor: Any = None) -> WindowInputs:
        """All network inputs of a window (:func:`engine.data.windows.read_window`), ready for the network.

        ``extractor``: the feature extractor to use instead of :attr:`extractor` (e.g. the compiled encoder of
        ``models.inference.InferenceBackend.extractor``).

        Returns:
            :class:`WindowInputs`: ``spec (C_spec, h, w)``, ``aux (C_aux, h, w) | None`` and the [0, 1]-scaled
            ``features (C_dif, h, w)`` as float32 tensors on the model's device (0 where invalid), ``valid``.
        """
        spec, aux, f, valid = read_window(stack, extractor or self.extractor, self.inputs, window)
        dev = self.device
        f = self.scale_features(f, valid)
        return WindowInputs(torch.from_numpy(spec).to(dev), None if aux is None else torch.from_numpy(aux).to(dev),
                            f, valid)

    # -- model file ------------------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"unet.{k}": v.detach().cpu().contiguous() for k, v in self.extractor.unet.state_dict().items()}
        out.update({f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()})
        out.update({k: torch.from_numpy(v) for k, v in self.inputs.arrays().items()})
        out["features.min"] = self.feat_min.cpu().contiguous()
        out["features.max"] = self.feat_max.cpu().contiguous()
        if self.applicability is not None:
            out.update({k: torch.from_numpy(v) for k, v in self.applicability.arrays().items()})
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], metadata: ModelMetadata,
                     device: Any = "cpu") -> "TrainedModel":
        """Rebuild from a classifier model file's tensors (see :meth:`tensors`) and metadata."""
        extractor = FeatureExtractor.from_tensors(tensors, metadata, device)
        inputs = ClassifierInputs.from_arrays(metadata.band_counts, metadata.statistics(), tensors)
        ncfg = NetworkConfig.from_dict(metadata.network_config)
        net = build_network(inputs.n_spectral, inputs.n_auxiliary, extractor.channels, len(metadata.classes), ncfg)
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        net.to(extractor.device).eval()
        extractor.unet.eval()
        return cls(extractor, inputs, net, tensors["features.min"], tensors["features.max"],
                   list(metadata.classes), metadata.patch_size, Applicability.from_arrays(tensors))
