"""BoundaryFrameAligner without ROS: each block boundary goes to the planner with the frame that
shows it, in tick order, exactly once, without the control tick ever waiting. A real
ActionStream makes the boundaries; the submissions are recorded as the worker would take them."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lewm_ros.control.action_stream import ActionStream, BlockBoundary
from lewm_ros.control.frame_alignment import BoundaryFrameAligner

PERIOD = 0.1  # control period [s] (10 Hz, the simulator's)
FRAMESKIP = 5


class Submissions:
    """What the planner thread receives: (boundary, frame id, late) in submission order."""

    def __init__(self) -> None:
        self.items: list[tuple[BlockBoundary, int]] = []
        self.late: list[bool] = []

    def __call__(self, boundary: BlockBoundary, image: np.ndarray, late: bool) -> None:
        self.items.append((boundary, int(image[0, 0, 0])))
        self.late.append(late)

    @property
    def ticks(self) -> list[int]:
        return [boundary.tick for boundary, _ in self.items]

    @property
    def frames(self) -> list[int]:
        return [frame for _, frame in self.items]


def frame(frame_id: int) -> np.ndarray:
    return np.full((4, 4, 3), frame_id, np.uint8)


def setup(**kwargs) -> tuple[ActionStream, BoundaryFrameAligner, Submissions]:
    stream = ActionStream(FRAMESKIP, 1)
    submitted = Submissions()
    return stream, BoundaryFrameAligner(submitted, lambda: stream.epoch, PERIOD, **kwargs), submitted


def tick(stream: ActionStream, aligner: BoundaryFrameAligner, now_s: float) -> BlockBoundary | None:
    """One control tick as planner_node runs it: the boundary due (if any) to the aligner, then
    the executed command to the stream."""
    boundary = stream.boundary_due()
    aligner.on_tick(now_s, boundary)
    stream.record(np.zeros(1))
    return boundary


def test_a_frame_captured_just_before_the_tick_is_submitted_at_the_tick():
    stream, aligner, submitted = setup()
    aligner.add_frame(frame(1), receipt_s=10.0, stamp_s=10.0)
    tick(stream, aligner, 10.0)
    assert submitted.ticks == [0] and submitted.frames == [1]
    assert aligner.waiting is None and aligner.waited == 0 and aligner.late_frames == 0


def test_the_stale_frame_is_not_used_when_the_frame_of_the_tick_arrives_within_the_wait():
    """The simulator race: the timer ticks at t before the frame stamped t arrives."""
    stream, aligner, submitted = setup()
    aligner.add_frame(frame(1), receipt_s=9.9, stamp_s=9.9)  # the previous env step's frame
    tick(stream, aligner, 10.0)
    assert submitted.items == [] and aligner.waiting is not None and aligner.waited == 1
    aligner.add_frame(frame(2), receipt_s=10.0, stamp_s=10.0)  # submitted from the camera callback
    assert submitted.ticks == [0] and submitted.frames == [2]
    aligner.add_frame(frame(3), receipt_s=10.05, stamp_s=10.05)
    for k in range(1, FRAMESKIP):
        tick(stream, aligner, 10.0 + k * PERIOD)
    assert len(submitted.items) == 1 and aligner.late_frames == 0


def test_after_the_wait_the_newest_frame_is_submitted_flagged_and_counted_late(caplog):
    stream, aligner, submitted = setup(wait_ticks=2)
    aligner.add_frame(frame(1), receipt_s=9.9, stamp_s=9.9)
    tick(stream, aligner, 10.0)
    tick(stream, aligner, 10.0 + PERIOD * 0.99)
    assert submitted.items == []
    with caplog.at_level('WARNING', logger='lewm_ros.control.frame_alignment'):
        tick(stream, aligner, 10.0 + PERIOD * 1.9)  # (a tick early on the clock: the wait is counted in ticks)
    assert submitted.ticks == [0] and submitted.frames == [1] and submitted.late == [True]
    assert aligner.late_frames == 1 and aligner.waited == 1
    assert 'late frames so far' in caplog.text
    aligner.add_frame(frame(2), receipt_s=10.21, stamp_s=10.21)  # too late: not submitted again
    assert len(submitted.items) == 1 and aligner.waiting is None


def test_a_timer_that_skipped_ticks_ends_the_wait_at_the_first_tick_past_it():
    """wait_ticks 2: the wait also ends at a tick 1.5 periods or more after the boundary's (a loaded
    timer that skipped one), not a period later still."""
    stream, aligner, submitted = setup(wait_ticks=2)
    aligner.add_frame(frame(1), receipt_s=9.9, stamp_s=9.9)
    tick(stream, aligner, 10.0)
    tick(stream, aligner, 10.0 + PERIOD * 1.5)
    assert submitted.ticks == [0] and submitted.frames == [1] and submitted.late == [True]


@pytest.mark.parametrize('wait_ticks', [1, 2, 3])
def test_on_sim_time_the_wait_ends_exactly_wait_ticks_after_the_boundary(wait_ticks):
    """Sim time: ticks at k * 0.1 s, built from integer nanoseconds as the node's clock does. t_k + 0.1
    often rounds above t_(k+1) (11 of the first 120 boundaries): a deadline in seconds waited a tick
    longer there. Every boundary whose frame never comes ends its wait exactly wait_ticks ticks on."""
    stream, aligner, submitted = setup(wait_ticks=wait_ticks)
    aligner.add_frame(frame(1), receipt_s=0.0, stamp_s=0.0)  # then the camera stops
    submitted_at: dict[int, int] = {}
    for k in range(600):
        now = k * 100_000_000 * 1e-9
        count = len(submitted.items)
        tick(stream, aligner, now)
        submitted_at.update({boundary.tick: k for boundary, _ in submitted.items[count:]})
    boundaries = range(0, 600 - wait_ticks, FRAMESKIP)
    assert submitted_at[0] == 0 and submitted.late[0] is False
    assert all(submitted_at[b] == b + wait_ticks for b in boundaries[1:])
    assert aligner.late_frames == len(submitted.items) - 1 and all(submitted.late[1:])


def test_wait_ticks_zero_switches_the_alignment_off():
    """The newest frame at the tick, stale or not, never waited for nor counted late; with no frame
    at all the boundary is dropped."""
    stream, aligner, submitted = setup(wait_ticks=0)
    tick(stream, aligner, 9.5)
    assert aligner.dropped == 1 and aligner.waiting is None
    aligner.add_frame(frame(1), receipt_s=9.0, stamp_s=9.0)
    for k in range(1, 2 * FRAMESKIP):
        tick(stream, aligner, 9.5 + k * PERIOD)
    assert submitted.frames == [1] and submitted.late == [False]
    assert aligner.waited == 0 and aligner.late_frames == 0 and aligner.waiting is None


def test_a_slightly_late_frame_within_the_tolerance_counts_as_the_boundary_frame():
    stream, aligner, submitted = setup()
    aligner.add_frame(frame(1), receipt_s=10.0, stamp_s=10.0 - 0.4 * PERIOD)  # tolerance: half a period
    tick(stream, aligner, 10.0)
    assert submitted.frames == [1] and aligner.waited == 0


@pytest.mark.parametrize('stamp_s', [0.0, 10.0 - 1.5, 10.0 + 3600.0, float('nan'), -1.0])
def test_bogus_stamps_fall_back_to_the_receipt_time(stamp_s):
    """Zero stamps, a camera's own clock: the receipt time on the node's clock is the capture time."""
    stream, aligner, submitted = setup()
    assert aligner.capture_time(10.0, stamp_s) == 10.0
    aligner.add_frame(frame(1), receipt_s=10.0, stamp_s=stamp_s)
    tick(stream, aligner, 10.02)
    assert submitted.frames == [1] and aligner.waited == 0


def test_a_stamp_within_a_second_of_the_receipt_is_the_capture_time():
    """The simulator's frame stamped t_k arrives before the node's clock has reached t_k: its stamp
    decides, not the (older) receipt time; from a camera that delivers at once, an old stamp
    received just now is stale."""
    stream, aligner, submitted = setup()
    assert aligner.capture_time(9.9, 10.0) == 10.0 and aligner.capture_time(10.0, 9.2) == 9.2
    for k in range(10):
        aligner.add_frame(frame(0), receipt_s=9.0 + k * 0.05, stamp_s=9.0 + k * 0.05)
    aligner.add_frame(frame(1), receipt_s=10.0, stamp_s=9.5)  # received now, captured 0.5 s ago
    tick(stream, aligner, 10.0)
    assert submitted.items == [] and aligner.stamp_delay_s == 0.0
    aligner.add_frame(frame(2), receipt_s=9.99, stamp_s=10.0)
    assert submitted.frames == [2] and submitted.late == [False]


@pytest.mark.parametrize('delay_s', [0.15, 0.25, 0.6])
def test_a_camera_with_a_steady_stamp_to_receipt_delay_never_waits(delay_s):
    """Stamps are exposure times: a 30 Hz camera delivering each frame delay_s after its stamp (more
    than the half-period tolerance plus the one-period wait), with 10 ms of jitter, or stamping on a
    clock delay_s behind the node's. Its median delay is added to the stamps: every boundary takes the
    newest frame at its tick at once, none waits, none is late."""
    rng = np.random.default_rng(1)
    stream, aligner, submitted = setup()
    camera_period = 1.0 / 30.0
    events = [(100.0 + k * camera_period + delay_s + rng.uniform(0.0, 0.01), 'frame', k) for k in range(900)]
    events += [(101.05 + k * PERIOD + rng.uniform(0.0, 0.01), 'tick', k) for k in range(280)]
    newest_at_boundary, newest = [], None
    for t, kind, k in sorted(events):
        if kind == 'frame':
            aligner.add_frame(frame(k % 256), receipt_s=t, stamp_s=100.0 + k * camera_period)
            newest = k % 256
        elif tick(stream, aligner, t) is not None:
            newest_at_boundary.append(newest)
    assert aligner.stamp_delay_s == pytest.approx(delay_s + 0.005, abs=0.005)
    assert aligner.waited == 0 and aligner.late_frames == 0 and submitted.frames == newest_at_boundary


def test_with_a_steady_delay_a_frame_later_than_usual_is_still_waited_for():
    """A camera delivering 0.2 s after its stamps: the median delay is added, and a boundary whose
    newest frame is older than usual (the camera paused) waits for the next one, not late."""
    stream, aligner, submitted = setup()
    for k in range(20):
        aligner.add_frame(frame(1), receipt_s=9.0 + k * 0.05, stamp_s=8.8 + k * 0.05)
    assert aligner.stamp_delay_s == pytest.approx(0.2)
    tick(stream, aligner, 10.07)  # the newest frame was delivered 0.12 s ago: older than the camera delivers
    assert submitted.items == [] and aligner.waited == 1
    assert aligner.add_frame(frame(2), receipt_s=10.1, stamp_s=9.9) == pytest.approx(10.1)
    assert submitted.frames == [2] and submitted.late == [False]


def test_frames_arriving_before_the_node_clock_do_not_shift_the_stamps():
    """Simulator: the frame stamped t_k may arrive while the node's /clock still reads t_(k-1) (a
    negative stamp-to-receipt delay): the delay added stays 0, and the race is still caught."""
    stream, aligner, submitted = setup()
    for k in range(20):
        aligner.add_frame(frame(1), receipt_s=8.0 + k * PERIOD, stamp_s=8.1 + k * PERIOD)
    assert aligner.stamp_delay_s == 0.0
    aligner.add_frame(frame(2), receipt_s=9.9, stamp_s=9.9)
    tick(stream, aligner, 10.0)  # the frame stamped 10.0 is not in yet
    assert submitted.items == []
    aligner.add_frame(frame(3), receipt_s=9.9, stamp_s=10.0)
    assert submitted.frames == [3] and submitted.late == [False]


def test_a_new_boundary_submits_the_waiting_one_first_with_the_newest_frame():
    stream, aligner, submitted = setup(wait_ticks=10)  # a wait longer than a block
    for k in range(10):  # a camera that delivers at once
        aligner.add_frame(frame(1), receipt_s=9.0 + k * PERIOD, stamp_s=9.0 + k * PERIOD)
    for k in range(FRAMESKIP):
        tick(stream, aligner, 10.0 + k * PERIOD)
    assert submitted.items == [] and aligner.waiting.tick == 0
    aligner.add_frame(frame(2), receipt_s=10.2, stamp_s=9.94)  # still before the first boundary's target
    tick(stream, aligner, 10.0 + FRAMESKIP * PERIOD)  # boundary 2 is due: boundary 1 goes first
    assert submitted.ticks == [0] and submitted.frames == [2] and aligner.late_frames == 1
    assert aligner.waiting.tick == FRAMESKIP
    aligner.add_frame(frame(3), receipt_s=10.5, stamp_s=10.5)
    assert submitted.ticks == [0, FRAMESKIP] and submitted.frames == [2, 3] and aligner.late_frames == 1
    assert submitted.late == [True, False]


def test_a_reset_of_the_stream_drops_the_waiting_boundary():
    stream, aligner, submitted = setup()
    aligner.add_frame(frame(1), receipt_s=9.9, stamp_s=9.9)
    tick(stream, aligner, 10.0)
    assert aligner.waiting is not None
    stream.reset()  # a stop, a resume after a stop, deactivate: a new epoch
    aligner.add_frame(frame(2), receipt_s=10.0, stamp_s=10.0)
    assert submitted.items == [] and aligner.waiting is None and aligner.dropped == 1
    first = tick(stream, aligner, 10.04)  # the new epoch's first boundary, with the frame of its tick
    assert submitted.items == [(first, 2)] and first.epoch == stream.epoch and aligner.late_frames == 0


def test_a_reset_noticed_at_the_next_boundary_drops_the_waiting_one_there():
    stream, aligner, submitted = setup(wait_ticks=10)
    aligner.add_frame(frame(1), receipt_s=9.9, stamp_s=9.9)
    tick(stream, aligner, 10.0)
    stream.reset()
    first = tick(stream, aligner, 10.1)  # no frame in between: the new boundary waits, the old is gone
    assert submitted.items == [] and aligner.waiting == first and aligner.dropped == 1
    aligner.add_frame(frame(2), receipt_s=10.1, stamp_s=10.1)
    assert submitted.items == [(first, 2)] and aligner.late_frames == 0


def test_a_boundary_without_any_frame_is_dropped_after_the_wait():
    stream, aligner, submitted = setup()
    tick(stream, aligner, 10.0)
    tick(stream, aligner, 10.0 + PERIOD)
    assert submitted.items == [] and aligner.waiting is None and aligner.dropped == 1 and aligner.late_frames == 0


def test_a_camera_faster_than_twice_the_control_rate_never_waits():
    """30 Hz camera with up to 15 ms of receipt jitter (frames at most 48 ms apart, under the 50 ms
    tolerance) and no stamps, 10 Hz control timer with its own jitter: every boundary takes the
    newest frame at its tick."""
    rng = np.random.default_rng(0)
    stream, aligner, submitted = setup()
    camera_period = 1.0 / 30.0
    events = [(100.0 + k * camera_period + rng.uniform(0.0, 0.015), 'frame', k) for k in range(3000)]
    events += [(100.05 + k * PERIOD + rng.uniform(0.0, 0.01), 'tick', k) for k in range(990)]
    newest_at_boundary = []
    newest = None
    for t, kind, k in sorted(events):
        if kind == 'frame':
            aligner.add_frame(frame(k % 256), receipt_s=t, stamp_s=0.0)
            newest = k % 256
        elif tick(stream, aligner, t) is not None:
            newest_at_boundary.append(newest)
    assert aligner.waited == 0 and aligner.late_frames == 0 and len(submitted.items) == 990 // FRAMESKIP
    assert submitted.frames == newest_at_boundary


def test_frames_and_ticks_from_two_threads_submit_each_boundary_once_in_order():
    stream, aligner, submitted = setup()
    clock = [0.0]
    lock = threading.Lock()
    done = threading.Event()

    def camera() -> None:
        k = 0
        while not done.is_set():
            with lock:
                now = clock[0]
            aligner.add_frame(frame(k % 256), receipt_s=now, stamp_s=now)
            k += 1

    thread = threading.Thread(target=camera)
    thread.start()
    boundaries = []
    try:
        for k in range(2000):
            with lock:
                clock[0] = k * PERIOD
            boundary = tick(stream, aligner, k * PERIOD)
            if boundary is not None:
                boundaries.append(boundary.tick)
    finally:
        done.set()
        thread.join()
    tick(stream, aligner, 1e6)  # ends a last wait
    assert submitted.ticks == boundaries


@pytest.mark.parametrize('kwargs', [{'period_s': 0.0}, {'period_s': float('inf')}, {'tolerance_s': -0.01},
                                    {'wait_ticks': -1}, {'wait_ticks': 1.5}, {'wait_ticks': True},
                                    {'max_stamp_offset_s': 0.0}])
def test_invalid_settings_are_rejected_with_the_name(kwargs):
    name = next(iter(kwargs))
    values = {'period_s': PERIOD, **kwargs}
    with pytest.raises(ValueError, match=name):
        BoundaryFrameAligner(lambda b, i, late: None, lambda: 0, **values)


# One event of an interleaving, times in integer nanoseconds (the node's clock: ns * 1e-9): a frame
# (time step, capture latency, stamp kind), a control tick (time step: often exactly one period, as on
# sim time) or a reset of the ActionStream (a stop, a resume, deactivate). Time never goes back;
# frames may be stamped late, early (before the node's clock) or bogus.
NS = 1_000_000_000
STEP = st.one_of(st.just(100_000_000), st.integers(0, 200_000_000))
FRAME = st.tuples(st.just('frame'), STEP, st.integers(0, 300_000_000),
                  st.sampled_from(['stamp', 'stamp', 'early', 'zero', 'far']))
TICK = st.tuples(st.just('tick'), STEP)
RESET = st.tuples(st.just('reset'), st.just(0))


class Recorder:
    """Submissions with what held at each: the aligner's late count, the control tick, the frame
    added last (the newest), whether it came from a frame or a tick, the stream's epoch."""

    def __init__(self, stream: ActionStream) -> None:
        self.stream = stream
        self.aligner: BoundaryFrameAligner | None = None
        self.tick_index, self.newest, self.source = 0, None, ''
        self.items: list[dict] = []

    def __call__(self, boundary: BlockBoundary, image: np.ndarray, late: bool) -> None:
        self.items.append({'boundary': boundary, 'frame': int(image[0, 0, 0]), 'late': late,
                           'late_frames': self.aligner.late_frames, 'tick_index': self.tick_index,
                           'newest': self.newest, 'source': self.source, 'epoch': self.stream.epoch})


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.one_of(FRAME, FRAME, TICK, TICK, TICK, RESET), max_size=120),
       frameskip=st.integers(1, 4), wait_ticks=st.sampled_from([0, 1, 2, 7]), first_frame=st.booleans())
def test_property_each_boundary_is_submitted_once_in_order_with_its_frame_or_late(events, frameskip, wait_ticks,
                                                                                  first_frame):
    """Whatever the interleaving of frames, ticks and resets: within each epoch every boundary is
    submitted at most once, in tick order, never after its epoch ended and never later than
    wait_ticks ticks after its own; each submission carries either a frame captured at or after
    the boundary's target (not late) or the newest frame, flagged late and counted at that very
    submission. A boundary is left out only when a reset came while it waited or no frame had come
    at all; a frame that shows the waiting boundary submits it at once."""
    stream = ActionStream(frameskip, 1)
    submitted = Recorder(stream)
    aligner = BoundaryFrameAligner(submitted, lambda: stream.epoch, PERIOD, wait_ticks=wait_ticks)
    submitted.aligner = aligner
    now_ns, frame_id = 0, 0
    captures: dict[int, float] = {}
    first_frame_at = None  # the tick index when the first frame came
    if first_frame:
        captures[0] = aligner.add_frame(frame(0), receipt_s=0.0, stamp_s=0.0)
        submitted.newest, first_frame_at = 0, 0
    boundaries: dict[tuple[int, int], tuple[int, float]] = {}  # (epoch, tick) -> (tick index, tick time)
    dropped_by_reset: list[tuple[int, int]] = []
    for kind, step, *rest in events:
        now_ns += step
        now = now_ns * 1e-9
        waiting = aligner.waiting
        count = len(submitted.items)
        if kind == 'frame':
            frame_id = (frame_id + 1) % 256
            latency = rest[0] * 1e-9
            stamp = {'stamp': now - latency, 'early': now + latency / 3, 'zero': 0.0, 'far': now + 100.0}[rest[1]]
            submitted.newest, submitted.source = frame_id, 'frame'
            first_frame_at = submitted.tick_index if first_frame_at is None else first_frame_at
            captures[frame_id] = aligner.add_frame(frame(frame_id), receipt_s=now, stamp_s=stamp)
            if waiting is not None and waiting.epoch == stream.epoch \
                    and captures[frame_id] >= boundaries[waiting.epoch, waiting.tick][1] - PERIOD / 2:
                assert [item['boundary'] for item in submitted.items[count:]] == [waiting]  # at once
        elif kind == 'tick':
            submitted.tick_index += 1
            submitted.source = 'tick'
            boundary = tick(stream, aligner, now)
            if boundary is not None:
                boundaries[boundary.epoch, boundary.tick] = (submitted.tick_index, now)
        else:
            stream.reset()
            if waiting is not None:
                dropped_by_reset.append((waiting.epoch, waiting.tick))
        assert len(submitted.items) - count <= 2  # a fallback and a new boundary at most
    submitted.tick_index += 1
    submitted.source = 'tick'
    aligner.on_tick(now_ns * 1e-9 + 10.0, None)  # the last wait ends
    assert aligner.waiting is None

    # each submission: its own frame, or the newest frame flagged late and counted there
    late_before = 0
    for item in submitted.items:
        boundary = item['boundary']
        tick_index, tick_s = boundaries[boundary.epoch, boundary.tick]
        assert boundary.epoch == item['epoch']  # never after its epoch ended
        assert 0 <= item['tick_index'] - tick_index <= wait_ticks
        assert item['late_frames'] == late_before + item['late']
        late_before = item['late_frames']
        if item['late']:
            assert wait_ticks > 0 and item['source'] == 'tick' and item['frame'] == item['newest']
            assert captures[item['frame']] < tick_s - PERIOD / 2
        elif wait_ticks == 0:
            assert item['frame'] == item['newest'] and item['tick_index'] == tick_index
        else:
            assert captures[item['frame']] >= tick_s - PERIOD / 2
            if item['source'] == 'frame':
                assert item['frame'] == item['newest']  # the frame that just came
    assert aligner.late_frames == late_before

    # exactly once, in tick order within each epoch, epochs in order
    keys = [(item['boundary'].epoch, item['boundary'].tick) for item in submitted.items]
    assert keys == sorted(set(keys))
    left_out = set(boundaries) - set(keys)
    assert aligner.dropped == len(left_out) and set(dropped_by_reset) <= left_out
    for key in left_out - set(dropped_by_reset):  # no frame at all before it was given up
        assert first_frame_at is None or first_frame_at >= boundaries[key][0]
    at_once = sum(item['source'] == 'tick' and item['tick_index'] == boundaries[
        item['boundary'].epoch, item['boundary'].tick][0] for item in submitted.items)
    assert aligner.waited == (0 if wait_ticks == 0 else len(boundaries) - at_once)
