"""Resumable training state: ``<out>/checkpoint.pt``, written atomically (temp file + rename),
readable with ``torch.load(weights_only=True)`` (tensors and plain types only).

Contents: format_version, step (optimiser steps done), model / optimizer / scheduler state dicts,
sigreg_calls (SIGReg's seeded-direction counter), rng (one entry per rank: torch / cuda / numpy /
python generator states as tensors), world_size, elapsed_s (training wall time so far), config.
The sampler position needs no state: it is a function of ``step`` (see train_data.BatchOrder).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FILE = 'checkpoint.pt'
FORMAT_VERSION = 1


def capture_rng() -> dict[str, Any]:
    """This process's generator states as tensors / plain types."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        'torch': torch.get_rng_state(),
        'numpy_keys': torch.from_numpy(np_state[1].astype(np.int64)),
        'numpy_pos': int(np_state[2]), 'numpy_has_gauss': int(np_state[3]), 'numpy_gauss': float(np_state[4]),
        'python_version': int(py_version), 'python_state': torch.tensor(py_state, dtype=torch.int64),
        'python_gauss': py_gauss,
    }
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state['torch'])
    np.random.set_state(('MT19937', state['numpy_keys'].numpy().astype(np.uint32), state['numpy_pos'],
                         state['numpy_has_gauss'], state['numpy_gauss']))
    random.setstate((state['python_version'], tuple(int(v) for v in state['python_state'].tolist()),
                     state['python_gauss']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (+ format_version) to ``directory/checkpoint.pt`` atomically."""
    path = Path(directory) / CHECKPOINT_FILE
    tmp = path.with_name(f'.{CHECKPOINT_FILE}.{os.getpid()}.tmp')
    torch.save({'format_version': FORMAT_VERSION, **state}, tmp)
    with open(tmp, 'rb') as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)
    return path


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The checkpoint in ``directory``, or None when there is none."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any parse failure is a corrupt checkpoint
        raise ValueError(f'cannot read checkpoint {path}: {type(exc).__name__}: {exc}') from exc
    if not isinstance(state, dict) or state.get('format_version') != FORMAT_VERSION:
        raise ValueError(f'checkpoint {path} has format_version {state.get("format_version")!r}; '
                         f'this version reads {FORMAT_VERSION}')
    return state
