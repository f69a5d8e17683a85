"""MkDocs hook: LaTeX in hand-written pages (front matter ``math: true``) → MathML.

``$$ ... $$`` on lines of their own is display maths, ``$...$`` inline; fenced code and
code spans are left alone. Uses the same converter as the API reference (griffe_rst.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from griffe_rst import tex_to_html  # noqa: E402

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_DISPLAY = re.compile(r"^\$\$\s*\n(.+?)\n\$\$[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")


def convert(markdown: str) -> str:
    """Rewrite the maths of one page, outside code."""
    out, pos = [], 0
    for m in _FENCE.finditer(markdown):
        out.append(_convert_text(markdown[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_convert_text(markdown[pos:]))
    return "".join(out)


def _convert_text(text: str) -> str:
    text = _DISPLAY.sub(lambda m: "\n" + tex_to_html(m.group(1), display=True) + "\n", text)
    pieces, pos = [], 0
    for m in _CODE.finditer(text):
        pieces.append(_INLINE.sub(lambda k: tex_to_html(k.group(1), False), text[pos:m.start()]))
        pieces.append(m.group(0))
        pos = m.end()
    pieces.append(_INLINE.sub(lambda k: tex_to_html(k.group(1), False), text[pos:]))
    return "".join(pieces)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001
    return convert(markdown) if page.meta.get("math") else markdown
