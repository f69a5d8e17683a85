"""Griffe extension: render the reStructuredText bits of dyngraph's docstrings in Markdown.

dyngraph's docstrings are Google style (``Args:``/``Returns:``) with PyG-style maths written
as reST: ``.. math::`` blocks and ``:math:`...``` roles, plus cross references such as
``:func:`dyngraph.solvers.implicit_fixed_point```. mkdocstrings renders Markdown, so before a
docstring is parsed this extension

* turns maths into MathML (``latex2mathml``, pure Python, no JavaScript or CDN needed: the
  site renders offline), falling back to a code span when a formula does not convert;
* turns ``:func:``/``:class:``/``:meth:``/... roles into autorefs links when the target is a
  documented public object, otherwise into a code span, so that ``mkdocs build --strict``
  never fails on a reference to a private helper.

Loaded by ``mkdocs.yml`` (``extensions: [docs/_gen/griffe_rst.py]``).
"""

from __future__ import annotations

import html
import importlib
import re
import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_index import documented_targets  # noqa: E402

try:
    from latex2mathml.converter import convert as _to_mathml
except ImportError:  # pragma: no cover - the docs extra installs it
    _to_mathml = None

_MATH_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:(?:(?P=indent)[ \t]+"
                         r".*)?\n)+)", re.MULTILINE)
_MATH_ROLE = re.compile(r":math:`(?P<tex>[^`]+)`")
_XREF_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc):`(?P<ref>[^`]+)`")
_TARGETS: dict[str, str] | None = None


def _targets() -> dict[str, str]:
    global _TARGETS
    if _TARGETS is None:
        _TARGETS = documented_targets()
    return _TARGETS


def tex_to_html(tex: str, display: bool) -> str:
    """LaTeX → one-line MathML; a code span when the converter is missing or fails."""
    tex = tex.strip()
    if display and ("&" in tex or "\\\\" in tex) and "\\begin" not in tex:
        tex = "\\begin{aligned}" + tex + "\\end{aligned}"
    if _to_mathml is not None:
        try:
            out = _to_mathml(tex, display="block" if display else "inline").replace("\n", "")
            # a <math> tag opening a line would end the Markdown paragraph: wrap inline maths
            tag = "div" if display else "span"  # a div scrolls a wide formula sideways
            return f'<{tag} class="math">{out}</{tag}>'

        except Exception:  # noqa: BLE001 - any converter failure falls back to source
            pass
    code = html.escape(tex)
    return f'<pre class="math-source">{code}</pre>' if display else f"<code>{code}</code>"


def _resolve(ref: str) -> str | None:
    """Public documented identifier for a reST reference, or None."""
    ref = ref.lstrip("~.")
    targets = _targets()
    if ref in targets:
        return targets[ref]
    # a method/attribute of a documented class: dyngraph.data.EventStream.split
    head, _, attr = ref.rpartition(".")
    if head in targets and attr:
        owner = targets[head]
        try:
            mod, _, name = owner.rpartition(".")
            obj = getattr(importlib.import_module(mod), name)
            if hasattr(obj, attr) and getattr(getattr(obj, attr), "__doc__", None):
                return f"{owner}.{attr}"
        except Exception:  # noqa: BLE001
            return None
    return None


def rst_to_markdown(text: str) -> str:
    """Rewrite reST maths and cross references of one docstring into Markdown/HTML."""

    def block(m: re.Match) -> str:
        body = "\n".join(line.strip() for line in m.group("body").splitlines())
        return "\n" + m.group("indent") + tex_to_html(body, display=True) + "\n\n"

    def xref(m: re.Match) -> str:
        raw = m.group("ref")
        short = raw.startswith("~")
        ref = raw.lstrip("~")
        label = ref.rsplit(".", 1)[-1] if short else ref
        target = _resolve(ref)
        if target is None:
            return f"`{label}`"
        return f"[`{label}`][{target}]"

    text = _MATH_BLOCK.sub(block, text if text.endswith("\n") else text + "\n")
    text = _MATH_ROLE.sub(lambda m: tex_to_html(m.group("tex"), display=False), text)
    text = _XREF_ROLE.sub(xref, text)
    return text.rstrip("\n")


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring once, when griffe creates the object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and obj.docstring.value:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
