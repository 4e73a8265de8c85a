"""One setting for the repository URL: the chapters' Colab badges and install cells agree with _config.yml."""

import shutil

import pytest
from tradeoffs.book import repository


def test_every_chapter_copy_agrees_with_the_config():
    repo = repository.read()
    assert repo.url == "https://github.com/" + repo.slug
    fix = "run `python -m tradeoffs.book.repository` after changing _config.yml"
    assert repository.problems(repo) == [], fix


def test_a_fork_rewrites_badges_and_install_lines(tmp_path):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(repository.NOTEBOOKS, notebooks, ignore=shutil.ignore_patterns(".*"))
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/someone/tradeoffs-fork\n  branch: dev\n")
    fork = repository.read(config)
    assert repository.problems(fork, notebooks), "the check does not see a stale badge"
    changed = repository.write(fork, notebooks)
    assert {p.suffix for p in changed} == {".md", ".ipynb"}
    assert repository.problems(fork, notebooks) == []
    text = (notebooks / "01_gaussian_tradeoff.md").read_text()
    assert ("https://colab.research.google.com/github/someone/tradeoffs-fork/blob/dev/notebooks/"
            "01_gaussian_tradeoff.ipynb") in text
    assert '"tradeoffs @ git+https://github.com/someone/tradeoffs-fork@dev"' in text
    assert repository.write(fork, notebooks) == []


def test_a_url_colab_cannot_open_is_an_error(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://gitlab.com/someone/tradeoffs\n")
    with pytest.raises(ValueError, match="github.com/OWNER/NAME"):
        repository.read(config)
    config.write_text("title: x\n")
    with pytest.raises(ValueError, match="no repository.url"):
        repository.read(config)
