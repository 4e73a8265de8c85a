"""MathJax from the build, not from a CDN: the book's formulas render offline.

MathJax 3 comes from the pinned PyPI package ``django-static-mathjax`` (requirements.txt), which ships the
released ``mathjax`` bundle. The part the book uses is staged under the build's doctree directory and added to
``html_static_path``, so Sphinx copies it to ``_static/mathjax/``: the ``tex-chtml.js`` component, its CommonHTML
fonts, the TeX extensions it loads on demand, the menu and the assistive MathML (not the speech rule engine).
``mathjax_path`` then points at the copy.
"""

import shutil
from pathlib import Path

BUNDLE = "tex-chtml.js"
PARTS = (BUNDLE, "input/tex", "output/chtml", "ui", "a11y")


def mathjax_release() -> Path:
    """The ``es5`` folder of the installed MathJax release; an error that names the package if it is missing."""
    try:
        import mathjax
    except ImportError:
        raise RuntimeError("MathJax is missing: pip install -r requirements.txt (django-static-mathjax)") from None
    release = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (release / BUNDLE).is_file():
        raise RuntimeError(f"{release} has no {BUNDLE}: reinstall django-static-mathjax from requirements.txt")
    return release


def _stage(app):
    release = mathjax_release()
    staged = Path(app.doctreedir) / "offline-math"
    target = staged / "mathjax"
    if not (target / BUNDLE).is_file() or (target / BUNDLE).stat().st_mtime < (release / BUNDLE).stat().st_mtime:
        shutil.rmtree(target, ignore_errors=True)
        for part in PARTS:
            source = release / part
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target / part)
            else:
                shutil.copy2(source, target / part)
        shutil.copy2(release.parent / "LICENSE", target / "LICENSE")
    app.config.html_static_path.append(str(staged))


def setup(app):
    app.config.mathjax_path = f"mathjax/{BUNDLE}"  # relative: served from _static/
    app.connect("builder-inited", _stage)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
