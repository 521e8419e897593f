"""Training pairs of the goal-conditioned policy: a dataset's frames encoded once by the frozen
world model, and hindsight goals sampled from the same trajectories.

A pair is (z_t, z_{t+s}, s / frameskip) -> the action blocks executed from t on: the P blocks
a_t .. a_{t+P*frameskip-1} [z-scored], each block counted in the loss only when it starts
before the goal (j * frameskip < s) and lies inside the episode. The goal offset s [env steps]
is drawn uniformly in [1, max_goal_blocks * frameskip].
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from lewm_ros.model import LeWM, ModelMetadata, normalize_images

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedEpisodes:
    """Frames of a set of episodes, flat: latents (F, D) float32; actions (F, A) [z-scored raw
    actions] (NaN on each episode's last frame); end (F,) int64: the flat index of the episode's
    last frame, for every frame of the episode."""
    latents: torch.Tensor
    actions: torch.Tensor
    end: torch.Tensor

    @property
    def num_frames(self) -> int:
        return int(self.latents.shape[0])


@torch.inference_mode()
def encode_episodes(model: LeWM, metadata: ModelMetadata, dataset, episodes: np.ndarray, batch_size: int = 512,
                    progress: bool = True) -> EncodedEpisodes:
    """Encode every frame of ``episodes`` (positions in the EpisodeDataset ``dataset``) with the
    frozen encoder (eval mode, CPU); actions z-scored with the model's statistics."""
    started = time.perf_counter()
    latents, actions, ends = [], [], []
    first = 0
    for ep in tqdm(episodes, desc='encode', unit='ep', disable=not progress):
        pixels = dataset.pixels(int(ep))                                           # (L, S, S, 3) uint8
        for i in range(0, len(pixels), batch_size):
            latents.append(model.encode(normalize_images(torch.from_numpy(pixels[i:i + batch_size]))).float())
        raw = dataset.episode_actions(int(ep)).astype(np.float32)                  # (L, A), last row NaN
        actions.append(torch.from_numpy((raw - np.asarray(metadata.action_mean, np.float32))
                                        / np.asarray(metadata.action_std, np.float32)))
        ends.append(torch.full((len(pixels),), first + len(pixels) - 1, dtype=torch.int64))
        first += len(pixels)
    LOG.info('encoded %d frames of %d episodes in %.1f s', first, len(episodes), time.perf_counter() - started)
    return EncodedEpisodes(torch.cat(latents), torch.cat(actions), torch.cat(ends))


@dataclass(frozen=True)
class PairBatch:
    """latent, goal: (B, D); remaining: (B,) [action blocks to the goal]; target: (B, P, block)
    [z-scored]; mask: (B, P) float, 1 for the blocks counted in the loss."""
    latent: torch.Tensor
    goal: torch.Tensor
    remaining: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor


def sample_pairs(data: EncodedEpisodes, batch_size: int, num_blocks: int, frameskip: int, max_goal_blocks: float,
                 generator: torch.Generator) -> PairBatch:
    """A batch of hindsight pairs (see the module docstring) drawn with ``generator``."""
    valid = torch.nonzero(data.end > torch.arange(data.num_frames)).squeeze(1)     # frames with a next frame
    t = valid[torch.randint(len(valid), (batch_size,), generator=generator)]       # (B,)
    room = data.end[t] - t                                                         # (B,) steps to the episode end
    most = torch.clamp(room, max=int(max_goal_blocks * frameskip))
    offset = 1 + (torch.rand(batch_size, generator=generator) * most).long().clamp(max=most - 1)  # (B,) in [1, most]
    steps = t[:, None] + torch.arange(num_blocks * frameskip)                      # (B, P*k)
    inside = steps < data.end[t][:, None]                                          # actions exist there
    actions = data.actions[steps.clamp(max=data.num_frames - 1)]                   # (B, P*k, A)
    actions = torch.where(inside[..., None], actions, torch.zeros_like(actions))
    target = actions.reshape(batch_size, num_blocks, -1)                           # (B, P, k*A)
    starts = torch.arange(num_blocks) * frameskip                                  # (P,)
    mask = (starts[None] < offset[:, None]) & inside.reshape(batch_size, num_blocks, frameskip).all(dim=-1)
    return PairBatch(latent=data.latents[t], goal=data.latents[t + offset], remaining=offset.float() / frameskip,
                     target=target, mask=mask.float())
