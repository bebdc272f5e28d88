"""sd_notify without libsystemd: READY, WATCHDOG heartbeats, STATUS, STOPPING.

systemd passes NOTIFY_SOCKET to a `Type=notify` service; without it every call is a
no-op, so the node runs the same from a terminal.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send one notification ("READY=1", "WATCHDOG=1", "STATUS=..."); False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):          # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def watchdog_interval_s() -> float | None:
    """Half of systemd's WatchdogSec (the recommended heartbeat), None when not watched."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
