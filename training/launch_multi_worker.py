"""Start ``linnet train`` on several local workers under ``MultiWorkerMirroredStrategy``.

Each worker is a process with its own ``TF_CONFIG`` (the same cluster, its own task index); worker 0 is the
chief and writes the run directory ``--out``; worker ``i > 0`` writes its copy to ``OUT.worker-i`` (scratch,
safe to delete: every worker holds the same weights after each step). Every argument after ``--`` goes to
``linnet train`` unchanged; the launcher adds ``--strategy multi_worker`` and the ``--out`` of each worker.

Usage (two workers on this machine, ports picked free)::

    python training/launch_multi_worker.py --workers 2 --out runs/two-workers -- \\
        --catalog catalog.csv --config training/configs/default.yaml --epochs 3

    python training/launch_multi_worker.py --workers 2 --out runs/x --dry-run -- --catalog c.csv
    # prints each worker's TF_CONFIG and command without starting anything

On several machines, run one worker per machine with ``--hosts host1:port,host2:port --index i`` (each
machine starts only its own task, with the same ``--hosts`` list). See ``training/README.md``.

Nothing here imports TensorFlow; the workers do.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_ports(count: int, host: str = "localhost") -> list[int]:
    """``count`` distinct TCP ports the OS reports free on ``host`` now (all sockets held until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            handle.bind((host, 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def tf_config(workers: list[str], index: int) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``workers`` (``host:port`` each).

    Example:
        >>> tf_config(["localhost:2222", "localhost:2223"], 1)
        {'cluster': {'worker': ['localhost:2222', 'localhost:2223']}, 'task': {'type': 'worker', 'index': 1}}
    """
    if not 0 <= index < len(workers):
        raise ValueError(f"worker index {index} is outside the cluster of {len(workers)} workers")
    return {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}


def worker_out(out: str, index: int) -> str:
    """The run directory of worker ``index``: ``out`` for the chief, ``out.worker-i`` for the others."""
    return out if index == 0 else f"{out}.worker-{index}"


def worker_command(train_arguments: list[str], out: str, index: int, python: str = sys.executable) -> list[str]:
    """The ``linnet train`` command line of worker ``index``."""
    return [python, "-m", "linnet", "train", *train_arguments, "--strategy", "multi_worker",
            "--out", worker_out(out, index)]


def plan(train_arguments: list[str], out: str, workers: list[str], indices: list[int]) -> list[dict]:
    """One ``{"index", "tf_config", "command"}`` per worker this machine starts."""
    return [{"index": index, "tf_config": tf_config(workers, index),
             "command": worker_command(train_arguments, out, index)} for index in indices]


def _parse(argv: list[str] | None):
    argv = list(sys.argv[1:] if argv is None else argv)
    train_arguments: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, train_arguments = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="run directory of the chief (worker 0)")
    parser.add_argument("--workers", type=int, default=2, help="local workers to start (default 2)")
    parser.add_argument("--hosts", help="host:port,host:port,... of every worker (several machines); "
                        "default: --workers ports picked free on localhost")
    parser.add_argument("--index", type=int, action="append",
                        help="with --hosts: the task index(es) this machine starts (repeat the flag)")
    parser.add_argument("--dry-run", action="store_true", help="print each worker's TF_CONFIG and command, start none")
    args = parser.parse_args(argv)
    for forbidden in ("--out", "--strategy"):
        if forbidden in train_arguments:
            parser.error(f"{forbidden} is set by the launcher; pass --out before '--'")
    if "--catalog" not in train_arguments and not args.dry_run:
        parser.error("pass the linnet train arguments after '--' (at least --catalog)")
    return args, train_arguments


def main(argv: list[str] | None = None) -> int:
    args, train_arguments = _parse(argv)
    if args.hosts:
        workers = [host.strip() for host in args.hosts.split(",") if host.strip()]
        indices = args.index if args.index is not None else list(range(len(workers)))
    else:
        if args.workers < 1:
            raise SystemExit("--workers must be at least 1")
        workers = [f"localhost:{port}" for port in free_ports(args.workers)]
        indices = list(range(len(workers)))
    jobs = plan(train_arguments, args.out, workers, indices)
    if args.dry_run:
        for job in jobs:
            print(f"TF_CONFIG='{json.dumps(job['tf_config'])}' {' '.join(job['command'])}")
        return 0

    processes = []
    for job in jobs:
        environment = {**os.environ, "TF_CONFIG": json.dumps(job["tf_config"])}
        log = Path(worker_out(args.out, job["index"]) + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"worker {job['index']}: {workers[job['index']]}, log {log}", flush=True)
        handle = open(log, "w", encoding="utf-8")  # noqa: SIM115  closed when the worker ends
        processes.append((job["index"], subprocess.Popen(job["command"], env=environment, stdout=handle,
                                                          stderr=subprocess.STDOUT), handle))
    failed = 0
    try:
        for index, process, handle in processes:
            code = process.wait()
            handle.close()
            print(f"worker {index} finished with exit code {code}", flush=True)
            if code != 0:
                failed += 1
                # A worker that dies leaves the others waiting on collectives forever: stop them.
                for _, other, _ in processes:
                    if other.poll() is None:
                        other.send_signal(signal.SIGTERM)
    except KeyboardInterrupt:
        for _, process, _ in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        time.sleep(1)
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
