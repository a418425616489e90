"""BDGF group network (paper §3.2–3.3, Eqs. 11–29; spec §4) and its mutual-learning loss.

Three branches, each guided by the diffusion features ``f_dif``:

* CNN branch, local guidance (paper Eqs. 11–12, spec §4.1)           -> ``f_cnn (B, d)``
* Transformer branch, global guidance (Eqs. 13–19, spec §4.2)        -> ``f_trans (B, d)``
* Mamba branch, sequential guidance (Eqs. 20–24, spec §4.3)          -> ``f_mamba (B, d)``

Heads (spec §4.4): one ``Linear(d, K)`` per branch and ``Linear(n_branches·d, K)`` on ``cat[f_trans, f_cnn,
f_mamba]`` (Eq. 29). Every module of the paper's ablation (Tab. 2) is a :class:`NetworkConfig` switch.

Inputs: ``x_spec (B, C_spec, P, P)`` (PCA / z-score upstream), ``x_aux (B, C_aux, P, P)`` or ``None`` when
``n_auxiliary == 0`` (then no SAR module exists), ``f_dif (B, C_dif, P, P)`` (or ``None`` when no guidance is on).
``P`` is odd (9 by default, spec §1.4). Defaults are the paper's sizes (spec §4, §4.6 parameter parity);
:meth:`NetworkConfig.fast` is the small CPU profile.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import MAX_ENSEMBLE_MEMBERS, PREDICTIONS
from .mamba import Mamba

__all__ = [
    "NetworkConfig", "NetworkOutput", "GroupNetwork", "MutualLearningLoss", "LossOutput",
    "CNNBranch", "TransformerBranch", "MambaBranch", "Tokenizer", "DiffusionTokenMap", "Transformer",
    "CrossAttention", "MambaSequenceBlock", "GroupChannelAttention", "AdaptiveTemperature", "grad_reverse",
    "BRANCHES", "GroupEnsemble", "build_network", "set_prediction", "other_readout",
]

#: branch names, in the order of the final classifier's input (Eq. 29: cat[f_trans, f_cnn, f_mamba]).
BRANCHES = ("transformer", "cnn", "mamba")
#: mutual-learning pairs (a, b); b is the reference distribution (Eq. 28 puts p_trans as target of L^ct).
PAIRS = (("cnn", "transformer"), ("cnn", "mamba"), ("transformer", "mamba"))


@dataclass
class NetworkConfig:
    """Group-network configuration (spec §4, ambiguity register §8 items 11–17). Defaults = paper sizes.

    Ablation switches (paper Tab. 2): ``use_cnn``, ``use_transformer``, ``use_mamba`` (branches);
    ``cnn_guidance``, ``transformer_guidance``, ``mamba_guidance`` (diffusion guidance of each branch);
    ``mutual_learning`` (Eqs. 25–28). Mutual-learning options ML1–ML4 (spec §4.4): ``ml_softened`` (ML1),
    ``ml_temperature`` "adaptive"|"fixed" + ``ml_grl`` + ``ml_t_min``/``ml_t_max`` + ``ml_fixed_t`` (ML2),
    ``branch_ce`` (ML3), ``ml_detach_target`` (ML4). ``prediction``: what the predicted class and its probabilities
    come from (:meth:`GroupNetwork.log_probabilities`): ``"fused"`` (Eq. 29, ``argmax z_total``) or ``"heads"``
    (the mean of the branch heads' class probabilities). ``members``: how many group networks of this
    configuration a model holds (:func:`build_network`); above 1 they form a :class:`GroupEnsemble`.
    """

    d: int = 64                          # embedding dim (paper §4.1)
    patch_size: int = 9                  # odd patch side P
    # ablation switches (Tab. 2)
    use_cnn: bool = True
    use_transformer: bool = True
    use_mamba: bool = True
    cnn_guidance: bool = True
    transformer_guidance: bool = True
    mamba_guidance: bool = True
    mutual_learning: bool = True
    # CNN branch (§4.1): 3-D channels c1, c2; depths D1 = d / c1, D2 = d / c2
    cnn_c1: int = 8
    cnn_c2: int = 16
    guidance_init: float = 0.5           # α, β, γ init
    cnn_guide_kernel: int = 3            # kernel of w1²ᵈ/w2²ᵈ/w3²ᵈ (C_dif→d); 3 = paper, fast profile uses 1
    # Transformer branch (§4.2)
    n_tokens: int = 4                    # tokenizer L
    trans_depth: int = 2
    trans_heads: int = 20
    trans_dim_head: int = 64
    trans_mlp_dim: int = 8
    cross_heads: int = 8
    cross_kv_include_query: bool = False  # HCT variant: the query cls token also in K/V
    dropout: float = 0.0
    # Mamba branch (§4.3, §7.1); d_model = patch_size²
    mamba_d_state: int = 16
    mamba_d_conv: int = 4
    mamba_expand: int = 2
    mamba_pre_norm: bool = True
    mamba_dif_proj: bool = False         # True: own Conv2d(C_dif→d, 1) for the diffusion CAM instead of T_dif
    mamba_gate: str = "sigmoid"          # "sigmoid" (BN + sigmoid) | "none" (BN only) | "literal" (Eq. 24: w11 only)
    # mutual learning (§4.4)
    ml_weight: float = 1.0
    ml_softened: bool = True             # ML1
    ml_temperature: str = "adaptive"     # ML2: "adaptive" | "fixed"
    ml_grl: bool = True                  # ML2: gradient reversal on T
    ml_t_min: float = 1.0
    ml_t_max: float = 10.0
    ml_clamp: bool = True                # ML2: clamp T to [ml_t_min, ml_t_max]; False = Eq. 27 literal
    ml_fixed_t: float = 4.0
    branch_ce: bool = True               # ML3
    ml_detach_target: bool = False       # ML4
    prediction: str = "fused"            # "fused" (Eq. 29: z_total) | "heads" (mean of the branch heads' softmax)
    members: int = 1                     # > 1: a GroupEnsemble of that many networks (not in the paper)
    extra: dict = field(default_factory=dict)   # free-form, kept by to_dict/from_dict

    def __post_init__(self):
        if self.patch_size < 1 or self.patch_size % 2 != 1:
            raise ValueError(f"patch_size must be odd, got {self.patch_size}")
        if not (self.use_cnn or self.use_transformer or self.use_mamba):
            raise ValueError("at least one branch (use_cnn / use_transformer / use_mamba) must be on")
        if self.use_cnn and (self.d % self.cnn_c1 or self.d % self.cnn_c2):
            raise ValueError(f"d={self.d} must be divisible by cnn_c1={self.cnn_c1} and cnn_c2={self.cnn_c2}")
        if self.d % self.cross_heads:
            raise ValueError(f"d={self.d} must be divisible by cross_heads={self.cross_heads}")
        if self.cnn_guide_kernel < 1 or self.cnn_guide_kernel % 2 != 1:
            raise ValueError(f"cnn_guide_kernel must be odd, got {self.cnn_guide_kernel}")
        if self.ml_temperature not in ("adaptive", "fixed"):
            raise ValueError(f"ml_temperature must be adaptive or fixed, not {self.ml_temperature!r}")
        if self.mamba_gate not in ("sigmoid", "none", "literal"):
            raise ValueError(f"mamba_gate must be sigmoid, none or literal, not {self.mamba_gate!r}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be fused or heads, not {self.prediction!r}")
        if not 1 <= int(self.members) <= MAX_ENSEMBLE_MEMBERS:
            raise ValueError(f"members must be 1 to {MAX_ENSEMBLE_MEMBERS}, got {self.members}")

    @property
    def branches(self) -> tuple[str, ...]:
        """Enabled branch names in classifier order (Eq. 29)."""
        on = {"cnn": self.use_cnn, "transformer": self.use_transformer, "mamba": self.use_mamba}
        return tuple(b for b in BRANCHES if on[b])

    @property
    def heads_trained(self) -> bool:
        """True when the branch heads learn the classes (mutual learning with per-branch cross-entropy, ML3, and
        at least two branches), so that ``prediction="heads"`` is a trained read-out."""
        return self.mutual_learning and self.branch_ce and len(self.branches) > 1

    @property
    def any_guidance(self) -> bool:
        """True when some enabled branch consumes ``f_dif``."""
        return ((self.use_cnn and self.cnn_guidance) or (self.use_transformer and self.transformer_guidance)
                or (self.use_mamba and self.mamba_guidance))

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (for model-file metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkConfig":
        """Inverse of :meth:`to_dict`; unknown keys are kept under ``extra`` (forward compatibility)."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        if unknown:
            known["extra"] = {**dict(known.get("extra") or {}), **unknown}
        return cls(**known)

    @classmethod
    def paper(cls, **overrides) -> "NetworkConfig":
        """Paper sizes (spec §4): d 64, Transformer depth 2 / heads 20 / dim_head 64 / mlp 8."""
        return cls(**overrides)

    @classmethod
    def literal(cls, **overrides) -> "NetworkConfig":
        """Paper sizes with the equations taken literally: Eq. 24 without BatchNorm and sigmoid on the gate
        (``mamba_gate="literal"``), Eq. 29 without per-branch cross-entropy (``branch_ce=False``, ML3) and Eq. 27
        without the temperature clamp (``ml_clamp=False``, ML2). Less stable than :meth:`paper` (spec §4.3-§4.4)."""
        return cls(**{"mamba_gate": "literal", "branch_ce": False, "ml_clamp": False, **overrides})

    @classmethod
    def fast(cls, **overrides) -> "NetworkConfig":
        """Small CPU profile: 5 x 5 patches, d 32, 1×1 diffusion-guidance convs in the CNN branch, Transformer
        depth 1 / heads 4 / dim_head 16, cross heads 4, dropout 0.2, Mamba d_state 8.

        Patch side 5 instead of the paper's 9 (§4.1): every layer but the per-patch heads scales with P², so the
        network costs about a third; polygon-grouped cross-validation on four real data sets gave the same
        accuracy or better (docs/benchmarks.md, "Patch size of the fast profile"). Dropout 0.2 in the Transformer
        branch (spec §4.2: 0) regularises it on analyst data sets of a few polygons: better or level on the same
        four data sets (docs/benchmarks.md, "Training recipe options"). The prediction stays Eq. 29's fused head:
        ``prediction="heads"`` is better under cross-validation (with the ``fast`` boundary mixing, above the
        random forest on all four data sets) but on the full Delmarva scene it maps more built-up at field edges
        and the surf line and lets forest grow into the fields beside it (docs/benchmarks.md, same section and
        "How wide a boundary is in the diffusion features")."""
        base = dict(patch_size=5, d=32, cnn_c1=8, cnn_c2=16, cnn_guide_kernel=1, trans_depth=1, trans_heads=4,
                    trans_dim_head=16, trans_mlp_dim=8, cross_heads=4, dropout=0.2, mamba_d_state=8)
        base.update(overrides)
        return cls(**base)


@dataclass
class NetworkOutput:
    """Output of :meth:`GroupNetwork.forward` (spec §4.5).

    logits: (B, K) final logits z_total (Eq. 29); the prediction is :meth:`GroupNetwork.log_probabilities`.
    branch_logits: name -> (B, K) per-branch logits z_c / z_t / z_m (§4.4), enabled branches only.
    branch_features: name -> (B, d) f_cnn / f_trans / f_mamba.
    """

    logits: torch.Tensor
    branch_logits: dict[str, torch.Tensor]
    branch_features: dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------- building blocks

class ConvBNReLU2d(nn.Sequential):
    """Conv2d(k, padding k//2) + BatchNorm2d + ReLU (spec §4: "every conv is followed by BN and ReLU").
    (B, c_in, P, P) -> (B, c_out, P, P)."""

    def __init__(self, c_in: int, c_out: int, k: int = 3):
        super().__init__(nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ConvBNReLU3d(nn.Sequential):
    """Conv3d + BatchNorm3d + ReLU. (B, c_in, D, P, P) -> (B, c_out, D', P, P)."""

    def __init__(self, c_in: int, c_out: int, k=3, padding=1):
        super().__init__(nn.Conv3d(c_in, c_out, k, padding=padding), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))


# --------------------------------------------------------------------------------------------- CNN branch

class CNNBranch(nn.Module):
    """CNN branch with local diffusion guidance (paper Eqs. 11–12, spec §4.1 table).

    ::

        a1 = pool_(D1,P,P)(Conv3d(1→c1)(x_spec))         g1 = view(w1²ᵈ(f_dif))      f¹ = β a1 + (1−β) g1
        a2 = pool_(D2,P,P)(Conv3d(c1→c2)(f¹))            g2 = view(w2²ᵈ(f_dif))      f² = γ a2 + (1−γ) g2
        f³ = α w4²ᵈ(x_sar) + (1−α) w3²ᵈ(f_dif)
        u  = Conv3d(c2→d, (D2,3,3))(f²).squeeze(2)       F_cnn = w6²ᵈ(u + w5²ᵈ(f³))   f_cnn = GAP(F_cnn)

    ``w1²ᵈ, w2²ᵈ, w3²ᵈ`` (all ``Conv2d(C_dif→d, 3)`` + BN + ReLU) are fused into one ``Conv2d(C_dif→3d)``
    (identical maths, one pass over f_dif). Without guidance: f¹ = a1, f² = a2, f³ = w4²ᵈ(x_sar). Without SAR:
    f³ = w3²ᵈ(f_dif). Without both, the w5 path is absent: F_cnn = w6²ᵈ(u).

    forward(x_spec (B,C_spec,P,P), x_aux (B,C_aux,P,P)|None, f_dif (B,C_dif,P,P)|None)
        -> (F_cnn (B,d,P,P), f_cnn (B,d))
    """

    def __init__(self, n_spectral: int, n_auxiliary: int, n_diffusion: int, cfg: NetworkConfig):
        super().__init__()
        d, p = cfg.d, cfg.patch_size
        self.c1, self.c2 = cfg.cnn_c1, cfg.cnn_c2
        self.d1, self.d2 = d // cfg.cnn_c1, d // cfg.cnn_c2
        self.d = d
        self.guided = cfg.cnn_guidance
        self.has_aux = n_auxiliary > 0
        self.conv3d_1 = ConvBNReLU3d(1, self.c1)
        self.pool1 = nn.AdaptiveAvgPool3d((self.d1, p, p))
        self.conv3d_2 = ConvBNReLU3d(self.c1, self.c2)
        self.pool2 = nn.AdaptiveAvgPool3d((self.d2, p, p))
        self.conv3d_3 = ConvBNReLU3d(self.c2, d, k=(self.d2, 3, 3), padding=(0, 1, 1))   # w3³ᵈ
        if self.guided:
            self.guide = ConvBNReLU2d(n_diffusion, 3 * d, k=cfg.cnn_guide_kernel)   # [w1²ᵈ; w2²ᵈ; w3²ᵈ]
            self.beta = nn.Parameter(torch.tensor(cfg.guidance_init))
            self.gamma = nn.Parameter(torch.tensor(cfg.guidance_init))
        if self.has_aux:
            self.aux_conv = ConvBNReLU2d(n_auxiliary, d)            # w4²ᵈ
        if self.guided and self.has_aux:
            self.alpha = nn.Parameter(torch.tensor(cfg.guidance_init))
        if self.guided or self.has_aux:
            self.conv5 = ConvBNReLU2d(d, d)                         # w5²ᵈ
        self.conv6 = ConvBNReLU2d(d, d)                             # w6²ᵈ

    def forward(self, x_spec, x_aux=None, f_dif=None):
        b, _, p, _ = x_spec.shape
        a1 = self.pool1(self.conv3d_1(x_spec.unsqueeze(1)))                         # (B,c1,D1,P,P)
        if self.guided:
            g1, g2, g3 = self.guide(f_dif).split(self.d, dim=1)
            f1 = self.beta * a1 + (1 - self.beta) * g1.reshape(b, self.c1, self.d1, p, p)     # Eq. 11
        else:
            f1 = a1
        a2 = self.pool2(self.conv3d_2(f1))                                          # (B,c2,D2,P,P)
        if self.guided:
            f2 = self.gamma * a2 + (1 - self.gamma) * g2.reshape(b, self.c2, self.d2, p, p)   # Eq. 11
        else:
            f2 = a2
        u = self.conv3d_3(f2).squeeze(2)                                            # (B,d,P,P)
        if self.guided and self.has_aux:
            f3 = self.alpha * self.aux_conv(x_aux) + (1 - self.alpha) * g3          # Eq. 12
        elif self.has_aux:
            f3 = self.aux_conv(x_aux)
        elif self.guided:
            f3 = g3
        else:
            f3 = None
        fmap = self.conv6(u if f3 is None else u + self.conv5(f3))                  # F_cnn
        return fmap, fmap.mean(dim=(2, 3))


# --------------------------------------------------------------------------------------------- Transformer branch

class Tokenizer(nn.Module):
    """SSFTT-style semantic tokenizer (paper Eq. 13, spec §4.2 step 1).

    ``Xc = w7(x)`` as (B, P², d); ``A = softmax_pixels(Xc W_attᵀ)ᵀ`` (B, L, P²); ``V = x_pixels W_map`` (B, P², d)
    with W_map applied to the raw input pixels; tokens ``T = A V``.
    forward(x (B, C, P, P)) -> (B, L, d).
    """

    def __init__(self, c_in: int, d: int, n_tokens: int):
        super().__init__()
        self.conv = ConvBNReLU2d(c_in, d)                           # w7
        self.w_att = nn.Parameter(torch.empty(n_tokens, d))
        self.w_map = nn.Parameter(torch.empty(c_in, d))
        nn.init.xavier_normal_(self.w_att)
        nn.init.xavier_normal_(self.w_map)

    def forward(self, x):
        xc = self.conv(x).flatten(2).transpose(1, 2)                # (B, P², d)
        att = torch.softmax(xc @ self.w_att.t(), dim=1).transpose(1, 2)   # (B, L, P²), softmax over pixels
        v = x.flatten(2).transpose(1, 2) @ self.w_map               # (B, P², d)
        return att @ v


class DiffusionTokenMap(nn.Module):
    """Diffusion mapping (paper Eq. 14, spec §4.2 step 2): ``T_dif = Linear(C_dif→d)`` per pixel.
    forward(f_dif (B, C_dif, P, P)) -> (B, P², d). Shared by the Transformer branch and the Mamba branch's
    diffusion channel attention (spec §4.3 step 2)."""

    def __init__(self, c_dif: int, d: int):
        super().__init__()
        self.proj = nn.Linear(c_dif, d)

    def forward(self, f_dif):
        return self.proj(f_dif.flatten(2).transpose(1, 2))


class SelfAttention(nn.Module):
    """Multi-head self-attention of SpectralDiff's Transformer (``to_qkv`` without bias, ``to_out`` Linear;
    paper Eq. 15). (B, n, d) -> (B, n, d)."""

    def __init__(self, d: int, heads: int, dim_head: int, dropout: float = 0.0):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_qkv = nn.Linear(d, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, d), nn.Dropout(dropout))

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v)               # scale dim_head^-0.5
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    """MLP d → mlp_dim → d with GELU (SpectralDiff Transformer). (B, n, d) -> (B, n, d)."""

    def __init__(self, d: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d),
                                 nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Transformer(nn.Module):
    """SpectralDiff ``Transformer`` (SD-cls ``cross_transformer.py``; spec §4.2 step 4, paper Eqs. 15–16):
    ``depth`` × [x += Attn(LN(x)); x += MLP(LN(x))], pre-norm residual, no final norm. (B, n, d) -> (B, n, d)."""

    def __init__(self, d: int, depth: int, heads: int, dim_head: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(depth):
            self.layers.append(nn.ModuleList([nn.LayerNorm(d), SelfAttention(d, heads, dim_head, dropout),
                                              nn.LayerNorm(d), FeedForward(d, mlp_dim, dropout)]))

    def forward(self, x):
        for ln1, attn, ln2, ff in self.layers:
            x = x + attn(ln1(x))
            x = x + ff(ln2(x))
        return x


class CrossAttention(nn.Module):
    """Cross-token attention of a query stream's cls token over another stream's tokens (paper Eqs. 17–18,
    spec §4.2 step 5; SpectralDiff ``CrossAttention`` style): LayerNorm on q and kv, W_Q/W_K/W_V/W_o Linear(d, d)
    with bias, ``heads`` heads, scale 1/√d (Eq. 18's √d_k).
    forward(q (B, 1, d), kv (B, n, d)) -> (B, 1, d) (no residual; the caller adds it)."""

    def __init__(self, d: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.scale = d ** -0.5
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.to_q = nn.Linear(d, d)
        self.to_k = nn.Linear(d, d)
        self.to_v = nn.Linear(d, d)
        self.to_out = nn.Sequential(nn.Linear(d, d), nn.Dropout(dropout))

    def forward(self, q, kv):
        b, nq, d = q.shape
        q_, kv_ = self.norm_q(q), self.norm_kv(kv)
        h = self.heads

        def split(t):
            return t.reshape(b, t.shape[1], h, d // h).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.to_q(q_)), split(self.to_k(kv_)), split(self.to_v(kv_)),
                                             scale=self.scale)
        return self.to_out(out.transpose(1, 2).reshape(b, nq, d))


class TokenStream(nn.Module):
    """One Transformer stream: cls token (zeros) + positional embedding N(0, 0.02) + :class:`Transformer`
    (spec §4.2 steps 3–4). forward(tokens (B, n, d)) -> (B, n+1, d) with the cls token at index 0."""

    def __init__(self, n_tokens: int, cfg: NetworkConfig):
        super().__init__()
        d = cfg.d
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, n_tokens + 1, d) * 0.02)
        self.transformer = Transformer(d, cfg.trans_depth, cfg.trans_heads, cfg.trans_dim_head, cfg.trans_mlp_dim,
                                       cfg.dropout)

    def forward(self, tokens):
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos
        return self.transformer(x)


class TransformerBranch(nn.Module):
    """Transformer branch with global diffusion guidance (paper Eqs. 13–19, spec §4.2; Fusion-HCT pattern).

    ::

        F_spec = SA(cls ⊕ Tok(x_spec)) (B,L+1,d);   F_sar = SA(cls ⊕ Tok(x_sar));   F_dif = SA(cls ⊕ T_dif) (B,P²+1,d)
        F_trans^spec = [cls_spec + CA(cls_spec, tok_sar)] ∪ tok_spec                   (Eq. 17)
        F_trans^sar  = [cls_sar  + CA(cls_sar,  tok_spec)] ∪ tok_sar
        M = F_trans^spec + F_trans^sar;  F_trans^diff = [cls_dif + CA(cls_dif, M_tok)] ∪ tok_dif   (text after Eq. 18)
        f_trans = F_trans^spec[:,0] + F_trans^sar[:,0] + F_trans^diff[:,0]           (Eq. 19)

    Without SAR: no cross attention for the spectral stream, M = F_spec. Without guidance: no diffusion stream.
    forward(x_spec, x_aux|None, t_dif (B,P²,d)|None) -> f_trans (B, d).
    """

    def __init__(self, n_spectral: int, n_auxiliary: int, cfg: NetworkConfig):
        super().__init__()
        d, n_pix = cfg.d, cfg.patch_size ** 2
        self.has_aux = n_auxiliary > 0
        self.guided = cfg.transformer_guidance
        self.kv_include_query = cfg.cross_kv_include_query
        self.tok_spec = Tokenizer(n_spectral, d, cfg.n_tokens)
        self.stream_spec = TokenStream(cfg.n_tokens, cfg)
        if self.has_aux:
            self.tok_aux = Tokenizer(n_auxiliary, d, cfg.n_tokens)
            self.stream_aux = TokenStream(cfg.n_tokens, cfg)
            self.cross_spec = CrossAttention(d, cfg.cross_heads, cfg.dropout)
            self.cross_aux = CrossAttention(d, cfg.cross_heads, cfg.dropout)
        if self.guided:
            self.stream_dif = TokenStream(n_pix, cfg)
            self.cross_dif = CrossAttention(d, cfg.cross_heads, cfg.dropout)

    def _cross(self, ca, query_seq, other_seq):
        cls = query_seq[:, :1]
        kv = other_seq[:, 1:]
        if self.kv_include_query:
            kv = torch.cat([cls, kv], dim=1)
        return torch.cat([cls + ca(cls, kv), query_seq[:, 1:]], dim=1)

    def forward(self, x_spec, x_aux=None, t_dif=None):
        f_spec = self.stream_spec(self.tok_spec(x_spec))
        if self.has_aux:
            f_aux = self.stream_aux(self.tok_aux(x_aux))
            ft_spec = self._cross(self.cross_spec, f_spec, f_aux)
            ft_aux = self._cross(self.cross_aux, f_aux, f_spec)
            merged = ft_spec + ft_aux
            out = ft_spec[:, 0] + ft_aux[:, 0]
        else:
            ft_spec = merged = f_spec
            out = ft_spec[:, 0]
        if self.guided:
            f_dif = self.stream_dif(t_dif)
            ft_dif = self._cross(self.cross_dif, f_dif, merged)
            out = out + ft_dif[:, 0]
        return out


# --------------------------------------------------------------------------------------------- Mamba branch

class MambaSequenceBlock(nn.Module):
    """Band-sequence Mamba (paper Eq. 20, spec §4.3 step 1, §7): tokens = bands, token vector = the P² pixels.
    ``f_m = X + Mamba(LN(X))`` (pre-LN [INFERRED]). forward(x (B, C, P, P)) -> (B, C, P, P)."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        n_pix = cfg.patch_size ** 2
        self.norm = nn.LayerNorm(n_pix) if cfg.mamba_pre_norm else nn.Identity()
        self.mamba = Mamba(n_pix, d_state=cfg.mamba_d_state, d_conv=cfg.mamba_d_conv, expand=cfg.mamba_expand)

    def forward(self, x):
        seq = x.flatten(2)                                          # (B, C, P²)
        return (seq + self.mamba(self.norm(seq))).reshape(x.shape)


class GroupChannelAttention(nn.Module):
    """DANet-style channel attention with 1×1 conv projections (paper Eqs. 21–23, spec §4.3 step 2).

    ``Q, K, V = Conv2d(c_in→d, 1)(f)`` as (B, d, P²); ``E = Q Kᵀ``; ``E' = max_j E − E`` (Eq. 22);
    ``A = softmax(E') V``; ``f_CA = λ A + V`` with λ init 0 (Eq. 23). forward(f (B, c_in, P, P)) -> (B, d, P, P).
    """

    def __init__(self, c_in: int, d: int):
        super().__init__()
        self.q = nn.Conv2d(c_in, d, 1)                              # w8
        self.k = nn.Conv2d(c_in, d, 1)                              # w9
        self.v = nn.Conv2d(c_in, d, 1)                              # w10
        self.lam = nn.Parameter(torch.zeros(()))

    def forward(self, f):
        b, _, p, _ = f.shape
        q, k, v = self.q(f).flatten(2), self.k(f).flatten(2), self.v(f).flatten(2)   # (B, d, P²)
        e = q @ k.transpose(1, 2)                                   # (B, d, d)
        e = e.amax(dim=-1, keepdim=True) - e
        a = torch.softmax(e, dim=-1) @ v
        return (self.lam * a + v).reshape(b, -1, p, p)


class MambaBranch(nn.Module):
    """Mamba branch with sequential diffusion guidance (paper Eqs. 20–24, spec §4.3).

    ::

        f_m^spec = MambaSeq_spec(x_spec);  f_m^sar = MambaSeq_sar(x_sar)                    (Eq. 20)
        f_CA^x = GCA_x(x) for x in {f_m^spec, T_dif as (B,d,P,P) [guidance], F_cnn [CNN on]}   (Eqs. 21–23)
        G = σ(BN(w11(cat f_CA)));  F_GA^spec = G ⊙ f_m^spec + f_m^spec                      (Eq. 24)
        (``mamba_gate``: "none" drops σ, "literal" drops σ and BN: G = w11(cat f_CA) as printed)
        f_mamba = GAP(ReLU(BN(Conv2d(C_spec + C_sar → d, 1)(cat[F_GA^spec, f_m^sar]))))

    forward(x_spec, x_aux|None, t_dif (B,P²,d)|None, f_dif|None, f_cnn_map (B,d,P,P)|None) -> (B, d).
    """

    def __init__(self, n_spectral: int, n_auxiliary: int, n_diffusion: int, cfg: NetworkConfig):
        super().__init__()
        d = cfg.d
        self.has_aux = n_auxiliary > 0
        self.guided = cfg.mamba_guidance
        self.use_cnn = cfg.use_cnn
        self.seq_spec = MambaSequenceBlock(cfg)
        if self.has_aux:
            self.seq_aux = MambaSequenceBlock(cfg)
        self.ca_spec = GroupChannelAttention(n_spectral, d)
        n_in = 1
        if self.guided:
            self.dif_proj = nn.Conv2d(n_diffusion, d, 1) if cfg.mamba_dif_proj else None
            self.ca_dif = GroupChannelAttention(d, d)
            n_in += 1
        if self.use_cnn:
            self.ca_cnn = GroupChannelAttention(d, d)
            n_in += 1
        gate = [nn.Conv2d(n_in * d, n_spectral, 1)]                                      # w11
        if cfg.mamba_gate != "literal":
            gate.append(nn.BatchNorm2d(n_spectral))
        if cfg.mamba_gate == "sigmoid":
            gate.append(nn.Sigmoid())
        self.gate = nn.Sequential(*gate)
        self.out = ConvBNReLU2d(n_spectral + (n_auxiliary if self.has_aux else 0), d, k=1)

    def forward(self, x_spec, x_aux=None, t_dif=None, f_dif=None, f_cnn_map=None):
        b, _, p, _ = x_spec.shape
        fm_spec = self.seq_spec(x_spec)
        cas = [self.ca_spec(fm_spec)]
        if self.guided:
            if self.dif_proj is not None:
                dif_map = self.dif_proj(f_dif)
            else:
                dif_map = t_dif.transpose(1, 2).reshape(b, -1, p, p)
            cas.append(self.ca_dif(dif_map))
        if self.use_cnn:
            cas.append(self.ca_cnn(f_cnn_map))
        g = self.gate(torch.cat(cas, dim=1))
        f_ga = g * fm_spec + fm_spec
        feats = [f_ga]
        if self.has_aux:
            feats.append(self.seq_aux(x_aux))
        return self.out(torch.cat(feats, dim=1)).mean(dim=(2, 3))


# --------------------------------------------------------------------------------------------- mutual learning

class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -g


def grad_reverse(x: torch.Tensor) -> torch.Tensor:
    """Gradient-reversal layer: identity forward, negated gradient backward (spec §4.4 ML2)."""
    return _GradReverse.apply(x)


class AdaptiveTemperature(nn.Module):
    """Per-sample temperature of one branch pair (paper Eq. 27, spec §4.4):
    ``T = softplus(FC([sim, H_a + H_b])) + 1e-6``, FC = Linear(2, 1) with weight 0 and bias ln(e−1) (T ≈ 1 at init).
    ML2: gradient reversal on T (``grl``), then clamp to [t_min, t_max] (``clamp=False``: Eq. 27 literal).
    forward(u (B, 2), detached) -> T (B, 1)."""

    def __init__(self, grl: bool = True, t_min: float = 1.0, t_max: float = 10.0, clamp: bool = True):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        nn.init.zeros_(self.fc.weight)
        nn.init.constant_(self.fc.bias, math.log(math.e - 1.0))
        self.grl, self.t_min, self.t_max, self.clamp = grl, t_min, t_max, clamp

    def forward(self, u):
        t = F.softplus(self.fc(u)) + 1e-6
        if self.grl:
            t = grad_reverse(t)
        return t.clamp(self.t_min, self.t_max) if self.clamp else t


@dataclass
class LossOutput:
    """Result of :class:`MutualLearningLoss`: ``loss`` scalar to backpropagate, ``parts`` name -> float
    (``ce``, ``ce_<branch>``, ``ml_<a>_<b>``, ``T_<a>_<b>`` mean temperature) for logging."""

    loss: torch.Tensor
    parts: dict[str, float]


class MutualLearningLoss(nn.Module):
    """Cross-entropy + pairwise adaptive-temperature mutual learning (paper Eqs. 25–29, spec §4.4).

    For each enabled pair (a, b) ∈ {(cnn, transformer), (cnn, mamba), (transformer, mamba)}, b = reference::

        sim_i = cos(f_a,i, f_b,i)                                   (Eq. 25)
        H_x,i = −Σ_j p_x log p_x,  p_x = softmax(z_x)               (Eq. 26)
        T_i   = AdaptiveTemperature([sim_i, H_a,i + H_b,i])          (Eq. 27; inputs detached)
        L_ab  = mean_i T_i² KL(q_b ‖ q_a),  q = softmax(z / T_i)     (Eq. 28, ML1 softened)
        L     = CE(z_total, y) + w_ml Σ L_ab [+ Σ_x CE(z_x, y) if branch_ce (ML3)]   (Eq. 29)

    Options (NetworkConfig): ``ml_softened`` (ML1; False: q = softmax(z), still × T²), ``ml_temperature``
    "fixed" → T = ``ml_fixed_t`` (ML2 fallback), ``ml_grl``/``ml_t_min``/``ml_t_max`` (ML2), ``branch_ce``
    (ML3), ``ml_detach_target`` (ML4, classic deep mutual learning: KL(q_b.detach ‖ q_a) + KL(q_a.detach ‖ q_b),
    so a branch that is only ever a reference still learns). With ``mutual_learning=False`` the loss is CE(z_total) only
    (paper Tab. 2 row 11; branch CE is part of the mutual-learning scheme). Its parameters (3 × Linear(2,1))
    must be optimised together with the network (GroupNetwork owns an instance as ``loss_fn``).

    forward(out: NetworkOutput, target (B,) int64) -> LossOutput.
    """

    def __init__(self, branches, cfg: NetworkConfig):
        super().__init__()
        self.cfg = cfg
        self.enabled = cfg.mutual_learning and len(branches) > 1
        self.pairs = [(a, b) for a, b in PAIRS if a in branches and b in branches] if self.enabled else []
        self.temperatures = nn.ModuleDict()
        if cfg.ml_temperature == "adaptive":
            for a, b in self.pairs:
                self.temperatures[f"{a}_{b}"] = AdaptiveTemperature(cfg.ml_grl, cfg.ml_t_min, cfg.ml_t_max,
                                                                          cfg.ml_clamp)

    @staticmethod
    def _entropy(z):
        logp = F.log_softmax(z, dim=-1)
        return -(logp.exp() * logp).sum(-1)

    def forward(self, out: NetworkOutput, target: torch.Tensor) -> LossOutput:
        cfg = self.cfg
        ce = F.cross_entropy(out.logits, target)
        loss = ce
        parts = {"ce": float(ce.detach())}
        if not self.enabled:
            return LossOutput(loss, parts)
        if cfg.branch_ce:
            for name, z in out.branch_logits.items():
                c = F.cross_entropy(z, target)
                loss = loss + c
                parts[f"ce_{name}"] = float(c.detach())
        for a, b in self.pairs:
            za, zb = out.branch_logits[a].float(), out.branch_logits[b].float()
            key = f"{a}_{b}"
            if cfg.ml_temperature == "adaptive":
                with torch.no_grad():
                    sim = F.cosine_similarity(out.branch_features[a].float(), out.branch_features[b].float(), dim=-1)
                    u = torch.stack([sim, self._entropy(za) + self._entropy(zb)], dim=-1)
                t = self.temperatures[key](u)                                       # (B, 1)
            else:
                t = za.new_full((za.shape[0], 1), cfg.ml_fixed_t)
            if cfg.ml_softened:
                log_qa, log_qb = F.log_softmax(za / t, dim=-1), F.log_softmax(zb / t, dim=-1)
            else:
                log_qa, log_qb = F.log_softmax(za, dim=-1), F.log_softmax(zb, dim=-1)
            if cfg.ml_detach_target:    # ML4, classic DML: both directions, each against a detached target
                kl = ((log_qb.detach().exp() * (log_qb.detach() - log_qa)).sum(-1, keepdim=True)
                      + (log_qa.detach().exp() * (log_qa.detach() - log_qb)).sum(-1, keepdim=True))
            else:
                kl = (log_qb.exp() * (log_qb - log_qa)).sum(-1, keepdim=True)       # (B, 1)
            lab = (t.square() * kl).mean()
            loss = loss + cfg.ml_weight * lab
            parts[f"ml_{key}"] = float(lab.detach())
            parts[f"T_{key}"] = float(t.detach().mean())
        return LossOutput(loss, parts)


# --------------------------------------------------------------------------------------------- group network

class GroupNetwork(nn.Module):
    """BDGF group network (paper §3.2–3.3, spec §4). See the module docstring and :class:`NetworkConfig`.

    Args:
        n_spectral: C_spec (≥ 1). n_auxiliary: C_aux (≥ 0; 0 = no SAR modules). n_diffusion: C_dif (ignored, may
            be 0, when no guidance is on). n_classes: K. config: :class:`NetworkConfig` (default = paper).

    forward(x_spec (B,C_spec,P,P), x_aux (B,C_aux,P,P)|None, f_dif (B,C_dif,P,P)|None) -> :class:`NetworkOutput`.
    ``loss(out, y)`` -> :class:`LossOutput` via the owned :class:`MutualLearningLoss` (``self.loss_fn``).
    """

    def __init__(self, n_spectral: int, n_auxiliary: int, n_diffusion: int, n_classes: int,
                 config: NetworkConfig | None = None):
        super().__init__()
        cfg = config or NetworkConfig()
        if n_spectral < 1 or n_auxiliary < 0 or n_classes < 2:
            raise ValueError(f"bad sizes: n_spectral={n_spectral}, n_auxiliary={n_auxiliary}, n_classes={n_classes}")
        if cfg.any_guidance and n_diffusion < 1:
            raise ValueError("diffusion guidance is on but n_diffusion < 1")
        self.config = cfg
        self.n_spectral, self.n_auxiliary, self.n_diffusion, self.n_classes = (
            n_spectral, n_auxiliary, n_diffusion if cfg.any_guidance else 0, n_classes)
        d = cfg.d
        self.branch_names = cfg.branches
        need_tdif = ((cfg.use_transformer and cfg.transformer_guidance)
                     or (cfg.use_mamba and cfg.mamba_guidance and not cfg.mamba_dif_proj))
        self.dif_tokens = DiffusionTokenMap(n_diffusion, d) if need_tdif else None
        self.cnn = CNNBranch(n_spectral, n_auxiliary, n_diffusion, cfg) if cfg.use_cnn else None
        self.transformer = TransformerBranch(n_spectral, n_auxiliary, cfg) if cfg.use_transformer else None
        self.mamba = MambaBranch(n_spectral, n_auxiliary, n_diffusion, cfg) if cfg.use_mamba else None
        self.heads = nn.ModuleDict({name: nn.Linear(d, n_classes) for name in self.branch_names})
        self.classifier = nn.Linear(len(self.branch_names) * d, n_classes)
        self.loss_fn = MutualLearningLoss(self.branch_names, cfg)

    def _check(self, x_spec, x_aux, f_dif):
        p = self.config.patch_size
        if x_spec.ndim != 4 or x_spec.shape[1] != self.n_spectral or x_spec.shape[2:] != (p, p):
            raise ValueError(f"x_spec must be (B, {self.n_spectral}, {p}, {p}), got {tuple(x_spec.shape)}")
        if self.n_auxiliary:
            if x_aux is None or x_aux.shape[1:] != (self.n_auxiliary, p, p):
                raise ValueError(f"x_aux must be (B, {self.n_auxiliary}, {p}, {p}), got "
                                 f"{None if x_aux is None else tuple(x_aux.shape)}")
        if self.config.any_guidance:
            if f_dif is None or f_dif.shape[1:] != (self.n_diffusion, p, p):
                raise ValueError(f"f_dif must be (B, {self.n_diffusion}, {p}, {p}), got "
                                 f"{None if f_dif is None else tuple(f_dif.shape)}")

    def forward(self, x_spec: torch.Tensor, x_aux: torch.Tensor | None = None,
                f_dif: torch.Tensor | None = None) -> NetworkOutput:
        """Shapes as in spec §4.5; returns :class:`NetworkOutput`."""
        self._check(x_spec, x_aux, f_dif)
        if not self.n_auxiliary:
            x_aux = None
        t_dif = self.dif_tokens(f_dif) if self.dif_tokens is not None else None
        feats: dict[str, torch.Tensor] = {}
        f_cnn_map = None
        if self.cnn is not None:
            f_cnn_map, feats["cnn"] = self.cnn(x_spec, x_aux, f_dif)
        if self.transformer is not None:
            feats["transformer"] = self.transformer(x_spec, x_aux, t_dif)
        if self.mamba is not None:
            feats["mamba"] = self.mamba(x_spec, x_aux, t_dif, f_dif, f_cnn_map)
        ordered = {name: feats[name] for name in self.branch_names}
        logits = self.classifier(torch.cat(list(ordered.values()), dim=1))
        branch_logits = {name: self.heads[name](f) for name, f in ordered.items()}
        return NetworkOutput(logits, branch_logits, ordered)

    def log_probabilities(self, out: NetworkOutput) -> torch.Tensor:
        """``(B, K)`` float32 log class probabilities the prediction is made from (argmax = predicted class).

        ``config.prediction == "fused"``: ``log_softmax(z_total)`` (spec §4.5, Eq. 29, the paper's prediction).
        ``"heads"``: ``log(mean_b softmax(z_b))`` over the enabled branch heads ``z_c, z_t, z_m`` (spec §4.4), the
        ensemble of the peers that mutual learning trains (Zhang et al. 2018, "Deep mutual learning"). Each head
        sees only its own branch's 32-64-d feature, so no single branch can carry the decision as it can in the
        fused classifier (docs/benchmarks.md, "Training recipe options": better under cross-validation, more
        built-up at field edges on the full-scene map; not a profile default).
        """
        if self.config.prediction == "heads":
            logp = torch.stack([F.log_softmax(z.float(), dim=1) for z in out.branch_logits.values()])
            return torch.logsumexp(logp, dim=0) - math.log(len(out.branch_logits))
        return F.log_softmax(out.logits.float(), dim=1)

    def loss(self, out: NetworkOutput, target: torch.Tensor) -> LossOutput:
        """Training loss (paper Eq. 29) with the configured mutual-learning options."""
        return self.loss_fn(out, target)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameter counts per part (spec §4.6): cnn / transformer (incl. the diffusion token map) /
        mamba / heads / loss / total."""
        def n(m):
            return sum(p.numel() for p in m.parameters()) if m is not None else 0
        counts = {"cnn": n(self.cnn), "transformer": n(self.transformer) + n(self.dif_tokens),
                  "mamba": n(self.mamba), "heads": n(self.heads) + n(self.classifier), "loss": n(self.loss_fn)}
        counts["total"] = n(self)
        return counts


class GroupEnsemble(nn.Module):
    """``config.members`` group networks of one configuration, trained one after the other with their own seeds on
    the same patches (``train.train_network``), whose class probabilities are averaged: a deep ensemble
    (Lakshminarayanan et al. 2017, "Simple and scalable predictive uncertainty estimation using deep ensembles").
    Not in the paper (spec §4 describes one network): a short schedule on a few polygons per class lands in
    different solutions for different seeds, and their mean is steadier than any one of them
    (docs/benchmarks.md, "Ensemble members").

    forward(x_spec (B,C_spec,P,P), x_aux (B,C_aux,P,P)|None, f_dif (B,C_dif,P,P)|None) -> :class:`NetworkOutput`
    whose ``logits`` (B, K) are already the log of the members' mean class probabilities
    ``log(1/N sum_n softmax_n)`` (each member's :meth:`GroupNetwork.log_probabilities`); no branch outputs.
    """

    def __init__(self, n_spectral: int, n_auxiliary: int, n_diffusion: int, n_classes: int,
                 config: NetworkConfig | None = None):
        super().__init__()
        cfg = config or NetworkConfig()
        self.config = cfg
        self.members = nn.ModuleList(GroupNetwork(n_spectral, n_auxiliary, n_diffusion, n_classes, cfg)
                                     for _ in range(cfg.members))
        first = self.members[0]
        self.n_spectral, self.n_auxiliary, self.n_diffusion, self.n_classes = (
            first.n_spectral, first.n_auxiliary, first.n_diffusion, first.n_classes)

    def forward(self, x_spec: torch.Tensor, x_aux: torch.Tensor | None = None,
                f_dif: torch.Tensor | None = None) -> NetworkOutput:
        logp = torch.stack([m.log_probabilities(m(x_spec, x_aux, f_dif)) for m in self.members])
        return NetworkOutput(torch.logsumexp(logp, dim=0) - math.log(len(self.members)), {}, {})

    def log_probabilities(self, out: NetworkOutput) -> torch.Tensor:
        """``(B, K)`` float32 log of the members' mean class probabilities (``forward`` already made them)."""
        return F.log_softmax(out.logits.float(), dim=1)


def other_readout(prediction: str) -> str:
    """The read-out of ``contract.PREDICTIONS`` that is not ``prediction`` (``"heads"`` for ``"fused"`` and back)."""
    return PREDICTIONS[1 - PREDICTIONS.index(prediction)]


def set_prediction(net: "GroupNetwork | GroupEnsemble", prediction: str) -> None:
    """Switch a (trained) network's read-out in place: ``config.prediction`` of the network and of every ensemble
    member (:meth:`GroupNetwork.log_probabilities`). The weights are not touched, so the other read-out of the same
    training costs one more forward pass (``classify --prediction``; the training report's cross-validation gives
    both).

    Raises:
        ValueError: ``prediction`` not in ``contract.PREDICTIONS``, or ``"heads"`` for a network whose branch heads
            did not learn the classes (:attr:`NetworkConfig.heads_trained` is False).
    """
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, not {prediction!r}")
    if prediction == "heads" and not net.config.heads_trained:
        raise ValueError("this model's branch heads were not trained on the classes (one branch, no mutual "
                         "learning or no per-branch cross-entropy), so it can only predict with its fused classifier")
    cfg = replace(net.config, prediction=prediction)
    for module in [net, *getattr(net, "members", [])]:
        module.config = cfg


def build_network(n_spectral: int, n_auxiliary: int, n_diffusion: int, n_classes: int,
                  config: NetworkConfig | None = None) -> "GroupNetwork | GroupEnsemble":
    """The network a model of ``config`` holds: one :class:`GroupNetwork` (``members == 1``, its state-dict keys
    unchanged since the first model files) or a :class:`GroupEnsemble` of ``config.members`` of them.

    Raises:
        ValueError: sizes or configuration as in :class:`GroupNetwork`.
    """
    cfg = config or NetworkConfig()
    cls = GroupEnsemble if cfg.members > 1 else GroupNetwork
    return cls(n_spectral, n_auxiliary, n_diffusion, n_classes, cfg)
