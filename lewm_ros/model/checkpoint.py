"""Model directory I/O in the reference format: ``config.json`` + ``weights.pt`` (plain state
dict) or ``weights.safetensors``, plus our ``lewm_meta.json`` (see metadata.py).

Loading never unpickles code (``torch.load(weights_only=True)`` / safetensors) and matches keys
strictly. Encoder keys written by transformers 5.x are renamed to the 4.x layout first. The
torch-free readers (config, metadata, file names) live in :mod:`lewm_ros.model.model_dir` and
are re-exported here.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from lewm_ros.jsonio import write_json
from lewm_ros.model.lewm import LeWM
from lewm_ros.model.metadata import ModelMetadata
from lewm_ros.model.model_dir import (CONFIG_FILE, WEIGHT_FILES, CheckpointError, check_metadata, find_weights,
                                      load_metadata, read_config)

__all__ = ['CONFIG_FILE', 'WEIGHT_FILES', 'CheckpointError', 'check_metadata', 'find_weights', 'load_metadata',
           'load_model', 'load_model_dir', 'read_config', 'read_state_dict', 'save_model_dir', 'to_reference_keys']

# transformers 5.x ViT parameter names -> 4.x names (the layout of lewm_ros.model.vit); verified
# against ViTModel state dicts of transformers 4.57 and 5.17 (test/fixtures/reference).
_HF5_TO_HF4 = [(re.compile(r'^encoder\.layers\.(\d+)\.' + new + r'\.'), r'encoder.encoder.layer.\1.' + old + '.')
               for new, old in (('attention.q_proj', 'attention.attention.query'),
                                ('attention.k_proj', 'attention.attention.key'),
                                ('attention.v_proj', 'attention.attention.value'),
                                ('attention.o_proj', 'attention.output.dense'),
                                ('mlp.fc1', 'intermediate.dense'),
                                ('mlp.fc2', 'output.dense'),
                                ('layernorm_before', 'layernorm_before'),
                                ('layernorm_after', 'layernorm_after'))]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, without executing code."""
    path = Path(path)
    try:
        if path.suffix == '.safetensors':
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any parse failure is a corrupt model file
        raise CheckpointError(f'cannot read model weights {path}: {type(exc).__name__}: {exc}') from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f'model weights {path} are not a plain state dict of tensors')
    return state


def to_reference_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename transformers-5.x encoder keys to the 4.x layout; other keys pass unchanged."""
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in _HF5_TO_HF4:
            key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


def load_model(directory: str | Path, device: str | torch.device = 'cpu') -> LeWM:
    """Build the model from ``config.json`` and load its weights strictly; eval mode."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f'model directory {directory} does not exist')
    config = read_config(directory)
    weights = find_weights(directory)
    model = LeWM(config)
    try:
        model.load_state_dict(to_reference_keys(read_state_dict(weights)), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f'weights {weights} do not match {directory / CONFIG_FILE}: {exc}') from exc
    return model.to(device).eval()


def load_model_dir(directory: str | Path, device: str | torch.device = 'cpu') -> tuple[LeWM, ModelMetadata]:
    """Model + its inference metadata (``lewm_meta.json`` is required for planning), checked
    against each other."""
    metadata = load_metadata(directory)
    return load_model(directory, device), metadata


def save_model_dir(model: LeWM, directory: str | Path, metadata: ModelMetadata | None = None) -> Path:
    """Write ``config.json`` + ``weights.pt`` (+ ``lewm_meta.json``) atomically per file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = directory / 'weights.pt.tmp'
    torch.save(state, tmp)
    tmp.replace(directory / 'weights.pt')
    write_json(directory / CONFIG_FILE, model.config.to_reference_dict())
    if metadata is not None:
        metadata.save(directory)
    return directory
