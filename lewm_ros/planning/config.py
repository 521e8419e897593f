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
| cost | LatentCostConfig | terminal only | - | MPC: rollout-cost critics (terminal, stage, action, smoothness) |
| mode | str | auto | - | MPC: 'auto' (policy_cem with a policy, else cem), 'cem', 'policy', 'policy_cem' |
| policy | PolicyModeConfig | - | - | MPC: the policy's goal horizon and the disagreement test (policy modes) |
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lewm_ros.runtime.critics import LatentCostConfig
from lewm_ros.validation import check_bool, check_choice, check_int, check_positive, require


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
        check_int('cem.num_samples', self.num_samples, 2)
        check_int('cem.num_elites', self.num_elites, 2, self.num_samples)
        check_int('cem.iterations', self.iterations, 1)
        check_int('cem.horizon', self.horizon, 1)
        check_positive('cem.init_std', self.init_std)
        check_bool('cem.clamp_to_bounds', self.clamp_to_bounds)
        check_bool('cem.hold_actions', self.hold_actions)
        check_int('cem.seed', self.seed, 0)


#: Planner modes: CEM alone, the goal-conditioned policy alone, CEM seeded by the policy, and
#: 'auto': 'policy_cem' when the model directory ships a policy, else 'cem' (:func:`resolve_mode`).
PLANNER_MODES = ('auto', 'cem', 'policy', 'policy_cem')


def resolve_mode(mode: str, has_policy: bool) -> str:
    """The mode the planner runs: 'auto' becomes 'policy_cem' when a policy is at hand, else
    'cem'; the other modes are themselves."""
    check_choice('mpc.mode', mode, PLANNER_MODES)
    if mode == 'auto':
        return 'policy_cem' if has_policy else 'cem'
    return mode


@dataclass(frozen=True)
class PolicyModeConfig:
    """How the planner uses the model directory's goal-conditioned policy (modes 'policy' and
    'policy_cem').

    goal_blocks: action blocks the policy is told remain to reach the goal [blocks]; 1 asks for
    the most direct block toward the goal (on the shipped tworoom model the policy alone reaches
    100% of the paper-protocol goals with 1, 86% with 2.5, 30% with 5: told that more time
    remains, it imitates the wandering of the random-walk half of its data);
    disagreement_ratio: policy_cem counts a disagreement when the world model scores the
    policy's proposal above this many times the best plan CEM sampled (the fast path is not
    trusted there; it shows in /diagnostics). Near the goal every cost is small and their ratios
    large, so the default is an order of magnitude.
    """
    goal_blocks: float = 1.0
    disagreement_ratio: float = 10.0

    def __post_init__(self) -> None:
        check_positive('policy.goal_blocks', self.goal_blocks)
        check_positive('policy.disagreement_ratio', self.disagreement_ratio)
        require(self.disagreement_ratio >= 1.0, 'policy.disagreement_ratio', self.disagreement_ratio, '>= 1')


def _mpc_cem() -> CEMConfig:
    return CEMConfig(num_samples=64, num_elites=8, iterations=5, clamp_to_bounds=True, hold_actions=True)


@dataclass(frozen=True)
class MPCConfig:
    """Receding-horizon planning with warm starts. The defaults are sized for the compact preset
    on a 2-core CPU: 64 samples x 2 warm iterations (128 rollouts of ~16 MFLOP, H 5, k 3) per
    tick, 5 iterations for the cold first solve of an episode. Success rate and plan latency of
    these defaults on the shipped tworoom model, with the command that measures them: the model
    card ``models/tworoom_compact/README.md``.

    cem: the solver (a cold solve uses cem.iterations and cem.init_std);
    warm_start: start each solve from the previous plan shifted by the executed blocks;
    warm_iterations: iterations of a warm-started solve; warm_std: its sampling std [z-scored];
    history: frames of context given to the predictor (None = the model's history, 1 = the
    reference evaluation's single frame);
    cost: the critics of the rollout cost (:class:`~lewm_ros.runtime.critics.LatentCostConfig`;
    default: the paper's terminal cost); the planner's backend must score with these terms;
    mode: 'cem' (CEM alone), 'policy' (one forward of the model directory's goal-conditioned
    policy per plan, no rollout), 'policy_cem' (the policy's proposal seeds the CEM mean and is
    scored among the candidates of every iteration, beside the previous plan; CEM refines it with
    warm_iterations at warm_std, and the rollout cost decides) or 'auto' (the default:
    'policy_cem' when the model directory ships a policy, else 'cem'); policy: the policy's
    settings.
    """
    cem: CEMConfig = field(default_factory=_mpc_cem)
    warm_start: bool = True
    warm_iterations: int = 2
    warm_std: float = 0.5
    history: int | None = None
    cost: LatentCostConfig = field(default_factory=LatentCostConfig)
    mode: str = 'auto'
    policy: PolicyModeConfig = field(default_factory=PolicyModeConfig)

    def __post_init__(self) -> None:
        require(isinstance(self.cem, CEMConfig), 'mpc.cem', self.cem, 'a CEMConfig')
        check_choice('mpc.mode', self.mode, PLANNER_MODES)
        require(isinstance(self.policy, PolicyModeConfig), 'mpc.policy', self.policy, 'a PolicyModeConfig')
        require(self.mode != 'policy_cem' or self.cem.num_samples >= 3, 'cem.num_samples', self.cem.num_samples,
                '>= 3 in mode policy_cem (the proposal and the previous plan are candidates beside the mean)')
        check_bool('mpc.warm_start', self.warm_start)
        check_int('mpc.warm_iterations', self.warm_iterations, 1)
        check_positive('mpc.warm_std', self.warm_std)
        if self.history is not None:
            check_int('mpc.history', self.history, 1)
        require(isinstance(self.cost, LatentCostConfig), 'mpc.cost', self.cost, 'a LatentCostConfig')

    @classmethod
    def paper(cls) -> 'MPCConfig':
        """The paper's budget every solve (300 x 30, std 1, no warm start, no clamping, terminal cost)."""
        return cls(cem=CEMConfig(), warm_start=False, mode='cem')
