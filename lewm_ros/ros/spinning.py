"""Spin an rclpy executor until it or its context shuts down, and the main() of a node's console script.

rclpy (seen with 9.1) has a race: when a lifecycle transition running in one executor thread
destroys a publisher or subscription, another executor thread may be adding that entity's QoS
event handler to its wait set, and ``executor.spin()`` raises ``InvalidHandle`` ("cannot use
Destroyable because destruction was requested"). The entity is gone by design (cleanup,
shutdown), so spinning simply resumes with the entities that remain.
"""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from rclpy._rclpy_pybind11 import InvalidHandle  # rclpy's own exception type (Humble .. Kilted)

LOG = logging.getLogger(__name__)


def spin(executor: Executor) -> None:
    """executor.spin() until the executor or its context shuts down (then return quietly);
    resumes after an entity destroyed mid-wait (see the module docstring) and returns when a
    shutdown() of the executor races its thread pool. KeyboardInterrupt propagates."""
    while executor.context.ok():
        try:
            executor.spin()
            return
        except ExternalShutdownException:
            return
        except InvalidHandle as exc:
            LOG.debug('entity destroyed while spinning (%s); spinning on', exc)
        except RuntimeError as exc:  # MultiThreadedExecutor shut down while a wait was in flight
            if 'after shutdown' not in str(exc):
                raise
            return


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f'signal {signum}')


def run_node(make_node: Callable[[], Node], args: list[str] | None = None, num_threads: int = 2) -> None:
    """The main() of a node's console script: rclpy without its own signal handlers; SIGINT and
    SIGTERM end the run at once (as KeyboardInterrupt in the main thread), and so do the node's
    ``finished`` event (a threading.Event) when it has one and the end of the executor. Then
    further signals are ignored, a node that moves a robot publishes its zero command
    (``publish_stop``) before anything waits, the executor stops, the node is destroyed and the
    context shuts down."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM):  # explicit: a shell's background job starts with SIGINT ignored
        signal.signal(signum, _interrupt)
    node = executor = spinner = None
    try:
        node = make_node()
        # rclpy warns about a MultiThreadedExecutor with one thread: use the single-threaded one
        executor = SingleThreadedExecutor() if num_threads == 1 else MultiThreadedExecutor(num_threads=num_threads)
        executor.add_node(node)
        # The executor spins in a thread: a wait set with nothing ready blocks signal handling, so
        # the main thread waits in short steps, where SIGINT / SIGTERM are handled at once.
        finished = getattr(node, 'finished', None) or threading.Event()
        spinner = threading.Thread(target=spin, args=(executor,), name='executor', daemon=True)
        spinner.start()
        while not finished.wait(0.2) and spinner.is_alive():
            pass
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal (launch escalates) must not cut this short
            signal.signal(signum, signal.SIG_IGN)
        publish_stop = getattr(node, 'publish_stop', None)
        if publish_stop is not None:  # the zero command first, before waiting for callbacks in flight
            publish_stop()
        if executor is not None and not executor.shutdown(timeout_sec=5.0):
            LOG.warning('executor callbacks still running after 5 s; destroying the node anyway')
        if spinner is not None:  # the node's entities must not be destroyed under a spinning wait set:
            spinner.join(timeout=5.0)  # a thread left inside rclpy's C++ at exit aborts the process
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
