"""Model configuration: one dataclass per LeWM component, presets, and the
reference ``config.json`` layout (sections ``encoder``, ``predictor``,
``action_encoder``, ``projector``, ``pred_proj``).

The reference names its encoder by a ViT ``size`` ("tiny", "small", ...); a
custom size is written with explicit ``hidden_size`` / ``num_hidden_layers`` /
``num_attention_heads`` / ``intermediate_size`` keys, which this loader reads
when present and which override the named size.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lewm_ros.jsonio import check_known_keys
from lewm_ros.validation import check_choice, check_ints, check_number
#: ViT sizes as in HuggingFace / timm naming: (hidden, layers, heads, mlp).
VIT_SIZES: dict[str, tuple[int, int, int, int]] = {
    'tiny': (192, 12, 3, 768),
    'small': (384, 12, 6, 1536),
    'base': (768, 12, 12, 3072),
}


@dataclass
class EncoderConfig:
    """ViT image encoder (HuggingFace ViTModel layout, no pooler).

    image_size: input side [px] (square); patch_size: patch side [px];
    hidden_size: token width; num_hidden_layers: transformer depth;
    num_attention_heads: heads; intermediate_size: MLP width;
    layer_norm_eps: HF ViT default 1e-12; size: the reference's size name;
    pretrained / use_mask_token: reference flags (weights always come from the checkpoint;
    a mask token is not supported).
    """
    size: str = 'tiny'
    patch_size: int = 14
    image_size: int = 224
    hidden_size: int = 192
    num_hidden_layers: int = 12
    num_attention_heads: int = 3
    intermediate_size: int = 768
    layer_norm_eps: float = 1e-12
    pretrained: bool = False
    use_mask_token: bool = False

    def __post_init__(self) -> None:
        if self.use_mask_token:
            raise ValueError('encoder.use_mask_token=true is not supported (LeWM encoders have no mask token)')
        check_ints('encoder.', self, ('patch_size', 'image_size', 'hidden_size', 'num_hidden_layers',
                                      'num_attention_heads', 'intermediate_size'), 1)
        if self.image_size % self.patch_size:
            raise ValueError(f'encoder.image_size ({self.image_size}) must be a multiple of '
                             f'encoder.patch_size ({self.patch_size})')
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f'encoder.hidden_size ({self.hidden_size}) must be divisible by '
                             f'encoder.num_attention_heads ({self.num_attention_heads})')

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass
class PredictorConfig:
    """Causal AdaLN-zero transformer over frames (one token per frame).

    num_frames: history length (learned positions); input_dim: latent width D;
    hidden_dim: transformer width; heads x dim_head: attention inner width;
    mlp_dim: MLP width; dropout / emb_dropout: training-time dropout rates.
    """
    num_frames: int = 3
    depth: int = 6
    heads: int = 16
    mlp_dim: int = 2048
    input_dim: int = 192
    hidden_dim: int = 192
    output_dim: int = 192
    dim_head: int = 64
    dropout: float = 0.1
    emb_dropout: float = 0.0

    def __post_init__(self) -> None:
        check_ints('predictor.', self, ('num_frames', 'depth', 'heads', 'mlp_dim', 'input_dim', 'hidden_dim',
                                        'output_dim', 'dim_head'), 1)
        for name in ('dropout', 'emb_dropout'):
            check_number(f'predictor.{name}', getattr(self, name), 0.0, 1.0, exclusive_maximum=True)


@dataclass
class ActionEncoderConfig:
    """Action-block encoder: Conv1d(k=1) input_dim->smoothed_dim, then
    Linear smoothed_dim -> mlp_scale*emb_dim, SiLU, Linear -> emb_dim.
    input_dim = frameskip x raw action dim (one block); smoothed_dim and mlp_scale default to the
    reference's 10 and 4 (published configs omit them)."""
    input_dim: int = 10
    smoothed_dim: int = 10
    emb_dim: int = 192
    mlp_scale: int = 4

    def __post_init__(self) -> None:
        check_ints('action_encoder.', self, ('input_dim', 'smoothed_dim', 'emb_dim', 'mlp_scale'), 1)


#: reference ``norm_fn`` targets -> ProjectorConfig.norm
NORM_TARGETS = {'torch.nn.BatchNorm1d': 'batchnorm', 'torch.nn.LayerNorm': 'layernorm'}


@dataclass
class ProjectorConfig:
    """MLP head: Linear input_dim->hidden_dim, norm, GELU, Linear -> output_dim.

    norm: 'batchnorm' (the reference's default, BatchNorm1d), 'layernorm' or 'none'."""
    input_dim: int = 192
    hidden_dim: int = 2048
    output_dim: int = 192
    norm: str = 'batchnorm'

    def __post_init__(self) -> None:
        check_ints('projector.', self, ('input_dim', 'hidden_dim', 'output_dim'), 1)
        check_choice('projector.norm', self.norm, ('batchnorm', 'layernorm', 'none'))


@dataclass
class LeWMConfig:
    """The whole LeWM model. Defaults are the paper/reference sizes (~18.03M parameters)."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    action_encoder: ActionEncoderConfig = field(default_factory=ActionEncoderConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    pred_proj: ProjectorConfig = field(default_factory=ProjectorConfig)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def latent_dim(self) -> int:
        """D: width of z_t (projector output)."""
        return self.projector.output_dim

    def validate(self) -> None:
        """Cross-section shape checks; raises ValueError naming both keys."""
        checks = [
            ('projector.input_dim', self.projector.input_dim, 'encoder.hidden_size', self.encoder.hidden_size),
            ('predictor.input_dim', self.predictor.input_dim, 'projector.output_dim', self.projector.output_dim),
            ('action_encoder.emb_dim', self.action_encoder.emb_dim, 'predictor.input_dim', self.predictor.input_dim),
            ('pred_proj.input_dim', self.pred_proj.input_dim, 'predictor.output_dim', self.predictor.output_dim),
            ('pred_proj.output_dim', self.pred_proj.output_dim, 'projector.output_dim', self.projector.output_dim),
        ]
        for key_a, val_a, key_b, val_b in checks:
            if val_a != val_b:
                raise ValueError(f'{key_a} ({val_a}) must equal {key_b} ({val_b})')

    # ----- reference config.json ---------------------------------------------------------
    def to_reference_dict(self) -> dict[str, Any]:
        """The reference ``config.json`` layout (explicit ViT sizes added for custom sizes)."""
        enc = self.encoder
        encoder: dict[str, Any] = {'size': enc.size, 'patch_size': enc.patch_size, 'image_size': enc.image_size}
        if VIT_SIZES.get(enc.size) != (enc.hidden_size, enc.num_hidden_layers, enc.num_attention_heads,
                                       enc.intermediate_size):
            encoder.update(hidden_size=enc.hidden_size, num_hidden_layers=enc.num_hidden_layers,
                           num_attention_heads=enc.num_attention_heads, intermediate_size=enc.intermediate_size)
        if enc.layer_norm_eps != 1e-12:
            encoder['layer_norm_eps'] = enc.layer_norm_eps
        encoder.update(pretrained=False, use_mask_token=False)
        return {
            'encoder': encoder,
            'predictor': dataclasses.asdict(self.predictor),
            'action_encoder': dataclasses.asdict(self.action_encoder),
            'projector': _projector_to_reference(self.projector),
            'pred_proj': _projector_to_reference(self.pred_proj),
        }

    @classmethod
    def from_reference_dict(cls, data: dict[str, Any]) -> 'LeWMConfig':
        """Parse a reference ``config.json`` (published checkpoints, le-wm training runs, ours).

        Hydra keys (``_target_``, ``_partial_``) are ignored; ``projector.norm_fn`` gives the norm;
        top-level keys other than the five sections must be in TOP_LEVEL_EXTRAS. Unknown keys inside
        a section are an error: they would silently change the architecture."""
        if not isinstance(data, dict):
            raise ValueError(f'config must be a JSON object, got {type(data).__name__}')
        extra = sorted(k for k in data if k not in SECTIONS and not k.startswith('_') and k not in TOP_LEVEL_EXTRAS)
        if extra:
            raise ValueError(f'config has unknown top-level key(s) {extra}; known: {sorted(SECTIONS)} + '
                             f'{sorted(TOP_LEVEL_EXTRAS)}')
        missing = [s for s in SECTIONS if s not in data]
        if missing:
            raise ValueError(f'config is missing section(s) {missing}')
        enc = _section(data, 'encoder', EncoderConfig)
        size = enc.get('size', 'tiny')
        if size in VIT_SIZES:
            for key, value in zip(('hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size'),
                                  VIT_SIZES[size]):
                enc.setdefault(key, value)
        elif not all(k in enc for k in ('hidden_size', 'num_hidden_layers', 'num_attention_heads',
                                        'intermediate_size')):
            raise ValueError(f'encoder.size {size!r} is not one of {sorted(VIT_SIZES)}; a custom size needs '
                             'hidden_size, num_hidden_layers, num_attention_heads and intermediate_size')
        return cls(encoder=EncoderConfig(**enc),
                   predictor=PredictorConfig(**_section(data, 'predictor', PredictorConfig)),
                   action_encoder=ActionEncoderConfig(**_section(data, 'action_encoder', ActionEncoderConfig)),
                   projector=_projector_from_reference(data, 'projector'),
                   pred_proj=_projector_from_reference(data, 'pred_proj'))


SECTIONS = ('encoder', 'predictor', 'action_encoder', 'projector', 'pred_proj')
#: top-level keys le-wm training runs write beside the sections (informational, not architecture)
TOP_LEVEL_EXTRAS = frozenset({'embed_dim', 'history_size'})


def _projector_to_reference(cfg: ProjectorConfig) -> dict[str, Any]:
    out: dict[str, Any] = {'input_dim': cfg.input_dim, 'hidden_dim': cfg.hidden_dim, 'output_dim': cfg.output_dim}
    targets = {v: k for k, v in NORM_TARGETS.items()}
    out['norm_fn'] = {'_target_': targets[cfg.norm], '_partial_': True} if cfg.norm != 'none' else None
    return out


def _projector_from_reference(data: dict[str, Any], name: str) -> ProjectorConfig:
    section = dict(data[name])
    norm_fn = section.pop('norm_fn', {'_target_': 'torch.nn.BatchNorm1d'})
    if norm_fn is None:
        norm = 'none'
    elif isinstance(norm_fn, str):
        norm = norm_fn
    else:
        target = dict(norm_fn).get('_target_', '')
        if target not in NORM_TARGETS:
            raise ValueError(f'{name}.norm_fn target {target!r} is not supported; known: {sorted(NORM_TARGETS)}')
        norm = NORM_TARGETS[target]
    return ProjectorConfig(**_section({name: section}, name, ProjectorConfig), norm=norm)


def _section(data: dict[str, Any], name: str, kind: type) -> dict[str, Any]:
    section = {k: v for k, v in dict(data[name]).items() if not k.startswith('_')}
    check_known_keys(f'config section {name!r}', section, kind)
    return section


def paper_config(action_dim: int = 2, frameskip: int = 5) -> LeWMConfig:
    """The published LeWM sizes: ViT-Tiny/14 at 224 px, 6-block predictor (18,034,478 parameters
    for a 2-D action and frameskip 5)."""
    return LeWMConfig(action_encoder=ActionEncoderConfig(input_dim=action_dim * frameskip))


def compact_config(action_dim: int = 2, frameskip: int = 5) -> LeWMConfig:
    """CPU-friendly LeWM: 64 px ViT/16 (width 128, depth 4), latent D = 64, 3-block predictor
    of width 128. 1,996,718 parameters for a 2-D action and frameskip 5; sized for a
    control-rate MPC plan on 2 CPU cores (plan latencies: the model card of
    ``models/tworoom_compact``)."""
    block = action_dim * frameskip
    latent = 64
    return LeWMConfig(
        encoder=EncoderConfig(size='compact', patch_size=16, image_size=64, hidden_size=128,
                              num_hidden_layers=4, num_attention_heads=4, intermediate_size=512),
        predictor=PredictorConfig(num_frames=3, depth=3, heads=4, dim_head=32, mlp_dim=512,
                                  input_dim=latent, hidden_dim=128, output_dim=latent, dropout=0.1),
        action_encoder=ActionEncoderConfig(input_dim=block, emb_dim=latent, mlp_scale=4),
        projector=ProjectorConfig(input_dim=128, hidden_dim=512, output_dim=latent),
        pred_proj=ProjectorConfig(input_dim=latent, hidden_dim=512, output_dim=latent),
    )


PRESETS = {'paper': paper_config, 'compact': compact_config}


def preset(name: str, action_dim: int = 2, frameskip: int = 5) -> LeWMConfig:
    """A named preset ('paper' or 'compact') for a raw action dim and frameskip."""
    if name not in PRESETS:
        raise ValueError(f'unknown model preset {name!r}; choose one of {sorted(PRESETS)}')
    return PRESETS[name](action_dim=action_dim, frameskip=frameskip)
