"""explorer_node: drives a robot for data collection through ROS topics alone (rclpy shell).

Publishes one command per control tick from the collection policy mix
(:mod:`lewm_training.explorer`) on ``cmd`` (remap it to the robot's command topic) as the
message type planner_node would publish (``command_type``, ``command_fields``,
``command_scales``, the same command adapters), clipped to the task's action bounds. Listens to
``~/enable`` (std_msgs/Bool: false = zero commands), and to ``state`` (std_msgs/Float64MultiArray,
the robot's state; needed by the goal-directed heuristic, e.g. remapped to ``sim_node/state``).
At each episode start it optionally calls ``reset_service`` (std_srvs/Trigger, e.g.
``sim_node/reset``: a simulator can teleport, a real robot cannot) and publishes a marker on
``~/episode`` (std_msgs/String JSON: episode, kind) that ``lewm-train import-bag --marker-topic``
splits episodes on. A zero command goes out on disable, SIGINT and SIGTERM.
"""
from __future__ import annotations

import json
import threading
import time

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import Trigger

from lewm_ros.control.command_mapping import CommandMapping
from lewm_ros.ros.command_adapters import CommandAdapter
from lewm_ros.ros.spinning import run_node
from lewm_ros.validation import check_int, check_number
from lewm_training.explorer import Explorer, ExplorerConfig
from lewm_training.policies import PolicyConfig

RESET_TIMEOUT_S = 10.0
"""A reset service that has not answered within this [s] (wall time) is asked again."""
#: name -> (default, meaning); every parameter is read once at construction.
PARAMS = {
    'task': ('tworoom', 'Task whose action bounds (and heuristic) the driver uses.'),
    'policy': ('mix', 'random | heuristic | mix (per episode; the heuristic needs the state topic).'),
    'heuristic_frac': (0.5, 'mix: probability that an episode is goal-directed.'),
    'hold_prob': (0.8, 'random walk: probability of keeping the target action per tick.'),
    'smoothing': (0.5, 'random walk: low-pass factor of the applied action.'),
    'noise': (0.3, 'heuristic: std of the Gaussian action noise [raw units].'),
    'episode_steps': (100, 'Control ticks per episode (one policy draw).'),
    'episodes': (0, 'Stop (zero command, node exits) after this many episodes; 0 = drive until stopped.'),
    'seed': (0, 'Seed of every random draw.'),
    'control_rate': (10.0, 'Commands per second [Hz] on the node clock (use_sim_time for a simulator).'),
    'command_type': ('twist_stamped', 'twist_stamped | twist | float64_multi_array | joint_trajectory.'),
    'command_fields': (['linear.x', 'linear.y'], 'Per action dim: a Twist field or a joint name.'),
    'command_scales': ([1.0, 1.0], 'Per action dim: command units per raw action unit.'),
    'command_frame_id': ('base_link', 'header.frame_id of stamped commands.'),
    'start_enabled': (True, 'Command at start (else wait for true on ~/enable).'),
    'reset_service': ('', "Trigger service called at each episode start ('' = none, e.g. sim_node/reset)."),
}


class ExplorerNode(Node):
    """See the module docstring. ``published`` counts the commands sent."""

    def __init__(self, node_name: str = 'explorer_node', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        values = {name: self.declare_parameter(name, default, ParameterDescriptor(description=meaning,
                                                                                    read_only=True)).value
                  for name, (default, meaning) in PARAMS.items()}
        check_number('control_rate', values['control_rate'], 0.1, 1000.0)  # every check before anything is made
        check_int('episodes', values['episodes'], 0)
        policy = PolicyConfig(kind=values['policy'], heuristic_frac=values['heuristic_frac'],
                              hold_prob=values['hold_prob'], smoothing=values['smoothing'], noise=values['noise'])
        self.explorer = Explorer(ExplorerConfig(task=values['task'], policy=policy,
                                                episode_steps=values['episode_steps'], seed=values['seed']))
        scales = np.asarray(values['command_scales'], dtype=np.float64)
        ends = np.stack([self.explorer.action_low * scales, self.explorer.action_high * scales])
        mapping = CommandMapping(command_type=values['command_type'], fields=tuple(values['command_fields']),
                                 scales=tuple(scales.tolist()), low=tuple(ends.min(0)), high=tuple(ends.max(0)),
                                 frame_id=values['command_frame_id'])
        self._adapter = CommandAdapter(mapping)
        self._lock = threading.Lock()
        self._enabled = bool(values['start_enabled'])
        self._state: np.ndarray | None = None
        self._resetting = None
        self._reset_started = 0.0
        self._episodes = int(values['episodes'])
        self.finished = threading.Event()
        self.published = 0
        self._cmd_pub = self.create_publisher(self._adapter.msg_type, 'cmd', 10)
        self._marker_pub = self.create_publisher(String, '~/episode', 10)
        self.create_subscription(Bool, '~/enable', self._on_enable, 10)
        self.create_subscription(Float64MultiArray, 'state', self._on_state, 10)
        self._reset = self.create_client(Trigger, values['reset_service']) if values['reset_service'] else None
        self.create_timer(1.0 / values['control_rate'], self._on_tick)
        topic = self.resolve_topic_name('cmd')
        if self.explorer.config.needs_state:
            state_topic = self.resolve_topic_name('state')
            self.get_logger().info(f"goal-directed episodes read the robot's state on {state_topic}"
                                   ' (std_msgs/Float64MultiArray); without it they command zero')
        self.get_logger().info(f"exploring {values['task']} with policy {values['policy']} at "
                               f"{values['control_rate']} Hz, {mapping.command_type} on {topic}")

    def _on_enable(self, msg: Bool) -> None:
        with self._lock:
            self._enabled = bool(msg.data)
        if not msg.data:
            self.publish_stop()

    def _on_state(self, msg: Float64MultiArray) -> None:
        if len(msg.data) == self.explorer.state_dim:
            with self._lock:
                self._state = np.asarray(msg.data, dtype=np.float64)

    def _on_tick(self) -> None:
        action = None
        with self._lock:
            if not self._enabled or self.finished.is_set():
                return
            if self._resetting is not None and not self._resetting.done():
                if time.monotonic() - self._reset_started < RESET_TIMEOUT_S:
                    return  # the robot is being reset: it holds the zero command sent when the reset began
                self._resetting.cancel()
                self._resetting = None
                self.get_logger().warning(f'{self._reset.srv_name}: no answer within {RESET_TIMEOUT_S} s; asking again')
            starting = self.explorer.episode_due()
            if starting and 0 < self._episodes <= self.explorer.episode + 1:
                self.finished.set()
            elif starting and self._reset is not None and self._resetting is None:
                self._resetting = self._reset.call_async(Trigger.Request())
                self._reset_started = time.monotonic()
                self._state = None  # the next state is the reset's
            else:
                self._resetting = None
                action = self.explorer.action(self._state)
        if action is None:  # finished, or a reset began: stop the robot
            self.publish_stop()
            if self.finished.is_set():
                self.get_logger().info(f'{self._episodes} episodes driven: stopping')
            return
        if starting:
            self._marker_pub.publish(String(data=json.dumps({'episode': self.explorer.episode,
                                                             'kind': self.explorer.kind})))
        self._cmd_pub.publish(self._adapter.build(action, self.get_clock().now()))
        self.published += 1

    def publish_stop(self) -> None:
        """One zero command now (disable, shutdown)."""
        if self.context.ok():
            self._cmd_pub.publish(self._adapter.build(np.zeros(self.explorer.action_dim), self.get_clock().now()))

    def destroy_node(self) -> None:
        self.publish_stop()
        if self._resetting is not None:
            self._resetting.cancel()
        self.explorer.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Console script ``lewm-explore``; SIGINT/SIGTERM send a zero command before exiting."""
    run_node(ExplorerNode, args, num_threads=2)


if __name__ == '__main__':
    main()
