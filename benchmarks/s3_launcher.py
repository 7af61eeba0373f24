"""Start benchmark jobs from a small process, so their peak RSS is their own.

Linux carries a process's peak RSS (``ru_maxrss``) across ``exec``: a child forked from a
large parent (one that has imported pynwb, boto3, ...) starts with the parent's peak. This
launcher imports only the standard library, so the floor it passes on is a bare interpreter's.
``bench_s3.py`` starts it once and sends it one JSON line per job on standard input::

    {"cmd": [...], "env": {...}, "stderr": "path", "timeout": seconds or null}

and reads back ``{"returncode": int, "seconds": float, "maxrss_kb": int, "timed_out": bool}``
(``os.wait4``). A job still running after ``timeout`` seconds is killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        with open(request["stderr"], "wb") as err:
            start = time.perf_counter()
            process = subprocess.Popen(
                request["cmd"], stdout=subprocess.DEVNULL, stderr=err, env=request["env"]
            )
            timed_out = threading.Event()

            def kill(
                process: subprocess.Popen[bytes] = process, timed_out: threading.Event = timed_out
            ) -> None:
                timed_out.set()
                process.kill()

            timer = threading.Timer(request["timeout"], kill) if request.get("timeout") else None
            if timer is not None:
                timer.start()
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - start
            if timer is not None:
                timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        reply = {
            "returncode": process.returncode,
            "seconds": seconds,
            "maxrss_kb": usage.ru_maxrss,
            "timed_out": timed_out.is_set(),
        }
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
