"""fuzz: malformed and random camera messages into a running planner_node.

Phase raw: the node subscribes to sensor_msgs/Image; phase compressed: reconfigured for
CompressedImage. In each phase the fuzzed messages (fuzz_messages) go to the node's camera topic
one at a time, each waited for until the node's image callback has taken it (its own counter),
with a valid camera frame between them at 30 Hz that keeps the robot moving, until the node has
taken ``--count / 2`` of them (a message not taken within 2 s counts as lost in transport).
Holds when the node never crashes (both executors spin, commands keep their rate, it moves again
on valid frames), every command published meanwhile is finite and within [command_low,
command_high], and /diagnostics counts the messages (received, dropped).
"""
from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import numpy as np

from lewm_training.reliability.common import SHIPPED_MODEL, CheckResult, interval_stats, rss_mb, wait_for
from lewm_training.reliability.rig import CAMERA_HZ, Rig, RigConfig, camera_frame, image_message
from lewm_training.reliability.fuzz_messages import CompressedPool, compressed_message, raw_message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--count', type=int, default=10000,
                        help='fuzzed messages the node must take, half raw, half compressed')
    parser.add_argument('--rate', type=float, default=500.0, help='at most this many fuzzed messages per second [Hz]')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--model-dir', type=Path, default=SHIPPED_MODEL)
    parser.add_argument('--domain-id', type=int, default=None, help='ROS domain (default: ROS_DOMAIN_ID)')


def node_received(rig: Rig) -> int:
    """Camera messages planner_node's image callback has taken so far (its own counter)."""
    stats = getattr(rig.node, 'stats', None) or rig.node._stats  # public or private, as the node has it
    return int(stats.images_received)


def _send(rig: Rig, publisher, msg, timeout_s: float = 2.0) -> bool:
    """Publish one message and wait until the node's image callback has taken it."""
    before = node_received(rig)
    publisher.publish(msg)
    return wait_for(lambda: node_received(rig) > before, timeout_s, poll_s=0.0005)


def _phase(rig: Rig, image_type: str, count: int, rate_hz: float, rng: np.random.Generator,
           result: CheckResult) -> dict:
    """One message at a time, each waited for until the node has taken it (or 2 s passed: lost in
    transport), a valid camera frame between them at 30 Hz, until the node has taken `count`."""
    pool = CompressedPool(rng) if image_type == 'compressed' else None
    rig.camera_on.clear()  # the frames come from this loop, in sequence with the fuzz
    publisher = rig.camera_publisher()
    frame = image_message(camera_frame(), compressed=pool is not None)
    kinds: collections.Counter = collections.Counter()
    t0 = last_frame = time.monotonic()
    sent = taken = frames = 0
    while taken < count and sent < 2 * count:
        if time.monotonic() - last_frame >= 1.0 / CAMERA_HZ:
            frames += _send(rig, publisher, frame)
            last_frame = time.monotonic()
        kind, msg = raw_message(rng) if pool is None else compressed_message(rng, pool)
        kinds[kind] += 1
        sent += 1
        taken += _send(rig, publisher, msg)
        delay = t0 + sent / rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if sent % 100 == 0 and not rig.alive():
            break
    rig.camera_on.set()
    time.sleep(1.0)  # the node drains its queue
    diagnostics = rig.fresh_diagnostics()
    t1 = time.monotonic()
    time.sleep(2.0)
    after = interval_stats(np.array([t for t, _ in rig.since(t1)]))
    commands = rig.since(t0)
    moving_again = rig.moving(20.0)
    figures = {
        'sent': sent, 'taken': taken, 'camera_frames': frames,
        'kinds': dict(sorted(kinds.items())),
        'node_received': int(diagnostics.get('images_received', -1)),
        'node_dropped': int(diagnostics.get('images_dropped', -1)),
        'last_drop_reason': diagnostics.get('last_drop_reason', ''),
        'commands': len(commands), 'commands_out_of_limits': rig.out_of_limits(commands),
        'nonzero_commands': sum(1 for _, c in commands if np.abs(c).max() > 1e-9),
        'control_rate_after_hz': round(after['rate_hz'], 3), 'crashes': list(rig.crashes),
        'seconds': round(t1 - t0, 1)}
    period = 1.0 / rig.config.control_rate
    result.require(rig.alive(), f'{image_type}: node crashed ({rig.crashes}) after {sent} messages')
    result.require(taken >= count, f'{image_type}: the node took {taken} of {sent} messages')
    result.require(figures['commands_out_of_limits'] == 0,
                   f"{image_type}: {figures['commands_out_of_limits']} commands out of limits or non-finite")
    result.require(abs(after['rate_hz'] * period - 1.0) < 0.2,
                   f'{image_type}: control rate after the fuzz {after["rate_hz"]:.2f} Hz')
    result.require(moving_again, f'{image_type}: no non-zero command on valid frames after the fuzz')
    result.require(figures['node_dropped'] > 0, f'{image_type}: /diagnostics counted no dropped image')
    return figures


def run(args: argparse.Namespace) -> CheckResult:
    result = CheckResult('fuzz')
    rng = np.random.default_rng(args.seed)
    rss0 = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(RigConfig(model_dir=args.model_dir, domain_id=args.domain_id), Path(tmp))
        try:
            phases = {}
            for image_type, count in (('raw', args.count - args.count // 2), ('compressed', args.count // 2)):
                started = rig.start() if image_type == 'raw' else rig.restart(image_type='compressed')
                result.require(started, f'{image_type}: planner_node did not configure/activate')
                if not started:
                    break
                rig.camera_on.set()
                result.require(rig.moving(30.0), f'{image_type}: robot not moving before the fuzz')
                phases[image_type] = _phase(rig, image_type, count, args.rate, rng, result)
                if not rig.alive():
                    break
        finally:
            rig.close()
    sent = sum(p['sent'] for p in phases.values())
    taken = sum(p['taken'] for p in phases.values())
    received = sum(p['node_received'] for p in phases.values())
    dropped = sum(p['node_dropped'] for p in phases.values())
    commands = sum(p['commands'] for p in phases.values())
    out = sum(p['commands_out_of_limits'] for p in phases.values())
    result.figures = {'fuzzed_messages': sent, 'taken_by_node': taken, 'node_received': received,
                      'node_dropped': dropped, 'commands': commands, 'commands_out_of_limits': out,
                      'crashed': bool(rig.crashes), 'rss_mb_before': round(rss0, 1), 'rss_mb_after': round(rss_mb(), 1),
                      'phases': phases}
    split = ', '.join(f"{k} {p['sent']}" for k, p in phases.items())
    result.summary = [f'{sent} fuzzed camera messages ({split}) between 30 Hz camera frames; the node took {taken}',
                      f'node received {received} images (camera frames included), dropped {dropped} as undecodable',
                      f'{commands} commands published meanwhile, {out} out of limits or non-finite; '
                      f'crash: {"yes: " + "; ".join(rig.crashes) if rig.crashes else "none"}']
    return result
