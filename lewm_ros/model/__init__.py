"""LeWM torch modules and checkpoint I/O (no ROS imports, no training code: the robot never trains)."""
from lewm_ros.model.checkpoint import CheckpointError, load_metadata, load_model, load_model_dir, save_model_dir
from lewm_ros.model.config import LeWMConfig, compact_config, paper_config, preset
from lewm_ros.model.lewm import LeWM, count_parameters
from lewm_ros.model.metadata import ModelMetadata
from lewm_ros.model.image_normalization import normalize_images

__all__ = ['CheckpointError', 'LeWM', 'LeWMConfig', 'ModelMetadata', 'compact_config',
           'count_parameters', 'load_metadata', 'load_model', 'load_model_dir', 'normalize_images', 'paper_config',
           'preset', 'save_model_dir']
