"""LeWM torch modules and checkpoint I/O (no ROS imports, no training code: the robot never trains).

Names are imported on first use, so the torch-free parts (config, metadata, model directory
readers, image normalisation) work on a robot without torch.
"""
import importlib

_HOMES = {
    'CheckpointError': 'model_dir', 'load_metadata': 'model_dir',
    'load_model': 'checkpoint', 'load_model_dir': 'checkpoint', 'save_model_dir': 'checkpoint',
    'LeWMConfig': 'config', 'compact_config': 'config', 'paper_config': 'config', 'preset': 'config',
    'LeWM': 'lewm', 'count_parameters': 'lewm',
    'ModelMetadata': 'metadata',
    'normalize_images': 'image_normalization',
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__name__}.{_HOMES[name]}'), name)
