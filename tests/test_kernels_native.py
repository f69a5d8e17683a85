"""Native kernels (kernels/*.cpp) against the Python references, gradcheck of every backward,
torch.library op checks, and the no-compiler fallback.

The extension is built once per cache directory (first test session here: ~15-30 s; later
sessions load the cached .so). The kernels' parallel threshold is set to 0 and torch runs with
2 threads inside these tests, so that even tiny hypothesis inputs are cut into several
edge-balanced chunks and the chunk-boundary merging is exercised.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from _ops_ref import ref_segment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyngraph.ops import (
    CSR,
    _native,
    backend,
    gather_aggregate,
    scatter_log_softmax,
    scatter_softmax,
    segment,
)
from dyngraph.ops import time_encode as dg_time_encode
from dyngraph.ops._impl_native import transpose_tensors

REASON = _native.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"native kernels unavailable: {REASON}")
ops = torch.ops.dyngraph if REASON is None else None
CODES = _native.REDUCE_CODES
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def _chunked():
    """Force the chunked (parallel) code path on tiny inputs."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    old = ops.set_parallel_threshold(0)
    yield
    ops.set_parallel_threshold(old)
    torch.set_num_threads(old_threads)


@st.composite
def segments(draw, max_seg=12, max_len=9):
    """CSR pointers with empty segments and, sometimes, one segment holding most rows."""
    sizes = draw(st.lists(st.integers(0, max_len), min_size=0, max_size=max_seg))
    if sizes and draw(st.booleans()):
        sizes[draw(st.integers(0, len(sizes) - 1))] = draw(st.integers(20, 80))  # huge one
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    if sizes:
        ptr[1:] = torch.tensor(sizes).cumsum(0)
    return ptr


def _values(n, f, dtype, seed, ties=False):
    g = torch.Generator().manual_seed(seed)
    if ties:  # few distinct values -> ties for max/min
        return torch.randint(-2, 3, (n, f), generator=g).to(dtype)
    return torch.randn(n, f, generator=g, dtype=dtype)


def _first_arg(src, ptr, reduce):
    """Reference argmax/argmin: smallest row of each segment holding the extreme value."""
    e, f = src.shape
    out = torch.full((ptr.numel() - 1, f), e, dtype=torch.long)
    for s in range(ptr.numel() - 1):
        lo, hi = int(ptr[s]), int(ptr[s + 1])
        if hi > lo:
            seg = src[lo:hi]
            best = seg.max(0).values if reduce == "max" else seg.min(0).values
            out[s] = lo + (seg == best).long().argmax(0)
    return out


def _close(a, b, dtype):
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------ segment reduce
@SETTINGS
@given(
    ptr=segments(),
    f=st.sampled_from([1, 3, 16, 37, 70]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    reduce=st.sampled_from(["sum", "mean", "max", "min"]),
    ties=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_segment_reduce_matches_reference(ptr, f, dtype, reduce, ties, seed):
    src = _values(int(ptr[-1]), f, dtype, seed, ties)
    out, arg = ops.segment_reduce(src, ptr, CODES[reduce], True)
    _close(out, ref_segment(src, ptr, reduce), dtype)
    if reduce in ("max", "min"):
        assert torch.equal(arg, _first_arg(src, ptr, reduce))
    with backend.use_backend("native"):
        _close(segment(src, ptr, reduce), ref_segment(src, ptr, reduce), dtype)


def test_segment_noncontiguous_and_3d_input():
    ptr = torch.tensor([0, 0, 5, 5, 40, 41])
    base = torch.randn(41, 6, 4, dtype=torch.float64)
    src = base[:, ::2, :]  # non-contiguous [41, 3, 4]
    assert not src.is_contiguous()
    for reduce in ("sum", "mean", "max", "min"):
        with backend.use_backend("native"):
            got = segment(src, ptr, reduce)
        want = ref_segment(src.contiguous(), ptr, reduce)
        _close(got, want, torch.float64)


def test_segment_nan_propagates_like_torch():
    src = torch.tensor([[1.0], [float("nan")], [3.0], [2.0]])
    ptr = torch.tensor([0, 2, 4])
    out = ops.segment_reduce(src, ptr, CODES["max"], False)[0]
    assert torch.isnan(out[0, 0]) and out[1, 0] == 3.0


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_segment_gradcheck(reduce):
    ptr = torch.tensor([0, 3, 3, 9, 10, 30])
    src = torch.randn(30, 5, dtype=torch.float64, requires_grad=True)  # distinct: no max ties
    fn = lambda s: ops.segment_reduce(s, ptr, CODES[reduce], True)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (src,))
    if reduce in ("sum", "mean"):
        assert torch.autograd.gradgradcheck(fn, (src,))


# ------------------------------------------------------------------------------ gather-aggregate
@st.composite
def graphs(draw):
    n = draw(st.integers(1, 15))
    e = draw(st.integers(0, 60))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    if draw(st.booleans()):  # power-law-ish: most edges into node 0
        hub = torch.rand(e, generator=g) < 0.7
        dst = torch.where(hub, 0, torch.randint(0, n, (e,), generator=g))
    else:
        dst = torch.randint(0, n, (e,), generator=g)
    return torch.stack([src, dst]), n, seed


def _ref_aggregate(x, edge_index, w, n, reduce):
    msg = x[edge_index[0]] * (1 if w is None else w.unsqueeze(-1))
    order = torch.argsort(edge_index[1], stable=True)
    ptr = torch.zeros(n + 1, dtype=torch.long)
    ptr[1:] = torch.bincount(edge_index[1], minlength=n).cumsum(0)
    return ref_segment(msg[order], ptr, reduce)


@SETTINGS
@given(
    graph=graphs(),
    f=st.sampled_from([1, 5, 16, 33]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    reduce=st.sampled_from(["sum", "mean", "max", "min"]),
    weighted=st.booleans(),
)
def test_gather_aggregate_matches_reference(graph, f, dtype, reduce, weighted):
    edge_index, n, seed = graph
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, f, generator=g, dtype=dtype)
    w = torch.rand(edge_index.size(1), generator=g, dtype=dtype) if weighted else None
    csr = CSR.from_edge_index(edge_index, n)
    with backend.use_backend("native"):
        got = gather_aggregate(x, csr, w, reduce)
    _close(got, _ref_aggregate(x, edge_index, w, n, reduce), dtype)


def _graph(n=9, e=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    ei[1, :12] = 0  # one high in-degree node
    return CSR.from_edge_index(ei, n), ei


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_gather_aggregate_gradcheck_x_and_weight(reduce):
    csr, _ = _graph()
    x = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    w = (torch.rand(40, dtype=torch.float64) + 0.5).requires_grad_()

    def fn(xx, ww):
        with backend.use_backend("native"):
            return gather_aggregate(xx, csr, ww, reduce)

    assert torch.autograd.gradcheck(fn, (x, w))
    if reduce in ("sum", "mean"):
        assert torch.autograd.gradgradcheck(fn, (x, w))


@SETTINGS
@given(
    graph=graphs(),
    f=st.sampled_from([1, 7, 16, 70, 150]),  # 70/150: several feature blocks (float64/32)
    dtype=st.sampled_from([torch.float32, torch.float64]),
    reduce=st.sampled_from(["sum", "mean"]),
    weighted=st.booleans(),
    which=st.sampled_from(["x", "w", "both"]),
)
def test_fused_aggregate_backward_matches_reference(graph, f, dtype, reduce, weighted, which):
    """The one-pass backward (x- and edge-weight gradients over the transposed graph) against
    autograd through the gather-then-reduce reference, for each subset of requested grads."""
    edge_index, n, seed = graph
    g = torch.Generator().manual_seed(seed + 2)
    x0 = torch.randn(n, f, generator=g, dtype=dtype)
    w0 = torch.rand(edge_index.size(1), generator=g, dtype=dtype) + 0.5 if weighted else None
    gout = torch.randn(n, f, generator=g, dtype=dtype)
    csr = CSR.from_edge_index(edge_index, n)
    grads = {}
    for name in ("native", "ref"):
        x = x0.clone().requires_grad_(which in ("x", "both"))
        w = None if w0 is None else w0.clone().requires_grad_(which in ("w", "both"))
        if not (x.requires_grad or (w is not None and w.requires_grad)):
            return  # nothing to differentiate (unweighted, edge-weight grad only)
        if name == "native":
            with backend.use_backend("native"):
                out = gather_aggregate(x, csr, w, reduce)
        else:
            out = _ref_aggregate(x, edge_index, w, n, reduce)
        leaves = [t for t in (x, w) if t is not None and t.requires_grad]
        if out.requires_grad:
            grads[name] = torch.autograd.grad(out, leaves, gout, allow_unused=True)
        else:  # no edges: the reference output does not depend on the inputs at all
            grads[name] = tuple(torch.zeros_like(t) for t in leaves)
    for got, want in zip(grads["native"], grads["ref"]):
        if want is None:  # an edge weight without edges
            assert got is None or got.numel() == 0 or not got.any()
            continue
        tol = 1e-4 if dtype == torch.float32 else 1e-11  # dot products over up to 150 features
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def test_edge_dot_gradcheck():
    csr, _ = _graph()
    tr = transpose_tensors(csr)
    a = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    col = csr.index_tensors()[1]
    fn = lambda aa, bb: ops.csr_edge_dot(aa, bb, csr.ptr, col, tr)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, b))
    want = (a[csr.row] * b[csr.col]).sum(-1)
    torch.testing.assert_close(fn(a, b), want)


def test_gather_aggregate_bipartite_and_unweighted_grad():
    ei = torch.tensor([[0, 1, 2, 4, 4], [0, 0, 2, 1, 2]])
    csr = CSR.from_edge_index(ei, size=(5, 3))
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    with backend.use_backend("native"):
        out = gather_aggregate(x, csr, None, "mean")
    out.sum().backward()
    deg = torch.bincount(ei[1], minlength=3).clamp(min=1).double()
    want = torch.zeros(5, 2, dtype=torch.float64).index_add_(
        0, ei[0], (1 / deg[ei[1]]).unsqueeze(-1).expand(-1, 2)
    )
    torch.testing.assert_close(x.grad, want)


# ------------------------------------------------------------------------------ softmax
@SETTINGS
@given(
    ptr=segments(),
    h=st.sampled_from([1, 4]),
    log=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_segment_softmax_matches_reference(ptr, h, log, seed):
    e = int(ptr[-1])
    src = _values(e, h, torch.float64, seed) * 5
    seg = torch.repeat_interleave(torch.arange(ptr.numel() - 1), ptr.diff())
    got = ops.segment_softmax(src, ptr, log)
    want = torch.empty_like(src)
    for s in range(ptr.numel() - 1):
        lo, hi = int(ptr[s]), int(ptr[s + 1])
        if hi > lo:
            want[lo:hi] = torch.log_softmax(src[lo:hi], 0) if log else torch.softmax(src[lo:hi], 0)
    _close(got, want, torch.float64)
    # through the public op, on a shuffled (unsorted) index
    perm = torch.randperm(e, generator=torch.Generator().manual_seed(seed))
    fn = scatter_log_softmax if log else scatter_softmax
    with backend.use_backend("native"):
        got2 = fn(src[perm], seg[perm], 0, ptr.numel() - 1)
    _close(got2, want[perm], torch.float64)


@pytest.mark.parametrize("log", [False, True])
def test_segment_softmax_gradcheck(log):
    ptr = torch.tensor([0, 4, 4, 11, 30])
    src = torch.randn(30, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: ops.segment_softmax(s, ptr, log), (src,))


# ------------------------------------------------------------------------------ time encoding
@SETTINGS
@given(
    m=st.integers(0, 50),
    t=st.sampled_from([1, 7, 16, 100]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_time_encode_matches_float64_reference(m, t, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    dt = torch.rand(m, generator=g, dtype=torch.float64) * 1e4
    w = torch.pow(10.0, -torch.linspace(0, 9, t, dtype=torch.float64)).to(dtype)
    b = torch.randn(t, generator=g).to(dtype)
    with backend.use_backend("native"):
        got = dg_time_encode(dt, w, b)
    d = dt.to(dtype).double().unsqueeze(-1)
    want = torch.cos(d * w.double() + b.double())
    # float32: the argument itself carries ~|dt*w| * 2^-24 rounding (FMA or not)
    eps = torch.finfo(dtype).eps
    tol = 4 * eps * (d * w.double()).abs() + 8 * eps
    assert got.dtype == dtype and got.shape == (m, t)
    assert bool(((got.double() - want).abs() <= tol).all())


def test_time_encode_gradcheck():
    dt = (torch.rand(6, 2, dtype=torch.float64) * 10).requires_grad_()
    w = torch.rand(5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)

    def fn(d, ww, bb):
        with backend.use_backend("native"):
            return dg_time_encode(d, ww, bb)

    assert torch.autograd.gradcheck(fn, (dt, w, b))


# ------------------------------------------------------------------------------ registration
def test_opcheck_fake_and_autograd_registrations():
    csr, _ = _graph()
    tr = transpose_tensors(csr)
    col = csr.index_tensors()[1]
    x = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    w = torch.rand(40, dtype=torch.float64, requires_grad=True)
    src = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    tests = ("test_schema", "test_faketensor", "test_autograd_registration")
    cases = [
        (ops.csr_aggregate.default, (x, csr.ptr, col, w, 0, False, tr)),
        (ops.csr_aggregate.default, (x, csr.ptr, col, w, 2, True, [])),
        (ops.segment_reduce.default, (src, csr.ptr, 1, False)),
        (ops.segment_softmax.default, (src, csr.ptr, True)),
        (ops.time_encode.default, (torch.rand(7, dtype=torch.float64), x[0], x[1])),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args, test_utils=tests)


def test_auto_mode_routes_to_native_only_where_measured_faster():
    """AUTO picks native exactly for the keys of the measured table (kernels/README.md) and
    the Python backends elsewhere; a forced native backend still reaches every kernel."""
    from dyngraph.ops._impl_native import NATIVE_AUTO

    with backend.use_backend("auto"):
        for key in NATIVE_AUTO:
            grad = len(key) == 3
            assert backend.backend_for(*key[:2], grad=grad) == "native", key
        for red in ("sum", "mean", "max", "min"):  # memory-bound: no 1.5x, not routed
            assert backend.backend_for("segment", red) != "native"
            assert backend.backend_for("segment", red, grad=True) != "native"
        assert backend.backend_for("gather_aggregate", "max") != "native"
        assert backend.backend_for("time_encode", "cos") == "torch"  # measured slower
    with backend.use_backend("native"):
        assert backend.backend_for("segment", "sum") == "native"
        assert backend.backend_for("gather_aggregate", "max") == "native"


# ------------------------------------------------------------------------------ fallback
@pytest.mark.parametrize("hide", ["cxx", "path"])
def test_missing_compiler_falls_back_with_one_warning(tmp_path, hide):
    """Hide the compiler ($CXX -> a missing binary, or a PATH holding only ninja) and use a
    fresh cache: one warning naming the missing compiler, the torch backend answers, results
    stay correct; forcing native raises BackendError."""
    code = textwrap.dedent(
        """
        import warnings, torch
        warnings.simplefilter("always")
        from dyngraph.ops import CSR, gather_aggregate, segment, backend, _native
        from dyngraph.errors import BackendError
        ptr = torch.tensor([0, 2, 5]); src = torch.arange(10.).view(5, 2)
        csr = CSR.from_edge_index(torch.tensor([[0, 1, 2], [1, 2, 0]]), 3)
        x = torch.arange(6.).view(3, 2)
        with warnings.catch_warnings(record=True) as rec:  # auto routes these to native
            a = gather_aggregate(x, csr, None, "sum"); b = gather_aggregate(x, csr, None, "mean")
        msgs = [str(r.message) for r in rec if issubclass(r.category, _native.NativeBuildWarning)]
        assert len(msgs) == 1, msgs
        assert "no C++ compiler found" in msgs[0] and "Falling back" in msgs[0], msgs[0]
        assert backend.backend_for("gather_aggregate", "sum") == "torch"
        assert a.tolist() == x[[2, 0, 1]].tolist() and b.tolist() == a.tolist()
        with backend.use_backend("native"):
            try:
                segment(src, ptr, "sum")
            except BackendError as exc:
                assert "could not be built" in str(exc)
            else:
                raise AssertionError("forced native without a compiler must raise")
        print("OK")
        """
    )
    env = dict(os.environ, DYNGRAPH_KERNELS_CACHE=str(tmp_path / "cache"))
    env.pop("DYNGRAPH_OPS_BACKEND", None)
    if hide == "cxx":
        env["CXX"] = str(tmp_path / "no-such-c++")
    else:  # ninja stays reachable, the compiler does not
        env.pop("CXX", None)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        ninja = shutil.which("ninja") or os.path.join(os.path.dirname(sys.executable), "ninja")
        if os.path.exists(ninja):
            (bin_dir / "ninja").symlink_to(ninja)
        env["PATH"] = str(bin_dir)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]


# ------------------------------------------------------------------------------ packaging
def test_kernel_sources_come_from_the_package_folder():
    """Sources are looked up inside the package (dyngraph/ops/_kernels: package data in a wheel,
    a symlink to kernels/ in the repository), so a non-editable install can build them."""
    from pathlib import Path

    import dyngraph.ops

    found = _native.kernel_sources()
    pkg = Path(dyngraph.ops.__file__).resolve().parent / "_kernels"
    repo = Path(dyngraph.ops.__file__).resolve().parents[2] / "kernels"
    assert found, "no kernel sources found"
    assert all(p.parent == pkg for p in found), found
    if repo.is_dir():  # a repository checkout: the package folder mirrors kernels/
        assert [p.name for p in found] == sorted(p.name for p in repo.glob("*.cpp"))


def test_wheel_ships_kernel_sources(tmp_path):
    """Build a wheel from a copy of the project (setuptools, no isolation, no network): it must
    contain every kernels/*.cpp under dyngraph/ops/_kernels, and kernel_sources() of the
    unpacked wheel must find them there."""
    import zipfile
    from pathlib import Path

    import dyngraph.ops

    root = Path(dyngraph.ops.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "kernels").is_dir():
        pytest.skip("not a source checkout")
    proj = tmp_path / "proj"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
    shutil.copytree(root / "dyngraph", proj / "dyngraph", symlinks=True, ignore=ignore)
    shutil.copytree(root / "kernels", proj / "kernels", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (root / name).exists():
            shutil.copy(root / name, proj / name)
    code = (
        "import sys; from setuptools import build_meta as b; "
        f"print(b.build_wheel({str(tmp_path / 'dist')!r}))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=proj, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    wheel = tmp_path / "dist" / res.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "site")
    want = sorted(f"dyngraph/ops/_kernels/{p.name}" for p in (root / "kernels").glob("*.cpp"))
    assert want and all(w in names for w in want), (
        "the wheel lacks the kernel sources; pyproject.toml needs "
        '[tool.setuptools.package-data] "dyngraph.ops" = ["_kernels/*.cpp", ...]'
    )
    probe = "from dyngraph.ops import _native; print(*_native.kernel_sources(), sep='\\n')"
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    env.pop(_native.SOURCES_ENV, None)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = [Path(line) for line in out.stdout.split()]
    assert [p.name for p in got] == [Path(w).name for w in want]
    assert all(str(p).startswith(str(tmp_path / "site")) for p in got), got
