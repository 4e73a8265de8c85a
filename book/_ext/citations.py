"""One citation style in the text and in the bibliography: author-year labels, "[Tsipras et al., 2019]".

sphinxcontrib-bibtex's ``author_year`` reference style writes author-year citations in the text while the
bibliography keeps its formatting style's labels (``alpha``: "[TSE+19]"). Here the formatting style itself
makes author-year labels, and the text cites by label (``bibtex_reference_style: label``), so both read the
same. A work whose authors are not known is labelled by its short title (``shorttitle``, else ``title``);
a work without a year gets no year. Labels that coincide get a, b, ... after the year.
"""

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

NAME = "author_year_book"


def _who(entry) -> str:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    surnames = [" ".join(person.prelast_names + person.last_names) for person in people]
    if not surnames:
        return entry.fields.get("shorttitle") or entry.fields.get("title", entry.key)
    if len(surnames) == 1:
        return surnames[0]
    if len(surnames) == 2:
        return f"{surnames[0]} and {surnames[1]}"
    return f"{surnames[0]} et al."


class AuthorYearLabels(BaseLabelStyle):
    """'Surname, 2019', 'A and B, 2019', 'A et al., 2019'; 'Short title' without authors or year."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        bases = [", ".join(filter(None, (_who(e), e.fields.get("year", "")))) for e in entries]
        repeated, seen = Counter(bases), Counter()
        for base in bases:
            if repeated[base] > 1:
                seen[base] += 1
                yield base + "abcdefghijklmnopqrstuvwxyz"[seen[base] - 1]
            else:
                yield base


class BookStyle(UnsrtStyle):
    """pybtex's ``unsrt`` entries (with the arXiv link of ``eprint``), author-year labels, sorted by author."""

    default_label_style = NAME
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", NAME, AuthorYearLabels)
    register_plugin("pybtex.style.formatting", NAME, BookStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
