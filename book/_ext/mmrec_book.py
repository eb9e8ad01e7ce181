"""Small Sphinx fixes for the mmrec book (loaded through book/_config.yml)."""

from __future__ import annotations


def _deduplicate_scripts(app, pagename, templatename, context, doctree):
    # sphinx-thebe and sphinx-togglebutton add their inline scripts once per read of
    # the environment, and jupyter-book reads it twice: the second copy redeclares
    # `const THEBE_JS_URL` and the browser reports a SyntaxError on every page.
    # Keep the first copy of each script (same file and attributes, any priority).
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        # The copies differ only in filename None versus "" (both mean inline).
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _deduplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
