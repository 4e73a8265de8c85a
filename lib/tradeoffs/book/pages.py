"""The book's generated pages: the Scorecard (every chapter's claims) and the Environment page (what each
execution cost, the machine, the versions), rendered from the results directory; and the per-chapter times
``make book`` prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tradeoffs import paths
from tradeoffs.book import claims
from tradeoffs.book.style import markdown_table

STATUS_LABELS = {"reproduced": "reproduced", "differs": "differs", "inconclusive": "inconclusive",
                 "not-run": "not run", "dry-run": "dry run"}


def write_pages(results: Path | None = None, out: Path | None = None, toc: Path | None = None) -> list[Path]:
    """Render the Scorecard and the Environment pages from the results directory into `out` (default: the
    checkout's ``book/_generated``).

    `toc` (default: ``_toc.yml`` two levels above `out`, the book's root) says which chapters the
    book has: each gets a row, linked to its page, executed or not.
    """
    out = out or paths.require_checkout("rendering the book's pages") / "book" / "_generated"
    results = results or claims.results_dir()
    records = [claims.load_record(p) for p in sorted(results.glob("*.json"))
               if not p.name.endswith(".run.json")]
    runs = [json.loads(p.read_text()) for p in sorted(results.glob("*.run.json"))]
    chapters = toc_chapters(toc or out.parent.parent / "_toc.yml")
    out.mkdir(parents=True, exist_ok=True)
    scorecard, status = out / "scorecard.md", out / "status.md"
    scorecard.write_text(scorecard_markdown(records, chapters))
    status.write_text(status_markdown(runs, chapters))
    return [scorecard, status]


def toc_chapters(toc: Path) -> dict[str, str]:
    """The chapters in the book's table of contents, in order: name -> document
    (``book/chapters/NN_name``)."""
    if not toc.exists():
        return {}
    docs = re.findall(r"^\s*-?\s*file:\s*[\"']?(book/chapters/[0-9][0-9]_[\w-]+)", toc.read_text(),
                      re.MULTILINE)
    return {doc.rsplit("/", 1)[1]: doc for doc in docs}


def _chapter_link(name: str, chapters: dict[str, str]) -> str:
    """A link to the chapter's page (its title), or the bare name when the book has no such page."""
    return f"{{doc}}`/{chapters[name]}`" if name in chapters else f"`{name}`"


def _ordered(items: list[dict], chapters: dict[str, str]) -> list[dict]:
    """Book order first (the toc), then any other chapter by name."""
    order = {name: i for i, name in enumerate(chapters)}
    return sorted(items, key=lambda r: (order.get(r["chapter"], len(order)), r["chapter"]))


def _counts(claims_: list[dict]) -> list[int]:
    return [sum(c["status"] == s for c in claims_) for s in claims.STATUSES]


def _by_kind(claims_: list[dict]) -> str:
    """ "12 printed (5 reproduced), 9 theorem (9 reproduced), ..." for the kinds present."""
    parts = []
    for kind in claims.KINDS:
        of_kind = [c for c in claims_ if c.get("kind") == kind]
        if of_kind:
            parts.append(f"{len(of_kind)} {kind} ({sum(c['status'] == 'reproduced' for c in of_kind)} "
                         "reproduced)")
    return ", ".join(parts)


def scorecard_markdown(records: list[dict], chapters: dict[str, str] | None = None) -> str:
    """Per-chapter counts by status, the counts by kind of claim (printed number, theorem check, direction of
    an effect), then every claim of every chapter (one table per chapter) with its kind, our value and 95%
    interval, the tolerance and the reason for its status.

    The page's script (``_static/scorecard.js``) turns the empty ``claims-filter`` block into buttons
    that show only the claims of one status or one kind; without it every row stays visible.
    """
    chapters = chapters or {}
    records = _ordered(records, chapters)
    executed = {r["chapter"] for r in records}
    missing = [name for name in chapters if name not in executed]
    if not records:
        return "No chapter has been executed yet: run `make book`.\n"
    summary, totals = [], [0] * (1 + len(claims.STATUSES))
    for r in records:
        counts = [len(r["claims"]), *_counts(r["claims"])]
        totals = [t + c for t, c in zip(totals, counts)]
        profile = r["profile"] + (" (dry run)" if r.get("dry_run") else "")
        summary.append([_chapter_link(r["chapter"], chapters), profile, *counts])
    summary += [[f"`{name}`", "not executed", *[""] * (1 + len(claims.STATUSES))] for name in missing]
    summary.append(["**all chapters**", ", ".join(sorted({r["profile"] for r in records})), *totals])
    header = ["chapter", "profile", "claims", *(STATUS_LABELS[s] for s in claims.STATUSES)]
    everything = [c for r in records for c in r["claims"]]
    kinds = [[f"`{kind}`", sum(c.get("kind") == kind for c in everything),
              *_counts([c for c in everything if c.get("kind") == kind])] for kind in claims.KINDS]
    lines = [markdown_table(header, summary), "", "By kind of claim (all chapters):", "",
             markdown_table(["kind", "claims", *(STATUS_LABELS[s] for s in claims.STATUSES)], kinds), "",
             '<div id="claims-filter" class="claims-filter"></div>']
    for r in records:
        counts = ", ".join(f"{n} {STATUS_LABELS[s]}" for s, n in zip(claims.STATUSES, _counts(r["claims"])))
        dry = " (dry run: no claim counts as reproduced)" if r.get("dry_run") else ""
        intro = (f"{_chapter_link(r['chapter'], chapters)}, profile `{r['profile']}`{dry}: "
                 f"{len(r['claims'])} claims ({counts}); {_by_kind(r['claims'])}.")
        lines += ["", f"## {r['chapter']}", "", intro, ""]
        lines.append(claims.claims_table(r["claims"], full_ids=True, collapse_not_run=False)
                     if r["claims"] else "No claim recorded.")
    if missing:
        lines += ["", "## Not executed", "",
                  "These chapters have no claims record yet (`make book` executes them): "
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
             f"{peak['peak_memory_mb']:.0f} MB (`{peak['chapter']}`). Wall time is the whole "
             "papermill run of a chapter (kernel start included); peak memory is the largest resident set "
             "of its kernel process."]
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
            seen.setdefault(r["environment"]["versions"].get(package, "not recorded"),
                            []).append(r["chapter"])
        cell = next(iter(seen)) if len(seen) == 1 else "; ".join(
            f"{v} ({', '.join(names)})" for v, names in seen.items())
        version_rows.append([package, cell])
    lines += ["", "## Package versions", "", "The versions the chapters were executed with (where chapters "
              "differ, each version is followed by its chapters).", "",
              markdown_table(["package", "version"], version_rows)]
    return "\n".join(lines + ["", paper_cost_markdown()]) + "\n"


def paper_cost_markdown(measurement: dict | None = None) -> str:
    """The `paper` profile on a GPU: each chapter's network work and GPU hours (``tradeoffs.book.cost``),
    measured where ``scripts/gpu_check.sh`` ran (``book/gpu_check.json``), else estimated; and what that
    script measured."""
    from tradeoffs.book import cost

    measurement = cost.gpu_measurement() if measurement is None else measurement
    measured = measurement if measurement and not measurement.get("dry_run") else None
    lines = ["## The paper profile on a GPU", ""]
    if measured:
        lines += [(f"Measured by `scripts/gpu_check.sh` on {measured['gpu']} ({measured['date']}, torch "
                   f"{measured['torch']}): one training step of each network with the paper's objective and "
                   "batch size."),
                  "", markdown_table(["model", "objective", "batch", "ms per image pass", "epoch"],
                                     [[f"`{name}`", r["objective"], r["batch_size"],
                                       f"{1e3 * r['seconds_per_pass']:.3g}",
                                       f"{_duration(r['epoch_seconds'])} ({r['epoch']})"]
                                      for name, r in measured["runs"].items()])]
        if measured.get("chapters"):
            lines += ["", "The chapters' MNIST parts at the paper's settings (CIFAR-10 off), on that GPU:",
                      "", markdown_table(["chapter", "status", "wall time"],
                                     [[f"`{name}`", r["status"], _duration(r["wall_seconds"])]
                                      for name, r in measured["chapters"].items()])]
    else:
        lines += [("No GPU run is recorded (`scripts/gpu_check.sh` writes `book/gpu_check.json`), so the "
                   "hours below are **estimates**: the networks' work counted from the paper's schedule, at "
                   "the efficiency measured on a CPU applied to a GPU's fp32 peak (`tradeoffs.book.cost`; an "
                   "order of magnitude, not a forecast).")]
    rows = []
    for chapter in cost.WORK:
        c = cost.paper_cost(chapter, measured or {})
        rows.append([f"`{chapter}`",
                     ", ".join(f"{arch} {n:.2g}" for arch, n in c.passes.items()) or "no network",
                     f"{c.flops / 1e15:,.3g}" if c.passes else "-",
                     f"{float(f'{c.gpu_hours:.2g}'):,g}" if c.passes else "-", c.basis])
    lines += ["", markdown_table(["chapter", "image passes (forward + backward)", "PFLOP", "GPU hours",
                                  "basis"], rows)]
    return "\n".join(lines)


def times_text(results: Path | None = None, toc: Path | None = None) -> str:
    """Each executed chapter's wall time and peak memory (from ``<results>/*.run.json``), in book order,
    with the total and the largest peak: what ``make book`` prints at the end."""
    results = results or claims.results_dir()
    runs = _ordered([json.loads(p.read_text()) for p in sorted(results.glob("*.run.json"))],
                    toc_chapters(toc or paths.require_checkout("the book's times") / "_toc.yml"))
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


