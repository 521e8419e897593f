"""What a probe predicts and how it is scored: the named state entries of each task, angles as
their cosine and sine, Pearson r / R^2 per target and the angle error in degrees (numpy only)."""
from __future__ import annotations

import numpy as np

STATE_NAMES = {
    'tworoom': ('x', 'y', 'vx', 'vy'),
    'reacher': ('shoulder', 'wrist', 'shoulder_vel', 'wrist_vel', 'target_x', 'target_y'),
    'pusht': ('pusher_x', 'pusher_y', 'block_x', 'block_y', 'block_angle', 'pusher_vx', 'pusher_vy',
              'block_vx', 'block_vy', 'block_angular_velocity'),
}
"""Names of the state vector entries of each task (see the task modules' docstrings)."""

ANGLES = {'pusht': ('block_angle',), 'reacher': ('shoulder', 'wrist')}
"""State entries that are angles [rad] (wrapped to [-pi, pi), or not, like the reacher's unlimited
shoulder): a linear map cannot follow the wrap, so they are probed as their cosine and sine
(``<name>_cos``, ``<name>_sin``) and scored also by the angle those two predictions give
(:func:`angle_errors`)."""


def probe_targets(task: str, names: list[str], all_names: list[str],
                  state: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The probe's targets for the state quantities ``names``: (target names, (N, Q) float64);
    an angle of :data:`ANGLES` becomes its cosine and sine."""
    out_names, columns = [], []
    for name in names:
        value = np.asarray(state[:, all_names.index(name)], np.float64)
        if name in ANGLES.get(task, ()):
            out_names += [f'{name}_cos', f'{name}_sin']
            columns += [np.cos(value), np.sin(value)]
        else:
            out_names.append(name)
            columns.append(value)
    return out_names, np.stack(columns, axis=1) if columns else np.zeros((len(state), 0))


def angle_errors(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """For each angle probed as ``<name>_cos`` / ``<name>_sin`` in ``names``: the absolute error
    [deg] of atan2(sin, cos) of the predictions against the true angle, median and 90th
    percentile, keyed by ``<name>``."""
    out = {}
    for i, name in enumerate(names):
        if not name.endswith('_cos') or f'{name[:-4]}_sin' not in names:
            continue
        j = names.index(f'{name[:-4]}_sin')
        true = np.arctan2(y_true[:, j], y_true[:, i])
        error = np.abs(np.angle(np.exp(1j * (np.arctan2(y_pred[:, j], y_pred[:, i]) - true))))
        out[name[:-4]] = {'median_abs_error_deg': float(np.degrees(np.median(error))),
                          'p90_abs_error_deg': float(np.degrees(np.percentile(error, 90)))}
    return out


def state_names(task: str, state_dim: int) -> list[str]:
    """Names of the ``state_dim`` state entries of ``task`` (``state_<i>`` for unknown tasks)."""
    names = STATE_NAMES.get(task)
    if names is None or len(names) != state_dim:
        return [f'state_{i}' for i in range(state_dim)]
    return list(names)


def probe_metrics(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """Per quantity: Pearson r and R^2 = 1 - SSE / SST of y_pred (N, Q) against y_true (N, Q).

    r is NaN when either column is constant (undefined correlation).
    """
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    if y_true.shape != y_pred.shape or y_true.shape[1] != len(names):
        raise ValueError(f'y_true {y_true.shape}, y_pred {y_pred.shape} and {len(names)} names disagree')
    out = {}
    for q, name in enumerate(names):
        a, b = y_true[:, q], y_pred[:, q]
        da, db = a - a.mean(), b - b.mean()
        denom = np.sqrt((da ** 2).sum() * (db ** 2).sum())
        r = float((da * db).sum() / denom) if denom > 0 else float('nan')
        sst = (da ** 2).sum()
        r2 = float(1.0 - ((a - b) ** 2).sum() / sst) if sst > 0 else float('nan')
        out[name] = {'pearson_r': r, 'r2': r2}
    return out
