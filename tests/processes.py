"""Running `bench` as a process in tests: started in its own session (a signal sent to its group stays in it),
its stderr read until it says something, and its end collected.

    proc = start(["run", ...]); seen = wait_for_text(proc, b"[2/3]"); proc.send_signal(SIGINT)
"""

import os
import select
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(argv, code=None, **kw):
    """`python -m bench ARGV`, or `python -c CODE ARGV`, from the checkout, in a session of its own."""
    prog = ["-c", code] if code else ["-m", "bench"]
    return subprocess.Popen([sys.executable, *prog, *map(str, argv)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, **kw)


def wait_for_text(proc, text: bytes, timeout=120.0) -> bytes:
    """Read proc's stderr until it holds text; fail if the process ends first. Returns what was read."""
    seen, deadline = b"", time.monotonic() + timeout
    while text not in seen:
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {text!r} on stderr after {timeout} s: {seen[-2000:]!r}")
        if select.select([proc.stderr], [], [], 0.1)[0]:
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                pytest.fail(f"bench ended (status {proc.wait()}) before saying {text!r}: {seen[-2000:]!r}")
            seen += chunk
    return seen


def finish(proc, seen: bytes = b"", timeout=60) -> tuple[int, str]:
    """(exit status, all of stderr) once the process ends."""
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, (seen + err).decode(errors="replace")
