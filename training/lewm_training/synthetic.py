"""A moving-dot video generator with known dynamics: a tiny in-memory dataset for training tests.

One episode is a red dot on a dark background driven by velocity commands:

    p[k+1] = clip(p[k] + speed * dt * a[k], margin, 1 - margin),   a[k] in [-1, 1]^2,

with p the dot centre in arena units [0, 1]^2 (x right, y down) and a[k] piecewise-constant
random commands (held for 1..hold_max steps). Frames are rendered at every step, so an episode
of ``length`` actions has ``length + 1`` frames.

Windows are :class:`lewm_training.dataset.Window` items, as the HDF5 dataset's: ``pixels``
uint8 (T, S, S, 3), ``actions`` float32 (T, frameskip * 2) [raw units] (block t holds the raw
actions taken from frame t on) and ``state`` float32 (T, 2) [arena units], T = history + num_preds.

A data spec on the ``lewm-train fit`` command line selects it: ``synthetic`` or
``synthetic:episodes=64,length=60,seed=0`` (keys of :class:`SyntheticDotsConfig`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from lewm_ros.model.config import ActionEncoderConfig, EncoderConfig, LeWMConfig, PredictorConfig, ProjectorConfig
from lewm_ros.validation import check_int, check_ints, check_number, check_positive
from lewm_training.dataset import Window, check_window_settings
from lewm_training.dataset_format import DatasetInfo

SPEC_PREFIX = 'synthetic'


@dataclass(frozen=True)
class SyntheticDotsConfig:
    """episodes: number of episodes; length: actions per episode; image_size: frame side [px];
    dt: [s] per step; speed: [arena units / s] at |a| = 1; radius: dot radius [arena units];
    hold_max: longest hold of one random command [steps]; seed: generator seed."""
    episodes: int = 64
    length: int = 60
    image_size: int = 64
    dt: float = 0.1
    speed: float = 0.5
    radius: float = 0.08
    hold_max: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        check_ints('synthetic.', self, ('episodes', 'length', 'hold_max'), 1)
        check_int('synthetic.image_size', self.image_size, 8)
        check_int('synthetic.seed', self.seed, 0)
        check_positive('synthetic.dt', self.dt)
        check_positive('synthetic.speed', self.speed)
        check_number('synthetic.radius', self.radius, 0.0, 0.5, exclusive_minimum=True, exclusive_maximum=True)


def parse_spec(spec: str, image_size: int) -> SyntheticDotsConfig:
    """``synthetic[:key=value,...]`` -> config (image_size comes from the model unless given)."""
    if spec != SPEC_PREFIX and not spec.startswith(SPEC_PREFIX + ':'):
        raise ValueError(f'not a synthetic data spec: {spec!r} (expected "synthetic[:key=value,...]")')
    fields = {f.name: f.type for f in dataclasses.fields(SyntheticDotsConfig)}
    values: dict[str, object] = {'image_size': image_size}
    body = spec[len(SPEC_PREFIX) + 1:]
    for item in filter(None, body.split(',')):
        key, sep, raw = item.partition('=')
        if not sep or key not in fields:
            raise ValueError(f'bad synthetic data option {item!r}; allowed keys: {sorted(fields)}')
        values[key] = float(raw) if fields[key] in ('float', float) else int(raw)
    return SyntheticDotsConfig(**values)


def is_synthetic_spec(spec: str) -> bool:
    return spec == SPEC_PREFIX or spec.startswith(SPEC_PREFIX + ':')


class SyntheticDots:
    """All episodes, generated eagerly in memory.

    pixels[e]: uint8 (length + 1, S, S, 3); actions[e]: float32 (length, 2) in [-1, 1];
    states[e]: float32 (length + 1, 2) dot centre [arena units].
    """

    def __init__(self, config: SyntheticDotsConfig) -> None:
        self.config = config
        self.metadata = DatasetInfo(task='synthetic_dots', image_size=config.image_size, dt=config.dt,
                                    action_low=(-1.0, -1.0), action_high=(1.0, 1.0), action_dim=2, state_dim=2,
                                    episodes=config.episodes, steps=config.length, seed=config.seed)
        rng = np.random.default_rng(config.seed)
        self.actions = [self._commands(rng) for _ in range(config.episodes)]
        self.states = [self._rollout(rng.uniform(0.2, 0.8, size=2), acts) for acts in self.actions]
        self.pixels = [render(states, config.image_size, config.radius) for states in self.states]

    def __len__(self) -> int:
        return self.config.episodes

    def _commands(self, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((self.config.length, 2), np.float32)
        k = 0
        while k < self.config.length:
            hold = int(rng.integers(1, self.config.hold_max + 1))
            out[k:k + hold] = rng.uniform(-1.0, 1.0, size=2)
            k += hold
        return out

    def _rollout(self, start: np.ndarray, actions: np.ndarray) -> np.ndarray:
        margin = self.config.radius
        states = np.empty((len(actions) + 1, 2), np.float32)
        states[0] = start
        for k, action in enumerate(actions):
            states[k + 1] = step(states[k], action, self.config.speed * self.config.dt, margin)
        return states

    def windows(self, history: int, frameskip: int, episodes: list[int] | None = None,
                num_preds: int = 1) -> 'SyntheticWindows':
        return SyntheticWindows(self, history, frameskip, episodes, num_preds)

    def action_stats(self, episodes: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per raw action dimension mean and std over the given episodes, each (2,) [raw units]."""
        chosen = range(len(self)) if episodes is None else episodes
        actions = np.concatenate([self.actions[e] for e in chosen])
        return actions.mean(0), actions.std(0)


def step(position: np.ndarray, action: np.ndarray, gain: float, margin: float) -> np.ndarray:
    """The known dynamics: position (2,) + gain * clip(action, -1, 1), clipped to the arena."""
    return np.clip(position + gain * np.clip(action, -1.0, 1.0), margin, 1.0 - margin).astype(np.float32)


def render(states: np.ndarray, image_size: int, radius: float) -> np.ndarray:
    """states (N, 2) [arena units] -> uint8 (N, S, S, 3): soft-edged red disc on a dark blue floor."""
    centres = (np.arange(image_size) + 0.5) / image_size
    dx = centres[None, None, :] - states[:, 0, None, None]
    dy = centres[None, :, None] - states[:, 1, None, None]
    dist = np.sqrt(dx ** 2 + dy ** 2)
    edge = 1.0 / image_size
    alpha = np.clip((radius - dist) / edge + 0.5, 0.0, 1.0)[..., None]     # (N, S, S, 1)
    floor = np.array([20, 30, 60], np.float32)
    dot = np.array([230, 40, 30], np.float32)
    return (floor + alpha * (dot - floor)).round().astype(np.uint8)


class SyntheticWindows(Dataset):
    """Windows of T = history + num_preds frames, ``frameskip`` raw steps apart."""

    def __init__(self, data: SyntheticDots, history: int, frameskip: int, episodes: list[int] | None,
                 num_preds: int = 1) -> None:
        check_window_settings(history, num_preds, frameskip)
        self.data = data
        self.frames = history + num_preds
        self.frameskip = frameskip
        span = self.frames * frameskip
        if data.config.length < span:
            raise ValueError(f'synthetic.length ({data.config.length}) is shorter than one window '
                             f'({self.frames} frames x frameskip {frameskip} = {span} steps)')
        chosen = list(range(len(data))) if episodes is None else list(episodes)
        self.index = [(e, s) for e in chosen for s in range(data.config.length - span + 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Window:
        episode, start = self.index[i]
        frames = start + self.frameskip * np.arange(self.frames)
        acts = self.data.actions[episode][start:start + self.frames * self.frameskip]
        return Window(torch.from_numpy(self.data.pixels[episode][frames]),
                      torch.from_numpy(acts.reshape(self.frames, -1).copy()),
                      torch.from_numpy(self.data.states[episode][frames]), episode, start)



def tiny_model_config(image_size: int = 32, action_dim: int = 2, frameskip: int = 5, history: int = 3,
                      dropout: float = 0.0) -> LeWMConfig:
    """A ~50k-parameter LeWM (ViT 2 x 32 wide on 8 px patches, latent D = 16, one predictor block)
    for tests and CI smoke runs on this data; the architecture is LeWM's, only narrower."""
    block = action_dim * frameskip
    return LeWMConfig(
        encoder=EncoderConfig(size='custom', patch_size=8, image_size=image_size, hidden_size=32,
                              num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
        predictor=PredictorConfig(num_frames=history, depth=1, heads=2, dim_head=16, mlp_dim=64, input_dim=16,
                                  hidden_dim=32, output_dim=16, dropout=dropout),
        action_encoder=ActionEncoderConfig(input_dim=block, smoothed_dim=block, emb_dim=16, mlp_scale=2),
        projector=ProjectorConfig(input_dim=32, hidden_dim=64, output_dim=16),
        pred_proj=ProjectorConfig(input_dim=16, hidden_dim=64, output_dim=16))
