"""The claims record: every number a paper printed that a chapter reproduces goes through `claim`.

The paper's numbers are data, one CSV file per paper in ``tradeoffs/book/references/`` (columns
``id, source, setting, relation, value, unit``). A chapter computes its own number and calls

    claim("gaussian.table1.sigma3_6.standard_training.std_error", ours, tol=0.01)

which compares it with the reference of the same id, glues it for the prose (myst-nb ``glue``,
under the id itself, and the paper's value under ``<id>.paper``), and appends
``{id, paper, ours, tol, unit, relation, status, profile, source, setting}`` to
``<results dir>/<chapter>.json`` (results dir from ``TRADEOFFS_RESULTS``, default ``book/_results``).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from tradeoffs import paths

RESULTS_ENV = "TRADEOFFS_RESULTS"
STATUSES = ("reproduced", "differs", "not-run")
RELATIONS = {  # how `ours` is compared with the paper's number
    "=": lambda ours, paper, tol: abs(ours - paper) <= tol,
    ">": lambda ours, paper, tol: ours > paper,
    "<": lambda ours, paper, tol: ours < paper,
    ">=": lambda ours, paper, tol: ours >= paper,
    "<=": lambda ours, paper, tol: ours <= paper,
}


@dataclass(frozen=True)
class Reference:
    """A number as the paper printed it: `value` with `relation` ("=", or a bound such as ">" 99)."""

    id: str
    source: str
    setting: str
    relation: str
    value: float
    unit: str


@dataclass(frozen=True)
class Claim:
    """One row of the claims record."""

    id: str
    paper: float
    ours: float | None
    tol: float
    unit: str
    relation: str
    status: str
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
                ref = Reference(**{**row, "value": float(row["value"])})
                if ref.id in table:
                    raise ValueError(f"claim id {ref.id!r} appears twice in {path.name}")
                if ref.relation not in RELATIONS:
                    raise ValueError(f"{path.name}: {ref.id}: relation {ref.relation!r} not in {list(RELATIONS)}")
                table[ref.id] = ref
    return table


def results_dir() -> Path:
    """Where the claims records go: ``$TRADEOFFS_RESULTS``, else ``book/_results`` in the repository checkout
    the package runs from, else ``~/.cache/tradeoffs/book/_results`` (``tradeoffs.paths``; never the working
    directory)."""
    return paths.resolve(RESULTS_ENV, "book/_results")


_active: dict[str, str] = {}  # the chapter whose record `claim` appends to, and its profile


def start_record(chapter: str, profile: str) -> Path:
    """Begin a fresh claims record for `chapter` (an earlier one of the same chapter is replaced)."""
    path = results_dir() / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, {"chapter": chapter, "profile": profile, "claims": []})
    _active.update(chapter=chapter, profile=profile, path=str(path))
    return path


def claim(id: str, ours: float | None, *, tol: float = 0.0) -> Claim:
    """Record our value of the paper's number `id` and glue it for the prose.

    `ours` is None (or NaN) when this profile could not compute it (e.g. CIFAR-10 offline): the
    claim is recorded as ``not-run``, never left out. `tol` is the allowed absolute difference for
    "=" references; bounds (">", "<", ...) are checked as printed.
    """
    if not _active:
        raise RuntimeError("no claims record is open: call tradeoffs.start_chapter(...) first")
    ref = references().get(id)
    if ref is None:
        raise KeyError(f"{id!r} is not in the reference numbers (tradeoffs/book/references/*.csv); add it there")
    if ours is not None:
        ours = float(ours)
        if math.isnan(ours):
            ours = None
    status = "not-run" if ours is None else (
        "reproduced" if RELATIONS[ref.relation](ours, ref.value, tol) else "differs")
    record = Claim(id=id, paper=ref.value, ours=ours, tol=tol, unit=ref.unit, relation=ref.relation,
                   status=status, profile=_active["profile"], source=ref.source, setting=ref.setting)
    _append(Path(_active["path"]), record)
    glue(id, math.nan if ours is None else ours)
    glue(f"{id}.paper", ref.value)
    return record


def load_record(path: Path) -> dict:
    """Read one chapter's claims record, checking its shape."""
    record = json.loads(Path(path).read_text())
    missing = {"chapter", "profile", "claims"} - set(record)
    if missing:
        raise ValueError(f"{path} is not a claims record (missing {sorted(missing)})")
    return record


def claims_table(claims: list[Claim | dict], *, with_profile: bool = False) -> str:
    """A Markdown table of claims: paper, ours, difference, status (and where the paper printed it).

    In a chapter (``with_profile=False``) the ids' common prefix is shown once, above the table.
    """
    from tradeoffs.book.style import markdown_table

    claims = [asdict(c) if isinstance(c, Claim) else c for c in claims]
    prefix = "" if with_profile or len(claims) < 2 else _common_prefix([c["id"] for c in claims])
    header = ["claim", "source", "paper", "ours", "ours - paper", "status"] + (["profile"] if with_profile else [])
    rows = []
    for c in claims:
        paper = f"{'' if c['relation'] == '=' else c['relation'] + ' '}{_fmt(c['paper'])}"
        diff = "" if c["ours"] is None else _fmt(c["ours"] - c["paper"], signed=True)
        rows.append([f"`{c['id'][len(prefix):]}`", c["source"], paper + c["unit"],
                     _fmt(c["ours"]) + ("" if c["ours"] is None else c["unit"]), diff, _badge(c["status"])]
                    + ([c["profile"]] if with_profile else []))
    return (f"Claims `{prefix}*`:\n\n" if prefix else "") + markdown_table(header, rows)


def _common_prefix(ids: list[str]) -> str:
    """The longest common prefix of the ids that ends at a dot ('' if none)."""
    prefix = os.path.commonprefix(ids)
    return prefix[: prefix.rfind(".") + 1]


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "not run"
    text = f"{value:+.4g}" if signed else f"{value:.4g}"
    return text


def _badge(status: str) -> str:
    return {"reproduced": "reproduced", "differs": "**differs**", "not-run": "not run"}[status]


def _append(path: Path, record: Claim) -> None:
    data = load_record(path)
    data["claims"] = [c for c in data["claims"] if c["id"] != record.id] + [asdict(record)]
    _write(path, data)


def _write(path: Path, data: dict) -> None:
    """Atomically, through a temporary file of this writer's own: a reader (or a second process writing the same
    record) never sees a half-written record."""
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
