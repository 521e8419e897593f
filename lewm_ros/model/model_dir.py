"""The files of a model directory and what can be read from them without torch.

A model directory holds ``config.json`` (the reference format), ``weights.pt`` or
``weights.safetensors``, ``lewm_meta.json`` (:mod:`lewm_ros.model.metadata`) and optionally
``onnx/`` exports. The torch-free readers here are what a planner on ONNX Runtime or TensorRT
needs; loading the weights into torch modules is :mod:`lewm_ros.model.checkpoint`.
"""
from __future__ import annotations

from pathlib import Path

from lewm_ros.jsonio import read_json
from lewm_ros.model.config import LeWMConfig
from lewm_ros.model.metadata import METADATA_FILE, ModelMetadata

CONFIG_FILE = 'config.json'
WEIGHT_FILES = ('weights.pt', 'weights.safetensors')


class CheckpointError(ValueError):
    """A model directory that cannot be loaded; the message names the file and the reason."""


def read_config(directory: str | Path) -> LeWMConfig:
    return read_json(Path(directory) / CONFIG_FILE, 'model config', LeWMConfig.from_reference_dict, CheckpointError)


def find_weights(directory: str | Path) -> Path:
    directory = Path(directory)
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise CheckpointError(f'model directory {directory} has none of {list(WEIGHT_FILES)}')


def check_metadata(metadata: ModelMetadata, config: LeWMConfig, directory: str | Path) -> None:
    """Raise CheckpointError unless ``lewm_meta.json`` agrees with ``config.json``: image_size with
    encoder.image_size, frameskip x action_dim with action_encoder.input_dim (the block width),
    history with predictor.num_frames. The message names both files and both keys."""
    directory = Path(directory)
    pairs = (('image_size', metadata.image_size, 'encoder.image_size', config.encoder.image_size),
             ('frameskip x action_dim', metadata.block_dim, 'action_encoder.input_dim',
              config.action_encoder.input_dim),
             ('history', metadata.history, 'predictor.num_frames', config.predictor.num_frames))
    for meta_key, meta_value, config_key, config_value in pairs:
        if meta_value != config_value:
            raise CheckpointError(f'{directory / METADATA_FILE} {meta_key}={meta_value} does not match '
                                  f'{directory / CONFIG_FILE} {config_key}={config_value}')


def load_metadata(directory: str | Path) -> ModelMetadata:
    """``lewm_meta.json`` of a model directory, validated and checked against its ``config.json``
    (:func:`check_metadata`); every error names the file and the key."""
    directory = Path(directory)
    metadata = read_json(directory / METADATA_FILE, 'model metadata', ModelMetadata.from_dict, CheckpointError)
    check_metadata(metadata, read_config(directory), directory)
    return metadata
