"""The book machine: execute a chapter with papermill, record what it cost, render the result pages.

Used by the Makefile, not by the chapters (any working directory of the checkout will do):

    python -m tradeoffs.book run 01_gaussian_tradeoff --profile cpu   # notebooks/01_*.md -> book/chapters/
    python -m tradeoffs.book pages                                     # book/_generated/*.md

A chapter executes from its MyST source, ``notebooks/<chapter>.md`` (jupytext reads it, papermill runs it);
the paired ``.ipynb`` is the copy Colab opens. Each run's kernel talks over sockets in a temporary directory
of its own, so any number of chapters can run at once. The executed notebook replaces
``book/chapters/<chapter>.ipynb`` (and its claims record the last one) only when every cell succeeded; a
failed one goes to ``book/chapters/<chapter>.failed.ipynb``. Each run writes
``<results dir>/<chapter>.run.json`` (wall time, peak memory of the kernel, versions, or the failure) beside
the chapter's claims record; ``pages`` turns both into the Scorecard and the Environment pages of the book.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from tradeoffs import dryrun, paths
from tradeoffs.book import claims, pages
from tradeoffs.book.profiles import CHAPTERS as CHAPTER_REGISTRY
from tradeoffs.book.profiles import PROFILES
from tradeoffs.progress import BATCH_ENV

HIDDEN_TAG = "remove-cell"  # Jupyter Book drops cells with this tag from the HTML
FAILED_SUFFIX = ".failed.ipynb"


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; the message says which cell and where the failed notebook is."""


def chapter_names() -> list[str]:
    """Every chapter, in book order (the registry, ``tradeoffs.book.profiles.CHAPTERS``)."""
    return list(CHAPTER_REGISTRY)


def notebooks_dir() -> Path:
    """The chapter sources, ``<checkout>/notebooks`` (a clear error outside a checkout)."""
    return paths.require_checkout("executing a chapter") / "notebooks"


def chapters_dir() -> Path:
    """Where executed chapters go, ``<checkout>/book/chapters``."""
    return paths.require_checkout("executing a chapter") / "book" / "chapters"


def execute(name: str, profile: str = "cpu", device: str = "auto", seed: int = 0,
            output_dir: Path | None = None, source_dir: Path | None = None, cell_timeout: int = 3600) -> dict:
    """Execute ``<source_dir>/<name>.md`` with papermill into ``<output_dir>/<name>.ipynb``; return the run
    record.

    The parameters are checked before the kernel starts. The output and the claims record replace the
    previous ones only when the run succeeded; a failure keeps the last good ones, writes
    ``<name>.failed.ipynb`` beside the notebook, records the failure in ``<name>.run.json`` and raises
    ChapterFailed. `output_dir` and `source_dir` default to the checkout's ``book/chapters`` and
    ``notebooks``.
    Call it once per process: the peak memory is the largest child process (the kernel) seen so far.
    A cell running longer than `cell_timeout` seconds fails the chapter (a hang must not block CI).
    """
    from tradeoffs.book.runtime import check_parameters  # imports torch: not needed by `pages`
    from tradeoffs.data import DATA_ENV, data_dir

    check_parameters(profile, device, seed)
    source = (source_dir or notebooks_dir()) / f"{name}.md"
    if not source.exists():
        raise FileNotFoundError(f"no chapter {source}; chapters: {', '.join(chapter_names())}")
    output_dir = output_dir or chapters_dir()
    output, failed = output_dir / f"{name}.ipynb", output_dir / f"{name}{FAILED_SUFFIX}"
    output_dir.mkdir(parents=True, exist_ok=True)
    results = claims.results_dir()
    results.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    with _partial_output(output_dir, name) as partial, tempfile.TemporaryDirectory(
            dir=results, prefix=f".{name}.running-") as staged:
        # The kernel runs in output_dir and inherits these absolute paths; its claims record is staged too.
        kernel_env = {claims.RESULTS_ENV: staged, DATA_ENV: str(data_dir()),
                      BATCH_ENV: "1"}  # text progress bars: no widgets while papermill executes
        with _environment(kernel_env):
            error = _run_papermill(source, partial, {"profile": profile, "device": device, "seed": seed},
                                   output_dir, cell_timeout)
        if partial.stat().st_size:
            hide_injected_parameters(partial)
        if error:
            os.replace(partial, failed)
        else:
            os.replace(partial, output)
            failed.unlink(missing_ok=True)
            for record in Path(staged).glob("*.json"):
                os.replace(record, results / record.name)
    wall = time.perf_counter() - started

    record = {
        "chapter": name, "profile": dryrun.label(profile), "device": device, "seed": seed,
        "status": "failed" if error else "ok", "error": error,
        "notebook": str(failed if error else output),
        "wall_seconds": round(wall, 1), "peak_memory_mb": round(_peak_child_rss_mb(), 1),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
    }
    _write_json_atomic(results / f"{name}.run.json", record)
    if error:
        kept = f"the last good run is still {output}" if output.exists() else f"{output} was not written"
        raise ChapterFailed(f"{name} ({profile}) failed at {error}\n  the failed notebook, with the "
                            f"traceback, is {failed}\n  {kept}")
    return record


def _run_papermill(source: Path, output: Path, parameters: dict, cwd: Path, cell_timeout: int) -> str | None:
    """Execute the MyST notebook `source` into `output` in a kernel of its own; the error, or None."""
    import jupytext
    import papermill  # only the book build needs these, not the library
    from nbclient.exceptions import DeadKernelError

    notebook = jupytext.read(source)
    notebook.metadata.pop("jupytext", None)  # the executed copy is a plain notebook, paired with nothing
    with tempfile.TemporaryDirectory(prefix="tradeoffs-kernel-") as sockets:
        try:
            papermill.execute_notebook(notebook, str(output), parameters=parameters, kernel_name="python3",
                                       progress_bar=sys.stderr.isatty(), cwd=str(cwd),
                                       execution_timeout=cell_timeout,
                                       kernel_manager_class=_private_kernel_manager(Path(sockets)))
        except papermill.PapermillExecutionError as exc:
            return f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
        except TimeoutError as exc:
            return f"a cell ran over {cell_timeout} s: {exc}"
        except DeadKernelError as exc:
            return f"the kernel died (out of memory?): {exc}"
    return None


@contextmanager
def _partial_output(output_dir: Path, name: str) -> Iterator[Path]:
    """A fresh hidden file in `output_dir` for papermill to write into (moved away on success or failure;
    removed if the run is interrupted)."""
    fd, partial = tempfile.mkstemp(dir=output_dir, prefix=f".{name}.", suffix=".running.ipynb")
    os.close(fd)
    os.chmod(partial, 0o644)  # mkstemp creates owner-only files
    try:
        yield Path(partial)
    finally:
        Path(partial).unlink(missing_ok=True)


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables (which the kernel inherits) for the duration of the block."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.update({key: value})


def _write_json_atomic(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record, indent=1) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


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
    """The CUDA GPUs torch sees (what ``device="auto"`` picks from); torch is already imported by
    `execute`."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _private_kernel_manager(sockets: Path):
    """A kernel manager whose kernel's connection file and IPC sockets live in the directory `sockets`, which
    no other run shares (jupyter_client's default IPC name, ``kernel-ipc-N`` in the working directory, is the
    same for every run there). Where IPC sockets are not available (not POSIX), TCP ports on loopback."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class PrivateKernelManager(AsyncKernelManager):
        @default("connection_file")
        def _default_connection_file(self):
            return str(sockets / "kernel.json")

        @default("transport")
        def _default_transport(self):
            return "ipc" if os.name == "posix" else "tcp"

        @default("ip")
        def _default_ip(self):
            return str(sockets / "kernel-ipc") if self.transport == "ipc" else "127.0.0.1"

    return PrivateKernelManager


def _peak_child_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _seed_argument(text: str) -> int:
    """``--seed``: a non-negative integer."""
    try:
        seed = int(text)
    except ValueError:
        seed = None
    if seed is None or seed < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer (0, 1, 2, ...), got {text!r}")
    return seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeoffs.book", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks/NAME.md into book/chapters/NAME.ipynb")
    run.add_argument("name", choices=chapter_names(), metavar="NAME", help=", ".join(chapter_names()))
    run.add_argument("--profile", default="cpu", choices=PROFILES, help=f"one of {', '.join(PROFILES)}")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--seed", type=_seed_argument, default=0, help="a non-negative integer (default 0)")
    commands.add_parser("pages", help="render the scorecard and environment pages")
    commands.add_parser("list", help="print the chapter names")
    commands.add_parser("times", help="print each executed chapter's wall time and peak memory")
    args = parser.parse_args(argv)

    try:
        if args.command == "run":
            r = execute(args.name, args.profile, args.device, args.seed)
            print(f"{args.name}: {r['wall_seconds']:.0f} s, peak {r['peak_memory_mb']:.0f} MB -> "
                  f"{r['notebook']}")
        elif args.command == "pages":
            for path in pages.write_pages():
                print(f"wrote {path}")
        elif args.command == "times":
            print(pages.times_text())
        else:
            print("\n".join(chapter_names()))
    except paths.NotACheckout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ChapterFailed, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
