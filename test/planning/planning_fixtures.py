"""A tiny random LeWM model directory with metadata for the planner tests (CPU, fast)."""
import torch

from lewm_ros.model import LeWM, ModelMetadata
from lewm_ros.model.config import ActionEncoderConfig, EncoderConfig, LeWMConfig, PredictorConfig, ProjectorConfig

IMAGE = 32
FRAMESKIP = 2
ACTION_DIM = 2


def tiny_model(seed: int = 0) -> LeWM:
    """~40k parameters; AdaLN modulation randomised so that actions change the cost."""
    torch.manual_seed(seed)
    config = LeWMConfig(
        encoder=EncoderConfig(size='test', patch_size=16, image_size=IMAGE, hidden_size=32, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=64),
        predictor=PredictorConfig(num_frames=3, depth=2, heads=2, dim_head=8, mlp_dim=32, input_dim=16,
                                  hidden_dim=24, output_dim=16),
        action_encoder=ActionEncoderConfig(input_dim=FRAMESKIP * ACTION_DIM, smoothed_dim=FRAMESKIP * ACTION_DIM,
                                           emb_dim=16, mlp_scale=2),
        projector=ProjectorConfig(input_dim=32, hidden_dim=32, output_dim=16),
        pred_proj=ProjectorConfig(input_dim=16, hidden_dim=32, output_dim=16))
    model = LeWM(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'adaLN_modulation' in name:
                param.normal_(0.0, 0.3)
    return model.eval()


def tiny_metadata() -> ModelMetadata:
    return ModelMetadata(action_dim=ACTION_DIM, frameskip=FRAMESKIP, history=3, image_size=IMAGE,
                         action_mean=[0.1, -0.2], action_std=[0.5, 2.0], action_low=[-0.3, -1.0],
                         action_high=[0.4, 1.0], task='test', preset='tiny')
