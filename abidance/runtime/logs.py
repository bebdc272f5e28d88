"""Log setup: plain text for a terminal, one JSON object per line for journald/collectors.

Off the event loop: the loop only puts each record on a bounded queue (logging.handlers.
QueueHandler); a listener thread (QueueListener) formats it and writes it. A full queue drops the
record and counts it (`dropped()`), so a flood of log lines never blocks trading and never
grows without bound; the node's status line reports the count.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import time
from logging.handlers import QueueHandler, QueueListener

QUEUE_RECORDS = 10_000          # log records waiting for the writer thread, at most


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class BoundedQueueHandler(QueueHandler):
    """QueueHandler on a bounded queue: a record that does not fit is dropped and counted."""

    def __init__(self, q: queue.Queue):
        super().__init__(q)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _Listener(QueueListener):
    def enqueue_sentinel(self) -> None:
        # Stopping waits for room (the writer drains the queue) rather than failing on a full one.
        self.queue.put(self._sentinel, timeout=10)


_listener: QueueListener | None = None
_handler: BoundedQueueHandler | None = None


def setup_logging(level: str = "INFO", fmt: str = "text", capacity: int = QUEUE_RECORDS) -> BoundedQueueHandler:
    """Route every log record through a bounded queue to a writer thread (stderr); returns the
    queue handler (its `dropped` count). Calling it again replaces the previous set-up."""
    global _listener, _handler
    stop_logging()
    out = logging.StreamHandler()
    out.setFormatter(JsonFormatter() if fmt == "json" else
                     logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _handler = BoundedQueueHandler(queue.Queue(capacity))
    _listener = _Listener(_handler.queue, out, respect_handler_level=True)
    root = logging.getLogger()
    root.handlers[:] = [_handler]
    root.setLevel(level.upper())
    logging.getLogger("picows").setLevel(max(logging.WARNING, root.level))
    _listener.start()
    return _handler


def stop_logging() -> None:
    """Write what is queued and stop the writer thread (also run at exit)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def dropped() -> int:
    """Log records dropped because the queue was full."""
    return _handler.dropped if _handler is not None else 0


atexit.register(stop_logging)
