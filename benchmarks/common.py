"""What every benchmark records beside its numbers: command, machine, date and commit."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def provenance() -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "unknown", False
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write(name: str, result: dict, markdown: str) -> None:
    """benchmarks/results/NAME.json and NAME.md."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    p = result["provenance"]
    header = (f"Command: `{p['command']}`  \nDate: {p['date']}  \nCommit: {p['commit']}  \n"
              f"Machine: {p['machine']}, torch {p['torch']} ({p['torch_threads']} threads)\n\n")
    (RESULTS / f"{name}.md").write_text(header + markdown + "\n")


def run_measured(cmd: list[str]) -> dict:
    """Run a command in a child process: its wall seconds, peak resident memory (MiB) and stdout.

    A fresh process per measurement, because torch's allocations are invisible to tracemalloc
    and a long-lived process's peak would carry over from earlier work."""
    # Output goes to files, not pipes, so that a chatty child can never block on a full pipe.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        # wait4 reports this child's own peak memory, not the maximum over all children so far.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.time() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {stderr.strip()[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_mib": round(usage.ru_maxrss / 1024, 1), "stdout": stdout.strip()}
