"""Latent-space planning: paper-exact CEM and a warm-started MPC planner (no ROS imports)."""
from lewm_ros.planning.cem import CEM, CEMResult
from lewm_ros.planning.config import CEMConfig, MPCConfig
from lewm_ros.planning.mpc import MPCPlanner, Plan

__all__ = ['CEM', 'CEMConfig', 'CEMResult', 'MPCConfig', 'MPCPlanner', 'Plan']
