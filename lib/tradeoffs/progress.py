"""Progress bars: widgets in an interactive notebook, plain text when the book is executed in batch.

``tradeoffs.book`` sets ``TRADEOFFS_BATCH`` when papermill runs a chapter: ipywidgets-based bars can
make nbclient wait forever for a message (jupyter/nbclient#312), so batch runs print text instead.
"""

from __future__ import annotations

import os

BATCH_ENV = "TRADEOFFS_BATCH"


def progress(iterable=None, **options):
    """A tqdm progress bar suited to where the code runs (same arguments as ``tqdm.tqdm``)."""
    if os.environ.get(BATCH_ENV):
        from tqdm.std import tqdm
        options.setdefault("mininterval", 15.0)
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **options)
