"""Profiles: named sets of stage configurations (``fast`` and ``paper``).

``paper`` follows the spec's sizes (engine-spec §2.1, §4, §5.1): U-Net width 16 (4.30 M parameters), 64 x 64
pretraining tiles in batches of 20, group network with d = 64 and the SpectralDiff Transformer (depth 2, 20
heads of 64), 200 epochs with milestones 50/100/150. It is meant for a CUDA GPU.

``fast`` is sized for a 2-core CPU and a 512 x 512 crop in a few minutes: U-Net width 4 (1/16 of the MACs),
32 x 32 tiles in batches of 4, 100 iterations, the duplicated half of feat[0] dropped (``dedup``, spec §2.5:
C_dif = 4·S instead of 32·S, same information); 5 x 5 patches instead of 9 x 9; group network d = 32 with a
one-layer, 4-head Transformer (dropout 0.2, against overfitting a few polygons) and 1x1 guidance convolutions;
20 epochs of 250 class-balanced draws per class
(from every labelled pixel), half of them mixed with a patch of another class (``mix_share`` 0.5). Each mixed
patch takes its partner across a straight line 0.5-2.5 px from the centre pixel, which stays pure and keeps its
label (``mix_edge_share`` 1, :func:`engine.train.edge_weights`): the boundary that polygons drawn inside fields
and forests never show, and without which forest grew 1-3 px into the fields beside it on the full Delmarva map
(docs/benchmarks.md, "Forest edges that grow into fields"). Its diffusion features change over 13 px
(``mix_edge_transition``, the U-Net encoder's receptive-field radius), as they do across the scene's own
boundaries (``benchmarks/edge_profile.py``: 12 px), so the centre pixel's features carry 0.31-0.46 of the
partner (docs/benchmarks.md, "How wide a boundary is in the diffusion features"). The former whole-patch blend
(weights below ``mix_max`` 0.4, diffusion features below ``mix_guidance_max`` 0.6) is what a ``mix_edge_share``
below 1 keeps for the other mixed patches. Pseudo-labels from a random forest
(``pseudo_share``) are an option of both profiles, off by default: they lift the two small BigEarthNet pairs above
the random forest under cross-validation but move salt marsh to water on the full Delmarva map
(docs/benchmarks.md, "Pseudo-labels"). After cross-validation the final model is read out by the mean of its branch
heads instead of the fused classifier when the folds put that read-out at least one point of OA ahead
(``readout_margin`` 0.01, :func:`engine.train.choose_readout`); ``paper`` keeps Eq. 29's fused classifier.
It gives up model capacity, spatial context and training length (see docs/profiles.md for measured costs and accuracy).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from .contract import PROFILES
from .errors import EngineError
from .models.diffusion import DiffusionConfig
from .models.network import NetworkConfig
from .models.unet import receptive_field_radius
from .train import TrainingConfig


@dataclass
class Profile:
    """Configurations of every stage plus the prediction tiling for one profile."""

    name: str
    diffusion: DiffusionConfig
    network: NetworkConfig
    training: TrainingConfig
    tile: int
    batch_size: int


def get_profile(name: str, seed: int = 0, **overrides: Any) -> Profile:
    """The named profile with ``seed`` applied to every stage, then ``overrides`` applied.

    Each override is a field name of :class:`DiffusionConfig`, :class:`NetworkConfig` or
    :class:`TrainingConfig`; it is set on every configuration that has the field (``patch_size`` on both the
    network and the training, ``seed`` on diffusion and training). A ``diffusion.``, ``network.`` or ``training.``
    prefix limits it to one stage; ``profile.tile`` / ``profile.batch_size`` set the classify tiling.
    Example: ``get_profile("paper", band_mode="compact")``,
    ``get_profile("fast", **{"training.epochs": 5})``.

    Raises:
        EngineError: unknown profile name, unknown override field, or an override that makes a configuration
            invalid.
    """
    # in both profiles the patch size is the network's (paper 9 x 9, fast 5 x 5); the training cuts the same
    if name == "paper":
        net = NetworkConfig.paper()
        prof = Profile("paper", DiffusionConfig.paper(seed=seed), net,
                       TrainingConfig(seed=seed, patch_size=net.patch_size), tile=256, batch_size=512)
    elif name == "fast":
        net = NetworkConfig.fast()
        prof = Profile("fast", DiffusionConfig.fast(seed=seed), net,
                       TrainingConfig(seed=seed, patch_size=net.patch_size, epochs=20, milestones=(10, 16),
                                      max_train_per_class=250, max_val_per_class=400, checkpoint_every=5, rf_trees=100,
                                      mix_share=0.5, mix_guidance_max=0.6, mix_edge_share=1.0,
                                      mix_edge_transition=float(receptive_field_radius()), whitewater=0.5,
                                      auxiliary_dropout=0.5, readout_margin=0.01),
                       tile=256, batch_size=1024)
    else:
        raise EngineError(f"Unknown profile {name!r}", f"Use one of: {', '.join(PROFILES)}.")
    return _apply_overrides(prof, overrides) if overrides else prof


def _override_targets(prof: Profile, key: str) -> tuple[str, str, list]:
    """``(stage, field name, stage configurations that have the field)`` of an override name such as
    ``training.epochs`` or ``patch_size`` (no prefix: every stage that has the field)."""
    stage, _, field_name = key.rpartition(".")
    stages = {"diffusion": prof.diffusion, "network": prof.network, "training": prof.training}
    targets = [c for n, c in stages.items() if (not stage or stage == n)
               and field_name in {f.name for f in dataclasses.fields(c)}]
    return stage, field_name, targets


def _apply_overrides(prof: Profile, overrides: dict) -> Profile:
    stages = {"diffusion": prof.diffusion, "network": prof.network, "training": prof.training}
    for key, value in overrides.items():
        stage, field_name, targets = _override_targets(prof, key)
        if stage and stage not in (*stages, "profile"):
            raise EngineError(f"Unknown stage {stage!r} in profile override {key!r}",
                              "Use diffusion., network., training. or profile. (or no prefix).")
        if stage == "profile" and field_name in ("tile", "batch_size"):
            setattr(prof, field_name, int(value))
            continue
        if not targets:
            raise EngineError(f"Unknown profile override {key!r}",
                              "Use a field of DiffusionConfig, NetworkConfig or TrainingConfig "
                              "(see docs/profiles.md).")
        for cfg in targets:
            setattr(cfg, field_name, value)
    for n, cfg in stages.items():   # re-validate: an override may break a configuration
        try:
            stages[n] = type(cfg).from_dict(cfg.to_dict())
        except (ValueError, TypeError) as e:
            raise EngineError(f"Invalid {n} override: {e}", "Fix the value given to the profile.") from e
    if stages["network"].patch_size != stages["training"].patch_size:   # the network reads the training's patches
        raise EngineError(f"Profile overrides give the network {stages['network'].patch_size} x "
                          f"{stages['network'].patch_size} px patches and the training "
                          f"{stages['training'].patch_size} x {stages['training'].patch_size} px",
                          "Set the patch size without a prefix (--set patch_size=N), so both stages take it.")
    return Profile(prof.name, stages["diffusion"], stages["network"], stages["training"], prof.tile,
                   prof.batch_size)


def parse_override(item: str, profile: str = "fast") -> tuple[str, Any]:
    """One ``NAME=VALUE`` text override (``train --set``) -> ``(NAME, value)`` typed like the field of ``profile``.

    ``NAME`` is a stage field as :func:`get_profile` takes it (``guidance_dropout``, ``training.class_balance``,
    ``network.dropout``); booleans read ``true``/``false`` (or ``1``/``0``, ``yes``/``no``), tuples
    comma-separated integers (``training.milestones=10,16``), a field that is ``None`` by default a JSON value.
    The classify tiling (``profile.tile``, ``profile.batch_size``) is not a model setting: ``classify --tile``.

    Raises:
        EngineError: no ``=``, an unknown name or a value that does not read as the field's type; the message
            names the item.
    """
    name, sep, text = item.partition("=")
    name, text = name.strip(), text.strip()
    _, field_name, holders = _override_targets(get_profile(profile), name)
    if not sep or not text or not holders:
        raise EngineError(f"Profile override {item!r} is not NAME=VALUE with a known NAME",
                          "Give a field of DiffusionConfig, NetworkConfig or TrainingConfig, e.g. --set "
                          "training.guidance_dropout=0.5 (docs/profiles.md).")
    current = getattr(holders[0], field_name)
    example = (str(current).lower() if isinstance(current, bool)
               else ",".join(map(str, current)) if isinstance(current, tuple) else current)
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{text!r} is not true or false")
            return name, text.lower() in ("true", "1", "yes")
        if isinstance(current, tuple):
            return name, tuple(int(v) for v in text.split(","))
        return name, json.loads(text) if current is None else type(current)(text)
    except ValueError as e:     # json.JSONDecodeError is a ValueError
        raise EngineError(f"Profile override {item!r}: {e}",
                          f"Give {name} a value of type {type(current).__name__}, e.g. {name}={example}.") from e
