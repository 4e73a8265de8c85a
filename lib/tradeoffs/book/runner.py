"""The book machine: execute a chapter with papermill, record what it cost, render the result pages.

Used by the Makefile, not by the chapters:

    python -m tradeoffs.book run 01_gaussian_tradeoff --profile cpu   # notebooks/ -> book/chapters/
    python -m tradeoffs.book pages                                     # book/_generated/*.md

Each run writes ``<results dir>/<chapter>.run.json`` (wall time, peak memory of the kernel,
versions) beside the chapter's claims record; ``pages`` turns both into the Scorecard and the
Environment pages of the book.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tradeoffs.book import claims, pages
from tradeoffs.book.profiles import CHAPTERS as CHAPTER_REGISTRY
from tradeoffs.book.profiles import PROFILES
from tradeoffs.progress import BATCH_ENV

ROOT = Path.cwd()
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = ROOT / "book" / "chapters"
HIDDEN_TAG = "remove-cell"  # Jupyter Book drops cells with this tag from the HTML


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; the message says which cell and where the partial output is."""


def chapter_names() -> list[str]:
    """Every chapter, in book order (the registry, ``tradeoffs.book.profiles.CHAPTERS``)."""
    return list(CHAPTER_REGISTRY)


def execute(name: str, profile: str = "cpu", device: str = "auto", seed: int = 0,
            output_dir: Path = CHAPTERS, source_dir: Path = NOTEBOOKS, cell_timeout: int = 3600) -> dict:
    """Execute ``<source_dir>/<name>.ipynb`` with papermill into `output_dir`; return the run record.

    Call it once per process: the peak memory is the largest child process (the kernel) seen so far.
    A cell running longer than `cell_timeout` seconds fails the chapter (a hang must not block CI).
    """
    import papermill  # only the book build needs it, not the library

    from tradeoffs.book.runtime import resolve_device
    from tradeoffs.data import DATA_ENV, data_dir  # these import torch: not needed by `pages`

    source = source_dir / f"{name}.ipynb"
    if not source.exists():
        raise FileNotFoundError(f"no chapter {source}; chapters: {', '.join(chapter_names())}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    resolve_device(device)
    output = output_dir / f"{name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    # The kernel inherits these, as absolute paths (it runs in output_dir).
    os.environ[claims.RESULTS_ENV] = str(claims.results_dir().resolve())
    os.environ[DATA_ENV] = str(data_dir())
    os.environ[BATCH_ENV] = "1"  # text progress bars: no widgets while papermill executes

    started = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(str(source), str(output), parameters={"profile": profile, "device": device,
                                   "seed": seed}, kernel_name="python3", progress_bar=sys.stderr.isatty(),
                                   cwd=str(output_dir), execution_timeout=cell_timeout,
                                   kernel_manager_class=_local_kernel_manager())
    except papermill.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except TimeoutError as exc:
        error = f"a cell ran over {cell_timeout} s: {exc}"
    wall = time.perf_counter() - started
    if output.exists():
        hide_injected_parameters(output)

    record = {
        "chapter": name, "profile": profile, "device": device, "seed": seed,
        "status": "failed" if error else "ok", "error": error,
        "wall_seconds": round(wall, 1), "peak_memory_mb": round(_peak_child_rss_mb(), 1),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
    }
    run_file = claims.results_dir() / f"{name}.run.json"
    run_file.parent.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(record, indent=1) + "\n")
    if error:
        raise ChapterFailed(f"{name} ({profile}) failed at {error}\n  the executed notebook, with the "
                            f"traceback, is {output}")
    return record


def hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell so that the book does not show it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and HIDDEN_TAG not in tags:
            tags.append(HIDDEN_TAG)
    nbformat.write(nb, path)


def environment() -> dict:
    """The versions and machine that produced the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("tradeoffs", "torch", "torchvision", "numpy", "scipy", "matplotlib", "papermill",
                    "jupyter-book"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "cpu_model": _cpu_model(), "memory_gb": _memory_gb(),
            "gpus": _gpus(), "versions": versions}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[str]:
    """The CUDA GPUs torch sees (what ``device="auto"`` picks from); torch is already imported by `execute`."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _local_kernel_manager():
    """A kernel manager whose kernel talks over local IPC sockets, not TCP ports (POSIX only)."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    if os.name != "posix":
        return AsyncKernelManager

    class LocalKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

    return LocalKernelManager


def _peak_child_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeoffs.book", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute one chapter into book/chapters/")
    run.add_argument("name", help="chapter, e.g. 01_gaussian_tradeoff")
    run.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)}")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--seed", type=int, default=0)
    commands.add_parser("pages", help="render the scorecard and environment pages")
    commands.add_parser("list", help="print the chapter names")
    commands.add_parser("times", help="print each executed chapter's wall time and peak memory")
    args = parser.parse_args(argv)
    if not NOTEBOOKS.is_dir():
        print(f"error: no notebooks/ in {ROOT}; run this from the repository root (as the Makefile does)",
              file=sys.stderr)
        return 2

    try:
        if args.command == "run":
            r = execute(args.name, args.profile, args.device, args.seed)
            print(f"{args.name}: {r['wall_seconds']:.0f} s, peak {r['peak_memory_mb']:.0f} MB -> {CHAPTERS / args.name}.ipynb")
        elif args.command == "pages":
            for path in pages.write_pages():
                print(f"wrote {path}")
        elif args.command == "times":
            print(pages.times_text())
        else:
            print("\n".join(chapter_names()))
    except (ChapterFailed, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
