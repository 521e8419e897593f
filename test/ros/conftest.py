"""Shared by the ROS tests: a random-weight compact model directory with a goal image."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from lewm_ros.model import LeWM, ModelMetadata, preset, save_model_dir


def write_compact_model(directory: Path) -> Path:
    """directory <- a random compact LeWM (2-D actions in [-1, 1], frameskip 5, 64 px) and
    goal.png (a 48 x 64 RGB frame, left dark, right bright). Returns directory."""
    save_model_dir(LeWM(preset('compact', action_dim=2, frameskip=5)).eval(), directory,
                   ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0, 0],
                                 action_std=[1, 1], action_low=[-1, -1], action_high=[1, 1]))
    goal = np.zeros((48, 64, 3), np.uint8)
    goal[:, 40:] = 255
    cv2.imwrite(str(directory / 'goal.png'), goal)
    return directory


@pytest.fixture(scope='session')
def compact_model_writer():
    """write_compact_model, as a fixture (test modules are not importable from each other)."""
    return write_compact_model
