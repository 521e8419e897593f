"""Import a robot's rosbag2 recordings (MCAP or sqlite3) into an episode dataset; no ROS needed.

    lewm-train import-bag rec/ --camera-topic /front/image_raw/compressed --command-topic /cmd_vel \\
        --out data/robot [--rate 10] [--max-gap 0.5] [--marker-topic /episode] [--min-steps 20]

Camera: sensor_msgs/Image (every encoding planner_node decodes) or CompressedImage, cropped and
resized by planner_node's own camera room. Commands: Twist, TwistStamped, Float64MultiArray or
JointTrajectory (first point), turned into raw actions by the inverse of planner_node's command
mapping (``--command-fields``, ``--command-scales``). Alignment on a fixed control period (see
:mod:`lewm_training.bag_alignment`); episodes also end at bag boundaries. The dataset's manifest
carries a :class:`~lewm_ros.control.deployment.Deployment` record (topics, message types, command
mapping, control rate, crop, image size) that ``lewm-train fit`` copies into the model.

Bags are read once without their pixels before anything is written: a missing topic, a wrong
message type, an empty, truncated or unreadable bag stops the import with its reason and no
dataset. Shards are written atomically; re-running the same command after an interrupt resumes.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from lewm_ros.camera import CameraPipeline, CropConfig
from lewm_ros.validation import check_int, check_positive, require
from lewm_training.bag_alignment import AlignConfig, align, median_period_ns, rate_to_period_ns
from lewm_training.bag_commands import COMMAND_MSGTYPES, CommandInverse, action_width, default_fields
from lewm_training.bag_shards import STATS_ATTR, FrameSource, PlannedEpisode, write_shard
from lewm_training.bag_source import CAMERA_MSGTYPES, Bag, BagError, BagScan, expand_bag_paths
from lewm_ros.control.deployment import Deployment
from lewm_training.dataset_format import MANIFEST_NAME, SHARD_GLOB, DatasetInfo, atomic_write_bytes, shard_name
from lewm_training.writer_cli import run_writer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportConfig:
    """bags: bag directories (or folders of them); camera_topic / command_topic: topics to read;
    marker_topic: a message on it starts a new episode ('' = none); rate: control rate [Hz]
    (None = the median command period); max_gap: longest silence of the camera or the commands
    inside an episode [s]; min_steps / max_steps: shortest kept / longest episode [raw actions];
    crop / image_size: planner_node's crop_box, crop_scale and the model input side [px];
    command_fields / command_scales: planner_node's parameters (None = its defaults: Twist
    linear.x, angular.z or the first trajectory's joints; scales 1); episodes_per_shard: episodes
    per shard file; task: the dataset's task name."""
    bags: tuple[Path, ...]
    camera_topic: str
    command_topic: str
    marker_topic: str = ''
    rate: float | None = None
    max_gap: float = 0.5
    min_steps: int = 20
    max_steps: int = 500
    crop: CropConfig = field(default_factory=CropConfig)
    image_size: int = 64
    command_fields: tuple[str, ...] | None = None
    command_scales: tuple[float, ...] | None = None
    episodes_per_shard: int = 20
    task: str = 'recorded'

    def __post_init__(self) -> None:
        require(len(self.bags) >= 1, 'bags', list(self.bags), 'at least one bag')
        for name in ('camera_topic', 'command_topic'):
            require(bool(getattr(self, name)), name, getattr(self, name), 'a topic name')
        if self.rate is not None:
            check_positive('rate', self.rate)
        check_positive('max_gap', self.max_gap)
        check_int('min_steps', self.min_steps, 1)
        check_int('max_steps', self.max_steps, self.min_steps)
        check_int('image_size', self.image_size, 8, 1024)
        check_int('episodes_per_shard', self.episodes_per_shard, 1)
        require(bool(self.task), 'task', self.task, 'a non-empty name')


@dataclass(frozen=True)
class ImportReport:
    """episodes / steps: in the dataset; duration_s: steps x dt; camera_messages: in the bags;
    frames_used: camera frames in the dataset; undecodable: reason -> frames; dropped_short:
    episodes shorter than min_steps; truncated: episodes cut by undecodable frames;
    action_min / action_max: (A,) [raw units]; bad_commands: reason -> messages;
    clock_jumps: topic -> header stamps going back; elapsed_s / frames_per_s: this run's writing."""
    episodes: int
    steps: int
    duration_s: float
    camera_messages: int
    frames_used: int
    undecodable: dict
    dropped_short: int
    truncated: int
    action_min: tuple[float, ...]
    action_max: tuple[float, ...]
    bad_commands: dict
    clock_jumps: dict
    elapsed_s: float
    frames_per_s: float

    def lines(self) -> list[str]:
        """The summary as printed by the CLI."""
        dropped = self.camera_messages - self.frames_used
        ranges = ', '.join(f'[{lo:.3g}, {hi:.3g}]' for lo, hi in zip(self.action_min, self.action_max))
        return [f'episodes: {self.episodes} ({self.steps} steps, {self.duration_s:.1f} s of driving); '
                f'{self.dropped_short} dropped as shorter than --min-steps, {self.truncated} cut by undecodable frames',
                f'camera frames: {self.camera_messages} in the bags, {self.frames_used} used, {dropped} dropped '
                f'(undecodable: {sum(self.undecodable.values())} {self.undecodable or ""})',
                f'action ranges per dimension [raw units]: {ranges}',
                *([f'command messages skipped: {self.bad_commands}'] if self.bad_commands else []),
                *([f'header stamps going back (episodes split there): {self.clock_jumps}'] if self.clock_jumps else []),
                f'wrote {self.frames_per_s:.0f} frames/s ({self.elapsed_s:.1f} s)']


def _open_all(config: ImportConfig, paths: list[Path]) -> list[Bag]:
    bags: list[Bag] = []
    try:
        for path in paths:
            bags.append(Bag(path, config.camera_topic, config.command_topic, config.marker_topic))
            for kind, name in (('camera', 'camera_msgtype'), ('command', 'command_msgtype')):
                if getattr(bags[-1], name) != getattr(bags[0], name):
                    raise BagError(f'{path}: {kind} topic has type {getattr(bags[-1], name)}, {paths[0]} has '
                                   f'{getattr(bags[0], name)}; import them separately')
    except BaseException:
        for bag in bags:
            bag.close()
        raise
    return bags


def _inverse(config: ImportConfig, bag: Bag) -> CommandInverse:
    command_type = COMMAND_MSGTYPES[bag.command_msgtype]
    first = bag.first_command()
    if command_type == 'float64_multi_array' and config.command_fields:
        raise BagError(f'--command-fields {list(config.command_fields)}: Float64MultiArray commands have no fields '
                       '(data[i] is action dim i)')
    fields = tuple(config.command_fields) if config.command_fields else default_fields(command_type, first)
    dims = action_width(command_type, fields, first)
    scales = tuple(config.command_scales) if config.command_scales else (1.0,) * dims
    if len(scales) != dims:
        raise BagError(f'--command-scales has {len(scales)} values; the commands have {dims} action dims')
    try:
        return CommandInverse(command_type, fields, scales)
    except ValueError as exc:
        raise BagError(str(exc)) from None


def import_bags(config: ImportConfig, out: Path, progress: bool = True, on_shard=None) -> ImportReport:
    """Import (or resume importing) ``config.bags`` into the dataset directory ``out``.
    on_shard(name): called after each shard is written. BagError for unusable input."""
    camera = CameraPipeline(config.image_size, config.crop)
    bags = _open_all(config, expand_bag_paths(list(config.bags)))
    try:
        inverse = _inverse(config, bags[0])
        total = sum(c.msgcount for bag in bags for c in bag.camera)
        with tqdm(total=total, unit='frame', desc='scan', disable=not progress, smoothing=0.1) as bar:
            scans = [bag.scan(inverse, bar.update) for bag in bags]
        period = _period(config, scans)
        align_config = AlignConfig(period, int(round(config.max_gap * 1e9)), config.min_steps, config.max_steps)
        planned, short = [], 0
        for b, scan in enumerate(scans):
            result = align(scan.frame_times, scan.command_times, scan.command_actions, align_config, scan.breaks)
            planned += [PlannedEpisode(len(planned) + i, b, plan) for i, plan in enumerate(result.episodes)]
            short += result.dropped_short
        if not planned:
            raise BagError(f'no episode of >= {config.min_steps} steps at {1e9 / period:.3g} Hz in {len(bags)} bag(s) '
                           f'({short} shorter ones dropped); check --max-gap ({config.max_gap} s), --rate, '
                           '--min-steps and the topics')
        info = _dataset_info(config, bags, scans, planned, inverse, period)
        todo = _prepare_output(out, info)
        sources = [FrameSource(bag, scan.frame_times, camera, align_config.max_gap_ns)
                   for bag, scan in zip(bags, scans)]
        ticks = sum(len(p.plan.ticks) for k in todo for p in planned[k * config.episodes_per_shard:]
                    [:config.episodes_per_shard])
        started = time.perf_counter()
        with tqdm(total=ticks, unit='frame', desc='import', disable=not progress, smoothing=0.1) as bar:
            for k in todo:
                chunk = planned[k * config.episodes_per_shard:(k + 1) * config.episodes_per_shard]
                write_shard(out, shard_name(k), info, chunk, sources, config.min_steps, bar.update)
                if on_shard is not None:
                    on_shard(shard_name(k))
        elapsed = time.perf_counter() - started
    finally:
        for bag in bags:
            bag.close()
    return _report(out, info, scans, short, elapsed, ticks)


def _period(config: ImportConfig, scans: list[BagScan]) -> int:
    if config.rate is not None:
        period = rate_to_period_ns(config.rate)
    else:
        period = median_period_ns([scan.command_times for scan in scans])
        if period is None:
            raise BagError('cannot infer the control rate: fewer than two command messages per bag; give --rate')
        log.info('control rate %.4g Hz (the median command period)', 1e9 / period)
    if config.max_gap * 1e9 < period:
        raise BagError(f'--max-gap {config.max_gap} s is shorter than the control period {period / 1e9:.4g} s: '
                       'every tick would end an episode')
    return period


def _dataset_info(config: ImportConfig, bags: list[Bag], scans: list[BagScan], planned: list[PlannedEpisode],
                  inverse: CommandInverse, period: int) -> DatasetInfo:
    acted = np.concatenate([p.plan.actions[:-1] for p in planned])
    deployment = Deployment(
        camera_topic=config.camera_topic, image_type=CAMERA_MSGTYPES[bags[0].camera_msgtype],
        command_topic=config.command_topic, command_type=inverse.command_type, command_fields=inverse.fields,
        command_scales=inverse.scales, control_rate=1e9 / period, crop_box=config.crop.box,
        crop_scale=config.crop.scale, image_size=config.image_size)
    source = {'bags': [bag.identity() for bag in bags], 'marker_topic': config.marker_topic,
              'period_ns': period, 'max_gap_s': config.max_gap, 'min_steps': config.min_steps,
              'max_steps': config.max_steps, 'camera_messages': int(sum(len(s.frame_times) for s in scans)),
              'command_messages': int(sum(len(s.command_times) for s in scans))}
    return DatasetInfo(task=config.task, image_size=config.image_size, dt=period / 1e9,
                       action_low=acted.min(axis=0), action_high=acted.max(axis=0), action_dim=inverse.action_dim,
                       state_dim=0, episodes=len(planned), steps=max(p.plan.steps for p in planned),
                       episodes_per_shard=config.episodes_per_shard, deployment=deployment, source=source)


def _prepare_output(out: Path, info: DatasetInfo) -> list[int]:
    """Create or check ``out``; the shard indices still to write. BagError when ``out`` holds
    another dataset (other bags or settings)."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(json.dumps(info.to_manifest()))  # JSON types, as read back
    path = out / MANIFEST_NAME
    if path.exists():
        difference = _first_difference(json.loads(path.read_text()), manifest)
        if difference:
            key, theirs, mine = difference
            raise BagError(f'{out} holds a dataset made with {key}={theirs!r}; this import has {key}={mine!r}; '
                           'use another --out or the original bags and settings')
    else:
        atomic_write_bytes(path, json.dumps(manifest, indent=2).encode())
    for stale in out.glob('.*.tmp'):
        log.info('removing incomplete file %s', stale)
        stale.unlink(missing_ok=True)
    todo = [k for k in range(info.num_shards) if not (out / shard_name(k)).exists()]
    if len(todo) < info.num_shards:
        log.info('%s: resuming, %d of %d shards present', out, info.num_shards - len(todo), info.num_shards)
    return todo


def _first_difference(a, b, prefix: str = '') -> tuple[str, object, object] | None:
    """(dotted key, a's value, b's value) of the first difference of two JSON values, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f'{prefix}{key}.')
            if found:
                return found
        return None
    return None if a == b else (prefix.rstrip('.'), a, b)


def _report(out: Path, info: DatasetInfo, scans: list[BagScan], short: int, elapsed: float,
            ticks: int) -> ImportReport:
    """The summary, read back from every shard (resumed imports included)."""
    actions, steps, episodes, used, truncated, undecodable = [], 0, 0, 0, 0, {}
    for path in sorted(out.glob(SHARD_GLOB)):
        with h5py.File(path, 'r') as f:
            actions.append(f['actions'][:])
            episodes += len(f['episode_ids'])
            stats = json.loads(f.attrs[STATS_ATTR])
        used += stats['camera_frames_used']
        truncated += stats['truncated_episodes']
        short += stats['dropped_undecodable_episodes']
        for reason, count in stats['undecodable'].items():
            undecodable[reason] = undecodable.get(reason, 0) + count
    acted = np.concatenate(actions)
    acted = acted[~np.isnan(acted).any(axis=1)]
    steps = len(acted)
    bad: dict[str, int] = {}
    jumps: dict[str, int] = {}
    for scan in scans:
        for mine, theirs in ((bad, scan.bad_commands), (jumps, scan.clock_jumps)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count
    return ImportReport(
        episodes=episodes, steps=steps, duration_s=steps * info.dt,
        camera_messages=int(sum(len(s.frame_times) for s in scans)), frames_used=used, undecodable=undecodable,
        dropped_short=short, truncated=truncated,
        action_min=tuple(acted.min(axis=0).tolist()) if steps else (),
        action_max=tuple(acted.max(axis=0).tolist()) if steps else (), bad_commands=bad, clock_jumps=jumps,
        elapsed_s=elapsed, frames_per_s=ticks / elapsed if elapsed > 0 else 0.0)


# ----- CLI ----------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ImportConfig(bags=(Path('.'),), camera_topic='-', command_topic='-')
    parser.add_argument('bags', nargs='+', type=Path, metavar='BAG',
                        help='rosbag2 directories (MCAP or sqlite3), or folders of them (lewm-record splits)')
    parser.add_argument('--camera-topic', required=True, help='sensor_msgs/Image or CompressedImage topic')
    parser.add_argument('--command-topic', required=True,
                        help='Twist, TwistStamped, Float64MultiArray or JointTrajectory topic')
    parser.add_argument('--out', type=Path, required=True, help='dataset directory (created or resumed)')
    parser.add_argument('--rate', type=float, default=None,
                        help='control rate [Hz] (default: 1 / the median command period)')
    parser.add_argument('--max-gap', type=float, default=d.max_gap,
                        help='a camera or command silence longer than this ends an episode [s] (default: %(default)s)')
    parser.add_argument('--marker-topic', default='', help='a message on this topic starts a new episode')
    parser.add_argument('--min-steps', type=int, default=d.min_steps,
                        help='drop shorter episodes [raw actions] (default: %(default)s)')
    parser.add_argument('--max-steps', type=int, default=d.max_steps,
                        help='cut longer episodes into pieces [raw actions] (default: %(default)s)')
    crop = parser.add_mutually_exclusive_group()
    crop.add_argument('--crop-box', type=int, nargs=4, metavar=('X', 'Y', 'W', 'H'),
                      help="planner_node's crop_box [px] (default: centred square)")
    crop.add_argument('--crop-scale', type=float, default=1.0, help="planner_node's crop_scale (default: 1.0)")
    parser.add_argument('--image-size', type=int, default=d.image_size, help='model input side [px] (default: 64)')
    parser.add_argument('--command-fields', nargs='+', default=None,
                        help="planner_node's command_fields (default: linear.x angular.z / the trajectory's joints)")
    parser.add_argument('--command-scales', type=float, nargs='+', default=None,
                        help="planner_node's command_scales: raw action = command / scale (default: 1)")
    parser.add_argument('--episodes-per-shard', type=int, default=d.episodes_per_shard,
                        help='episodes per shard file, the unit of resumption (default: %(default)s)')
    parser.add_argument('--task', default=d.task, help='task name recorded in the dataset (default: %(default)s)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')


def run(args: argparse.Namespace) -> int:
    def write() -> ImportReport:
        crop = CropConfig(box=tuple(args.crop_box or ()), scale=1.0 if args.crop_box else args.crop_scale)
        config = ImportConfig(
            bags=tuple(args.bags), camera_topic=args.camera_topic, command_topic=args.command_topic,
            marker_topic=args.marker_topic, rate=args.rate, max_gap=args.max_gap, min_steps=args.min_steps,
            max_steps=args.max_steps, crop=crop, image_size=args.image_size,
            command_fields=tuple(args.command_fields) if args.command_fields else None,
            command_scales=tuple(args.command_scales) if args.command_scales else None,
            episodes_per_shard=args.episodes_per_shard, task=args.task)
        return import_bags(config, args.out, progress=not args.no_progress)
    return run_writer(write, args.out, log)  # a BagError is a ValueError
