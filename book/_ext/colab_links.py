"""Colab links that work: the launch button opens the committed notebook, and the badge is served by the book.

* The book renders ``book/chapters/NN_name.ipynb`` (papermill's output, not in git); sphinx-book-theme builds
  its launch links from that path. In the repository the same chapter is ``notebooks/NN_name.ipynb``: the
  links that leave the book for the repository or Colab are rewritten after the theme made them. The
  download button is left alone: it points at the executed notebook the build copied into ``_sources/``.
* Each chapter's first cell shows Colab's badge image from colab.research.google.com (the .ipynb needs the
  address in Colab and on GitHub); in the book the same badge is ``_static/colab-badge.svg``, so a page
  has no image from another host and reads the same offline.
"""

from docutils import nodes

EXECUTED, SOURCE = "book/chapters/", "notebooks/"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/book/_static/colab-badge.svg"


def _leaves_the_book(url: str, repository: str) -> bool:
    return url.startswith(("https://colab.research.google.com/", "https://mybinder.org/")) or (
        bool(repository) and url.startswith(repository))


def _rewrite_launch_links(app, pagename, templatename, context, doctree):
    repository = app.config.html_theme_options.get("repository_url", "")
    for button in context.get("header_buttons", []):
        for item in button.get("buttons", [button]):
            url = item.get("url")
            if isinstance(url, str) and _leaves_the_book(url, repository):
                item["url"] = url.replace(EXECUTED, SOURCE)


def _local_badge(app, doctree):
    for image in doctree.findall(nodes.image):
        if image.get("uri") == COLAB_BADGE:
            image["uri"] = LOCAL_BADGE  # "/..." is relative to the book's root


def setup(app):
    app.connect("doctree-read", _local_badge, priority=100)  # before the image collector copies images (500)
    app.connect("html-page-context", _rewrite_launch_links, priority=900)  # after the theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
