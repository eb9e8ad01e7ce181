"""Build the mmrec book: `python tools/book.py mathjax` and `python tools/book.py build [--execute]`."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
MATHJAX_TARGET = BOOK / "_static" / "mathjax"


def copy_mathjax() -> Path:
    """Copy MathJax 3 (from the django-static-mathjax wheel) into book/_static/mathjax."""
    import mathjax  # the package `django-static-mathjax` ships the MathJax files

    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").is_file():
        sys.exit(f"MathJax files not found under {source}; reinstall django-static-mathjax")
    if not (MATHJAX_TARGET / "tex-chtml.js").is_file():
        # Copy into a temporary folder first, so an interrupted copy is never used.
        MATHJAX_TARGET.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(MATHJAX_TARGET, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".mathjax.", dir=MATHJAX_TARGET.parent))
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        tmp.rename(MATHJAX_TARGET)
    return MATHJAX_TARGET


def build(execute: bool) -> Path:
    config = BOOK / "_config.yml"
    if execute:
        # Same book, executed with jupyter-cache: only notebooks whose code changed
        # since the last build are re-run. The variant config sits beside the real
        # one because paths in it (local extensions) are relative to its folder.
        text = config.read_text()
        if 'execute_notebooks: "off"' not in text:
            sys.exit(f"{config} must contain 'execute_notebooks: \"off\"'")
        config = BOOK / ".config-execute.yml"
        config.write_text(text.replace('execute_notebooks: "off"', 'execute_notebooks: "cache"'))
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(REPO),
               "--config", str(config), "--toc", str(BOOK / "_toc.yml"),
               "--path-output", str(BOOK), "--keep-going"]
    try:
        subprocess.run(command, check=True, cwd=REPO)
    finally:
        if execute:
            config.unlink(missing_ok=True)
    index = BOOK / "_build" / "html" / "index.html"
    if not index.is_file():
        sys.exit(f"the book build did not produce {index}")
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("mathjax", help="copy MathJax into book/_static for offline formulas")
    build_parser = sub.add_parser("build", help="build the HTML book")
    build_parser.add_argument("--execute", action="store_true",
                              help="execute the notebooks (cached) instead of using stored outputs")
    args = parser.parse_args()
    if args.command == "mathjax":
        print(copy_mathjax())
    else:
        print(build(args.execute))


if __name__ == "__main__":
    main()
