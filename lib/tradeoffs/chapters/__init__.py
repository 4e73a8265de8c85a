"""One subpackage per chapter of the book (named like its notebook): that chapter's experiments and settings.

A chapter imports the kernels (``tradeoffs.attacks``, ``train``, ``evaluate``, ...), never another chapter.
"""
