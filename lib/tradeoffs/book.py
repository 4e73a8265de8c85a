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

from tradeoffs import claims
from tradeoffs.plots import markdown_table
from tradeoffs.profiles import PROFILES
from tradeoffs.progress import BATCH_ENV

ROOT = Path.cwd()
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = ROOT / "book" / "chapters"
GENERATED = ROOT / "book" / "_generated"
HIDDEN_TAG = "remove-cell"  # Jupyter Book drops cells with this tag from the HTML


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; the message says which cell and where the partial output is."""


def chapter_names() -> list[str]:
    """Every chapter, in book order: the ``notebooks/NN_name.md`` sources."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.md"))


def execute(name: str, profile: str = "cpu", device: str = "auto", seed: int = 0,
            output_dir: Path = CHAPTERS, source_dir: Path = NOTEBOOKS, cell_timeout: int = 3600) -> dict:
    """Execute ``<source_dir>/<name>.ipynb`` with papermill into `output_dir`; return the run record.

    Call it once per process: the peak memory is the largest child process (the kernel) seen so far.
    A cell running longer than `cell_timeout` seconds fails the chapter (a hang must not block CI).
    """
    import papermill  # only the book build needs it, not the library

    from tradeoffs.data import DATA_ENV, data_dir  # these import torch: not needed by `pages`
    from tradeoffs.runtime import resolve_device

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
            "cpu_count": os.cpu_count(), "versions": versions}


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


# -- the generated pages ----------------------------------------------------------------------------


def write_pages(results: Path | None = None, out: Path = GENERATED) -> list[Path]:
    """Render the scorecard and the environment table from the results directory."""
    results = results or claims.results_dir()
    records = [claims.load_record(p) for p in sorted(results.glob("*.json")) if not p.name.endswith(".run.json")]
    runs = [json.loads(p.read_text()) for p in sorted(results.glob("*.run.json"))]
    out.mkdir(parents=True, exist_ok=True)
    scorecard, status = out / "scorecard.md", out / "status.md"
    scorecard.write_text(scorecard_markdown(records))
    status.write_text(status_markdown(runs))
    return [scorecard, status]


def scorecard_markdown(records: list[dict]) -> str:
    """One summary row per chapter, then every claim of every chapter."""
    if not records:
        return "No chapter has been executed yet: run `make book`.\n"
    summary = []
    for r in records:
        counts = [sum(c["status"] == s for c in r["claims"]) for s in claims.STATUSES]
        summary.append([r["chapter"], r["profile"], len(r["claims"]), *counts])
    lines = [markdown_table(["chapter", "profile", "claims", "reproduced", "differs", "not run"], summary)]
    for r in records:
        lines += ["", f"## {r['chapter']}", "", claims.claims_table(r["claims"], with_profile=True)]
    return "\n".join(lines) + "\n"


def status_markdown(runs: list[dict]) -> str:
    """Wall time and peak memory of each chapter's last execution, and the environment."""
    if not runs:
        return "No chapter has been executed yet: run `make book`.\n"
    rows = [[r["chapter"], r["profile"], r["device"], r["status"], f"{r['wall_seconds']:.0f} s",
             f"{r['peak_memory_mb']:.0f} MB", r["finished_at"]] for r in runs]
    total = sum(r["wall_seconds"] for r in runs)
    env = runs[-1]["environment"]
    return "\n".join([
        markdown_table(["chapter", "profile", "device", "status", "wall time", "peak memory", "finished (UTC)"], rows),
        "", f"Total: {total / 60:.1f} min.", "", f"Python {env['python']} on {env['platform']}, {env['cpu_count']} CPUs.",
        "", markdown_table(["package", "version"], list(env["versions"].items()))]) + "\n"


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
            for path in write_pages():
                print(f"wrote {path}")
        else:
            print("\n".join(chapter_names()))
    except (ChapterFailed, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
