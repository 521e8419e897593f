"""The goal-conditioned policy's files in a model directory (no torch: an ONNX Runtime robot reads
them too).

- ``policy_config.json`` (:class:`GoalPolicyConfig`): the network's shape, the world model it was
  trained on (``model_hash``), the sha256 of the weights and of the ONNX export, the training record.
- ``policy.pt``: plain state dict (``torch.load(weights_only=True)``).
- ``policy.onnx``: ``latent`` (B, D), ``goal`` (B, D), ``remaining`` (B,) [action blocks] ->
  ``blocks`` (B, P, block) [z-scored]; batch axis dynamic; verified against torch at export.

The policy maps (current latent z_t, goal latent z_g, blocks remaining to the goal) to the next P
action blocks in the model's z-scored action space (an inverse-dynamics model on the frozen
encoder's latents, trained with hindsight goals: ``lewm-train fit-policy``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lewm_ros.jsonio import JsonRecord, check_known_keys
from lewm_ros.validation import check_int, check_ints, check_positive, require

POLICY_CONFIG_FILE = 'policy_config.json'
POLICY_WEIGHTS_FILE = 'policy.pt'
POLICY_ONNX_FILE = 'policy.onnx'
POLICY_INPUTS = ('latent', 'goal', 'remaining')
POLICY_OUTPUTS = ('blocks',)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GoalPolicyConfig(JsonRecord):
    """latent_dim D and block_dim (frameskip x action_dim): the world model's; num_blocks P: action
    blocks predicted per call; hidden_dim, depth: the MLP (depth hidden layers of hidden_dim,
    GELU); max_goal_blocks: the farthest hindsight goal in training [action blocks] (the
    ``remaining`` input is divided by it); model_hash: sha256 of the world model it was trained on
    (:func:`lewm_ros.runtime.onnx_manifest.model_hash`); weights_sha256 / onnx_sha256: of
    ``policy.pt`` / ``policy.onnx`` ('' before they exist); training: the fit record (command,
    data, steps, losses, wall time)."""
    latent_dim: int
    block_dim: int
    num_blocks: int = 5
    hidden_dim: int = 512
    depth: int = 2
    max_goal_blocks: float = 10.0
    model_hash: str = ''
    weights_sha256: str = ''
    onnx_sha256: str = ''
    training: dict[str, Any] = field(default_factory=dict)
    FILE_NAME: ClassVar[str] = POLICY_CONFIG_FILE
    DESCRIPTION: ClassVar[str] = 'policy config'

    def __post_init__(self) -> None:
        check_ints('policy.', self, ('latent_dim', 'block_dim', 'num_blocks', 'hidden_dim', 'depth'), 1)
        check_int('policy.depth', self.depth, 1, 16)
        check_positive('policy.max_goal_blocks', self.max_goal_blocks)
        for name in ('model_hash', 'weights_sha256', 'onnx_sha256'):
            require(isinstance(getattr(self, name), str), f'policy.{name}', getattr(self, name), 'a string')
        require(isinstance(self.training, dict), 'policy.training', self.training, 'a JSON object')

    def to_dict(self) -> dict[str, Any]:
        return {'format_version': FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'GoalPolicyConfig':
        """Parse ``policy_config.json``; ValueError naming the key otherwise."""
        require(isinstance(data, dict), 'policy config', data, 'a JSON object')
        data = dict(data)
        check_int('policy.format_version', data.pop('format_version', FORMAT_VERSION), 1, FORMAT_VERSION)
        check_known_keys('policy config', data, cls)
        return cls(**data)


def has_policy(model_dir: str | Path) -> bool:
    """Whether the model directory ships a policy (its config file)."""
    return (Path(model_dir) / POLICY_CONFIG_FILE).is_file()


def check_policy_fits(config: GoalPolicyConfig, model_dir: str | Path, current_hash: str) -> None:
    """ValueError naming the file when the policy was trained on another world model than the one
    in ``model_dir`` (``current_hash``: its model hash)."""
    if config.model_hash != current_hash:
        raise ValueError(f'{Path(model_dir) / POLICY_CONFIG_FILE}: the policy was trained on world model '
                         f'{config.model_hash[:12]}, the model directory holds {current_hash[:12]}: run '
                         'lewm-train fit-policy again')
