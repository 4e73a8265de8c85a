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
import re
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tradeoffs.book import claims
from tradeoffs.book.style import markdown_table
from tradeoffs.book.profiles import CHAPTERS as CHAPTER_REGISTRY
from tradeoffs.book.profiles import PROFILES
from tradeoffs.progress import BATCH_ENV

ROOT = Path.cwd()
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = ROOT / "book" / "chapters"
GENERATED = ROOT / "book" / "_generated"
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

    from tradeoffs.data import DATA_ENV, data_dir  # these import torch: not needed by `pages`
    from tradeoffs.book.runtime import resolve_device

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


# -- the generated pages ----------------------------------------------------------------------------

STATUS_LABELS = {"reproduced": "reproduced", "differs": "differs", "not-run": "not run"}


def write_pages(results: Path | None = None, out: Path = GENERATED, toc: Path | None = None) -> list[Path]:
    """Render the Scorecard and the Environment pages from the results directory.

    `toc` (default: ``_toc.yml`` two levels above `out`, the book's root) says which chapters the
    book has: each gets a row, linked to its page, executed or not.
    """
    results = results or claims.results_dir()
    records = [claims.load_record(p) for p in sorted(results.glob("*.json")) if not p.name.endswith(".run.json")]
    runs = [json.loads(p.read_text()) for p in sorted(results.glob("*.run.json"))]
    chapters = toc_chapters(toc or out.parent.parent / "_toc.yml")
    out.mkdir(parents=True, exist_ok=True)
    scorecard, status = out / "scorecard.md", out / "status.md"
    scorecard.write_text(scorecard_markdown(records, chapters))
    status.write_text(status_markdown(runs, chapters))
    return [scorecard, status]


def toc_chapters(toc: Path) -> dict[str, str]:
    """The chapters in the book's table of contents, in order: name -> document (``book/chapters/NN_name``)."""
    if not toc.exists():
        return {}
    docs = re.findall(r"^\s*-?\s*file:\s*[\"']?(book/chapters/[0-9][0-9]_[\w-]+)", toc.read_text(), re.MULTILINE)
    return {doc.rsplit("/", 1)[1]: doc for doc in docs}


def _chapter_link(name: str, chapters: dict[str, str]) -> str:
    """A link to the chapter's page (its title), or the bare name when the book has no such page."""
    return f"{{doc}}`/{chapters[name]}`" if name in chapters else f"`{name}`"


def _ordered(items: list[dict], chapters: dict[str, str]) -> list[dict]:
    """Book order first (the toc), then any other chapter by name."""
    order = {name: i for i, name in enumerate(chapters)}
    return sorted(items, key=lambda r: (order.get(r["chapter"], len(order)), r["chapter"]))


def scorecard_markdown(records: list[dict], chapters: dict[str, str] | None = None) -> str:
    """Per-chapter counts by status, then every claim of every chapter (one table per chapter).

    The page's script (``_static/scorecard.js``) turns the empty ``claims-filter`` block into buttons
    that show only the claims of one status; without it every row stays visible.
    """
    chapters = chapters or {}
    records = _ordered(records, chapters)
    executed = {r["chapter"] for r in records}
    missing = [name for name in chapters if name not in executed]
    if not records:
        return "No chapter has been executed yet: run `make book`.\n"
    summary, totals = [], [0] * (1 + len(claims.STATUSES))
    for r in records:
        counts = [len(r["claims"])] + [sum(c["status"] == s for c in r["claims"]) for s in claims.STATUSES]
        totals = [t + c for t, c in zip(totals, counts)]
        summary.append([_chapter_link(r["chapter"], chapters), r["profile"], *counts])
    summary += [[f"`{name}`", "not executed", "", "", "", ""] for name in missing]  # no page to link to
    summary.append(["**all chapters**", ", ".join(sorted({r["profile"] for r in records})), *totals])
    header = ["chapter", "profile", "claims", *(STATUS_LABELS[s] for s in claims.STATUSES)]
    lines = [markdown_table(header, summary), "",
             '<div id="claims-filter" class="claims-filter"></div>']
    for r in records:
        counts = ", ".join(f"{sum(c['status'] == s for c in r['claims'])} {STATUS_LABELS[s]}"
                           for s in claims.STATUSES)
        lines += ["", f"## {r['chapter']}", "",
                  f"{_chapter_link(r['chapter'], chapters)}, profile `{r['profile']}`: "
                  f"{len(r['claims'])} claims ({counts}).", ""]
        lines.append(claims.claims_table(r["claims"], with_profile=True) if r["claims"] else "No claim recorded.")
    if missing:
        lines += ["", "## Not executed", "", "These chapters have no claims record yet (`make book` executes them): "
                  + ", ".join(f"`{name}`" for name in missing) + "."]
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    """12 s, 2 min 16 s, 1 h 02 min."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _device(run: dict) -> str:
    """The device a chapter asked for and, for ``auto``, the one it got (runs that recorded their GPUs)."""
    env = run.get("environment", {})
    if run["device"] != "auto" or "gpus" not in env:
        return run["device"]
    return f"auto: {'cuda (' + env['gpus'][0] + ')' if env['gpus'] else 'cpu'}"


def status_markdown(runs: list[dict], chapters: dict[str, str] | None = None) -> str:
    """Each chapter's last execution (profile, device, wall time, peak memory), the total, the machine
    and the package versions."""
    chapters = chapters or {}
    runs = _ordered(runs, chapters)
    if not runs:
        return "No chapter has been executed yet: run `make book`.\n"
    missing = [name for name in chapters if name not in {r["chapter"] for r in runs}]
    rows = [[_chapter_link(r["chapter"], chapters), r["profile"], _device(r), r["seed"],
             r["status"] if r["status"] == "ok" else f"**{r['status']}**",
             _duration(r["wall_seconds"]), f"{r['peak_memory_mb']:.0f} MB", r["finished_at"]] for r in runs]
    rows += [[f"`{name}`", "", "", "", "not executed", "", "", ""] for name in missing]
    total = sum(r["wall_seconds"] for r in runs)
    peak = max(runs, key=lambda r: r["peak_memory_mb"])
    rows.append(["**total**", ", ".join(sorted({r["profile"] for r in runs})), "", "", "",
                 f"**{_duration(total)}**", f"**{peak['peak_memory_mb']:.0f} MB** (largest)", ""])
    lines = [markdown_table(["chapter", "profile", "device", "seed", "status", "wall time", "peak memory",
                             "finished (UTC)"], rows), "",
             f"Executed chapters: {len(runs)}, {_duration(total)} in total; the largest peak memory is "
             f"{peak['peak_memory_mb']:.0f} MB (`{peak['chapter']}`). Wall time is the whole papermill run of a "
             f"chapter (kernel start included); peak memory is the largest resident set of its kernel process."]
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        lines += ["", "Failed chapters (their pages show the output up to the failing cell):", ""]
        lines += [f"* `{r['chapter']}`: {r['error']}" for r in failed]

    env = runs[-1]["environment"]
    machine = [["Python", env["python"]], ["platform", env["platform"]], ["CPUs", env["cpu_count"]]]
    if "cpu_model" in env:
        machine.append(["CPU model", env["cpu_model"]])
    if env.get("memory_gb"):
        machine.append(["memory", f"{env['memory_gb']:.0f} GB"])
    if "gpus" in env:
        machine.append(["GPUs", ", ".join(env["gpus"]) or "none"])
    lines += ["", "## Machine", "", f"Where the last chapter (`{runs[-1]['chapter']}`) ran"
              + ("" if all(r["environment"].get("platform") == env["platform"] for r in runs)
                 else "; the chapters ran on different machines") + ".", "",
              markdown_table(["machine", ""], machine)]

    packages = list(dict.fromkeys(p for r in runs for p in r["environment"]["versions"]))
    version_rows = []
    for package in packages:
        seen: dict[str, list[str]] = {}
        for r in runs:
            seen.setdefault(r["environment"]["versions"].get(package, "not recorded"), []).append(r["chapter"])
        cell = next(iter(seen)) if len(seen) == 1 else "; ".join(
            f"{v} ({', '.join(names)})" for v, names in seen.items())
        version_rows.append([package, cell])
    lines += ["", "## Package versions", "", "The versions the chapters were executed with (where chapters "
              "differ, each version is followed by its chapters).", "",
              markdown_table(["package", "version"], version_rows)]
    return "\n".join(lines) + "\n"


def times_text(results: Path | None = None, toc: Path | None = None) -> str:
    """Each executed chapter's wall time and peak memory (from ``<results>/*.run.json``), in book order,
    with the total and the largest peak: what ``make book`` prints at the end."""
    results = results or claims.results_dir()
    runs = _ordered([json.loads(p.read_text()) for p in sorted(results.glob("*.run.json"))],
                    toc_chapters(toc or ROOT / "_toc.yml"))
    if not runs:
        return f"no chapter has been executed yet ({results} holds no *.run.json)"
    width = max(len(r["chapter"]) for r in runs)
    lines = [f"{'chapter':<{width}}  {'profile':<7}  {'wall time':>12}  {'peak memory':>11}  status"]
    lines += [f"{r['chapter']:<{width}}  {r['profile']:<7}  {_duration(r['wall_seconds']):>12}  "
              f"{r['peak_memory_mb']:>8.0f} MB  {r['status']}" for r in runs]
    total = sum(r["wall_seconds"] for r in runs)
    peak = max(r["peak_memory_mb"] for r in runs)
    lines.append(f"{'total':<{width}}  {'':<7}  {_duration(total):>12}  {peak:>8.0f} MB  (largest peak)")
    return "\n".join(lines)


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
            for path in write_pages():
                print(f"wrote {path}")
        elif args.command == "times":
            print(times_text())
        else:
            print("\n".join(chapter_names()))
    except (ChapterFailed, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
