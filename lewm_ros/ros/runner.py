"""lewm-run: the nodes of a launch file in one process, for installs without ``ros2 launch``.

Like a component container: every node is built in one ROS context from one standard ROS 2
parameter file (``node_name: {ros__parameters: {...}}``; ``/**`` applies to every node) with the
same remapping rules as the launch files, and spun by one MultiThreadedExecutor. Lifecycle
nodes (planner_node) are configured and activated, as ``autostart`` does in the launch files.
SIGINT/SIGTERM: lifecycle nodes are deactivated (planner_node publishes its zero command) and
shut down, then every node is destroyed; the exit status is 0.

    lewm-run --params config/sim.yaml --with-sim -p model_dir:=models/tworoom
    lewm-run --params config/sim.yaml --sim-only --camera-topic /front/image_raw
    lewm-run --params config/sim.yaml --sim-only --record -p output:=rec   (sim_node + lewm_record)

The caller hands the :class:`Runner` its node classes. The command line offers
``planner_node``, the recorder ``lewm_record`` (``--record``) and every node class another
installed package registers in the ``lewm_ros.nodes`` entry-point group (the simulator's
``sim_node`` registers itself there), loaded only when asked for (``--with-sim``/``--sim-only``);
this package names no other package.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from importlib.metadata import entry_points
from typing import Any
from collections.abc import Mapping

import yaml

LOG = logging.getLogger(__name__)

NODE_ENTRY_POINTS = 'lewm_ros.nodes'
"""Entry-point group of node classes that other packages offer to ``lewm-run`` (name = node name)."""


@dataclass(frozen=True)
class RunConfig:
    """params_file: ROS 2 parameter YAML; nodes: node names, in start order;
    camera_topic / cmd_topic: where the camera images and the commands flow (planner_node
    ``image``/``cmd`` and sim_node ``camera/image_raw``/``cmd_vel``/``command`` are remapped there,
    as planner.launch.py and sim.launch.py do); remaps: extra ROS remapping rules 'from:=to' or
    'node:from:=to' (they take precedence: rcl applies the first matching rule); params:
    'name:=value' overrides for every node that declares the name; log_level: ROS log level."""
    params_file: Path
    nodes: tuple[str, ...]
    camera_topic: str = 'camera/image_raw'
    cmd_topic: str = 'cmd_vel'
    remaps: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    log_level: str = 'info'

    def __post_init__(self) -> None:
        if not self.nodes or len(set(self.nodes)) != len(self.nodes) or not all(self.nodes):
            raise ValueError(f'nodes={list(self.nodes)}; allowed: distinct node names, at least one')
        for rule in (*self.remaps, *self.params):
            name, sep, value = rule.partition(':=')
            if not sep or not name or not value:
                raise ValueError(f"rule {rule!r} must read 'from:=to' (remap) or 'name:=value' (param)")
        for name in ('camera_topic', 'cmd_topic'):
            if not getattr(self, name) or ':' in getattr(self, name):  # relative names follow -r __ns:=...
                raise ValueError(f'{name}={getattr(self, name)!r} must be a topic name')
        if self.log_level not in ('debug', 'info', 'warn', 'error', 'fatal'):
            raise ValueError(f'log_level={self.log_level!r}; allowed: debug, info, warn, error, fatal')

    def default_remaps(self) -> list[str]:
        """Node-scoped rules wiring the nodes together (after the user's rules, which win)."""
        rules = [f'planner_node:image:={self.camera_topic}',
                 f'planner_node:image/compressed:={self.camera_topic}/compressed',
                 f'planner_node:cmd:={self.cmd_topic}',
                 f'sim_node:camera/image_raw:={self.camera_topic}', f'sim_node:cmd_vel:={self.cmd_topic}',
                 f'sim_node:command:={self.cmd_topic}',
                 f'lewm_record:camera/image_raw:={self.camera_topic}',
                 f'lewm_record:camera/image_raw/compressed:={self.camera_topic}/compressed',
                 f'lewm_record:cmd_vel:={self.cmd_topic}']
        if 'sim_node' in self.nodes and 'planner_node' in self.nodes:
            rules.append('planner_node:~/goal_image:=sim_node/goal_image')  # each episode's goal (same namespace)
        return rules

    def ros_args(self) -> list[str]:
        """The ``--ros-args`` command line handed to the context (rcl parses the YAML itself)."""
        args = ['--ros-args', '--params-file', str(self.params_file), '--log-level', self.log_level]
        for rule in (*self.remaps, *self.default_remaps()):
            args += ['-r', rule]
        for rule in self.params:
            args += ['-p', rule]
        return args


def read_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """A ROS 2 parameter YAML -> {node pattern: {parameter: value}} (nested keys stay nested).

    Raises ValueError naming the file and the offending key when the layout is not
    ``node: {ros__parameters: {...}}`` (optionally nested in namespaces), so a typo fails here
    with a readable message rather than as an rcl parser error.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'params file {path} does not exist')
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f'params file {path} is not valid YAML: {exc}') from None
    if not isinstance(document, dict) or not document:
        raise ValueError(f"params file {path} must map node names to {{ros__parameters: ...}}")
    found: dict[str, dict[str, Any]] = {}

    def walk(prefix: str, section: Any) -> None:
        if not isinstance(section, dict):
            raise ValueError(f'params file {path}: {prefix!r} must be a mapping, got {section!r}')
        if 'ros__parameters' in section:
            params = section['ros__parameters']
            if not isinstance(params, dict) or set(section) != {'ros__parameters'}:
                raise ValueError(f'params file {path}: {prefix!r} must hold only a ros__parameters mapping')
            found[prefix] = params
            return
        for key, value in section.items():
            walk(f'{prefix}/{key}' if prefix else str(key), value)
    for key, value in document.items():
        walk(str(key), value)
    return found


def load_node_class(node: str) -> type:
    """The class of ``node``: planner_node, or one registered in NODE_ENTRY_POINTS by an
    installed package. RuntimeError naming what is missing."""
    if node == 'planner_node':
        from lewm_ros.ros.planner_node import PlannerNode
        return PlannerNode
    if node == 'lewm_record':
        from lewm_ros.ros.recorder import RecorderNode
        return RecorderNode
    found = [ep for ep in entry_points(group=NODE_ENTRY_POINTS) if ep.name == node]
    if not found:
        offered = sorted(ep.name for ep in entry_points(group=NODE_ENTRY_POINTS))
        raise RuntimeError(f'{node}: no installed package offers this node (entry-point group '
                           f'{NODE_ENTRY_POINTS!r} has {offered}); the simulator (sim_node) comes with the '
                           'side package in training/ of this repository')
    try:
        return found[0].load()
    except ImportError as exc:
        raise RuntimeError(f'{node}: cannot import {found[0].value} ({exc})') from None


class Runner:
    """Start the nodes, spin them in one executor, stop them cleanly (see the module docstring)."""

    def __init__(self, config: RunConfig, node_classes: Mapping[str, type]) -> None:
        """node_classes: node name -> class taking (node_name=..., context=...), one per
        config.nodes (extra entries are ignored)."""
        missing = [name for name in config.nodes if name not in node_classes]
        if missing:
            raise ValueError(f'no node class given for {missing}')
        import rclpy
        from rclpy.signals import SignalHandlerOptions
        self.config = config
        self._classes = {name: node_classes[name] for name in config.nodes}
        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(args=config.ros_args(), context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.nodes: list = []
        self._active: list = []  # lifecycle nodes this runner activated
        self._executor = None
        self._spin_thread: threading.Thread | None = None

    def start(self) -> None:
        """Build every node (a configure failure raises RuntimeError), then spin them."""
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
        self._executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        for name, cls in self._classes.items():
            node = cls(node_name=name, context=self.context)
            self.nodes.append(node)
            self._executor.add_node(node)
            if isinstance(node, LifecycleNode):
                for transition in (node.trigger_configure, node.trigger_activate):
                    if transition() != TransitionCallbackReturn.SUCCESS:
                        raise RuntimeError(f'{name}: {transition.__name__} failed (see its log above)')
                self._active.append(node)
                LOG.info('%s: configured and active', name)
            else:
                LOG.info('%s: started', name)
        from lewm_ros.ros.spinning import spin
        self._spin_thread = threading.Thread(target=spin, args=(self._executor,), name='executor', daemon=True)
        self._spin_thread.start()

    @property
    def spinning(self) -> bool:
        """Whether the executor thread is alive."""
        return self._spin_thread is not None and self._spin_thread.is_alive()

    def stop(self) -> None:
        """Deactivate + shut down lifecycle nodes (zero command), destroy every node, end the context."""
        from rclpy.lifecycle import LifecycleNode
        for node in reversed(self._active):
            node.trigger_deactivate()
        self._active.clear()
        for node in reversed(self.nodes):
            if isinstance(node, LifecycleNode):
                node.trigger_shutdown()
        if self._executor is not None:
            self._executor.shutdown()
        if self._spin_thread is not None:
            self._spin_thread.join(5.0)
        for node in reversed(self.nodes):
            node.destroy_node()
        self.nodes.clear()
        self._rclpy.try_shutdown(context=self.context)


def parse_args(argv: list[str] | None) -> RunConfig:
    parser = argparse.ArgumentParser(prog='lewm-run', description=__doc__.splitlines()[0])
    parser.add_argument('--params', required=True, type=Path, help='ROS 2 parameter YAML (e.g. config/sim.yaml)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--with-sim', action='store_true',
                       help='also run sim_node (the simulator, installed with the side package)')
    group.add_argument('--sim-only', action='store_true', help='run sim_node alone (a simulated robot)')
    parser.add_argument('--record', action='store_true',
                        help='also run lewm_record (records the camera and command topics to rosbag2 MCAP)')
    parser.add_argument('--camera-topic', default='camera/image_raw',
                        help='camera image topic (compressed: <topic>/compressed)')
    parser.add_argument('--cmd-topic', default='cmd_vel', help='command topic')
    parser.add_argument('-r', '--remap', action='append', default=[], metavar='[NODE:]FROM:=TO',
                        help="remapping rule, e.g. image:=/camera/image_raw or planner_node:cmd:=/cmd_vel")
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NAME:=VALUE',
                        help='parameter override for every node that declares NAME, e.g. model_dir:=models/x')
    parser.add_argument('--log-level', default='info', help='debug | info | warn | error | fatal')
    args = parser.parse_args(argv)
    nodes = ('sim_node',) if args.sim_only else ('planner_node', 'sim_node') if args.with_sim else ('planner_node',)
    nodes += ('lewm_record',) if args.record else ()
    return RunConfig(params_file=args.params, nodes=nodes, camera_topic=args.camera_topic, cmd_topic=args.cmd_topic,
                     remaps=tuple(args.remap), params=tuple(args.param),
                     log_level=args.log_level)


def main(argv: list[str] | None = None) -> int:
    """Console script ``lewm-run``; returns 0 after a clean SIGINT/SIGTERM shutdown, 1 on a start failure."""
    logging.basicConfig(level=logging.INFO, format='[%(levelname)s] [%(name)s]: %(message)s')
    try:
        config = parse_args(argv)
        sections = read_params_file(config.params_file)
    except ValueError as exc:
        LOG.error('%s', exc)
        return 2
    unused = [name for name in sections if name != '/**' and name.split('/')[-1] not in config.nodes]
    if unused:
        LOG.info('params file sections not started here: %s', unused)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        classes = {node: load_node_class(node) for node in config.nodes}  # import errors before any node
    except RuntimeError as exc:
        LOG.error('%s', exc)
        return 1
    runner = Runner(config, classes)
    status = 0
    try:
        runner.start()
        LOG.info('running %s; Ctrl-C to stop', ', '.join(config.nodes))
        while not stop.wait(0.2):
            if not runner.spinning:  # a callback raised and ended the executor: stop, don't idle
                raise RuntimeError('the executor stopped (a callback raised; see the log above)')
        LOG.info('stopping')
    except Exception as exc:  # any start failure (import, parameters, configure) ends the run with its reason
        LOG.error('%s', exc)
        status = 1
    finally:
        runner.stop()
    LOG.info('stopped cleanly' if status == 0 else 'stopped after a start failure')
    return status


if __name__ == '__main__':
    sys.exit(main())
