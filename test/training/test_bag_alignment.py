"""bag_alignment: ticks on a fixed period, gaps, breaks, long and short episodes, jitter (pure numpy)."""
import numpy as np
import pytest

from lewm_training.bag_alignment import AlignConfig, align, live_intervals, median_period_ns

MS = 1_000_000


def streams(duration_ms, camera_ms=66, command_ms=100, start=0):
    frames = np.arange(start + 20 * MS, start + duration_ms * MS, camera_ms * MS)
    commands = np.arange(start, start + duration_ms * MS, command_ms * MS)
    return frames, commands, np.arange(len(commands), dtype=np.float64)[:, None]


def test_ticks_take_the_newest_frame_and_the_held_command():
    frames, commands, actions = streams(3000, camera_ms=66, command_ms=50)
    result = align(frames, commands, actions, AlignConfig(100 * MS, 300 * MS, min_steps=5))
    (episode,) = result.episodes
    assert episode.ticks[0] == commands[1]  # the first command with a frame before it
    assert np.all(np.diff(episode.ticks) == 100 * MS)
    assert np.all(frames[episode.frames] <= episode.ticks) and np.all(episode.ticks - frames[episode.frames] < 66 * MS)
    held = np.searchsorted(commands, episode.ticks + 50 * MS, side='right') - 1  # in force mid-step
    np.testing.assert_array_equal(episode.actions[:, 0], held)


def test_commands_jittering_around_the_ticks_are_neither_repeated_nor_skipped():
    """10 Hz commands with +-3 ms of jitter at a 10 Hz control rate: every step gets the command
    in force over most of it, each command exactly once."""
    rng = np.random.default_rng(0)
    commands = np.arange(400) * 100 * MS + rng.integers(-3 * MS, 3 * MS, 400)
    commands.sort()
    frames = np.arange(commands[0] - 30 * MS, commands[-1], 33 * MS)
    actions = np.arange(400, dtype=np.float64)[:, None]
    (episode,) = align(frames, commands, actions, AlignConfig(100 * MS, 300 * MS, min_steps=5)).episodes
    np.testing.assert_array_equal(np.diff(episode.actions[:-1, 0]), 1.0)


def test_silences_markers_and_length_limits_split_episodes():
    f1, c1, a1 = streams(3000)
    f2, c2, a2 = streams(3000, start=5000 * MS)
    frames, commands = np.concatenate([f1, f2]), np.concatenate([c1, c2])
    actions = np.concatenate([a1, a2])
    config = AlignConfig(100 * MS, 300 * MS, min_steps=5, max_steps=10)
    result = align(frames, commands, actions, config, breaks=np.array([1500 * MS]))
    lengths = [e.steps for e in result.episodes]
    # 14 ticks before the marker: a piece of 10 steps and one of 3 (dropped); 15 after it: 10 + 4 (dropped)
    assert [e.steps for e in result.episodes if e.ticks[-1] < 5000 * MS] == [10, 10]
    assert result.episodes[1].ticks[0] == 1500 * MS and result.dropped_short == 2
    assert lengths[2:] == [10, 10, 8]
    pieces = [e for e in result.episodes if e.ticks[0] >= 5000 * MS]
    assert pieces[0].ticks[-1] == pieces[1].ticks[0]  # long episodes share the cut frame: no transition lost
    assert all(e.ticks[-1] <= max(frames[frames <= e.ticks[-1]]) + 300 * MS for e in result.episodes)


def test_a_stopped_stream_is_not_extrapolated():
    assert live_intervals(np.array([0, 100, 200, 900, 1000]), 150).tolist() == [[0, 200], [900, 1000]]
    frames, commands, actions = streams(2000)
    (episode,) = align(frames, commands[:10], actions[:10], AlignConfig(100 * MS, 300 * MS, min_steps=3)).episodes
    assert episode.ticks[-1] == commands[9]


def test_median_period_and_config_errors():
    assert median_period_ns([np.array([0, 100, 200, 310]), np.array([5])]) == 100
    assert median_period_ns([np.array([7])]) is None
    with pytest.raises(ValueError, match='max_steps=3 is out of range'):
        AlignConfig(100, 200, min_steps=5, max_steps=3)
