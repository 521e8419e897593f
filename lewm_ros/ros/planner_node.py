"""planner_node: camera in, LeWM MPC plan, filtered commands out (a managed lifecycle node).

configure: read + validate parameters, load the model and planner, set a goal from
goal_image_path, create topics/services, start the planner thread. activate: start the control
timer. deactivate: stop the timer and publish a zero command. cleanup/shutdown: tear down
(shutdown also publishes a zero command).

Topics (relative names, remap them): sub `image` (sensor_msgs/Image or CompressedImage),
`~/goal_image` (Image), `~/enable`, `~/estop` (std_msgs/Bool); pub `cmd` (command_type),
`~/plan_cost` (Float32), `~/planned_actions` (Float64MultiArray, (H, frameskip, A)),
`~/surprise` (Float32, calibrated units, NaN while uncalibrated and warming up), `/diagnostics`.
Services: `~/set_goal_from_camera`, `~/reset_estop` (std_srvs/Trigger; also releases a surprise stop).

A block boundary goes to the planner with the frame captured at it (header stamp plus the camera's
typical stamp-to-receipt delay, or receipt time when the stamp is off), not the newest frame at the
tick: control/frame_alignment.py waits up to boundary_frame_wait control periods for it without
blocking the timer (/diagnostics boundary_frames_waited; boundary_frames_late: fallbacks to the
newest frame, planned from but not scored for surprise).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, Float32, Float64MultiArray
from std_srvs.srv import Trigger

from lewm_ros.camera import CameraPipeline, ImageDecodeError, decoder_name
from lewm_ros.control import node_params as P
from lewm_ros.control.action_stream import ActionStream
from lewm_ros.control.deployment import Deployment
from lewm_ros.control.diagnostics import PlannerStats
from lewm_ros.control.frame_alignment import BoundaryFrameAligner
from lewm_ros.control.param_specs import SPEC_BY_NAME
from lewm_ros.control.planner_setup import build_planner, build_surprise_monitor
from lewm_ros.control.planning_worker import PlanningWorker, PlanReport
from lewm_ros.control.realtime import prepare_for_control_loop
from lewm_ros.control.safety import RESET_ON_RESUME, SafetyFilter
from lewm_ros.control.surprise_monitor import SurpriseReading
from lewm_ros.ros.command_adapters import CommandAdapter
from lewm_ros.ros.log_forwarding import forward_python_logging, stop_forwarding
from lewm_ros.ros.messages import diagnostics_message, planned_actions_message
from lewm_ros.ros.parameter_declarations import declare_all, read_all
from lewm_ros.ros.spinning import run_node

#: A goal published once (latched) before this node subscribed is still delivered.
GOAL_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

GOAL_TIMEOUT_S = 30.0
STOP_ACK_S = 0.5
LOG_THROTTLE_S = 2.0


class PlannerNode(LifecycleNode):
    """See the module docstring. All state below is created at configure, dropped at cleanup."""

    def __init__(self, node_name: str = 'planner_node', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._log_handler = forward_python_logging(self.get_logger())
        self._rejected_overrides = declare_all(self)
        for name, reason in self._rejected_overrides.items():
            self.get_logger().error(f'parameter {name}: override rejected ({reason}); configure will fail')
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._control_group = MutuallyExclusiveCallbackGroup()
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._goal_group = MutuallyExclusiveCallbackGroup()
        self._control_lock = threading.RLock()
        self._image_lock = threading.Lock()
        self._active = False
        self._clear_state()

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            mapping = self._configure()
        except Exception as exc:  # every configure failure is logged; the node stays unconfigured
            self.get_logger().error(f'configure failed: {exc}')
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        source = " (camera and command from the model's recording)" if Deployment.of_model(self._metadata) else ''
        self.get_logger().info(
            f'configured: model {self._params.model.model_dir} ({self._params.model.backend} on '
            f'{self._params.model.device}), planner mode {self._planner.config.mode}, action_dim '
            f'{self._metadata.action_dim}, frameskip {self._metadata.frameskip}, image {self._metadata.image_size} '
            f'px, decoder {decoder_name()}, command {mapping.command_type} {list(mapping.fields)}, control '
            f'{self._params.control.control_rate_hz} Hz{source}')
        return TransitionCallbackReturn.SUCCESS

    def _configure(self):
        """Parameters, model, planner, goal, interfaces, planner thread; returns the command mapping.
        Raises with the cause; _teardown() undoes whatever was made."""
        if self._rejected_overrides:
            raise ValueError('; '.join(f'parameter {name}: {reason}'
                                       for name, reason in self._rejected_overrides.items()))
        self._params = P.from_values(read_all(self))
        self._planner = build_planner(self._params)
        self._metadata = self._planner.metadata
        self._params = self._params.with_model_defaults(self._metadata)
        mapping, safety_config = self._params.resolve(self._metadata)
        self._camera = CameraPipeline(self._metadata.image_size, self._params.camera.crop)
        if self._params.control.goal_image_path:
            self._planner.set_goal(self._goal_from_file(self._params.control.goal_image_path))
        self._adapter = CommandAdapter(mapping)
        self._safety = SafetyFilter(safety_config)
        self._stream = ActionStream(self._metadata.frameskip, self._metadata.action_dim)
        self._surprise = build_surprise_monitor(self._params, self._planner)
        self._worker = PlanningWorker(self._planner, self._stream, self._params.planner.receding_blocks,
                                      self._now, self._on_plan, self._surprise, self._on_surprise)
        stream = self._stream
        self._aligner = BoundaryFrameAligner(self._worker.submit_boundary, lambda: stream.epoch,
                                             self._params.control.period_s,
                                             wait_ticks=self._params.control.boundary_frame_wait)
        self._create_interfaces()
        prepare_for_control_loop()
        self._worker.start()
        return mapping

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers before the first tick
        with self._control_lock:
            self._stream.reset()
            self._safety.stop()
            self._safety.set_enabled(self._params.control.start_enabled)
            self._control_timer = self.create_timer(self._params.control.period_s, self._on_control,
                                                    callback_group=self._control_group)
            self._active = True
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halt()  # the zero command goes out before the publishers fall silent
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    on_error = on_shutdown  # an error transition also stops the robot and tears down

    def destroy_node(self) -> None:
        """Stop commanding (zero command, planner thread), then drop the node."""
        self.release()
        stop_forwarding(self._log_handler)
        super().destroy_node()

    def publish_stop(self) -> None:
        """Publish one zero command now (deactivate, shutdown, SIGINT), if configured, and wait
        (at most STOP_ACK_S) until the subscribers acknowledge it: a reliable sample lost on the
        network is resent before the publisher goes."""
        with self._control_lock:
            if self._cmd_pub is not None and self.context.ok():
                self._cmd_pub.publish(self._adapter.build(self._safety.stop(), self.get_clock().now()))
                self._cmd_pub.wait_for_all_acked(Duration(seconds=STOP_ACK_S))

    def release(self) -> None:
        """Stop commanding (one zero command), stop the planner thread, drop every interface."""
        self._halt()
        self._teardown()

    # ---------------------------------------------------------------- state
    def _clear_state(self) -> None:
        self._params: P.NodeParams | None = None
        self._planner = self._metadata = self._camera = self._adapter = self._safety = None
        self._stream = self._worker = self._surprise = self._aligner = None
        self._cmd_pub = self._control_timer = None
        self._entities: list = []
        self._latest: tuple[np.ndarray, float] | None = None
        self.stats = PlannerStats()

    def _halt(self) -> None:
        with self._control_lock:
            self._active = False
            if self._control_timer is not None:
                self.destroy_timer(self._control_timer)
                self._control_timer = None
            if self._stream is not None:
                self._stream.reset()
        self.publish_stop()

    def _teardown(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        with self._control_lock:  # a diagnostics callback in flight finishes before its publisher goes
            for entity in self._entities:
                destroy = {'pub': self.destroy_publisher, 'lifecycle_pub': self.destroy_lifecycle_publisher,
                           'sub': self.destroy_subscription, 'srv': self.destroy_service,
                           'timer': self.destroy_timer}[entity[0]]
                destroy(entity[1])
            self._clear_state()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _goal_from_file(self, path: str) -> np.ndarray:
        try:
            return self._camera.from_file(path)
        except ImageDecodeError as exc:
            raise ValueError(f'goal_image_path: {exc}') from None

    def _create_interfaces(self) -> None:
        """Topics, services and the diagnostics timer. Outputs are lifecycle publishers (silent while
        inactive) except /diagnostics, which also reports an inactive node. A compressed camera is
        read from ``image/compressed`` (image_transport's naming for the base topic ``image``)."""
        raw = self._params.camera.image_type == 'raw'
        keep = self._keep
        self._cmd_pub = keep('lifecycle_pub', self.create_lifecycle_publisher(self._adapter.msg_type, 'cmd', 10))
        self._cost_pub = keep('lifecycle_pub', self.create_lifecycle_publisher(Float32, '~/plan_cost', 10))
        self._actions_pub = keep('lifecycle_pub',
                                 self.create_lifecycle_publisher(Float64MultiArray, '~/planned_actions', 10))
        self._surprise_pub = keep('lifecycle_pub', self.create_lifecycle_publisher(Float32, '~/surprise', 10))
        self._diag_pub = keep('pub', self.create_publisher(DiagnosticArray, '/diagnostics', 10))
        keep('sub', self.create_subscription(Image if raw else CompressedImage, 'image' if raw else 'image/compressed',
                                             self._on_image, qos_profile_sensor_data, callback_group=self._input_group))
        keep('sub', self.create_subscription(Image, '~/goal_image', self._on_goal_image, GOAL_QOS,
                                             callback_group=self._goal_group))
        keep('sub', self.create_subscription(Bool, '~/enable', self._on_enable, 10, callback_group=self._input_group))
        keep('sub', self.create_subscription(Bool, '~/estop', self._on_estop, 10, callback_group=self._input_group))
        keep('srv', self.create_service(Trigger, '~/set_goal_from_camera', self._on_goal_from_camera,
                                        callback_group=self._goal_group))
        keep('srv', self.create_service(Trigger, '~/reset_estop', self._on_reset_estop,
                                        callback_group=self._input_group))
        keep('timer', self.create_timer(1.0 / self._params.control.diagnostics_rate_hz, self._on_diagnostics,
                                        callback_group=self._input_group))

    def _keep(self, kind: str, entity):
        """Remember an entity for _teardown (kind: lifecycle_pub | pub | sub | srv | timer)."""
        self._entities.append((kind, entity))
        return entity

    # ---------------------------------------------------------------- inputs
    # Input callbacks take local references: a cleanup may drop the components while one runs.
    def _on_image(self, msg) -> None:
        camera, aligner = self._camera, self._aligner
        if camera is None or aligner is None:
            return
        self.stats.image_received()
        try:
            image = camera.from_message(msg)
        except ImageDecodeError as exc:
            self.stats.image_dropped(str(exc))
            self.get_logger().warning(f'dropping camera image: {exc}', throttle_duration_sec=LOG_THROTTLE_S)
            return
        received = self._now()
        with self._image_lock:
            self._latest = (image, received)
        aligner.add_frame(image, received, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)

    def _on_enable(self, msg: Bool) -> None:
        safety = self._safety
        if safety is not None:
            safety.set_enabled(msg.data)

    def _on_estop(self, msg: Bool) -> None:
        safety = self._safety
        if msg.data and safety is not None:
            safety.set_estop(True)
            self.get_logger().warning('e-stop received: commanding zero until ~/reset_estop')

    def _on_reset_estop(self, request, response):
        safety = self._safety
        if safety is None:
            response.success, response.message = False, 'not configured'
            return response
        was = safety.estopped
        safety.reset_estop()
        response.success, response.message = True, 'e-stop released' if was else 'e-stop was not active'
        self.get_logger().info(response.message)
        return response

    def _on_goal_from_camera(self, request, response):
        worker = self._worker
        with self._image_lock:
            latest = self._latest
        if latest is None or worker is None:
            response.success, response.message = False, 'no camera image received yet'
            return response
        error = worker.submit_goal(latest[0]).wait(GOAL_TIMEOUT_S)
        response.success = not error
        response.message = error or f'goal set from the camera frame received at {latest[1]:.3f} s'
        (self.get_logger().error if error else self.get_logger().info)(f'~/set_goal_from_camera: {response.message}')
        return response

    def _on_goal_image(self, msg: Image) -> None:
        camera, worker = self._camera, self._worker
        if camera is None or worker is None:
            return
        try:
            image = camera.from_message(msg)
        except ImageDecodeError as exc:
            self.get_logger().warning(f'dropping goal image: {exc}')
            return
        error = worker.submit_goal(image).wait(GOAL_TIMEOUT_S)
        if error:
            self.get_logger().error(f'goal image rejected: {error}')
        else:
            self.get_logger().info('goal set from ~/goal_image')

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        changes = {p.name: p.value if isinstance(p.value, (bool, int, float, str)) else list(p.value)
                   for p in parameters if p.name in SPEC_BY_NAME}
        if self._params is None or not changes:  # unconfigured: values are read at configure
            for name in changes:  # a valid value replaces an override rejected at declaration
                self._rejected_overrides.pop(name, None)
            return SetParametersResult(successful=True)
        try:
            updated = P.check_change(self._params, changes, self._metadata)
            goal = None
            if 'goal_image_path' in changes and changes['goal_image_path'] != self._params.control.goal_image_path \
                    and changes['goal_image_path']:
                goal = self._goal_from_file(changes['goal_image_path'])
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._control_lock:
            self._params = updated
            self._safety.set_config(updated.safety_config(self._metadata))
            self._adapter = CommandAdapter(updated.command_mapping(self._metadata))
            if self._surprise is not None:
                self._surprise.set_policy(updated.surprise)
        self._worker.set_receding_blocks(updated.planner.receding_blocks)
        if goal is not None:
            self._worker.submit_goal(goal)
        self.get_logger().info(f'parameters changed: {changes}')
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- control loop
    def _on_control(self) -> None:
        with self._control_lock:
            if not self._active:
                return
            now = self._now()
            with self._image_lock:
                latest = self._latest
            action, plan_stamp = self._stream.current_action()
            out = self._safety.filter(action, now, None if latest is None else latest[1], plan_stamp,
                                      self._params.control.period_s)
            command = out.command
            if out.resumed:
                self._stream.reset()  # new epoch: the planner resets its history at the next boundary
                command = self._safety.stop()
                self.get_logger().info('resuming after a stop: planner history reset')
            boundary = self._stream.boundary_due()
            self._aligner.on_tick(now, boundary if out.state not in RESET_ON_RESUME else None)
            self._cmd_pub.publish(self._adapter.build(command, self.get_clock().now()))
            self._stream.record(command)
            self.stats.control_rate.tick(now)

    def _on_plan(self, report: PlanReport) -> None:
        self.stats.plan_finished(report.latency_s, report.cost, self._now(), report.disagreement)
        self._cost_pub.publish(Float32(data=report.cost))
        if report.installed:
            self._actions_pub.publish(planned_actions_message(report.raw_actions))

    def _on_surprise(self, reading: SurpriseReading) -> None:
        """Planner thread: publish the level; an alarm under action 'stop' latches the stop."""
        self._surprise_pub.publish(Float32(data=float('nan') if reading.level is None else reading.level))
        if reading.alarm and self._surprise.policy.action == 'stop' and not self._safety.estopped:
            self._safety.set_surprise_stop()
            self.get_logger().error(f'surprise stop: {self._surprise.status().reason}; commanding zero until '
                                    '~/reset_estop')
        elif reading.alarm:
            self.get_logger().warning(f'surprise: {self._surprise.status().reason}',
                                      throttle_duration_sec=LOG_THROTTLE_S)

    def _on_diagnostics(self) -> None:
        with self._control_lock:
            if self._params is None:  # torn down (cleanup/shutdown) while this call waited
                return
            with self._image_lock:
                latest = self._latest
            report = self.stats.report(self._safety.state if self._active else None,
                                        None if latest is None else self._now() - latest[1],
                                        self._params.model.backend, self._params.model.model_dir,
                                        self._planner.config.mode, self._worker.errors,
                                        None if self._surprise is None else self._surprise.status(),
                                        self._aligner.late_frames, self._aligner.waited)
            self._diag_pub.publish(diagnostics_message(report, f'{self.get_name()}: LeWM planner',
                                                       Path(self._params.model.model_dir).name,
                                                       self.get_clock().now()))


def main(args: list[str] | None = None) -> None:
    """Console script: spin the node; SIGINT/SIGTERM publish a zero command before shutting down."""
    run_node(PlannerNode, args, num_threads=4)


if __name__ == '__main__':
    main()
