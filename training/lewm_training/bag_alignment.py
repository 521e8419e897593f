"""Recorded streams -> episodes on a fixed control period (pure numpy, no ROS, no bag reading).

A tick is a time on the control grid. Per tick: the newest camera frame at or before it and the
command in force over most of the step that follows it (the newest command message at or before
the step's middle, tick + period / 2), so commands jittering around the ticks are neither repeated
nor skipped. A stream is *live* from a
message to the next one when they are at most ``max_gap`` apart (never past its last message
before a silence: a stopped stream is not extrapolated); ticks exist only where both streams are
live, so a silence of either stream longer than ``max_gap`` ends an episode. Breaks (marker
messages, clocks jumping back) end one too. Each episode's grid is anchored on its first command
message, so commands sent at the control rate land on ticks. Episodes longer than ``max_steps``
are cut into pieces that share their boundary frame (no transition is lost); pieces shorter than
``min_steps`` are dropped and counted.

Times are integer nanoseconds (the bag's clock).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lewm_ros.validation import check_int, check_positive


@dataclass(frozen=True)
class AlignConfig:
    """period_ns: control period [ns] (> 0); max_gap_ns: longest silence of a stream inside an
    episode [ns] (>= period_ns is sensible, > 0 required); min_steps: shortest kept episode
    [raw actions] (>= 1); max_steps: longest episode piece [raw actions] (>= min_steps)."""
    period_ns: int
    max_gap_ns: int
    min_steps: int = 20
    max_steps: int = 500

    def __post_init__(self) -> None:
        check_int('period_ns', self.period_ns, 1)
        check_int('max_gap_ns', self.max_gap_ns, 1)
        check_int('min_steps', self.min_steps, 1)
        check_int('max_steps', self.max_steps, self.min_steps)


@dataclass(frozen=True)
class EpisodePlan:
    """One episode of n ticks (n - 1 raw actions).

    ticks: (n,) int64 tick times [ns]; frames: (n,) int64 index into the stream's frame times of
    the newest frame at or before each tick; actions: (n, A) float64 [raw units] in force over
    each tick's step (the last one is not part of the episode: the format stores NaN there)."""
    ticks: np.ndarray
    frames: np.ndarray
    actions: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.ticks) - 1


@dataclass(frozen=True)
class AlignResult:
    """episodes: the kept episodes in time order; dropped_short: episodes (pieces) shorter than
    min_steps; dropped_short_ticks: their ticks."""
    episodes: tuple[EpisodePlan, ...]
    dropped_short: int
    dropped_short_ticks: int


def live_intervals(times: np.ndarray, max_gap_ns: int) -> np.ndarray:
    """(K, 2) int64 closed intervals [first, last] of the runs of a stream's sorted message
    ``times`` (M,) [ns] whose consecutive messages are at most max_gap_ns apart."""
    times = np.asarray(times, np.int64)
    if times.size == 0:
        return np.zeros((0, 2), np.int64)
    cuts = np.flatnonzero(np.diff(times) > max_gap_ns)
    firsts = times[np.concatenate([[0], cuts + 1])]
    lasts = times[np.concatenate([cuts, [times.size - 1]])]
    return np.stack([firsts, lasts], axis=1)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two sorted lists of disjoint closed intervals (K, 2) -> (L, 2)."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.asarray(out, np.int64).reshape(-1, 2)


def split_at(intervals: np.ndarray, breaks: np.ndarray) -> list[tuple[int, int]]:
    """Cut closed intervals at break times: an interval [lo, hi] containing b becomes
    [lo, b - 1] and [b, hi] (a tick at b belongs to the episode the break starts)."""
    breaks = np.unique(np.asarray(breaks, np.int64))
    pieces = []
    for lo, hi in intervals.tolist():
        inside = breaks[(breaks > lo) & (breaks <= hi)].tolist()
        for b in inside:
            pieces.append((lo, b - 1))
            lo = b
        pieces.append((lo, hi))
    return pieces


def align(frame_times: np.ndarray, command_times: np.ndarray, command_actions: np.ndarray,
          config: AlignConfig, breaks: np.ndarray | None = None) -> AlignResult:
    """Episodes of one recording.

    frame_times: (F,) int64 sorted [ns]; command_times: (C,) int64 sorted [ns];
    command_actions: (C, A) [raw units]; breaks: (K,) int64 [ns] times that start a new episode.
    """
    frame_times = np.asarray(frame_times, np.int64)
    command_times = np.asarray(command_times, np.int64)
    command_actions = np.asarray(command_actions, np.float64).reshape(len(command_times), -1)
    valid = intersect(live_intervals(frame_times, config.max_gap_ns),
                      live_intervals(command_times, config.max_gap_ns))
    pieces = split_at(valid, np.zeros(0, np.int64) if breaks is None else breaks)
    episodes, short, short_ticks = [], 0, 0
    for lo, hi in pieces:
        first_command = int(np.searchsorted(command_times, lo, side='left'))
        if first_command >= len(command_times) or command_times[first_command] > hi:
            continue
        anchor = int(command_times[first_command])
        ticks = anchor + config.period_ns * np.arange((hi - anchor) // config.period_ns + 1, dtype=np.int64)
        for part in _pieces(ticks, config.max_steps):
            if len(part) - 1 < config.min_steps:
                short, short_ticks = short + 1, short_ticks + len(part)
                continue
            frames = np.searchsorted(frame_times, part, side='right') - 1
            # the command in force over most of the tick's step [tick, tick + period): read at the
            # step's middle, so commands jittering around the tick are neither repeated nor skipped
            commands = np.searchsorted(command_times, part + config.period_ns // 2, side='right') - 1
            episodes.append(EpisodePlan(ticks=part, frames=frames.astype(np.int64),
                                        actions=command_actions[commands]))
    return AlignResult(tuple(episodes), short, short_ticks)


def _pieces(ticks: np.ndarray, max_steps: int) -> list[np.ndarray]:
    """Pieces of at most max_steps + 1 ticks sharing their boundary tick."""
    if len(ticks) <= max_steps + 1:
        return [ticks]
    starts = range(0, len(ticks) - 1, max_steps)
    return [ticks[s:s + max_steps + 1] for s in starts]


def median_period_ns(command_times_per_bag: list[np.ndarray]) -> int | None:
    """Median interval between consecutive command messages of every bag [ns] (positive
    intervals only), None when no bag has two commands at distinct times."""
    diffs = [np.diff(np.asarray(t, np.int64)) for t in command_times_per_bag if len(t) >= 2]
    diffs = np.concatenate(diffs) if diffs else np.zeros(0, np.int64)
    diffs = diffs[diffs > 0]
    return int(np.median(diffs)) if diffs.size else None


def rate_to_period_ns(rate_hz: float) -> int:
    """Control period [ns] of a rate [Hz] > 0."""
    check_positive('rate', rate_hz)
    return max(1, int(round(1e9 / rate_hz)))
