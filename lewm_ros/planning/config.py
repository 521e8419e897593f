"""Planner configuration: one validated dataclass per component.

| Parameter | Type | Default (paper / MPC) | Unit | Meaning |
|---|---|---|---|---|
| num_samples | int | 300 / 64 | - | CEM candidates per iteration (the current mean is candidate 0) |
| num_elites | int | 30 / 8 | - | lowest-cost candidates refitted each iteration |
| iterations | int | 30 / 5 | - | CEM iterations of a cold solve |
| horizon | int | 5 | action blocks | planned blocks H (one block = frameskip raw actions) |
| init_std | float | 1.0 | z-scored | sampling std of a cold solve (mean 0) |
| clamp_to_bounds | bool | False / True | - | clamp samples to the metadata action bounds (mapped to z-space) |
| seed | int | 0 | - | seed of the CEM's torch.Generator |
| hold_actions | bool | False / True | - | one raw action per block, held for frameskip steps |
| warm_start | bool | True | - | MPC: start from the previous plan shifted by the executed blocks |
| warm_iterations | int | 2 | - | MPC: CEM iterations of a warm-started solve |
| warm_std | float | 0.5 | z-scored | MPC: sampling std of a warm-started solve |
| history | int or None | None | frames | MPC: frames of context (None = the model's history; 1 = reference eval) |
"""
from __future__ import annotations

from dataclasses import dataclass, field


def _check_int(section: str, name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f'{section}.{name} must be an integer >= {low}, got {value!r}')


def _check_positive_float(section: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f'{section}.{name} must be a number > 0, got {value!r}')


@dataclass(frozen=True)
class CEMConfig:
    """Cross-entropy method over z-scored action blocks (defaults = the paper / reference code).

    num_samples: candidates per iteration (N, includes the current mean as sample 0);
    num_elites: lowest-cost candidates used to refit mean and std (1 < num_elites <= num_samples);
    iterations: iterations of a solve; horizon: planned action blocks H;
    init_std: std of the initial sampling distribution [z-scored] (mean 0);
    clamp_to_bounds: clamp samples to the action bounds in z-space (off in the paper);
    seed: seed of the planner's torch.Generator;
    hold_actions: sample one raw action per block, held for its frameskip steps (search in
    H x action_dim instead of H x frameskip x action_dim; off in the paper).
    """
    num_samples: int = 300
    num_elites: int = 30
    iterations: int = 30
    horizon: int = 5
    init_std: float = 1.0
    clamp_to_bounds: bool = False
    seed: int = 0
    hold_actions: bool = False

    def __post_init__(self) -> None:
        _check_int('cem', 'num_samples', self.num_samples, 2)
        _check_int('cem', 'num_elites', self.num_elites, 2)
        if self.num_elites > self.num_samples:
            raise ValueError(f'cem.num_elites must be in [2, num_samples={self.num_samples}], '
                             f'got {self.num_elites}')
        _check_int('cem', 'iterations', self.iterations, 1)
        _check_int('cem', 'horizon', self.horizon, 1)
        _check_positive_float('cem', 'init_std', self.init_std)
        for name in ('clamp_to_bounds', 'hold_actions'):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f'cem.{name} must be a bool, got {getattr(self, name)!r}')
        _check_int('cem', 'seed', self.seed, 0)


def _mpc_cem() -> CEMConfig:
    return CEMConfig(num_samples=64, num_elites=8, iterations=5, clamp_to_bounds=True, hold_actions=True)


@dataclass(frozen=True)
class MPCConfig:
    """Receding-horizon planning with warm starts. The defaults are sized for the compact preset
    on a 2-core CPU: 64 samples x 2 warm iterations (128 rollouts of ~16 MFLOP, H 5, k 3) per
    tick, 5 iterations for the cold first solve of an episode. Shipped tworoom model, torch, 2
    threads, ``lewm-train eval --episodes 50``: plan p50 36 ms / p99 83 ms (p99 = the cold
    solves), 60% success vs 10% random; a 6-iteration cold solve gave 58% at p99 105 ms.

    cem: the solver (a cold solve uses cem.iterations and cem.init_std);
    warm_start: start each solve from the previous plan shifted by the executed blocks;
    warm_iterations: iterations of a warm-started solve; warm_std: its sampling std [z-scored];
    history: frames of context given to the predictor (None = the model's history, 1 = the
    reference evaluation's single frame).
    """
    cem: CEMConfig = field(default_factory=_mpc_cem)
    warm_start: bool = True
    warm_iterations: int = 2
    warm_std: float = 0.5
    history: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cem, CEMConfig):
            raise ValueError(f'mpc.cem must be a CEMConfig, got {type(self.cem).__name__}')
        if not isinstance(self.warm_start, bool):
            raise ValueError(f'mpc.warm_start must be a bool, got {self.warm_start!r}')
        _check_int('mpc', 'warm_iterations', self.warm_iterations, 1)
        _check_positive_float('mpc', 'warm_std', self.warm_std)
        if self.history is not None:
            _check_int('mpc', 'history', self.history, 1)

    @classmethod
    def paper(cls) -> 'MPCConfig':
        """The paper's budget every solve (300 x 30, std 1, no warm start, no clamping)."""
        return cls(cem=CEMConfig(), warm_start=False)
