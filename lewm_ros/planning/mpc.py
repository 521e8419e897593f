"""Model-predictive control in latent space: frame history, cached goal, warm-started CEM.

Call order at each action-block boundary: ``observe(frame, block executed since the previous
frame)`` then ``plan()``; the caller executes the first block(s) of ``Plan.raw_actions``.
``observe`` shifts the warm start by the executed block, so the next solve starts from the
previous plan's remaining blocks plus a zero-mean tail. Not thread-safe: one planner per thread.

Latents, blocks and plans are arrays of ``backend.arrays`` (numpy on the host, or torch on the
backend's device: :mod:`lewm_ros.runtime.arrays`); images and executed actions enter as host
arrays and plans leave as host arrays, so the planner needs no torch unless its backend does.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lewm_ros.model.model_dir import load_metadata
from lewm_ros.model.metadata import ModelMetadata
from lewm_ros.model.image_normalization import normalize_images
from lewm_ros.planning.cem import CEM
from lewm_ros.planning.config import MPCConfig, resolve_mode
from lewm_ros.planning.policy import PolicyProposer
from lewm_ros.runtime.backend import STATIC_SHAPE_BACKENDS, InferenceBackend, PlanningContext, make_backend
from lewm_ros.runtime.policy_format import has_policy
from lewm_ros.runtime.policy_runner import PolicyRunner, make_policy_runner

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """raw_actions: (H, frameskip, A) float64 [raw units], clipped to the metadata bounds;
    blocks: (H, block_dim) float32 [z-scored] the CEM mean; cost: lowest sampled cost of the last
    iteration; latency_s: wall time of ``plan()`` [s]; iterations: CEM iterations run;
    cost_history: lowest sampled cost per iteration; warm_started: whether the solve started
    from the previous plan; mode: the planner mode; proposal_cost: the world model's cost of the
    policy's proposal (mode policy_cem, else None); disagreement: that cost was far above the
    best sampled plan's (:meth:`lewm_ros.planning.policy.PolicyProposer.disagrees`)."""
    raw_actions: np.ndarray
    blocks: np.ndarray
    cost: float
    latency_s: float
    iterations: int
    cost_history: tuple[float, ...]
    warm_started: bool
    mode: str = 'cem'
    proposal_cost: float | None = None
    disagreement: bool = False


@dataclass(frozen=True)
class SurpriseProbe:
    """The surprise of one observed frame, computed when called: ``backend.predict_next(context,
    block)`` (one predictor step from the history before the frame and the block executed since,
    (block,) [z-scored]) against the frame's latent (D,): ||predicted - latent||^2 summed over D
    [latent units^2]."""
    backend: InferenceBackend
    context: PlanningContext
    block: Any
    latent: Any

    def __call__(self) -> float:
        predicted = self.backend.predict_next(self.context, self.block)
        return float(((predicted - self.latent) ** 2).sum())


class MPCPlanner:
    """Receding-horizon CEM planner over a backend (see module docstring); policy: the model
    directory's goal-conditioned policy, required by the modes 'policy' and 'policy_cem'. Mode
    'auto' is resolved here (policy_cem with a policy, else cem); ``config.mode`` holds the result."""

    def __init__(self, backend: InferenceBackend, metadata: ModelMetadata, config: MPCConfig | None = None,
                 policy: PolicyRunner | None = None) -> None:
        self.backend = backend
        self.metadata = metadata
        config = config or MPCConfig()
        self.config = replace(config, mode=resolve_mode(config.mode, policy is not None))  # validated again
        if self.config.mode != 'cem' and policy is None:
            raise ValueError(f"planner mode {self.config.mode!r} needs the model's goal-conditioned policy")
        if metadata.block_dim != backend.block_dim:
            raise ValueError(f'metadata block_dim (frameskip {metadata.frameskip} x action_dim '
                             f'{metadata.action_dim} = {metadata.block_dim}) does not match the model '
                             f'({backend.block_dim})')
        backend_cost = getattr(backend, 'cost', None)
        if backend_cost is not None and backend_cost != self.config.cost:
            raise ValueError(f'the {backend.name} backend scores with cost terms {backend_cost}, but mpc.cost is '
                             f'{self.config.cost}: build the backend with cost=config.cost '
                             '(MPCPlanner.from_model_dir does)')
        history = self.config.history if self.config.history is not None else backend.history
        if history > backend.history:
            raise ValueError(f'mpc.history must be in [1, {backend.history}] (the model history), got {history}')
        self.history = history
        predict = None if backend.predictor_missing() else backend.predict_next
        self._proposer = None if policy is None else \
            PolicyProposer(policy, backend.arrays, backend.block_dim, backend.latent_dim, self.config, predict, history)
        self.horizon = self.config.cem.horizon
        low = np.tile(np.asarray(metadata.action_low), (metadata.frameskip, 1))
        high = np.tile(np.asarray(metadata.action_high), (metadata.frameskip, 1))
        bounds = tuple(metadata.normalize_blocks(b) for b in (low, high))   # (block,) x 2 [z-scored]
        self.arrays = backend.arrays
        self.cem = CEM(self.config.cem, backend.block_dim, self.arrays, bounds, action_dim=metadata.action_dim)
        self._low, self._high = np.asarray(metadata.action_low), np.asarray(metadata.action_high)
        self._goal: Any = None                   # (D,) latent of the goal image
        self.reset()

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, backend: str = 'torch', device: str = 'cpu',
                       config: MPCConfig | None = None, **backend_options: Any) -> 'MPCPlanner':
        """Planner for a model directory (weights + ``lewm_meta.json``) on a named backend.

        The backend scores with ``config.cost`` (the critics); static-shape backends (ONNX Runtime,
        TensorRT) are built for this config's planning batch (num_samples x horizon) unless
        ``backend_options`` say otherwise. The modes that use a policy (and 'auto' when the
        directory ships one) load it on the runtime that goes with the backend
        (:func:`~lewm_ros.runtime.policy_runner.make_policy_runner`)."""
        metadata = load_metadata(model_dir)  # validated, and checked against config.json
        config = config or MPCConfig()
        policy = None if resolve_mode(config.mode, has_policy(model_dir)) == 'cem' else \
            make_policy_runner(backend, model_dir, device, backend_options.get('num_threads'))
        backend_options.setdefault('cost', config.cost)
        if backend in STATIC_SHAPE_BACKENDS:
            backend_options.setdefault('num_samples', config.cem.num_samples)
            backend_options.setdefault('horizon', config.cem.horizon)
        return cls(make_backend(backend, model_dir, device=device, **backend_options), metadata, config, policy)

    # ----- state --------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the frame history and the warm start (the goal stays); reseed the CEM."""
        self._latents: list[Any] = []   # (D,) each, oldest first
        self._blocks: list[Any] = []    # (block,) each, executed between consecutive frames
        self._warm: Any = None          # (H, block) [z-scored], or None
        self.cem.reset()

    @property
    def has_goal(self) -> bool:
        return self._goal is not None

    @property
    def num_frames(self) -> int:
        """Frames of history held now (<= history)."""
        return len(self._latents)

    @property
    def warm_start_mean(self) -> Any:
        """(H, block) [z-scored] the mean the next solve starts from, or None (cold start)."""
        return self._warm

    def _encode(self, image_uint8_hwc: np.ndarray) -> Any:
        """uint8 (S, S, 3) RGB at model size -> latent (D,)."""
        s = self.metadata.image_size
        shape = tuple(np.shape(image_uint8_hwc))
        if shape != (s, s, 3):
            raise ValueError(f'expected an image of shape ({s}, {s}, 3) (the model size), got {shape}')
        pixels = normalize_images(np.asarray(image_uint8_hwc))[None]                 # (1, 3, S, S) host
        return self.backend.encode(self.arrays.from_host(pixels))[0]

    def set_goal(self, image_uint8_hwc: np.ndarray) -> None:
        """Encode the goal image once and cache its latent."""
        self._goal = self._encode(image_uint8_hwc)

    def observe(self, image_uint8_hwc: np.ndarray, executed_raw_actions: np.ndarray | None = None,
                score_surprise: bool = False) -> SurpriseProbe | None:
        """Add the frame at a block boundary.

        executed_raw_actions: (frameskip, A) [raw units] the block executed since the previous
        observed frame, or None when unknown (first frame, or after a gap): then the history
        restarts at this frame. A known block also shifts the warm start by one block.
        score_surprise: also return the frame's :class:`SurpriseProbe` (its surprise, computed when
        called, so that a caller can plan first); None when not asked for or when there is no
        prediction (no history or no executed block).
        """
        z = self._encode(image_uint8_hwc)
        if executed_raw_actions is None:
            self._latents, self._blocks = [z], []
            return None
        raw = np.asarray(executed_raw_actions, dtype=np.float64)
        expected = (self.metadata.frameskip, self.metadata.action_dim)
        if raw.shape != expected:
            raise ValueError(f'executed_raw_actions must be (frameskip, action_dim) = {expected}, got {raw.shape}')
        probe = None
        if self._latents:
            block = self.arrays.from_host(self.metadata.normalize_blocks(raw))
            if score_surprise:
                probe = SurpriseProbe(self.backend, self._history_context(), block, z)
            self._blocks.append(block)
        self._latents.append(z)
        self._latents = self._latents[-self.history:]
        self._blocks = self._blocks[len(self._blocks) - (len(self._latents) - 1):]
        self.shift_executed(1)
        return probe

    def shift_executed(self, n_blocks: int) -> None:
        """Drop the first n_blocks of the warm start and append zero-mean blocks."""
        if n_blocks < 0:
            raise ValueError(f'n_blocks must be >= 0, got {n_blocks}')
        if self._warm is None or n_blocks == 0:
            return
        if n_blocks >= self.horizon:
            self._warm = None
            return
        xp = self.arrays.xp
        self._warm = xp.concat([self._warm[n_blocks:, ...], xp.zeros_like(self._warm[:n_blocks, ...])], axis=0)

    def context(self) -> PlanningContext:
        """The current rollout context (history, executed blocks, goal)."""
        if self._goal is None:
            raise RuntimeError('no goal: call set_goal() before plan()')
        if not self._latents:
            raise RuntimeError('no observation: call observe() before plan()')
        return self._history_context()

    def _history_context(self) -> PlanningContext:
        """The history held now with the goal, or a zero goal before one is set (a predictor step
        does not read it)."""
        xp = self.arrays.xp
        blocks = xp.stack(self._blocks) if self._blocks else self.arrays.zeros((0, self.backend.block_dim))
        latents = xp.stack(self._latents)
        goal = self._goal if self._goal is not None else xp.zeros_like(latents[0])
        return PlanningContext(history_latents=latents, history_blocks=blocks, goal_latent=goal)

    def plan(self) -> Plan:
        """Solve CEM from the warm start (if any), or run the policy mode (``config.mode``), and
        return the de-normalised, clipped plan."""
        start = time.perf_counter()
        context = self.context()
        cfg = self.config
        warm = cfg.warm_start and self._warm is not None
        if cfg.mode != 'cem':
            result = self._proposer.solve(self.cem, self.backend.costs, context, self._warm if warm else None)
        elif warm:
            result = self.cem.solve(self.backend.costs, context, init_mean=self._warm, init_std=cfg.warm_std,
                                    iterations=cfg.warm_iterations)
        else:
            result = self.cem.solve(self.backend.costs, context)
        self._warm = result.mean
        blocks = self.arrays.to_host(result.mean).astype(np.float32)
        raw = np.clip(self.metadata.denormalize_blocks(blocks), self._low, self._high)
        latency = time.perf_counter() - start
        _LOG.debug('plan: cost %.4f, %d iterations, %.1f ms, warm=%s', result.cost, result.iterations,
                  latency * 1e3, warm)
        return Plan(raw_actions=raw, blocks=blocks, cost=result.cost, latency_s=latency,
                    iterations=result.iterations, cost_history=result.cost_history, warm_started=warm,
                    mode=cfg.mode, proposal_cost=result.proposal_costs[0] if result.proposal_costs else None,
                    disagreement=self._proposer is not None and self._proposer.disagrees(result))
