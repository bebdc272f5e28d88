"""A 24/7 node holds bounded state: logs leave the loop through a bounded queue, the state file
is written by one thread with only the newest state waiting, closed orders leave memory."""

from __future__ import annotations

import json
import logging
import threading
import time

from abidance.runtime import logs
from abidance.runtime.state import StateFile, StateWriter


class Slow(logging.Handler):
    """A writer that records which thread wrote, and can be held back."""

    def __init__(self):
        super().__init__()
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.gate.set()

    def emit(self, record):
        self.gate.wait(5)
        self.threads.append(threading.current_thread().name)


def test_log_records_are_written_by_the_listener_thread_not_the_caller():
    handler = logs.setup_logging("INFO")
    try:
        assert logging.getLogger().handlers == [handler] and isinstance(handler, logs.BoundedQueueHandler)
        sink = Slow()
        logs._listener.handlers = (sink,)
        logging.getLogger("abidance.test").info("from the loop")
        logs.stop_logging()                        # flushes the queue
        assert sink.threads and threading.current_thread().name not in sink.threads
    finally:
        logs.stop_logging()


def test_a_full_log_queue_drops_and_counts_instead_of_blocking():
    handler = logs.setup_logging("INFO", capacity=5)
    sink = Slow()
    sink.gate.clear()                              # the writer is stuck (a slow disk, a blocked pipe)
    logs._listener.handlers = (sink,)
    try:
        t0 = time.monotonic()
        for i in range(50):
            logging.getLogger("abidance.test").warning("line %d", i)
        assert time.monotonic() - t0 < 1.0         # the caller never waited for the writer
        assert logs.dropped() == handler.dropped >= 50 - 5 - 1
    finally:
        sink.gate.set()
        logs.stop_logging()


def test_the_state_writer_writes_the_newest_state_off_the_calling_thread(tmp_path):
    writer = StateWriter(StateFile(tmp_path))
    try:
        for i in range(200):                       # a burst of order events
            writer.save({"n": i, "orders": []})
        writer.save({"n": 200, "orders": []}, wait=True)
        saved = json.loads((tmp_path / "node-state.json").read_text())
        assert saved["n"] == 200
        assert writer.writes + writer.superseded == 201 and writer.writes < 201
    finally:
        writer.close()
    assert not writer._thread.is_alive()
