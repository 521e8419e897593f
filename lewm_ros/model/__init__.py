"""LeWM torch modules, loss and checkpoint I/O (no ROS imports)."""
from lewm_ros.model.checkpoint import CheckpointError, load_model, load_model_dir, save_model_dir
from lewm_ros.model.config import LeWMConfig, compact_config, paper_config, preset
from lewm_ros.model.lewm import LeWM, count_parameters
from lewm_ros.model.loss import LossTerms, lewm_loss
from lewm_ros.model.metadata import ModelMetadata
from lewm_ros.model.preprocess import normalize_images
from lewm_ros.model.sigreg import SIGReg

__all__ = ['CheckpointError', 'LeWM', 'LeWMConfig', 'LossTerms', 'ModelMetadata', 'SIGReg', 'compact_config',
           'count_parameters', 'lewm_loss', 'load_model', 'load_model_dir', 'normalize_images', 'paper_config',
           'preset', 'save_model_dir']
