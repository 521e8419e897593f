"""Planner test fixtures: a tiny random model directory with metadata."""
import pytest

from lewm_ros.model import save_model_dir
from planning_fixtures import tiny_metadata, tiny_model


@pytest.fixture(scope='session')
def tiny_model_dir(tmp_path_factory):
    return save_model_dir(tiny_model(), tmp_path_factory.mktemp('tiny_model'), tiny_metadata())
