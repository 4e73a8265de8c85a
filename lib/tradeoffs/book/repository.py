"""The repository the book points at, one setting: ``repository.url`` and ``.branch`` in ``_config.yml``.

Jupyter Book builds the header's launch and repository buttons from that setting. The chapters carry two
copies of it that Colab needs as plain text: the *Open in Colab* badge in the first cell and the
``%pip install`` line of the install cell, in ``notebooks/NN_name.md`` and its paired ``.ipynb``.
``python -m tradeoffs.book.repository`` rewrites both copies from the setting (a fork sets its own URL in
``_config.yml`` and runs it once); ``--check`` lists every copy that disagrees (the tests run it).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "_config.yml"
NOTEBOOKS = ROOT / "notebooks"
COLAB = "https://colab.research.google.com"
BADGE_IMAGE = f"{COLAB}/assets/colab-badge.svg"
BADGE = re.compile(r"\[!\[Open In Colab\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\([^)\s]*\)")
INSTALL = re.compile(r'%pip install --quiet "tradeoffs @ git\+[^"\s]*"')
GITHUB = re.compile(r"https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?/?")


@dataclass(frozen=True)
class Repository:
    """A GitHub repository and the branch whose notebooks Colab opens and whose package Colab installs."""

    url: str
    branch: str

    def __post_init__(self):
        if not GITHUB.fullmatch(self.url):
            raise ValueError("repository.url in _config.yml must be https://github.com/OWNER/NAME, not "
                             f"{self.url!r} (Colab opens notebooks from GitHub only)")

    @property
    def slug(self) -> str:
        """``owner/name``."""
        match = GITHUB.fullmatch(self.url)
        return f"{match['owner']}/{match['name']}"

    def colab_url(self, notebook: str) -> str:
        """Colab's address of a file of the repository (``notebooks/NN_name.ipynb``) on the branch."""
        return f"{COLAB}/github/{self.slug}/blob/{self.branch}/{notebook}"

    def badge(self, chapter: str) -> str:
        """The Markdown badge that opens ``notebooks/<chapter>.ipynb`` in Colab."""
        return f"[![Open In Colab]({BADGE_IMAGE})]({self.colab_url(f'notebooks/{chapter}.ipynb')})"

    def install(self) -> str:
        """The install cell's line: this package from the branch Colab opened the notebook from."""
        return f'%pip install --quiet "tradeoffs @ git+https://github.com/{self.slug}@{self.branch}"'


def read(config: Path = CONFIG) -> Repository:
    """The repository named by ``repository.url`` / ``repository.branch`` in the book's ``_config.yml``."""
    settings = (yaml.safe_load(config.read_text()) or {}).get("repository") or {}
    if not settings.get("url"):
        raise ValueError(f"{config} has no repository.url: set it to https://github.com/OWNER/NAME")
    return Repository(url=str(settings["url"]).rstrip("/"), branch=str(settings.get("branch") or "main"))


def _rewritten(text: str, repository: Repository, chapter: str) -> str:
    text = BADGE.sub(lambda _: repository.badge(chapter), text)
    return INSTALL.sub(lambda _: repository.install(), text)


def _sources(notebooks: Path) -> list[Path]:
    return sorted(notebooks.glob("[0-9][0-9]_*.md"))


def _ipynb_cells(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=nbformat.NO_CONVERT).cells]


def problems(repository: Repository, notebooks: Path = NOTEBOOKS) -> list[str]:
    """Every chapter copy (``.md`` and ``.ipynb``) whose badge or install line is missing or disagrees."""
    found = []
    for source in _sources(notebooks):
        chapter = source.stem
        for path, text in ((source, source.read_text()),
                           (source.with_suffix(".ipynb"),
                            "\n".join(_ipynb_cells(source.with_suffix(".ipynb"))))):
            for what, pattern, expected in (("Colab badge", BADGE, repository.badge(chapter)),
                                            ("install line", INSTALL, repository.install())):
                copies = pattern.findall(text)
                if copies != [expected]:
                    found.append(f"{path.relative_to(notebooks.parent)}: {what} is {copies or 'missing'}, "
                                 f"expected {expected}")
    return found


def write(repository: Repository, notebooks: Path = NOTEBOOKS) -> list[Path]:
    """Rewrite every chapter's badge and install line (``.md`` and ``.ipynb``) from ``repository``."""
    changed = []
    for source in _sources(notebooks):
        chapter, paired = source.stem, source.with_suffix(".ipynb")
        text = source.read_text()
        if (new := _rewritten(text, repository, chapter)) != text:
            source.write_text(new)
            changed.append(source)
        if paired.exists():
            notebook = nbformat.read(paired, as_version=nbformat.NO_CONVERT)
            before = [cell.source for cell in notebook.cells]
            for cell in notebook.cells:
                cell.source = _rewritten(cell.source, repository, chapter)
            if [cell.source for cell in notebook.cells] != before:
                nbformat.write(notebook, paired, version=nbformat.NO_CONVERT)
                changed.append(paired)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeoffs.book.repository",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only list the copies that disagree (exit 1 if any)")
    args = parser.parse_args(argv)
    repository = read()
    if args.check:
        found = problems(repository)
        print("\n".join(found) or f"every chapter points at {repository.url} ({repository.branch})")
        return 1 if found else 0
    changed = write(repository)
    print("\n".join(f"rewrote {p.relative_to(ROOT)}" for p in changed) or "nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
