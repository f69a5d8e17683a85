"""dyngraph's public API, enumerated from each package's ``__all__``, and where each name is
documented.

One source of truth for three users: the page generator (``gen_pages.py`` writes one API page
per package with a ``:::`` mkdocstrings directive per public object), the griffe extension
(cross references resolve to documented identifiers only) and ``tests/test_docs.py`` (every
public name has a docstring and appears in the API pages).

An object re-exported by several packages (``dyngraph.nn.TGN`` is
``dyngraph.nn.memory.TGN``) is documented once, on the page of the package closest to where
it is defined, and the other pages link to it: two ``:::`` directives for one object would
register its anchors twice.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, is_dataclass

# (package, page path below docs/, title, one-line summary); order = navigation order
PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("dyngraph.ops", "api/ops.md", "dyngraph.ops — aggregation kernels"),
    ("dyngraph.data", "api/data.md", "dyngraph.data — event streams and snapshots"),
    ("dyngraph.datasets", "api/datasets.md", "dyngraph.datasets — bundled data"),
    ("dyngraph.metrics", "api/metrics.md", "dyngraph.metrics — evaluation"),
    ("dyngraph.nn", "api/nn.md", "dyngraph.nn — layers and models"),
    ("dyngraph.nn.memory", "api/nn-memory.md", "dyngraph.nn.memory — memory-based DGNNs"),
    ("dyngraph.solvers", "api/solvers.md", "dyngraph.solvers — fixed points"),
    ("dyngraph.train", "api/train.md", "dyngraph.train — training loops"),
    ("dyngraph.nas", "api/nas.md", "dyngraph.nas — architecture search"),
    ("dyngraph.traffic", "api/traffic.md", "dyngraph.traffic — traffic assignment"),
    ("dyngraph.bilevel", "api/bilevel.md", "dyngraph.bilevel — network design"),
    ("dyngraph.errors", "api/errors.md", "dyngraph.errors — exceptions"),
    ("dyngraph", "api/dyngraph.md", "dyngraph — top level"),
    ("dyngraph.cli", "api/cli.md", "dyngraph.cli — the command line"),
)

_SCALARS = (str, int, float, bool, bytes, type(None))


@dataclass(frozen=True)
class Entry:
    """One public name of one package."""

    package: str
    name: str
    obj: object
    home: str  # identifier of the one ``:::`` directive that documents this object

    @property
    def ident(self) -> str:
        return f"{self.package}.{self.name}"

    @property
    def documented_here(self) -> bool:
        return self.home == self.ident

    @property
    def kind(self) -> str:
        if inspect.ismodule(self.obj):
            return "module"
        if inspect.isclass(self.obj):
            return "class"
        if callable(self.obj):
            return "function"
        return "attribute"


def public_names() -> list[tuple[str, str, object]]:
    """(package, name, object) for every name in every documented package's ``__all__``."""
    out = []
    for pkg, _, _ in PACKAGES:
        mod = importlib.import_module(pkg)
        for name in mod.__all__:
            out.append((pkg, name, getattr(mod, name)))
    return out


def _origin(obj: object) -> str | None:
    if inspect.ismodule(obj):
        return obj.__name__
    return getattr(obj, "__module__", None) if (inspect.isclass(obj) or callable(obj)) else None


def _key(obj: object, name: str):
    # scalars are compared by name and value (ids of small ints/strings are shared by chance)
    return ("scalar", name, obj) if isinstance(obj, _SCALARS) else ("obj", id(obj))


def entries() -> list[Entry]:
    """Every public name with the identifier of the directive that documents its object."""
    names = public_names()
    packages = [p for p, _, _ in PACKAGES]
    homes: dict = {}
    for pkg, name, obj in names:
        key = _key(obj, name)
        origin = _origin(obj) or ""
        # the exporting package that is the longest prefix of the defining module wins;
        # otherwise the first package (in PACKAGES order) that exports it
        score = max((len(p) for p in packages if p == pkg and (origin == p or
                     origin.startswith(p + "."))), default=-1)
        best = homes.get(key)
        if best is None or score > best[0]:
            homes[key] = (score, f"{pkg}.{name}")
    return [Entry(pkg, name, obj, homes[_key(obj, name)][1]) for pkg, name, obj in names]


def page_of(package: str) -> str:
    """Docs path (below ``docs/``) of a package's API page."""
    return next(page for p, page, _ in PACKAGES if p == package)


def documented_targets() -> dict[str, str]:
    """Reference spellings → documented identifier: the public path of every name, and the
    defining path (``dyngraph.nn.memory.presets.TGN``) of every class and function."""
    out: dict[str, str] = {}
    for e in entries():
        out[e.ident] = e.home
        origin = _origin(e.obj)
        qual = getattr(e.obj, "__qualname__", None)
        if origin and qual and not inspect.ismodule(e.obj):
            out.setdefault(f"{origin}.{qual}", e.home)
        elif inspect.ismodule(e.obj):
            out.setdefault(e.obj.__name__, e.home)
    return out


def _own_doc(obj: object) -> str:
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
        doc = obj.__doc__ or ""  # a class's own __doc__: not inherited from its base
        if is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return ""  # the signature dataclasses write when there is no docstring
        return doc.strip()
    return (inspect.getdoc(obj) or "").strip()


def missing_docstrings() -> list[str]:
    """Public classes, functions and modules without a docstring of their own."""
    return [e.ident for e in entries() if e.kind != "attribute" and not _own_doc(e.obj)]


def _function_of(member: object):
    """The function behind a class attribute (method, static/class method, property getter)."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        member = member.fget
    return member if inspect.isfunction(member) else None


def missing_method_docstrings(skip_modules: tuple[str, ...] = ()) -> list[str]:
    """Public methods and properties (``forward``, ``reset_parameters``, ...) defined by a
    public class of dyngraph without a docstring of their own, as ``module.Class.method``.

    Only methods the class itself defines count (inherited ones are documented where they are
    defined); ``extra_repr`` is hidden from the API pages and is not checked. Classes defined
    in a module starting with one of ``skip_modules`` are left out.
    """
    out: list[str] = []
    seen: set[int] = set()
    for e in entries():
        cls = e.obj
        if not inspect.isclass(cls) or id(cls) in seen:
            continue
        seen.add(id(cls))
        module = getattr(cls, "__module__", "") or ""
        if not module.startswith("dyngraph") or module.startswith(skip_modules):
            continue
        for name, member in vars(cls).items():
            fn = _function_of(member)
            if name.startswith("_") or name == "extra_repr" or fn is None:
                continue
            if not (fn.__doc__ or "").strip():
                out.append(f"{module}.{cls.__qualname__}.{name}")
    return out
