"""Property: whatever parameter values planner_node accepts and whatever the planner emits, the
published command is finite and within its limits (command units) and within the action limits
times the scales. Exercises the node's own path: NodeParams.resolve -> SafetyFilter ->
CommandAdapter (real ROS messages), as in PlannerNode._on_control."""
import math

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rclpy.time import Time

from lewm_ros.control import node_params as P
from lewm_ros.control.param_specs import SPEC_BY_NAME
from lewm_ros.control.safety import SafetyFilter
from lewm_ros.model import ModelMetadata
from lewm_ros.ros.command_adapters import CommandAdapter

META = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0, 0], action_std=[1, 1],
                     action_low=[-1, -1], action_high=[1, 1])
FIELDS = {'twist': ['linear.x', 'angular.z'], 'twist_stamped': ['linear.x', 'angular.z'],
          'float64_multi_array': [], 'joint_trajectory': ['j1', 'j2']}

ANY_FLOAT = (st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e300, -1e308, 1e-300, 0.0])
             | st.floats(-5.0, 5.0) | st.floats(-150.0, 150.0))
PAIR = st.lists(ANY_FLOAT, min_size=2, max_size=2)
#: name -> the range an accepted value usually lies in.
PLAUSIBLE = {'command_scales': (-100.0, 100.0), 'action_low': (-5.0, 0.0), 'action_high': (0.0, 5.0),
             'command_low': (-1000.0, 0.0), 'command_high': (0.0, 1000.0), 'rate_limit': (1e-3, 100.0),
             'image_timeout': (0.01, 5.0), 'plan_timeout': (0.6, 30.0)}
WILD_ARRAYS = st.one_of(PAIR, st.lists(ANY_FLOAT, max_size=3))


@st.composite
def parameter_values(draw):
    """Plausible safety parameters, with at most one of them (or none) drawn wild: half the sets
    are accepted, the others probe one parameter's validation at a time."""
    command_type = draw(st.sampled_from(sorted(FIELDS)))
    values = {'model_dir': '/models/m', 'command_type': command_type, 'command_fields': FIELDS[command_type]}
    wild = draw(st.sampled_from([None, None, None, *PLAUSIBLE]))
    for name, (low, high) in PLAUSIBLE.items():
        if name.endswith('timeout'):
            values[name] = draw(ANY_FLOAT if name == wild else st.floats(low, high))
        else:
            plausible = st.one_of(st.just([]), st.lists(st.floats(low, high), min_size=2, max_size=2))
            values[name] = draw(WILD_ARRAYS if name == wild else plausible)
    return values


def message_values(msg, command_type: str) -> np.ndarray:
    if command_type == 'twist':
        return np.array([msg.linear.x, msg.angular.z])
    if command_type == 'twist_stamped':
        return np.array([msg.twist.linear.x, msg.twist.angular.z])
    if command_type == 'float64_multi_array':
        return np.array(msg.data)
    return np.array(msg.points[0].positions)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=parameter_values(),
       actions=st.lists(st.one_of(PAIR, st.none()), min_size=1, max_size=12),
       dt=st.floats(1e-3, 1.0))
def test_accepted_parameters_never_publish_a_command_out_of_limits(values, actions, dt):
    try:
        params = P.from_values(values)
        mapping, safety_config = params.resolve(META)
    except ValueError:
        event('rejected')
        return  # rejected at configure / by the parameter callback: nothing is published
    event('accepted')
    assert params.values['image_timeout'] <= SPEC_BY_NAME['image_timeout'].limits[1]
    assert params.values['plan_timeout'] <= SPEC_BY_NAME['plan_timeout'].limits[1]
    scales = np.asarray(mapping.scales)
    ends = np.stack([np.asarray(safety_config.action_low) * scales, np.asarray(safety_config.action_high) * scales])
    action_bound_low, action_bound_high = ends.min(axis=0), ends.max(axis=0)
    given_low = np.asarray(values['command_low'] or [-math.inf] * 2)
    given_high = np.asarray(values['command_high'] or [math.inf] * 2)
    safety = SafetyFilter(safety_config)
    adapter = CommandAdapter(mapping)
    for tick, action in enumerate(actions):
        now = tick * dt
        out = safety.filter(None if action is None else np.asarray(action, dtype=float), now, now, now, dt)
        command = message_values(adapter.build(out.command, Time(nanoseconds=int(now * 1e9))), values['command_type'])
        assert np.all(np.isfinite(command)), command
        assert np.all(command >= np.asarray(mapping.low)) and np.all(command <= np.asarray(mapping.high))
        assert np.all(command >= given_low) and np.all(command <= given_high)
        assert np.all(command >= action_bound_low - 1e-9) and np.all(command <= action_bound_high + 1e-9)
        assert np.all(np.abs(command) <= SPEC_BY_NAME['command_high'].limits[1] * 100.0)


def test_the_reported_attacks_are_refused():
    for values in ({'command_scales': [1e300, 1.0]}, {'image_timeout': 1e300}, {'plan_timeout': 1e300},
                   {'action_high': [1e308, 1.0]}, {'command_high': [math.nan, 1.0]}, {'rate_limit': [0.0, 1.0]}):
        try:
            P.from_values({'model_dir': '/models/m', **values}).resolve(META)
        except ValueError as exc:
            assert next(iter(values)) in str(exc)
        else:
            raise AssertionError(f'accepted {values}')
