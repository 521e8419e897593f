"""The goal-conditioned policy network (torch) and its weights I/O (format:
:mod:`lewm_ros.runtime.policy_format`). Loading never unpickles code (``weights_only=True``)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lewm_ros.runtime.policy_format import POLICY_WEIGHTS_FILE, GoalPolicyConfig, check_policy_fits


class GoalPolicy(nn.Module):
    """MLP (z_t, z_goal, remaining / max_goal_blocks) -> the next P action blocks [z-scored]."""

    def __init__(self, config: GoalPolicyConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = 2 * config.latent_dim + 1
        for _ in range(config.depth):
            layers += [nn.Linear(width, config.hidden_dim), nn.GELU()]
            width = config.hidden_dim
        layers.append(nn.Linear(width, config.num_blocks * config.block_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor, goal: torch.Tensor, remaining: torch.Tensor) -> torch.Tensor:
        """latent, goal: (B, D); remaining: (B,) [action blocks to the goal] -> (B, P, block) [z-scored]."""
        scaled = (remaining / self.config.max_goal_blocks).unsqueeze(-1)            # (B, 1)
        out = self.net(torch.cat([latent, goal, scaled.to(latent.dtype)], dim=-1))   # (B, P * block)
        return out.reshape(latent.shape[0], self.config.num_blocks, self.config.block_dim)


def save_policy(policy: GoalPolicy, model_dir: str | Path) -> Path:
    """Write ``policy.pt`` (plain state dict) into the model directory; returns its path (the
    caller records its sha256 in the config)."""
    path = Path(model_dir) / POLICY_WEIGHTS_FILE
    tmp = path.with_name(path.name + '.tmp')
    torch.save({k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}, tmp)
    tmp.replace(path)
    return path


def load_policy(model_dir: str | Path, device: str | torch.device = 'cpu') -> GoalPolicy:
    """The model directory's policy in eval mode on ``device``; ValueError naming the file when it
    is missing, corrupt, of another shape or trained on another world model."""
    from lewm_ros.runtime.onnx_manifest import model_hash, sha256_file
    model_dir = Path(model_dir)
    config = GoalPolicyConfig.load(model_dir)
    check_policy_fits(config, model_dir, model_hash(model_dir))
    path = model_dir / POLICY_WEIGHTS_FILE
    if not path.is_file() or sha256_file(path) != config.weights_sha256:
        raise ValueError(f'{path}: missing or not the weights its policy config records (sha256)')
    policy = GoalPolicy(config)
    try:
        policy.load_state_dict(torch.load(path, map_location='cpu', weights_only=True))
    except Exception as exc:  # noqa: BLE001 -- any parse or key failure is a corrupt policy file
        raise ValueError(f'cannot read policy weights {path}: {type(exc).__name__}: {exc}') from exc
    return policy.to(device).eval()
