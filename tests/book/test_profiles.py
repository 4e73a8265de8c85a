"""tradeoffs.book.profiles: the chapter registry and each chapter's smoke / cpu / paper settings."""

import pytest
from tradeoffs.book import profiles


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError, match="smoke, cpu, paper"):
        profiles.settings("01_gaussian_tradeoff", "fast")
    with pytest.raises(ValueError, match="01_gaussian_tradeoff"):
        profiles.settings("99_nothing", "cpu")


def test_every_chapter_has_every_profile():
    for chapter in profiles.CHAPTERS:
        for profile in profiles.PROFILES:
            assert profiles.settings(chapter, profile) is not None, (chapter, profile)
