"""Point the Colab launch button at the committed notebook instead of the executed copy.

The book renders ``book/chapters/NN_name.ipynb`` (papermill's output, not in git); sphinx-book-theme
builds its launch links from that path. In the repository the same chapter is
``notebooks/NN_name.ipynb``: rewrite the links after the theme has made them.
"""

EXECUTED, SOURCE = "book/chapters/", "notebooks/"


def _rewrite(app, pagename, templatename, context, doctree):
    for button in context.get("header_buttons", []):
        for item in button.get("buttons", [button]):
            if isinstance(item.get("url"), str):
                item["url"] = item["url"].replace(EXECUTED, SOURCE)


def setup(app):
    app.connect("html-page-context", _rewrite, priority=900)  # after the theme's launch buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
