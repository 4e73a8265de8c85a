"""The book's own page assets, and two fixes that keep the browser console clean.

* The Scorecard's status filter (``_static/scorecard.js``, ``scorecard.css``) on every page; the
  script does nothing where there is no scorecard. ``_static/tables.js`` marks every claims table (one with a
  "status" column) for the narrow-screen layout of ``tables.css``.
* A generated page (the Scorecard) heads each chapter's section with the chapter's name (``01_gaussian_tradeoff``);
  the reader sees the chapter's title there instead ("1. The Gaussian trade-off"), in the page and in its
  table of contents. The section keeps its anchor.
* Sphinx 7.4 writes an inline script that an extension adds after the builder started (sphinx-thebe's
  ``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector) twice: once as registered
  (filename None) and again from the registry as filename ''. The second ``const`` is a SyntaxError
  on every page. Registering them under '' makes the two copies equal, so Sphinx keeps one.
* pydata-sphinx-theme writes ``dataset.mode = localStorage.getItem("mode") || "{{ default_mode }}"``;
  with no default_mode a first visit logs "Got invalid theme mode" as a console error.
  The theme's own default is "auto": say so.
"""

from docutils import nodes

CHAPTERS = "book/chapters/"


def _one_copy_of_inline_scripts(app, env):
    builder = app.builder
    if not hasattr(builder, "_js_files"):
        return
    registry = app.registry.js_files
    registry[:] = [("" if name is None else name, attrs) for name, attrs in registry]
    for i, script in enumerate(builder._js_files):
        if script.filename is None:  # body-only: the registry's copy comes back as '' in prepare_writing
            builder._js_files[i] = type(script)("", priority=script.priority, **script.attributes)


def _chapter_titles(app, doctree):
    for section in doctree.findall(nodes.section):
        heading = section.next_node(nodes.title)
        title = app.env.titles.get(f"{CHAPTERS}{heading.astext()}") if heading is not None else None
        if title is not None and heading.parent is section:
            heading.children = [nodes.Text(title.astext())]


def _default_mode(app, pagename, templatename, context, doctree):
    context.setdefault("default_mode", "auto")


def setup(app):
    app.add_css_file("scorecard.css")
    app.add_js_file("scorecard.js", loading_method="defer")
    app.add_js_file("tables.js", loading_method="defer")
    app.connect("env-updated", _one_copy_of_inline_scripts)
    app.connect("doctree-read", _chapter_titles, priority=400)  # before the table of contents is collected
    app.connect("html-page-context", _default_mode)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
