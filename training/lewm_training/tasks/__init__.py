"""MuJoCo tasks with a Gymnasium-style API (no gymnasium dependency).

``make_task(name, image_size=64, seed=None, **kw)`` builds a registered task.
Every task renders headless through EGL (``MUJOCO_GL=egl`` is set here, before
``mujoco`` is first imported, unless the caller already chose a backend):
import this package before ``mujoco``, or set ``MUJOCO_GL`` yourself).

Registered tasks:

* ``tworoom``: point mass in two rooms joined by a door (:mod:`.tworoom`).
* ``reacher``: DeepMind Control Suite reacher geometry (:mod:`.reacher`).
* ``pusht``: a pusher and a T block on a table (:mod:`.pusht`).

A new task subclasses
:class:`~lewm_training.tasks.base.MujocoTask` and registers its constructor with
:func:`register_task`; collection, datasets and evaluation only use the
:class:`~lewm_training.tasks.base.MujocoTask` interface.
"""
from __future__ import annotations

import os

os.environ.setdefault('MUJOCO_GL', 'egl')

from collections.abc import Callable  # noqa: E402

from lewm_training.tasks.base import MujocoTask, Observation  # noqa: E402

TaskFactory = Callable[..., MujocoTask]

_REGISTRY: dict[str, TaskFactory] = {}


def require_default_task(metadata, model_dir, user: str) -> None:
    """ValueError naming the model's ``lewm_meta.json`` when its task was built with constructor
    options (``extra.task_kwargs``, recorded by ``lewm-train fit`` from the dataset, e.g. the
    reacher's ``show_target``): ``user`` builds the task with its defaults, so its frames would
    differ from the training data's and the model would plan on images it never saw."""
    options = metadata.extra.get('task_kwargs') or {}
    if options:
        raise ValueError(f'{model_dir}/lewm_meta.json: the model was trained on task {metadata.task!r} built with '
                         f'options {options} (extra.task_kwargs), but {user} builds the task with its defaults, '
                         'so the frames would differ from its training data; train on data collected without '
                         '--task-arg')


def register_task(name: str, factory: TaskFactory) -> None:
    """Register ``factory(image_size=..., seed=..., **kw) -> MujocoTask`` under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f'task {name!r} is already registered')
    _REGISTRY[name] = factory


def task_names() -> list[str]:
    """Names accepted by :func:`make_task`, sorted."""
    return sorted(_REGISTRY)


def make_task(name: str, image_size: int = 64, seed: int | None = None, **kw) -> MujocoTask:
    """Build task ``name`` rendering (image_size, image_size, 3) uint8 RGB frames.

    ``seed`` seeds the task's generator (start states, targets, perturbations);
    extra keyword arguments go to the task's constructor.
    """
    if name not in _REGISTRY:
        raise ValueError(f'task={name!r} is not registered; allowed: {task_names()}')
    return _REGISTRY[name](image_size=image_size, seed=seed, **kw)


def _register_builtin() -> None:
    from lewm_training.tasks.pusht import PushTTask
    from lewm_training.tasks.reacher import ReacherTask
    from lewm_training.tasks.tworoom import TwoRoomTask
    register_task('tworoom', TwoRoomTask)
    register_task('reacher', ReacherTask)
    register_task('pusht', PushTTask)


_register_builtin()

__all__ = ['MujocoTask', 'Observation', 'make_task', 'register_task', 'task_names']
