"""Process helpers shared by the test fixtures that run real services (slapd, the OpenID
Connect provider)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM and wait up to `timeout` seconds; SIGKILL the whole process group if it does not
    exit in time. Does nothing for a process that already exited."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
