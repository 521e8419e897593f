"""soak: simulation in the loop for minutes; command rate, gaps, memory growth.

Starts ``lewm-run --params config/sim.yaml --with-sim -p model_dir:=<model>`` (sim_node and
planner_node in one process, as a pip-only install runs them) and watches it from a separate
observer node over real topics: every command on ``/cmd_vel`` (Twist or TwistStamped, whichever
planner_node publishes; arrival time on this machine's
monotonic clock), /diagnostics, and the runner's resident memory (/proc, once a second). A new
episode (``/sim_node/reset``) starts every ``--episode-s`` seconds so the planner keeps planning
towards new goals. At the end the runner gets SIGINT and must stop cleanly with a zero command.
Rate and gaps cover every command from the first one to the end of the soak; memory growth is
measured from the first command (and from 60 s after it) to the end.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from lewm_training.reliability.common import REPO, SHIPPED_MODEL, CheckResult, interval_stats, rss_mb, wait_for


def soak_figures(stamps: np.ndarray, rss: list[tuple[float, float]], start_s: float, rate_hz: float) -> dict:
    """stamps: (n,) command arrival times [s]; rss: (time [s], MiB) samples; start_s: first command
    [s]. -> rate [Hz], gap p50/p99/max [s], RSS at the first command / 60 s later / end [MiB], growth [%]."""
    timing = interval_stats(stamps)
    at = lambda t: next((m for s, m in rss if s >= t), rss[-1][1])  # noqa: E731 - first sample at/after t
    first, later, last = at(start_s), at(start_s + 60.0), rss[-1][1]
    return {'commands': int(len(stamps)), 'rate_hz': round(timing['rate_hz'], 3),
            'rate_error_pct': round(100.0 * (timing['rate_hz'] / rate_hz - 1.0), 3),
            'gap_p50_s': round(timing['gap_p50_s'], 4), 'gap_p99_s': round(timing['gap_p99_s'], 4),
            'gap_max_s': round(timing['gap_max_s'], 4), 'rss_first_mb': round(first, 1),
            'rss_after_60s_mb': round(later, 1), 'rss_end_mb': round(last, 1),
            'rss_max_mb': round(max(m for _, m in rss), 1), 'rss_growth_pct': round(100.0 * (last / first - 1.0), 2),
            'rss_growth_after_60s_pct': round(100.0 * (last / later - 1.0), 2)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--minutes', type=float, default=5.0, help='soak duration D from the first command [min]')
    parser.add_argument('--episode-s', type=float, default=20.0, help='new episode (goal) every this many s')
    parser.add_argument('--params', type=Path, default=REPO / 'config' / 'sim.yaml')
    parser.add_argument('--model-dir', type=Path, default=SHIPPED_MODEL)
    parser.add_argument('--cmd-topic', default='/cmd_vel', help='where the runner publishes commands (Twist[Stamped])')
    parser.add_argument('--control-rate', type=float, default=10.0, help='the expected command rate [Hz]')
    parser.add_argument('--max-rss-growth', type=float, default=10.0, help='largest accepted RSS growth [%%]')
    parser.add_argument('--domain-id', type=int, default=None, help='ROS domain (default: ROS_DOMAIN_ID)')


def run(args: argparse.Namespace) -> CheckResult:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Twist, TwistStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_srvs.srv import Trigger

    from lewm_ros.model.metadata import ModelMetadata
    from lewm_ros.ros.spinning import spin

    result = CheckResult('soak')
    metadata = ModelMetadata.load(args.model_dir)
    low, high = np.asarray(metadata.action_low), np.asarray(metadata.action_high)
    env = dict(os.environ)
    if args.domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(args.domain_id)
    runner = Path(sys.executable).parent / 'lewm-run'
    command = [str(runner) if runner.exists() else 'lewm-run', '--params', str(args.params), '--with-sim',
               '-p', f'model_dir:={args.model_dir}']
    commands: list[tuple[float, np.ndarray]] = []
    diagnostics: dict[str, str] = {}

    def on_cmd(msg) -> None:  # config/sim.yaml maps the actions to linear.x, linear.y
        twist = msg.twist if isinstance(msg, TwistStamped) else msg
        commands.append((time.monotonic(), np.array([twist.linear.x, twist.linear.y])))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith('planner_node:'):
                diagnostics.update({kv.key: kv.value for kv in status.values})

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain_id)
    observer = rclpy.create_node(f'rel_soak_observer_{os.getpid()}', context=context)
    observer.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    reset = observer.create_client(Trigger, '/sim_node/reset')
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(observer)
    threading.Thread(target=spin, args=(executor,), daemon=True).start()
    rss: list[tuple[float, float]] = []
    resets = 0
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            types = {'geometry_msgs/msg/Twist': Twist, 'geometry_msgs/msg/TwistStamped': TwistStamped}
            found: list = []
            wait_for(lambda: proc.poll() is not None or bool(found.extend(  # the command type planner_node publishes
                t for name, names in observer.get_topic_names_and_types() if name == args.cmd_topic
                for t in names if t in types) or found), 180.0, poll_s=0.2)
            if found:
                observer.create_subscription(types[found[0]], args.cmd_topic, on_cmd,
                                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
            started = wait_for(lambda: bool(commands) or proc.poll() is not None, 180.0, poll_s=0.1) and commands
            result.require(bool(started), 'no command within 180 s of starting the runner')
            start = commands[0][0] if started else time.monotonic()
            end, next_reset = start + 60.0 * args.minutes, start + args.episode_s
            while started and time.monotonic() < end and proc.poll() is None:
                now = time.monotonic()
                rss.append((now, rss_mb(proc.pid)))
                if now >= next_reset and reset.service_is_ready():
                    reset.call_async(Trigger.Request())
                    resets, next_reset = resets + 1, next_reset + args.episode_s
                time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
            alive = proc.poll() is None
            window = [(t, c) for t, c in commands if start <= t <= end]
            last_diagnostics = dict(diagnostics)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            executor.shutdown()
            observer.destroy_node()
            rclpy.try_shutdown(context=context)
        log.seek(0)
        tail = log.read().decode(errors='replace').splitlines()[-5:]
    if not started or not rss:
        result.figures = {'runner_log_tail': tail}
        return result
    out = sum(1 for _, c in window
              if not (np.all(np.isfinite(c)) and np.all(c >= low - 1e-9) and np.all(c <= high + 1e-9)))
    figures = soak_figures(np.array([t for t, _ in window]), rss, start, args.control_rate)
    time.sleep(0.5)
    figures.update({'minutes': args.minutes, 'episodes_started': resets + 1, 'out_of_limits': out,
                    'runner_alive_to_the_end': alive, 'runner_exit_code': code,
                    'last_command_zero': bool(commands) and not commands[-1][1].any(),
                    'plan_latency_p50_ms': last_diagnostics.get('plan_latency_p50_ms'),
                    'plan_latency_p99_ms': last_diagnostics.get('plan_latency_p99_ms'),
                    'planner_errors': last_diagnostics.get('planner_errors'), 'command': ' '.join(command[1:])})
    result.figures = figures
    result.require(alive, f'the runner died during the soak: {tail}')
    result.require(abs(figures['rate_error_pct']) < 1.0, f'command rate {figures["rate_hz"]} Hz')
    result.require(figures['gap_p99_s'] < 2.0 / args.control_rate, f'gap p99 {figures["gap_p99_s"]} s')
    result.require(out == 0, f'{out} commands out of limits or non-finite')
    result.require(figures['rss_growth_pct'] < args.max_rss_growth, f'RSS grew {figures["rss_growth_pct"]} %')
    result.require(code == 0 and figures['last_command_zero'], f'unclean stop (exit {code}, last command not zero)')
    result.summary = [
        f'{args.minutes:g} min sim-in-the-loop ({figures["episodes_started"]} episodes): '
        f'{figures["commands"]} commands, '
        f'{figures["rate_hz"]:.3f} Hz, gap p50 {figures["gap_p50_s"]} s / p99 {figures["gap_p99_s"]} s / '
        f'max {figures["gap_max_s"]} s, {out} out of limits',
        f'runner RSS {figures["rss_first_mb"]} -> {figures["rss_end_mb"]} MiB ({figures["rss_growth_pct"]:+.2f} %; '
        f'{figures["rss_growth_after_60s_pct"]:+.2f} % after the first minute), plan latency p50 '
        f'{figures["plan_latency_p50_ms"]} ms / p99 {figures["plan_latency_p99_ms"]} ms, '
        f'stop: exit {code}, last command zero {figures["last_command_zero"]}']
    return result
