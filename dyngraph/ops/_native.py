"""The native CPU extension (``kernels/``): build on first use, load, register custom ops.

Build: :func:`torch.utils.cpp_extension.load` (ninja) compiles ``kernels/*.cpp`` into a cache
directory keyed by the torch version, the sources, the flags and the CPU (the code is built
with ``-march=native``)::

    $DYNGRAPH_KERNELS_CACHE  or  ~/.cache/dyngraph/kernels / torch-<version>-<key>/

A later process finds the ``.so`` there and loads it directly (no compiler needed). When the
sources are missing, no compiler works or the build fails, :func:`unavailable_reason` says why,
dyngraph warns **once** (:class:`NativeBuildWarning`) and the ops fall back to the Python
backends; ``DYNGRAPH_OPS_BACKEND=native`` then raises instead.

The kernels are ``torch.library`` custom ops in the namespace ``dyngraph`` (schemas in the C++
file); this module registers their fake (meta) kernels for ``torch.compile`` and their autograd
formulas. Sum/mean aggregations and segment sums are twice differentiable (with
``create_graph`` their backward passes are built from the same ops; a plain backward uses the
one-pass ``csr_aggregate_backward``); max/min are once differentiable.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

import torch

__all__ = [
    "NativeBuildWarning",
    "REDUCE_CODES",
    "build_info",
    "kernel_sources",
    "load",
    "unavailable_reason",
]

REDUCE_CODES = {"sum": 0, "mean": 1, "max": 2, "min": 3}
CACHE_ENV = "DYNGRAPH_KERNELS_CACHE"
SOURCES_ENV = "DYNGRAPH_KERNELS_DIR"
_NAME = "dyngraph_kernels"
# -fopenmp: at::parallel_for is a header template whose OpenMP pragma is compiled into this
# extension; without the flag it silently runs serially. The resulting NEEDED libgomp.so.1
# resolves to the copy torch already loaded (same soname), so there is one thread pool.
CFLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-std=c++17"]
LDFLAGS = ["-fopenmp"]


class NativeBuildWarning(RuntimeWarning):
    """The native kernels could not be built or loaded; the Python backends are used."""


_lock = threading.Lock()
_state: dict[str, object] = {"done": False, "reason": None, "warned": False}


def kernel_sources() -> list[Path]:
    """The C++ sources (``*.cpp``, all compiled into one extension), first found of:

    1. ``$DYNGRAPH_KERNELS_DIR`` (tests point it at a mutated copy);
    2. ``dyngraph/ops/_kernels/`` -- package data in a wheel or sdist install; in the git
       repository (editable installs) it is a symlink to the top-level ``kernels/``;
    3. ``kernels/`` at the repository root (a checkout where the symlink did not survive,
       e.g. ``core.symlinks=false``).
    """
    root = os.environ.get(SOURCES_ENV)
    if root:
        return sorted(Path(root).glob("*.cpp"))
    here = Path(__file__).resolve().parent
    for folder in (here / "_kernels", here.parents[1] / "kernels"):
        if folder.is_dir():
            found = sorted(folder.glob("*.cpp"))
            if found:
                return found
    return []


def _cpu_key() -> str:
    # -march=native code must not be reused on a different CPU
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    return platform.machine() + flags


def _build_dir(sources: list[Path]) -> Path:
    h = hashlib.sha256()
    headers = sorted({hd for src in sources for hd in src.parent.glob("*.h")})
    for src in [*sources, *headers]:  # a changed shared header must rebuild too
        h.update(src.name.encode())
        h.update(src.read_bytes())
    h.update(" ".join(CFLAGS + LDFLAGS).encode())
    h.update(_cpu_key().encode())
    h.update(sys.version.encode())
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dyngraph", "kernels"
    )
    return Path(base) / f"torch-{torch.__version__}-{h.hexdigest()[:16]}"


_info: dict[str, object] = {}


def build_info() -> dict[str, object]:
    """Where the extension lives, whether it was built in this process, and how long it took."""
    return dict(_info)


def _load_impl() -> None:
    sources = kernel_sources()
    if not sources:
        raise FileNotFoundError(
            "kernel sources not found (expected dyngraph/ops/_kernels/*.cpp in the installed "
            f"package or kernels/*.cpp in the repository; or set {SOURCES_ENV})"
        )
    build_dir = _build_dir(sources)
    lib = build_dir / f"{_NAME}.so"
    _info.update(build_dir=str(build_dir), library=str(lib))
    if lib.exists():
        torch.ops.load_library(str(lib))
        _info.update(built=False, seconds=0.0)
        return
    from torch.utils import cpp_extension

    _check_toolchain(cpp_extension)
    build_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # cpp_extension warns about compiler versions it has not seen; the build either
        # works (then the warning is noise) or fails (then we report the failure).
        warnings.simplefilter("ignore")
        cpp_extension.load(
            name=_NAME,
            sources=[str(s) for s in sources],
            extra_cflags=CFLAGS,
            extra_ldflags=LDFLAGS,
            build_directory=str(build_dir),
            is_python_module=False,
            verbose=False,
        )
    _info.update(built=True, seconds=time.perf_counter() - t0)


def _check_toolchain(cpp_extension) -> None:
    """Fail early, with a plain sentence, when the compiler or ninja is missing (otherwise
    the failure surfaces as a long ninja command line)."""
    cxx = os.environ.get("CXX", "").strip()
    exe = shlex.split(cxx)[0] if cxx else "c++"
    if shutil.which(exe) is None:
        where = f"$CXX={cxx!r} does not exist" if cxx else "`c++` is not on PATH"
        raise FileNotFoundError(f"no C++ compiler found ({where})")
    if not cpp_extension.is_ninja_available():
        raise FileNotFoundError("`ninja` is not installed (pip install ninja)")


def unavailable_reason() -> str | None:
    """Build/load the extension once; ``None`` when usable, else why not (warned once)."""
    with _lock:
        if not _state["done"]:
            try:
                _load_impl()
                _register_python_side()
            except Exception as exc:  # any failure means: use the Python backends
                lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
                errors = [ln for ln in lines if "error" in ln.lower()]
                detail = (errors or lines or [""])[0]
                _state["reason"] = (
                    f"the native kernels could not be built or loaded ({type(exc).__name__}: "
                    f"{detail[:300]}); check that a C++ compiler (`c++`, or $CXX) and `ninja` "
                    f"are installed"
                )
            _state["done"] = True
        reason = _state["reason"]
        if reason is not None and not _state["warned"]:
            _state["warned"] = True
            warnings.warn(
                f"dyngraph: {reason}. Falling back to the plain torch / torch-scatter backends "
                f"(correct but slower); set DYNGRAPH_OPS_BACKEND=torch to silence this.",
                NativeBuildWarning,
                stacklevel=3,
            )
        return reason  # type: ignore[return-value]


def op_usable(name: str) -> bool:
    """Whether ``torch.ops.dyngraph.<name>`` may be used: the ops backend is not forced to a
    non-native one (``DYNGRAPH_OPS_BACKEND``), the extension loads, and it contains the op
    (an extension built from older sources may not)."""
    from dyngraph.ops.backend import get_backend

    if get_backend() not in ("auto", "native") or unavailable_reason() is not None:
        return False
    return hasattr(torch.ops.dyngraph, name)


def load() -> None:
    """Build/load now; raise :class:`~dyngraph.errors.BackendError` if that is impossible."""
    reason = unavailable_reason()
    if reason is not None:
        from dyngraph.errors import BackendError

        raise BackendError(reason)


def _reset_for_tests() -> None:
    """Forget a failed attempt (tests hide the compiler, then restore it)."""
    with _lock:
        if _state["reason"] is not None:
            _state.update(done=False, reason=None, warned=False)


# ------------------------------------------------------------------------------ python side
_registered = False


def _register_python_side() -> None:
    global _registered
    if _registered:
        return
    ops = torch.ops.dyngraph
    lib = torch.library

    # ---------------------------------------------------------------- fake kernels
    @lib.register_fake("dyngraph::segment_reduce")
    def _(src, ptr, reduce, need_arg):
        s, f = ptr.shape[0] - 1, src.shape[1]
        arg_shape = (s, f) if need_arg and reduce >= 2 else (0,)
        return src.new_empty((s, f)), src.new_empty(arg_shape, dtype=torch.long)

    @lib.register_fake("dyngraph::segment_backward")
    def _(grad, ptr, arg, reduce, num_rows):
        return grad.new_empty((num_rows, grad.shape[1]))

    @lib.register_fake("dyngraph::csr_aggregate")
    def _(x, ptr, col, weight, reduce, need_arg, transpose):
        s, f = ptr.shape[0] - 1, x.shape[1]
        arg_shape = (s, f) if need_arg and reduce >= 2 else (0,)
        return x.new_empty((s, f)), x.new_empty(arg_shape, dtype=torch.long)

    @lib.register_fake("dyngraph::csr_edge_dot")
    def _(a, b, ptr, col, transpose):
        return a.new_empty((col.shape[0],))

    @lib.register_fake("dyngraph::csr_arg_backward")
    def _(grad, x, col, weight, arg, need_x, need_w):
        gx = x.new_empty(x.shape if need_x else (0,))
        gw = x.new_empty((col.shape[0],) if need_w else (0,))
        return gx, gw

    @lib.register_fake("dyngraph::csr_aggregate_backward")
    def _(grad, x, ptr_t, col_t, weight, t_index, need_x, need_w):
        gx = x.new_empty(x.shape if need_x else (0,))
        gw = x.new_empty((col_t.shape[0],) if need_w else (0,))
        return gx, gw

    @lib.register_fake("dyngraph::segment_softmax")
    def _(src, ptr, log):
        return torch.empty_like(src)

    @lib.register_fake("dyngraph::segment_softmax_backward")
    def _(grad, out, ptr, log):
        return torch.empty_like(out)

    @lib.register_fake("dyngraph::time_encode")
    def _(dt, w, b):
        return w.new_empty((dt.shape[0], w.shape[0]))

    @lib.register_fake("dyngraph::time_encode_backward")
    def _(grad, dt, w, b):
        return torch.empty_like(w), torch.empty_like(b)

    # ---------------------------------------------------------------- segment reduce
    def seg_setup(ctx, inputs, output):
        src, ptr, reduce, _need = inputs
        ctx.reduce, ctx.num_rows = reduce, src.shape[0]
        ctx.save_for_backward(ptr, output[1])

    def seg_backward(ctx, grad, _grad_arg):
        ptr, arg = ctx.saved_tensors
        if ctx.reduce >= 2 and arg.numel() == 0 and grad.numel() > 0:
            raise RuntimeError("segment_reduce max/min: call with need_arg=True to differentiate")
        return ops.segment_backward(grad, ptr, arg, ctx.reduce, ctx.num_rows), None, None, None

    lib.register_autograd("dyngraph::segment_reduce", seg_backward, setup_context=seg_setup)

    def segb_setup(ctx, inputs, output):
        _grad, ptr, arg, reduce, _n = inputs
        ctx.reduce = reduce
        ctx.save_for_backward(ptr, arg)

    def segb_backward(ctx, gg):
        ptr, arg = ctx.saved_tensors
        if ctx.reduce < 2:  # adjoint of broadcast(+scale) is segment sum (mean)
            out = ops.segment_reduce(gg, ptr, ctx.reduce, False)[0]
        else:  # adjoint of routing to arg is picking at arg (0 for empty segments)
            pad = torch.cat([gg, gg.new_zeros((1, gg.shape[1]))])
            out = pad.gather(0, arg)
        return out, None, None, None, None

    lib.register_autograd("dyngraph::segment_backward", segb_backward, setup_context=segb_setup)

    # ---------------------------------------------------------------- gather-aggregate
    def agg_setup(ctx, inputs, output):
        x, ptr, col, weight, reduce, _need, transpose = inputs
        ctx.reduce = reduce
        ctx.has_w = weight is not None
        ctx.save_for_backward(x, ptr, col, weight, output[1], *transpose)

    def agg_backward(ctx, grad, _grad_arg):
        x, ptr, col, weight, arg, *tr = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        gx = gw = None
        if ctx.reduce >= 2:
            if arg.numel() == 0 and grad.numel() > 0:
                raise RuntimeError("csr_aggregate max/min: pass need_arg=True to differentiate")
            gx, gw = ops.csr_arg_backward(grad, x, col, weight, arg, need_x, need_w and ctx.has_w)
            gx, gw = (gx if need_x else None), (gw if need_w else None)
            return gx, None, None, gw, None, None, [None] * len(tr)
        if len(tr) != 4:
            raise RuntimeError("csr_aggregate sum/mean: pass the transpose to differentiate")
        ptr_t, col_t, t_index, t_inv = tr
        if ctx.reduce == 1:
            deg = (ptr[1:] - ptr[:-1]).clamp(min=1).to(grad.dtype)
            grad = grad / deg.unsqueeze(-1)
        need_w = need_w and weight is not None
        if not torch.is_grad_enabled():
            # first-order backward (no create_graph): one fused pass over the transposed graph
            # computes both gradients, gathering each grad row once instead of twice
            gx, gw = ops.csr_aggregate_backward(grad, x, ptr_t, col_t, weight, t_index,
                                                need_x, need_w)
            gx, gw = (gx if need_x else None), (gw if need_w else None)
            return gx, None, None, gw, None, None, [None] * len(tr)
        # create_graph: build the gradient from differentiable ops (twice differentiable)
        if need_x:
            wt = None if weight is None else weight.index_select(0, t_index)
            gx = ops.csr_aggregate(grad, ptr_t, col_t, wt, 0, False, [ptr, col, t_inv, t_index])[0]
        if need_w:
            gw = ops.csr_edge_dot(grad, x, ptr, col, [ptr_t, col_t, t_index, t_inv])
        return gx, None, None, gw, None, None, [None] * len(tr)

    lib.register_autograd("dyngraph::csr_aggregate", agg_backward, setup_context=agg_setup)

    def dot_setup(ctx, inputs, output):
        a, b, ptr, col, transpose = inputs
        ctx.save_for_backward(a, b, ptr, col, *transpose)

    def dot_backward(ctx, gv):
        a, b, ptr, col, *tr = ctx.saved_tensors
        ga = gb = None
        if len(tr) != 4:
            raise RuntimeError("csr_edge_dot: pass the transpose tensors to differentiate")
        ptr_t, col_t, t_index, t_inv = tr
        if ctx.needs_input_grad[0]:
            ga = ops.csr_aggregate(b, ptr, col, gv, 0, False, [ptr_t, col_t, t_index, t_inv])[0]
        if ctx.needs_input_grad[1]:
            gt = gv.index_select(0, t_index)
            gb = ops.csr_aggregate(a, ptr_t, col_t, gt, 0, False, [ptr, col, t_inv, t_index])[0]
        return ga, gb, None, None, [None] * len(tr)

    lib.register_autograd("dyngraph::csr_edge_dot", dot_backward, setup_context=dot_setup)

    # ---------------------------------------------------------------- softmax
    def sm_setup(ctx, inputs, output):
        _src, ptr, log = inputs
        ctx.log = log
        ctx.save_for_backward(output, ptr)

    def sm_backward(ctx, grad):
        out, ptr = ctx.saved_tensors
        return ops.segment_softmax_backward(grad, out, ptr, ctx.log), None, None

    lib.register_autograd("dyngraph::segment_softmax", sm_backward, setup_context=sm_setup)

    # ---------------------------------------------------------------- time encoding
    def te_setup(ctx, inputs, output):
        dt, w, b = inputs
        ctx.save_for_backward(dt, w, b)

    def te_backward(ctx, grad):
        dt, w, b = ctx.saved_tensors
        gdt = gw = gb = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            gw, gb = ops.time_encode_backward(grad, dt, w, b)
        if ctx.needs_input_grad[0]:
            arg = dt.to(w.dtype).unsqueeze(-1) * w + b
            gdt = (-(grad * arg.sin()) * w).sum(-1).to(dt.dtype)
        return gdt, gw, gb

    lib.register_autograd("dyngraph::time_encode", te_backward, setup_context=te_setup)
    _registered = True
