"""dyngraph.ops.backend: env-var forcing, missing-backend errors, fallbacks, plug-in slot."""

from __future__ import annotations

import sys

import pytest
import torch
from _ops_ref import HAS_TORCH_SCATTER

from dyngraph.errors import BackendError, ConfigError
from dyngraph.ops import CSR, backend, gather_aggregate, scatter, segment


@pytest.fixture(autouse=True)
def _reset_mode():
    backend.set_backend(None)
    yield
    backend.set_backend(None)


def test_env_var_selects_backend(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "torch")
    assert backend.get_backend() == "torch"
    assert set(backend.selection_table().values()) == {"torch"}
    monkeypatch.setenv(backend.ENV_VAR, "AUTO")
    assert backend.get_backend() == "auto"
    monkeypatch.setenv(backend.ENV_VAR, "cuda-magic")
    with pytest.raises(ConfigError, match="cuda-magic"):
        scatter(torch.ones(3), torch.tensor([0, 1, 1]))


def test_set_backend_overrides_env(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "scatter")
    backend.set_backend("torch")
    assert backend.backend_for("segment", "sum") == "torch"
    with backend.use_backend("auto"):
        assert backend.get_backend() == "auto"
    assert backend.get_backend() == "torch"
    with pytest.raises(ConfigError):
        backend.set_backend("nope")


def test_forced_missing_backend_raises_backend_error():
    backend.register_backend("absent", lambda: "absent_pkg is not installed")
    try:
        backend.register_impl("scatter", "sum", "absent", lambda *a: None)
        assert backend.available_backends()["absent"] == "absent_pkg is not installed"
        with backend.use_backend("absent"):
            with pytest.raises(BackendError, match="absent_pkg is not installed"):
                scatter(torch.ones(3), torch.tensor([0, 1, 1]))
        # auto mode skips it
        assert backend.backend_for("scatter", "sum") in ("torch", "scatter")
    finally:
        backend.unregister_backend("absent")
    assert "absent" not in backend.available_backends()


def test_forced_scatter_without_torch_scatter(monkeypatch):
    # Hide torch_scatter (a None entry in sys.modules makes `import` raise ImportError) and
    # re-probe with a fresh backend record.
    monkeypatch.setitem(sys.modules, "torch_scatter", None)
    fresh = backend._Backend("scatter", backend._probe_torch_scatter)
    monkeypatch.setitem(backend._BACKENDS, "scatter", fresh)
    assert "not importable" in backend.available_backends()["scatter"]
    assert backend.backend_for("segment", "sum") in ("torch", "native")  # auto skips it silently
    with backend.use_backend("scatter"), pytest.raises(BackendError, match="torch-scatter"):
        scatter(torch.ones(3), torch.tensor([0, 1, 1]))


@pytest.mark.skipif(not HAS_TORCH_SCATTER, reason="torch-scatter not installed")
def test_forced_scatter_uses_it_and_falls_back_where_missing():
    with backend.use_backend("scatter"):
        assert backend.backend_for("segment", "sum") == "scatter"
        assert backend.backend_for("scatter", "max") == "scatter"
        # torch-scatter has no fused gather-aggregate and its mul gradient is wrong at zeros
        assert backend.backend_for("gather_aggregate", "sum") == "torch"
        assert backend.backend_for("scatter", "mul") == "torch"


def test_preferred_plugin_backend_takes_over_and_can_be_removed():
    """The slot a native extension (issue 10) uses: register, prefer, fall back on removal."""
    calls = []

    def fake_segment_sum(src, ptr):
        calls.append(src.shape)
        return torch.zeros(ptr.numel() - 1, *src.shape[1:], dtype=src.dtype)

    backend.set_backend("auto")  # also under DYNGRAPH_OPS_BACKEND=torch (CI runs both ways)
    backend.register_backend("fake_native", lambda: None, prefer=True)
    try:
        backend.register_impl("segment", "sum", "fake_native", fake_segment_sum)
        assert backend.backend_for("segment", "sum") == "fake_native"
        assert backend.backend_for("segment", "max") != "fake_native"  # not implemented there
        out = segment(torch.ones(4, 2), torch.tensor([0, 1, 4]))
        assert calls == [torch.Size([4, 2])] and not bool(out.any())
    finally:
        backend.unregister_backend("fake_native")
    assert backend.backend_for("segment", "sum") != "fake_native"
    torch.testing.assert_close(
        segment(torch.ones(4, 2), torch.tensor([0, 1, 4])), torch.tensor([[1.0, 1.0], [3.0, 3.0]])
    )


def test_results_agree_across_backends():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(500, 8, generator=g, dtype=torch.float64)
    index = torch.randint(0, 40, (500,), generator=g)
    ei = torch.randint(0, 40, (2, 500), generator=g)
    csr = CSR.from_edge_index(ei, 40)
    x = torch.randn(40, 8, generator=g, dtype=torch.float64)
    modes = ["torch", "auto"] + (["scatter"] if HAS_TORCH_SCATTER else [])
    results = {}
    for mode in modes:
        with backend.use_backend(mode):
            results[mode] = [scatter(src, index, 0, 45, r) for r in ("sum", "mean", "max")]
            results[mode].append(gather_aggregate(x, csr, reduce="mean"))
    for mode in modes[1:]:
        for a, b in zip(results["torch"], results[mode]):
            torch.testing.assert_close(a, b)
