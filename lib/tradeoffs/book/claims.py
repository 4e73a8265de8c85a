"""The claims record: every number a paper printed or an effect it reported that a chapter reproduces goes
through `claim`.

The paper's numbers are data, one CSV file per paper in ``tradeoffs/book/references/`` (columns
``id, source, setting, relation, value, unit, kind, tol, basis``). A chapter computes its own value, a number
or a :class:`tradeoffs.stats.Estimate` (a measured value with its 95% confidence interval), and calls

    claim("trades.table4.mnist.beta1.natural", 100 * stats.proportion(correct))

which decides the status by the rules below, glues the value for the prose (myst-nb ``glue``, under the id,
with ``<id>.paper``, ``<id>.lo``, ``<id>.hi``, ``<id>.status`` and ``<id>.reason``), and appends the record
entry to ``<results dir>/<chapter>.json`` (results dir from ``TRADEOFFS_RESULTS``, default ``book/_results``).

Three kinds of claim (the reference's ``kind``):

* ``printed``: a number the paper printed. Relation ``=``: reproduced when the paper's value lies within
  ``tol`` of ours, or, for a measured value, within ``tol`` of our 95% interval (``tol`` is then the budget
  gap the reference allows beyond sampling error). A bound (``>``, ``<`` ...) must hold for the whole
  interval.
* ``theorem``: a stated result checked numerically (the share of a grid where a bound holds, a closed form
  against Monte Carlo). As ``printed``; a bound checked on a measured value is ``differs`` only when the whole
  interval violates it, and ``inconclusive`` when the value does but the interval reaches the allowed side.
* ``direction``: the effect the paper reports ("A beats B": a difference ``> 0``). Reproduced only when the
  whole 95% interval of the difference lies on the paper's side of the bound (``>=`` is judged as ``>``: an
  effect is shown only when zero is excluded), ``differs`` when it lies wholly on the other side, else
  ``inconclusive``. A direction judged on a number without an interval (a property of one trained model, not a
  sample) is decided on the number, and the reason says so.

Every reference states its ``tol`` and, in ``basis``, why: the printed precision for analytic numbers (half a
unit of the last printed digit, or the sum of two such for a printed difference), the paper's own spread or
the effect the number judges for empirical ones. A tolerance is never wider than the effect it judges.

A record opened with ``dry_run=True`` (a paper-profile dry run: the paper's code path at a tiny budget) marks
every computed claim ``dry-run``: shown, never counted as reproduced.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path

from tradeoffs import paths, stats
from tradeoffs.stats import Estimate

RESULTS_ENV = "TRADEOFFS_RESULTS"
KINDS = ("printed", "theorem", "direction")
STATUSES = ("reproduced", "differs", "inconclusive", "not-run", "dry-run")
RELATIONS = {  # how `ours` is compared with the paper's number
    "=": lambda ours, paper, tol: abs(ours - paper) <= tol,
    ">": lambda ours, paper, tol: ours > paper,
    "<": lambda ours, paper, tol: ours < paper,
    ">=": lambda ours, paper, tol: ours >= paper,
    "<=": lambda ours, paper, tol: ours <= paper,
}
UPWARD = (">", ">=")


@dataclass(frozen=True)
class Reference:
    """A number as the paper printed it (`value` with `relation`: "=", or a bound such as ">" 99), the kind of
    claim it is, the tolerance `tol` it is judged with and the `basis` of that tolerance."""

    id: str
    source: str
    setting: str
    relation: str
    value: float
    unit: str
    kind: str
    tol: float | None  # None: the chapter passes it (a tolerance that depends on the run, named in `basis`)
    basis: str


@dataclass(frozen=True)
class NotRun:
    """A value this profile does not compute, and why: ``claim(id, NotRun("CIFAR-10 is offline"))``
    records the claim as not run with that reason (as ``claim(id, None, why=...)``)."""

    why: str


@dataclass(frozen=True)
class Claim:
    """One row of the claims record. `interval` is our 95% interval ([lo, hi], None for an exact number),
    `method` its method and `n` the number of points it rests on."""

    id: str
    kind: str
    paper: float
    ours: float | None
    interval: list[float] | None
    method: str
    n: int | None
    tol: float
    basis: str
    unit: str
    relation: str
    status: str
    reason: str
    profile: str
    source: str
    setting: str


@cache
def references() -> dict[str, Reference]:
    """Every paper's reference numbers, by claim id, read from the package's ``references/*.csv``."""
    table: dict[str, Reference] = {}
    for path in sorted(resources.files("tradeoffs.book").joinpath("references").iterdir()):
        if not path.name.endswith(".csv"):
            continue
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                tol = float(row["tol"]) if row["tol"] else None
                ref = Reference(**{**row, "value": float(row["value"]), "tol": tol})
                if ref.id in table:
                    raise ValueError(f"claim id {ref.id!r} appears twice in {path.name}")
                if ref.relation not in RELATIONS:
                    raise ValueError(f"{path.name}: {ref.id}: relation {ref.relation!r} not in "
                                     f"{list(RELATIONS)}")
                if ref.kind not in KINDS:
                    raise ValueError(f"{path.name}: {ref.id}: kind {ref.kind!r} not in {list(KINDS)}")
                if ref.kind == "direction" and ref.relation == "=":
                    raise ValueError(f"{path.name}: {ref.id}: a direction claim needs a bound (> 0), not '='")
                if (ref.tol or 0) < 0 or (ref.tol is not None and ref.relation != "=") or not ref.basis:
                    raise ValueError(f"{path.name}: {ref.id}: tol must be >= 0, only for '=', with its basis")
                table[ref.id] = ref
    return table


def results_dir() -> Path:
    """Where the claims records go: ``$TRADEOFFS_RESULTS``, else ``book/_results`` in the repository checkout
    the package runs from, else ``~/.cache/tradeoffs/book/_results`` (``tradeoffs.paths``; never the working
    directory)."""
    return paths.resolve(RESULTS_ENV, "book/_results")


_active: dict = {}  # the chapter whose record `claim` appends to, its profile, path and dry-run flag


def start_record(chapter: str, profile: str, *, dry_run: bool = False) -> Path:
    """Begin a fresh claims record for `chapter` (an earlier one of the same chapter is replaced).
    ``dry_run``: a dry run of the profile (tiny budget): every computed claim is recorded as ``dry-run``."""
    path = results_dir() / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, {"chapter": chapter, "profile": profile, "dry_run": dry_run, "claims": []})
    _active.clear()
    _active.update(chapter=chapter, profile=profile, path=str(path), dry_run=dry_run)
    return path


def claim(id: str, ours: float | Estimate | NotRun | None, *, tol: float | None = None,
          why: str | None = None) -> Claim:
    """Record our value of the paper's number `id`, decide its status and glue it for the prose.

    `ours` is an exact number, an :class:`~tradeoffs.stats.Estimate` for a measured one (an accuracy on n
    test points, a difference of two models on the same points), or None / NaN when this profile could not
    compute it (e.g. CIFAR-10 offline): the claim is then recorded as ``not-run``, never left out.
    The tolerance is the reference's; `tol` is passed only for a reference whose tolerance the run decides
    (an empty ``tol`` in the CSV, its rule in ``basis``), and is refused for any other. `why` says why a
    claim is not run (its reason, shown on the one line a claims table gives the claims not run); a
    :class:`NotRun` value carries it.
    """
    if isinstance(ours, NotRun):
        ours, why = None, ours.why
    if not _active:
        raise RuntimeError("no claims record is open: call tradeoffs.book.runtime.start_chapter(...) first")
    ref = references().get(id)
    if ref is None:
        raise KeyError(f"{id!r} is not in the reference numbers (tradeoffs/book/references/*.csv); "
                       "add it there")
    if (tol is None) != (ref.tol is not None or ref.relation != "="):
        raise ValueError(f"{id}: the tolerance is the reference's ({ref.tol}); pass tol= only where "
                         "the CSV leaves it to the run")
    ref = replace(ref, tol=ref.tol if tol is None else float(tol))
    estimate = ours if isinstance(ours, Estimate) else None
    value = None if ours is None else float(ours)
    if value is not None and math.isnan(value):
        value, estimate = None, None
    status, reason = decide(ref, value, estimate)
    if status == "not-run" and why:
        reason = why
    if value is not None and _active.get("dry_run"):
        status, reason = "dry-run", f"dry run (tiny budget, code path only), never a reproduction; {reason}"
    record = Claim(id=id, kind=ref.kind, paper=ref.value, ours=value,
                   interval=None if estimate is None else [estimate.lo, estimate.hi],
                   method="" if estimate is None else estimate.method,
                   n=None if estimate is None else estimate.n, tol=ref.tol or 0.0, basis=ref.basis,
                   unit=ref.unit, relation=ref.relation, status=status, reason=reason,
                   profile=_active["profile"], source=ref.source, setting=ref.setting)
    _append(Path(_active["path"]), record)
    glue(id, math.nan if value is None else value)
    glue(f"{id}.paper", ref.value)
    glue(f"{id}.lo", math.nan if estimate is None else estimate.lo)
    glue(f"{id}.hi", math.nan if estimate is None else estimate.hi)
    glue(f"{id}.status", status.replace("-", " "))
    glue(f"{id}.reason", reason)
    return record


def percent(value: float | None, n: int) -> Estimate | None:
    """An accuracy or risk given in percent, measured on `n` points, with its Wilson interval (in percent);
    None stays None (not run)."""
    return None if value is None else 100 * stats.proportion(value / 100, n)


def percent_difference(a: float | None, b: float | None, n: int) -> Estimate | None:
    """a - b for two percentages each measured on `n` points, in points, with Newcombe's unpaired interval:
    conservative for two models on the same points (use ``stats.paired_difference`` where the per-example
    outcomes are kept)."""
    if a is None or b is None:
        return None
    return 100 * stats.difference(a / 100, n, b / 100, n)


def decide(ref: Reference, value: float | None, estimate: Estimate | None = None) -> tuple[str, str]:
    """The status of our `value` (with its interval `estimate`, if measured) against `ref`, and a one-line
    reason; the rules are the module docstring's."""
    if value is None:
        return "not-run", "not computed in this profile"
    paper, tol, rel, unit = ref.value, ref.tol or 0.0, ref.relation, ref.unit
    p = format_value(paper, unit, printed=True)
    if rel == "=":
        if estimate is None:
            gap = value - paper
            ok = abs(gap) <= tol
            if abs(gap) < 1e-6 * max(1.0, abs(paper)) and ok:  # float noise is no difference
                return "reproduced", "ours = paper"
            difference = format_value(gap, unit, signed=True, small=True)
            return ("reproduced" if ok else "differs",
                    f"ours - paper = {difference}, {'within' if ok else 'outside'} "
                    f"{_tolerance_text(tol, unit)}")
        lo, hi = estimate.lo - tol, estimate.hi + tol
        ok = lo <= paper <= hi
        where = "inside" if ok else ("below" if paper < lo else "above")
        widened = f" widened by tol {format_value(tol, unit, small=True)}" if tol else ""
        return ("reproduced" if ok else "differs", f"paper {p} {where} our 95% interval{widened}")
    holds = RELATIONS[rel](value, paper, 0.0)
    if estimate is None:
        note = "" if ref.kind != "direction" else " (no interval: judged on the number itself)"
        return ("reproduced" if holds else "differs",
                f"ours {format_value(value, unit)} {'satisfies' if holds else 'violates'} {rel} {p}{note}")
    upward = rel in UPWARD
    near, far = (estimate.lo, estimate.hi) if upward else (estimate.hi, estimate.lo)
    strict = ref.kind == "direction" or rel in (">", "<")
    wholly_holds = (near > paper if upward else near < paper) if strict else RELATIONS[rel](near, paper, 0.0)
    wholly_fails = (far <= paper if upward else far >= paper) if strict else (far < paper if upward
                                                                              else far > paper)
    side = f"{'>' if upward else '<'} {p}"
    if wholly_holds:
        return "reproduced", f"whole 95% interval {side}"
    if ref.kind == "printed":
        return "differs", f"95% interval not wholly {side}"
    if wholly_fails:
        return "differs", f"whole 95% interval on the other side of {p}"
    if ref.kind == "theorem" and holds:
        return "reproduced", f"ours satisfies {rel} {p}; the 95% interval reaches the other side"
    return "inconclusive", f"95% interval contains {p}: the effect is not resolved on {estimate.n:,} points"


def load_record(path: Path) -> dict:
    """Read one chapter's claims record, checking its shape."""
    record = json.loads(Path(path).read_text())
    missing = {"chapter", "profile", "claims"} - set(record)
    if missing:
        raise ValueError(f"{path} is not a claims record (missing {sorted(missing)})")
    known = references()
    for c in record["claims"]:  # a record written before kinds and intervals: rerun the chapter to fill them
        c.setdefault("kind", known[c["id"]].kind if c["id"] in known else "")
        for field in ("interval", "n"):
            c.setdefault(field, None)
        c.setdefault("method", "")
        c.setdefault("reason", "recorded by an older version of the book: rerun the chapter")
    return record


# ----------------------------------------------------------------------------------------- rendering


def format_value(value: float | None, unit: str, *, signed: bool = False, small: bool = False,
                 printed: bool = False) -> str:
    """A number with its unit: percentages and points with 2 decimals (0 and 100 without, below 0.01 two
    significant digits), risks and losses with 4 significant digits, ratios with 2 decimals; float noise
    below 1e-9 shows as 0. ``small``: a
    tolerance or a gap, with 3 significant digits whatever the unit; ``printed``: a paper's number, as short
    as it was printed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not run"
    if abs(value) < 1e-9:
        value = 0.0
    sign = "+" if signed and value != 0 else ""
    integral = value == round(value)
    if printed:
        number = f"{value:{sign}g}"
    elif small:
        number = f"{value:{sign}.3g}"
    elif unit.startswith("%") or unit in ("pp", "points"):
        if integral and value in (0, 100):
            number = f"{value:{sign}.0f}"
        elif abs(value) < 0.01:  # 2 decimals would show 0: two significant digits instead
            number = f"{value:{sign}.2g}"
        else:
            number = f"{value:{sign}.2f}"
    elif unit == "x":
        number = f"{value:{sign}.2f}"
    elif unit == "models":
        number = f"{value:{sign}.0f}"
    else:
        number = f"{value:{sign}.4g}"
    if unit.startswith("%"):
        return number + unit  # "99.28%", "100% of d"
    if unit == "x":
        return number + "×"
    return f"{number} {unit}" if unit else number


def format_ours(c: dict) -> str:
    """Our value, with its 95% interval and number of points when it was measured on a sample."""
    ours = format_value(c["ours"], c["unit"])
    if c["ours"] is None or c.get("interval") is None:
        return ours
    suffix = "×" if c["unit"] == "x" else c["unit"]
    lo, hi = (format_value(v, c["unit"]).removesuffix(suffix).rstrip() for v in c["interval"])
    return f"{ours} [{lo}, {hi}] (n = {c['n']:,})"


def format_tolerance(c: dict) -> str:
    """The tolerance the claim was judged with ("± 0.005%"; for a measured value, the gap allowed beyond its
    interval), "bound" for a bound (judged as printed, or on the whole interval)."""
    if c["relation"] != "=":
        return "bound"
    if c.get("interval") is not None:
        if c["tol"] == 0:
            return "interval only"
        return f"interval ± {format_value(c['tol'], c['unit'], small=True)}"
    return _tolerance_text(c["tol"], c["unit"])


def _tolerance_text(tol: float, unit: str) -> str:
    if tol == 0:
        return "exact"
    return "float rounding" if tol <= 1e-9 else f"± {format_value(tol, unit, small=True)}"


def claims_table(claims: list[Claim | dict], *, full_ids: bool = False, collapse_not_run: bool = True) -> str:
    """A Markdown table of claims: kind, paper, ours with its 95% interval, the tolerance, status and reason.

    In a chapter the ids' common prefix is shown once, above the table, and the claims not run are one line
    below it that says why (their reasons); ``full_ids`` (the scorecard) keeps every id whole and
    ``collapse_not_run=False`` keeps a row for every claim.
    """
    from tradeoffs.book.style import markdown_table

    claims = [asdict(c) if isinstance(c, Claim) else c for c in claims]
    prefix = "" if full_ids or len(claims) < 2 else _common_prefix([c["id"] for c in claims])
    shown = [c for c in claims if not (collapse_not_run and c["status"] == "not-run")]
    header = ["claim", "kind", "source", "paper", "ours [95% interval]", "tolerance", "status", "reason"]
    rows = []
    for c in shown:
        relation = "" if c["relation"] == "=" else c["relation"] + " "
        paper = f"{relation}{format_value(c['paper'], c['unit'], printed=True)}"
        rows.append([f"`{c['id'][len(prefix):]}`", c.get("kind", ""), c["source"], paper, format_ours(c),
                     format_tolerance(c), _badge(c["status"]), c.get("reason", "")])
    parts = [f"Claims `{prefix}*`:"] if prefix else []
    if rows:
        parts.append(markdown_table(header, rows))
    parts += not_run_lines([c for c in claims if c not in shown], prefix)
    return "\n\n".join(parts)


def not_run_lines(claims: list[dict], prefix: str = "") -> list[str]:
    """One line per reason for the claims not run: how many, why, and their ids (less `prefix`)."""
    by_reason: dict[str, list[str]] = {}
    for c in claims:
        reason = c.get("reason") or "not computed in this profile"
        by_reason.setdefault(reason, []).append(c["id"][len(prefix):])
    lines = []
    for reason, ids in by_reason.items():
        profile = claims[0].get("profile", "")
        where = f" in the `{profile}` profile" if profile else ""
        count = "1 claim" if len(ids) == 1 else f"{len(ids)} claims"
        lines.append(f"*Not run*{where} ({count}; {reason.rstrip('.')}): "
                     + ", ".join(f"`{i}`" for i in ids) + ".")
    return lines


def show(claims: list[Claim | dict], **options) -> None:
    """Show a claims table (:func:`claims_table`) in the notebook."""
    from IPython.display import Markdown, display

    display(Markdown(claims_table(claims, **options)))


MARKS = {"reproduced": "✓", "differs": "✗", "inconclusive": "?", "not-run": "not run", "dry-run": "dry run"}
"""The status mark of a cell of a table in the paper's shape."""


def paper_cell(c: Claim | dict, decimals: int | None = None) -> str:
    """ "ours (paper) mark": our value at the paper's printed precision (or `decimals`), the paper's number
    and the status mark (``MARKS``); "not run (paper)" for a claim this profile did not compute."""
    c = asdict(c) if isinstance(c, Claim) else c
    decimals = _paper_decimals(c) if decimals is None else decimals
    relation = "" if c["relation"] == "=" else c["relation"] + " "
    paper = relation + _number(c["paper"], decimals)
    if c["ours"] is None:
        return f"not run ({paper})"
    return f"{_number(c['ours'], decimals)} ({paper}) {MARKS[c['status']]}"


def paper_table(cells: dict[tuple[str, str], Claim | dict], *, corner: str = "", note: str = "") -> str:
    """A claims table in the paper's shape: `cells` maps (row label, column label) to a claim, in order; each
    cell is :func:`paper_cell`. Below it: the unit (when every claim has the same), what the marks mean, and
    the full claims table (interval, tolerance, reason) in a collapsed block. Every number of a column has
    the precision of the most precise number the paper printed in it (8.50 beside 8.62, not 8.5)."""
    from tradeoffs.book.style import markdown_table

    cells = {key: asdict(c) if isinstance(c, Claim) else c for key, c in cells.items()}
    claims = list(cells.values())
    rows = list(dict.fromkeys(r for r, _ in cells))
    columns = list(dict.fromkeys(col for _, col in cells))
    decimals = {col: max(_paper_decimals(c) for (_, k), c in cells.items() if k == col) for col in columns}
    skipped = [r for r in rows if all(c["status"] == "not-run" for (row, _), c in cells.items() if row == r)]
    body = [[r, *(paper_cell(cells[(r, col)], decimals[col]) if (r, col) in cells else "" for col in columns)]
            for r in rows if r not in skipped]
    if skipped:  # rows this profile did not run at all: one line, with the reason, not a row of "not run"
        reasons = "; ".join(dict.fromkeys(c.get("reason", "") for (r, _), c in cells.items() if r in skipped))
        note = (note + " " if note else "") + f"Rows not run ({reasons}): {', '.join(skipped)}."
    units = {c["unit"] for c in claims}
    unit = f"values in {units.pop()}; " if len(units) == 1 and "" not in units else ""
    legend = (f"{note + ' ' if note else ''}Each cell: ours (paper), {unit}✓ reproduced, ✗ differs, "
              "? inconclusive (the rule and tolerance of each are in the table below).")
    table = [markdown_table([corner, *columns], body)] if body else []
    return "\n\n".join([*table, legend,
                        ":::{dropdown} How each cell was judged: intervals, tolerances, reasons",
                        claims_table(claims), ":::"])


def show_paper_table(cells: dict[tuple[str, str], Claim | dict], **options) -> None:
    """Show :func:`paper_table` in the notebook."""
    from IPython.display import Markdown, display

    display(Markdown(paper_table(cells, **options)))


def _paper_decimals(c: dict) -> int:
    """The decimals the paper printed its number with (at least those its tolerance implies, half a unit of
    the last printed digit), at most 4."""
    printed = f"{c['paper']:g}"
    decimals = len(printed.split(".")[1]) if "." in printed and "e" not in printed else 0
    tol = c.get("tol") or 0
    if c["relation"] == "=" and 0 < tol < 0.5 and c.get("interval") is None:
        decimals = max(decimals, math.ceil(-math.log10(2 * tol) - 1e-9))
    return min(decimals, 4)


def _number(value: float, decimals: int) -> str:
    if abs(value) < 0.5 * 10 ** -decimals:
        value = 0.0  # no "-0.00", no float noise
    return f"{value:.{decimals}f}"


def _common_prefix(ids: list[str]) -> str:
    """The longest common prefix of the ids that ends at a dot ('' if none)."""
    prefix = os.path.commonprefix(ids)
    return prefix[: prefix.rfind(".") + 1]


def _badge(status: str) -> str:
    return {"reproduced": "reproduced", "differs": "**differs**", "inconclusive": "*inconclusive*",
            "not-run": "not run", "dry-run": "dry run"}[status]


def _append(path: Path, record: Claim) -> None:
    data = load_record(path)
    data["claims"] = [c for c in data["claims"] if c["id"] != record.id] + [asdict(record)]
    _write(path, data)


def _write(path: Path, data: dict) -> None:
    """Atomically, through a temporary file of this writer's own: a reader (or a second process writing the
    same record) never sees a half-written record."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=1) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def glue(key: str, value) -> None:
    """Glue for the book's prose; a no-op outside a kernel or where myst-nb is missing (e.g. Colab)."""
    try:
        from IPython import get_ipython
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if get_ipython() is not None:
        myst_glue(key, value.item() if hasattr(value, "item") else value, display=False)  # numpy -> Python
