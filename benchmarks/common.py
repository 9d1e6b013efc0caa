"""What the benchmarks share: the provenance and files of results, measured child processes, a model's test set."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from vlae_codec.model import data, zoo

RESULTS = Path(__file__).resolve().parent / "results"


def _command() -> str:
    """The command line as typed: `python -m benchmarks.NAME ...` for a module run with -m."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = ["-m", spec.name.removesuffix(".__main__")] if spec is not None else sys.argv[:1]
    return " ".join([Path(sys.executable).name, *program, *sys.argv[1:]])


def provenance() -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "unknown", False
    return {
        "command": _command(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "cpu": _cpu(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _cpu() -> str:
    """The processor's name and widest vector unit: machines of one name have differed by 2x here."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    widest = next((f for f in ("avx512f", "avx2", "avx") if f in flags), "no AVX")
    return f"{name}, {widest}"


def write(name: str, result: dict, markdown: str) -> None:
    """benchmarks/results/NAME.json and NAME.md."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    p = result["provenance"]
    header = (f"Command: `{p['command']}`  \nDate: {p['date']}  \nCommit: {p['commit']}  \n"
              f"Machine: {p['machine']}{', ' + p['cpu'] if 'cpu' in p else ''}, torch {p['torch']} "
              f"({p['torch_threads']} threads)\n\n")
    (RESULTS / f"{name}.md").write_text(header + markdown + "\n")


# Runs a command from a fresh, small process and reports its wall time and its own peak memory.
# Linux counts the memory a child inherits at fork in its peak (ru_maxrss), so a child forked
# straight from a benchmark that holds gigabytes would report them as its own.
_LAUNCHER = """
import json, os, sys, time
t0 = time.time()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"seconds": time.time() - t0, "peak_kib": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status)}, f)
"""


def run_measured(cmd: list[str]) -> dict:
    """Run a command in a child process: its wall seconds, peak resident memory (MiB) and stdout.

    A fresh process per measurement, because torch's allocations are invisible to tracemalloc
    and a long-lived process's peak would carry over from earlier work."""
    # Output goes to files, not pipes, so that a chatty child can never block on a full pipe.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.json"
        subprocess.run([sys.executable, "-c", _LAUNCHER, str(figures), *cmd], stdout=out, stderr=err, text=True)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        measured = json.loads(figures.read_text()) if figures.is_file() else {"code": -1}
    if measured["code"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {stderr.strip()[-3000:]}")
    return {"seconds": round(measured["seconds"], 2), "peak_mib": round(measured["peak_kib"] / 1024, 1),
            "stdout": stdout.strip()}


def model_test_set(model: str, data_dir: str | None) -> tuple[str, np.ndarray]:
    """The data set a model was trained on (its train log says which) and that set's test images."""
    dataset = json.loads((zoo.resolve(model) / zoo.LOG).read_text())["dataset"]
    return dataset, data.load_split(dataset, "test", data_dir)


def arguments(doc: str, model_help: str | None = None, threads: int = 2,
              threads_help: str | None = None) -> argparse.ArgumentParser:
    """A script's parser with what most benchmarks take: the model (if `model_help`), --threads
    and --data-dir."""
    ap = argparse.ArgumentParser(description=doc)
    if model_help:
        ap.add_argument("model", help=model_help)
    ap.add_argument("--threads", type=int, default=threads, help=threads_help)
    ap.add_argument("--data-dir", default=None, help="data folder [default: $VLAE_DATA, else ../shared/data]")
    return ap
