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
    """What the planner thread receives: (boundary, frame id) in submission order."""

    def __init__(self) -> None:
        self.items: list[tuple[BlockBoundary, int]] = []

    def __call__(self, boundary: BlockBoundary, image: np.ndarray) -> None:
        self.items.append((boundary, int(image[0, 0, 0])))

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


def test_after_the_wait_the_newest_frame_is_submitted_and_counted_late(caplog):
    stream, aligner, submitted = setup()
    aligner.add_frame(frame(1), receipt_s=9.9, stamp_s=9.9)
    tick(stream, aligner, 10.0)
    tick(stream, aligner, 10.0 + PERIOD * 0.99)  # (a tick early on the clock: still waiting)
    assert submitted.items == []
    with caplog.at_level('WARNING', logger='lewm_ros.control.frame_alignment'):
        tick(stream, aligner, 10.0 + PERIOD * 1.99)
    assert submitted.ticks == [0] and submitted.frames == [1] and aligner.late_frames == 1
    assert 'late frames so far' in caplog.text
    aligner.add_frame(frame(2), receipt_s=10.21, stamp_s=10.21)  # too late: not submitted again
    assert len(submitted.items) == 1 and aligner.waiting is None


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
    decides, not the (older) receipt time; an old stamp received just now is stale."""
    stream, aligner, submitted = setup()
    assert aligner.capture_time(9.9, 10.0) == 10.0 and aligner.capture_time(10.0, 9.2) == 9.2
    aligner.add_frame(frame(1), receipt_s=10.0, stamp_s=9.5)  # received now, captured 0.5 s ago
    tick(stream, aligner, 10.0)
    assert submitted.items == []
    aligner.add_frame(frame(2), receipt_s=9.99, stamp_s=10.0)
    assert submitted.frames == [2]


def test_a_new_boundary_submits_the_waiting_one_first_with_the_newest_frame():
    stream, aligner, submitted = setup(max_wait_s=10 * PERIOD)  # a wait longer than a block
    aligner.add_frame(frame(1), receipt_s=9.9, stamp_s=9.9)
    for k in range(FRAMESKIP):
        tick(stream, aligner, 10.0 + k * PERIOD)
    assert submitted.items == [] and aligner.waiting.tick == 0
    aligner.add_frame(frame(2), receipt_s=10.2, stamp_s=9.94)  # still before the first boundary's target
    tick(stream, aligner, 10.0 + FRAMESKIP * PERIOD)  # boundary 2 is due: boundary 1 goes first
    assert submitted.ticks == [0] and submitted.frames == [2] and aligner.late_frames == 1
    assert aligner.waiting.tick == FRAMESKIP
    aligner.add_frame(frame(3), receipt_s=10.5, stamp_s=10.5)
    assert submitted.ticks == [0, FRAMESKIP] and submitted.frames == [2, 3] and aligner.late_frames == 1


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
    stream, aligner, submitted = setup(max_wait_s=10 * PERIOD)
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
                                    {'max_wait_s': float('nan')}, {'max_stamp_offset_s': 0.0}])
def test_invalid_settings_are_rejected_with_the_name(kwargs):
    name = next(iter(kwargs))
    values = {'period_s': PERIOD, **kwargs}
    with pytest.raises(ValueError, match=name):
        BoundaryFrameAligner(lambda b, i: None, lambda: 0, **values)


# One event of an interleaving: a frame (time step [s], capture latency [s], stamp kind) or a
# control tick (time step [s]). Time never goes back; frames may be stamped late, early or bogus.
FRAME = st.tuples(st.just('frame'), st.floats(0.0, 0.2), st.floats(0.0, 0.3),
                  st.sampled_from(['stamp', 'stamp', 'zero', 'far']))
TICK = st.tuples(st.just('tick'), st.floats(0.0, 0.2))


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.one_of(FRAME, TICK), max_size=120), frameskip=st.integers(1, 4),
       max_wait=st.sampled_from([0.0, 0.05, PERIOD, 0.35]))
def test_property_boundaries_are_submitted_in_tick_order_exactly_once(events, frameskip, max_wait):
    """Whatever the interleaving of frames and ticks: every boundary is submitted exactly once (a
    frame came first), in tick order; a boundary goes with a frame captured at or after its
    target unless it was counted late."""
    stream = ActionStream(frameskip, 1)
    submitted = Submissions()
    aligner = BoundaryFrameAligner(submitted, lambda: stream.epoch, PERIOD, max_wait_s=max_wait)
    now, frame_id = 0.0, 0
    captures = {0: 0.0}
    aligner.add_frame(frame(0), receipt_s=0.0, stamp_s=0.0)
    boundaries: list[tuple[BlockBoundary, float]] = []
    for event in events:
        now += event[1]
        if event[0] == 'frame':
            frame_id = (frame_id + 1) % 256
            stamp = {'stamp': now - event[2], 'zero': 0.0, 'far': now + 100.0}[event[3]]
            aligner.add_frame(frame(frame_id), receipt_s=now, stamp_s=stamp)
            captures[frame_id] = aligner.capture_time(now, stamp)
        else:
            boundary = tick(stream, aligner, now)
            if boundary is not None:
                boundaries.append((boundary, now))
        assert submitted.ticks == sorted(submitted.ticks)
    aligner.on_tick(now + 1.0, None)  # the last wait expires
    assert submitted.ticks == [boundary.tick for boundary, _ in boundaries]
    on_target = sum(captures[f] >= t - PERIOD / 2 for (_, t), f in zip(boundaries, submitted.frames))
    assert on_target + aligner.late_frames >= len(boundaries)
    assert aligner.waiting is None and aligner.dropped == 0
