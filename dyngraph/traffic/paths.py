"""Shortest paths and all-or-nothing (AON) assignment, vectorised over origins and scenarios.

Centroids (zones with TNTP id below ``<FIRST THRU NODE>``) must not be passed through. We
split each such zone ``z`` into two routing nodes: ``z`` itself keeps only the links *into*
the zone (a pure sink, so trips can end there) and a new node ``N + z`` gets the links *out*
of it (a pure source, where that zone's trips start). No path can then enter and leave a
centroid, and one :func:`scipy.sparse.csgraph.dijkstra` call handles all origins.

Two AON back ends compute the same assignment (:meth:`RoutingGraph.aon`):

* ``native`` — ``torch.ops.dyngraph.traffic_aon`` from ``kernels/traffic.cpp``. By default
  ("sweep") per origin label-correcting sweeps over the links in a fixed, network-only order
  (:meth:`RoutingGraph.sweep_plan`) with 8 scenarios in the SIMD lanes, then one reverse pass
  over that order pushing each subtree's demand onto its tree link; alternatively one heap
  Dijkstra per origin, or an all-pairs Floyd–Warshall. Used when the shared extension builds.
* ``numpy`` — :func:`scipy.sparse.csgraph.dijkstra` (scenarios stacked block-diagonally) and a
  walk of every OD path back to its origin through the predecessor array, one tree level per
  step for all OD pairs (and scenarios) at once, summing demands per link with a single
  ``np.bincount`` — no per-path Python loop.

``DYNGRAPH_TRAFFIC_BACKEND=native|numpy|auto`` (default ``auto``: native when it builds) picks
one; equal-cost ties between paths may be broken differently by the two.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from dyngraph.errors import BackendError, ConfigError, DataError, ShapeError
from dyngraph.traffic.network import TrafficNetwork

__all__ = ["RoutingGraph", "all_or_nothing", "shortest_path_costs", "aon_backend",
           "native_poly_root", "native_row_ops"]

BACKEND_ENV = "DYNGRAPH_TRAFFIC_BACKEND"
_ALGOS = {"auto": 0, "dijkstra": 1, "floyd": 2, "sweep": 3}
# The sweep plan holds about (zones x links) int32 triples; above this many the auto mode
# falls back to Floyd-Warshall / Dijkstra rather than hold a large plan in memory.
_SWEEP_MAX_ENTRIES = 4_000_000
_native_state: dict[str, object] = {}


def aon_backend(name: str | None = None) -> str:
    """The AON back end in use: ``"native"`` or ``"numpy"``.

    Args:
        name: ``"auto"`` (native when the extension builds), ``"native"`` (raise
            :class:`~dyngraph.errors.BackendError` if it cannot) or ``"numpy"``; default
            ``$DYNGRAPH_TRAFFIC_BACKEND`` or ``"auto"``.
    """
    name = (name or os.environ.get(BACKEND_ENV) or "auto").lower()
    if name not in ("auto", "native", "numpy"):
        raise ConfigError(f"{BACKEND_ENV}={name!r}: use auto, native or numpy")
    if name == "numpy":
        return "numpy"
    if "reason" not in _native_state:
        import torch

        from dyngraph.ops import _native

        reason = _native.unavailable_reason()
        # traffic_aon needs none of the Python-side registrations of dyngraph.ops, so it is
        # usable whenever the library itself loaded, even if those failed.
        if hasattr(torch.ops.dyngraph, "traffic_aon"):
            reason = None
        elif reason is None:
            reason = ("the native extension was built without kernels/traffic.cpp "
                      "(traffic_aon missing)")
        _native_state["reason"] = reason
    reason = _native_state["reason"]
    if reason is not None:
        if name == "native":
            raise BackendError(f"traffic AON: {reason}")
        return "numpy"
    return "native"


def native_poly_root():
    """``f(coef (S, p + 1), g1 (S,)) -> tau (S,)``: the native twin of the UE line search's
    scalar root finder (``assignment._poly_root``, bit-identical steps), or None when the
    native back end is not in use (see :func:`aon_backend`)."""
    if aon_backend() != "native":
        return None
    import torch

    op = getattr(torch.ops.dyngraph, "traffic_poly_root", None)
    if op is None:  # pragma: no cover - an extension built from an older traffic.cpp
        return None

    def root(coef: np.ndarray, g1: np.ndarray) -> np.ndarray:
        return op(torch.from_numpy(np.ascontiguousarray(coef, dtype=np.float64)),
                  torch.from_numpy(np.ascontiguousarray(g1, dtype=np.float64))).numpy()

    return root


class NativeRowOps:
    """The fused steps of a batched UE iteration (``kernels/traffic.cpp``:
    ``traffic_bpr_times``, ``traffic_bfw_prep``, ``traffic_bfw_step``,
    ``traffic_line_products``, ``traffic_poly_step``) on C-contiguous float64 numpy arrays,
    bit-identical to the numpy code they replace in :mod:`~dyngraph.traffic.assignment` (same
    IEEE operations in the same order, no FMA; row sums stay in numpy). Outputs are written
    into the given arrays."""

    def __init__(self, ns) -> None:
        import torch

        self._tn = torch.from_numpy
        self._bpr, self._prep = ns.traffic_bpr_times, ns.traffic_bfw_prep
        self._step, self._lp = ns.traffic_bfw_step, ns.traffic_line_products
        self._poly = ns.traffic_poly_step

    def bpr_times(self, x, coef, t0, power: float, out: list) -> None:
        """``out = [x^2, .., x^(p-1), t, h]``: BPR times ``t = (coef x^(p-1)) x + t0`` and
        derivatives ``h = (coef x^(p-1)) p``; ``coef`` ``(n, E)`` or ``(E,)``."""
        tn = self._tn
        if not t0.flags.writeable:  # torch warns on read-only arrays (frozen network data)
            t0 = t0.copy()
        self._bpr(tn(x), tn(coef), tn(t0), float(power), [tn(a) for a in out])

    def bfw_prep(self, y, x, s1, s2, h, tau_prev, mode: int, out: list) -> None:
        """``out = [y - x, s1 - x, h (s1 - x), y - s1, ((tp s1 - x) + (1 - tp) s2) h,
        s2 - s1]``, ``tp`` = ``tau_prev`` per row (mode bit 0: the fourth is needed, bit 1:
        the last two; the others are always written)."""
        tn = self._tn
        self._prep(tn(y), tn(x), tn(s1), tn(s2), tn(h), tn(tau_prev), mode,
                   [tn(a) for a in out])

    def bfw_step(self, y, x, s1, s2, dots, tau_prev, phase, max_phase: int, mode: int,
                 out: list) -> None:
        """The CFW / BFW weights from the row sums ``dots`` ``(5, n)`` (``<hd1, y - x>``,
        ``<hd1, y - s1>``, ``<hd2, y - x>``, ``<hd2, s2 - s1>``, ``<hd1, s1 - x>``), then
        ``out = [s, s - x]`` with ``s = ((y + nu s1) + mu s2) b0`` (mode as in
        :meth:`bfw_prep`)."""
        tn = self._tn
        self._step(tn(y), tn(x), tn(s1), tn(s2), tn(dots), tn(tau_prev), tn(phase),
                   max_phase, mode, [tn(a) for a in out])

    def line_products(self, coef, d, out: list) -> None:
        """``out[0] = (coef d) d``, ``out[k] = out[k - 1] d``: the ``coef d^(k+1)``
        products of the polynomial line search (``p = len(out)``)."""
        tn = self._tn
        self._lp(tn(coef), tn(d), [tn(a) for a in out])

    def poly_step(self, dots, scale) -> np.ndarray:
        """The line-search step of every row from its row sums ``dots`` ``(p + 1, n)``
        (``g0``, then ``<coef d^k, x^(p-k)>``): coefficients ``scale[k] dots[k]``, their sum
        ``g1`` in numpy's order, ``tau = 1`` where ``g1 <= 0`` else the polynomial's root
        (``traffic_poly_root``)."""
        tn = self._tn
        return self._poly(tn(dots), tn(scale)).numpy()


def native_row_ops() -> NativeRowOps | None:
    """The fused row operations of batched UE solves (:class:`NativeRowOps`), or None when
    the native back end is not in use or the extension predates them."""
    if aon_backend() != "native":
        return None
    hit = _native_state.get("row_ops", False)
    if hit is False:
        import torch

        ns = torch.ops.dyngraph
        ok = all(hasattr(ns, k) for k in ("traffic_bpr_times", "traffic_bfw_prep",
                                          "traffic_bfw_step", "traffic_line_products",
                                          "traffic_poly_step"))
        hit = _native_state["row_ops"] = NativeRowOps(ns) if ok else None
    return hit


class RoutingGraph:
    """Routing structure of a :class:`TrafficNetwork`, built once, reused every iteration.

    Args:
        network: the network (its link order defines the flow vectors).
        block: number of scenarios stacked into one block-diagonal graph per Dijkstra call
            in batched mode (amortises scipy's per-call overhead; scipy's dense output grows
            with the square of the block, so the default keeps ``block * nodes`` near 200).
        slice_elems: batched solves process scenarios in slices of about this many
            (scenario, zone, node) tree entries, so that the path-walking gathers stay in cache.
    """

    def __init__(self, network: TrafficNetwork, block: int | None = None,
                 slice_elems: int = 1 << 16) -> None:
        n, z = network.num_nodes, network.num_zones
        n_blocked = int(min(max(network.first_thru_node - 1, 0), z))
        self.network = network
        self.num_links = network.num_links
        self.num_zones = z
        self.n_route = n + n_blocked
        tail = network.init.copy()
        out_of_centroid = tail < n_blocked
        tail[out_of_centroid] += n
        head = network.term.copy()
        self._tail, self._head = tail.astype(np.int64), head.astype(np.int64)
        self._native_args = None
        self._plan = None
        self.sources = np.arange(z)
        self.sources[:n_blocked] += n
        keys = tail * self.n_route + head
        uniq, first_pos = np.unique(keys, return_index=True)
        self.parallel = uniq.size < keys.size
        self._keys = keys
        self._uniq = uniq
        rows = uniq // self.n_route
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.n_route))])
        self._indices = (uniq % self.n_route).astype(np.int32)
        if self.parallel:
            # Sorted by (key, cost) each call; group starts give the cheapest parallel link.
            self._group_start = np.searchsorted(np.sort(keys), uniq)
        else:
            self._perm = np.argsort(keys, kind="stable")  # csr position -> link id
        # Dense (tail, head) -> link id table when there are no parallel links (fast AON).
        self.link_table = None
        if not self.parallel and self.n_route <= 3000:
            lt = np.full(self.n_route * self.n_route, -1, dtype=np.int64)
            lt[keys] = np.arange(keys.size)
            self.link_table = lt
        nnz = uniq.size
        self._csr = sp.csr_matrix(
            (np.ones(nnz), self._indices, self._indptr), shape=(self.n_route, self.n_route)
        )
        # Position lookup (tail, head) -> csr position; dense when small, searchsorted otherwise.
        self._dense_pos = None
        if self.n_route <= 3000:
            t = np.full((self.n_route, self.n_route), -1, dtype=np.int64)
            t[rows, self._indices] = np.arange(nnz)
            self._dense_pos = t.ravel()
        self.block = max(1, 200 // self.n_route) if block is None else max(1, int(block))
        self.slice_elems = int(slice_elems)
        self._block_cache: dict[int, sp.csr_matrix] = {}

    # ------------------------------------------------------------------ internals
    def _pos_to_link(self, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per csr position: (chosen link id, its cost). ``cost`` is ``(S, E)``."""
        if not self.parallel:
            return np.broadcast_to(self._perm, cost.shape), cost[:, self._perm]
        links = np.empty((cost.shape[0], self._uniq.size), dtype=np.int64)
        for s in range(cost.shape[0]):
            order = np.lexsort((cost[s], self._keys))
            links[s] = order[self._group_start]
        return links, np.take_along_axis(cost, links, axis=1)

    def _block_graph(self, k: int) -> sp.csr_matrix:
        g = self._block_cache.get(k)
        if g is None:
            nnz, nr = self._uniq.size, self.n_route
            indptr = np.concatenate(
                [[0], (self._indptr[1:][None, :] + nnz * np.arange(k)[:, None]).ravel()]
            )
            indices = (self._indices[None, :] + nr * np.arange(k)[:, None]).ravel()
            g = sp.csr_matrix((np.ones(k * nnz), indices.astype(np.int32), indptr),
                              shape=(k * nr, k * nr))
            self._block_cache[k] = g
        return g

    def _diag_index(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices of the k diagonal (Z, R) blocks of a block Dijkstra output, and the
        node offset of each block (to turn block-global node ids back into local ones)."""
        key = -k
        hit = self._block_cache.get(key)
        if hit is None:
            z, nr = self.num_zones, self.n_route
            s = np.arange(k)[:, None, None]
            rows = s * z + np.arange(z)[None, :, None]
            cols = s * nr + np.arange(nr)[None, None, :]
            hit = ((rows * (k * nr) + cols).ravel(), (s * nr).astype(np.int32))
            self._block_cache[key] = hit
        return hit

    def shortest_paths(
        self, cost: np.ndarray, need_dist: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Shortest-path trees from every zone, for one or many cost vectors.

        Args:
            cost: ``(E,)`` or ``(S, E)`` non-negative link costs.
            need_dist: also return distances (skipped inside the solver loop).

        Returns:
            ``dist`` ``(S, Z, R)`` distances to every routing node (or None), ``pred``
            ``(S, Z, R)`` predecessor routing node (negative at the root/unreachable), and
            ``link_of_pos`` ``(S, nnz)`` link id of each csr position (the cheapest of
            parallel links).
        """
        c = np.atleast_2d(np.asarray(cost, dtype=np.float64))
        if c.shape[1] != self.num_links:
            raise ShapeError(f"cost has {c.shape[1]} links, network has {self.num_links}")
        s_count = c.shape[0]
        link_of_pos, data = self._pos_to_link(c)
        z, nr = self.num_zones, self.n_route
        if s_count == 1:
            self._csr.data = data[0]
            d, p = dijkstra(self._csr, directed=True, indices=self.sources,
                            return_predecessors=True)
            return (d[None] if need_dist else None), p[None], link_of_pos
        dist = np.empty((s_count, z, nr)) if need_dist else None
        pred = np.empty((s_count, z, nr), dtype=np.int32)
        for lo in range(0, s_count, self.block):
            k = min(self.block, s_count - lo)
            g = self._block_graph(k)
            g.data = data[lo : lo + k].ravel()
            srcs = (self.sources[None, :] + nr * np.arange(k)[:, None]).ravel()
            d, p = dijkstra(g, directed=True, indices=srcs, return_predecessors=True)
            flat, off = self._diag_index(k)
            pk = p.ravel()[flat].reshape(k, z, nr)
            # Roots/unreachable stay negative (-9999 - offset is still negative).
            np.subtract(pk, off, out=pred[lo : lo + k])
            if need_dist:
                dist[lo : lo + k] = d.ravel()[flat].reshape(k, z, nr)
        return dist, pred, link_of_pos

    def aon(self, cost: np.ndarray, od: ODPairs, need_cost: bool = False,
            backend: str | None = None,
            algorithm: str = "auto") -> tuple[np.ndarray, np.ndarray | None]:
        """All-or-nothing flows for one or many cost vectors.

        Args:
            cost: ``(S, E)`` non-negative link costs.
            od: the OD pairs and their demands ``(S, P)`` (or ``(1, P)`` shared).
            need_cost: also return the shortest-path cost of every OD pair.
            backend: see :func:`aon_backend`.
            algorithm: native back end only: ``"sweep"`` (per origin, label-correcting
                sweeps over the links in free-flow distance order, vectorised across
                scenarios; see :meth:`sweep_plan`), ``"dijkstra"`` (one heap Dijkstra per
                origin), ``"floyd"`` (all-pairs Floyd–Warshall) or ``"auto"`` (``"sweep"``
                unless its plan would exceed ``4e6`` entries, else Floyd–Warshall or
                Dijkstra by an operation count, ``R^3`` against ``Z (E + R) log R``).

        Returns:
            ``flows`` ``(S, E)`` and ``od_cost`` ``(S, P)`` (``inf`` when there is no path)
            or None.
        """
        c = np.ascontiguousarray(np.atleast_2d(cost), dtype=np.float64)
        if c.shape[1] != self.num_links:
            raise ShapeError(f"cost has {c.shape[1]} links, network has {self.num_links}")
        if c.size and not c.min() >= 0:  # also catches NaN
            raise DataError("link costs must be finite and non-negative for shortest paths")
        if aon_backend(backend) == "native":
            if algorithm not in _ALGOS:
                raise ConfigError(f"algorithm {algorithm!r} unknown; use one of {list(_ALGOS)}")
            return self._aon_native(c, od, need_cost, _ALGOS[algorithm])
        s_count = c.shape[0]
        per = self.num_zones * self.n_route
        # Slices of scenarios whose (S, Z, R) tree arrays stay cache-resident: random gathers
        # over one huge array were slower per scenario than one-by-one solves.
        step = max(self.block, self.slice_elems // per // self.block * self.block)
        flows = np.empty_like(c)
        od_cost = np.empty((s_count, od.orig.size)) if need_cost else None
        for lo in range(0, s_count, step):
            sl = slice(lo, min(lo + step, s_count))
            dist, pred, lop = self.shortest_paths(c[sl], need_dist=need_cost)
            sub = od if s_count <= step else od.subset(np.arange(sl.start, sl.stop))
            flows[sl] = aon_load(self, pred, lop, sub)
            if need_cost:
                od_cost[sl] = dist[:, od.orig, od.dest]
        return flows, od_cost

    def order_costs(self, iterations: int = 8) -> np.ndarray:
        """Link costs that set the sweep order: BPR times after ``iterations`` method-of-
        successive-averages steps on the network's own demand and capacity -- a rough,
        deterministic picture of congestion. Solver iterates sit near equilibrium, where
        free-flow order is a poor guide on congested networks (Sioux Falls: 1.3 re-sweeps
        per origin and a third of the loads carried past misplaced nodes at free-flow order).
        Any order gives exact results; this one only makes re-sweeps rarer.
        """
        from dyngraph.traffic.costs import BPR

        net = self.network
        t0 = np.asarray(net.free_flow_time, dtype=np.float64)
        od = ODPairs(net.demand)
        if od.orig.size == 0 or iterations < 1:
            return t0
        bpr = BPR(t0, net.capacity, net.b, net.power)
        native = aon_backend() == "native"

        def aon(t: np.ndarray) -> np.ndarray:  # never the sweep: its plan is being built
            c = np.ascontiguousarray(t, dtype=np.float64)
            return (self._aon_native(c, od, False, 0, use_plan=False) if native
                    else self.aon(c, od, backend="numpy"))[0]

        x = aon(t0[None])
        for k in range(1, iterations):
            x += (aon(bpr.time(x)) - x) / (k + 1)
        return bpr.time(x)[0]

    def sweep_plan(self):
        """The fixed relaxation order of the native ``"sweep"`` AON, built once per graph.

        For every origin zone ``z``: ``order[z]`` lists the routing nodes by distance from
        ``z``'s source node under :meth:`order_costs` (the source first, then ties by node id,
        unreachable nodes last), and its slice of ``sweep`` lists the links whose tail is
        reachable, as ``(tail, head, link)`` columns: first the forward links (head after tail
        in ``order[z]``) by tail position (then link id), then the backward ones likewise, with
        ``link`` stored as ``~link`` (negative) when backward. The kernel relaxes the forward
        links in one pass, checks the backward ones, and re-sweeps the out-links of nodes a
        backward link improved. The plan depends only on the network, never on a scenario, so a
        scenario gets the same trees (and equal-cost tie breaks) alone or in any batch.

        Returns:
            ``[sweep (3, N) int32, sweep_ptr (Z + 1,) int64, order (Z, R) int32, position
            (Z, R) int32, segment (Z, 2, R + 1) int32]`` as torch tensors: ``position`` inverts
            ``order`` row by row and ``segment[z, 0 | 1, i]`` is where the forward | backward
            entries of the node at position ``i`` start in ``z``'s slice of ``sweep`` (for
            re-sweeping single nodes).
        """
        if self._plan is None:
            import torch

            nr, z = self.n_route, self.num_zones
            tail, head = self._tail, self._head
            _, data = self._pos_to_link(self.order_costs()[None])
            self._csr.data = data[0]
            d0 = np.atleast_2d(dijkstra(self._csr, directed=True, indices=self.sources))
            key = d0.copy()
            key[np.arange(z), self.sources] = -1.0  # the source first, even with 0-cost links
            order = np.lexsort((np.broadcast_to(np.arange(nr), key.shape), key), axis=-1)
            pos = np.empty_like(order)
            np.put_along_axis(pos, order, np.arange(nr)[None, :], axis=-1)
            e = self.num_links
            pos_t, pos_h = pos[:, tail], pos[:, head]  # (Z, E)
            reach = np.isfinite(d0[:, tail])
            back = pos_h <= pos_t
            # sort key: forward links first, then backward ones, each by tail position, then
            # link id; links with unreachable tails sorted last and dropped
            k = (np.where(reach, back * nr + pos_t, 2 * nr) * e + np.arange(e)[None, :])
            idx = np.argsort(k, axis=1, kind="stable")
            keep = np.take_along_axis(reach, idx, axis=1)
            rows = np.broadcast_to(np.arange(z)[:, None], idx.shape)[keep]
            links = idx[keep]
            bk = back[rows, links]
            plan = np.stack([tail[links], head[links], np.where(bk, ~links, links)])
            ptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
            # segment[z, 0 | 1, i]: first forward | backward entry (within z's slice) of the
            # node at position i; forward entries fill [0, segment[z, 0, R]), backward follow
            per_pos = np.zeros((z, 2, nr), dtype=np.int64)
            np.add.at(per_pos, (rows, bk.astype(np.int64), pos_t[rows, links]), 1)
            seg = np.concatenate([np.zeros((z, 2, 1), np.int64), np.cumsum(per_pos, axis=2)], 2)
            seg[:, 1] += seg[:, 0, -1:]
            # the forward links again, grouped by head position (then tail position, link
            # id: the order in which the tail-ordered pass would relax them), for the pull
            # pass: a node's label is the minimum over its forward in-links, kept in registers
            fw = ~bk
            f_rows, f_links = rows[fw], links[fw]
            f_head = pos_h[f_rows, f_links]
            pk = np.lexsort((f_links, pos_t[f_rows, f_links], f_head, f_rows))
            f_rows, f_links, f_head = f_rows[pk], f_links[pk], f_head[pk]
            pull = np.stack([tail[f_links], f_links])
            n_fw = np.bincount(f_rows, minlength=z)
            pull_ptr = np.concatenate([[0], np.cumsum(n_fw)])
            per_head = np.zeros((z, nr), dtype=np.int64)
            np.add.at(per_head, (f_rows, f_head), 1)
            pull_seg = np.concatenate([np.zeros((z, 1), np.int64), np.cumsum(per_head, 1)], 1)
            self._plan = [torch.from_numpy(np.ascontiguousarray(a, dtype=dt))
                          for a, dt in ((plan, np.int32), (ptr, np.int64), (order, np.int32),
                                        (pos, np.int32), (seg, np.int32), (pull, np.int32),
                                        (pull_ptr, np.int64), (pull_seg, np.int32))]
        return self._plan

    def _aon_native(self, c: np.ndarray, od: ODPairs, need_cost: bool, algo: int = 0,
                    use_plan: bool = True):
        import torch

        if self._native_args is None:
            order = np.lexsort((np.arange(self.num_links), self._tail))
            ptr = np.concatenate([[0], np.cumsum(np.bincount(self._tail,
                                                             minlength=self.n_route))])
            self._native_args = tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
                                      for a in (ptr, order, self._tail, self._head,
                                                self.sources))
        od_ptr, od_dest = od.index_tensors(self.num_zones)
        vals = od.values
        if vals.shape[0] > 1 and vals.strides[0] == 0:
            vals = vals[:1]  # one demand broadcast over many cost vectors
        if vals.shape[0] not in (1, c.shape[0]):
            raise ShapeError(f"demand has {vals.shape[0]} scenarios, cost has {c.shape[0]}")
        # torch refuses to wrap read-only arrays silently (network arrays may be frozen)
        c = c if c.flags.writeable else c.copy()
        plan = []
        if algo == 3 or (algo == 0 and use_plan
                         and self.num_zones * self.num_links <= _SWEEP_MAX_ENTRIES):
            plan = self.sweep_plan()
        vals = np.ascontiguousarray(vals, dtype=np.float64)
        dem = torch.from_numpy(vals if vals.flags.writeable else vals.copy())
        flows, odc = torch.ops.dyngraph.traffic_aon(
            torch.from_numpy(c), *self._native_args, od_ptr, od_dest, dem, need_cost, algo,
            plan)
        return flows.numpy(), (odc.numpy() if need_cost else None)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_native_args"] = None  # rebuilt lazily (torch tensors stay in-process)
        state["_plan"] = None
        return state

    def lookup_positions(self, tail: np.ndarray, head: np.ndarray) -> np.ndarray:
        """csr positions of routing edges ``tail -> head``."""
        if self._dense_pos is not None:
            return self._dense_pos[tail.astype(np.int64) * self.n_route + head]
        return np.searchsorted(self._uniq, tail.astype(np.int64) * self.n_route + head)


class ODPairs:
    """The OD pairs with positive demand in any scenario, as flat index arrays.

    ``demand`` is ``(Z, Z)`` or ``(S, Z, Z)``; ``values`` is ``(S, P)``.
    """

    def __init__(self, demand: np.ndarray) -> None:
        d = np.asarray(demand, dtype=np.float64)
        d3 = d[None] if d.ndim == 2 else d
        support = (d3 > 0).any(axis=0)
        np.fill_diagonal(support, False)  # intra-zonal trips never load the network
        self.orig, self.dest = np.nonzero(support)  # sorted by origin (row-major)
        # one gather of flat (Z * Z) indices along rows: row-major (S, P) directly, ~10x
        # faster than d3[:, orig, dest] (pair-major, then copied) for a batch of scenarios
        z = d3.shape[-1]
        self.values = np.take(d3.reshape(d3.shape[0], z * z), self.orig * z + self.dest,
                              axis=1)
        self._shared: dict = {}  # index tensors of the native AON, shared with subsets

    def subset(self, idx: np.ndarray) -> ODPairs:
        out = object.__new__(ODPairs)
        out.orig, out.dest, out._shared = self.orig, self.dest, self._shared
        # (np.take: ~1.5x faster than fancy indexing for wide rows; solvers subset often)
        out.values = (np.take(self.values, idx, axis=0) if self.values.shape[0] > 1
                      else self.values)
        return out

    def index_tensors(self, num_zones: int):
        """``od_ptr`` ``(Z + 1)`` (pairs grouped by origin) and ``od_dest`` ``(P,)`` as int64
        torch tensors, built once."""
        hit = self._shared.get("index")
        if hit is None:
            import torch

            ptr = np.concatenate([[0], np.cumsum(np.bincount(self.orig, minlength=num_zones))])
            hit = (torch.from_numpy(ptr.astype(np.int64)),
                   torch.from_numpy(self.dest.astype(np.int64)))
            self._shared["index"] = hit
        return hit


def aon_load(
    graph: RoutingGraph, pred: np.ndarray, link_of_pos: np.ndarray, od: ODPairs
) -> np.ndarray:
    """All-or-nothing link flows ``(S, E)`` from shortest-path trees ``pred`` ``(S, Z, R)``."""
    s_count, z, nr = pred.shape
    e = graph.num_links
    if od.orig.size == 0:
        return np.zeros((s_count, e))
    # Flat index into (S, Z, R); a root points to itself through a dummy link E so finished
    # paths can keep stepping in place until the batch is compressed.
    valid = pred >= 0
    node = np.arange(nr, dtype=np.int64)
    pred_local = np.where(valid, pred, node)
    if graph.link_table is not None:
        links = graph.link_table[pred_local * nr + node]
    else:
        pos = graph.lookup_positions(pred_local.reshape(s_count, -1),
                                     np.broadcast_to(node, pred.shape).reshape(s_count, -1))
        links = np.take_along_axis(link_of_pos, pos, axis=1).reshape(pred.shape)
    links = np.where(valid, links, e) + (np.arange(s_count) * (e + 1))[:, None, None]
    link_flat = links.ravel()
    base = (np.arange(s_count)[:, None] * z + np.arange(z)[None, :]) * nr  # (S, Z)
    pred_flat = (pred_local + base[:, :, None]).ravel()

    so = base[:, od.orig]  # (S, P)
    cur = (so + od.dest[None, :]).ravel()
    stop = (so + graph.sources[od.orig][None, :]).ravel()
    vals = od.values
    if vals.shape[0] != s_count:
        vals = np.broadcast_to(vals, (s_count, vals.shape[1]))  # one demand, many costs
    w = np.ascontiguousarray(vals, dtype=np.float64).ravel()
    n_out = s_count * (e + 1)
    flows = np.zeros(n_out)
    steps = 0
    while cur.size:
        flows += np.bincount(link_flat[cur], weights=w, minlength=n_out)
        cur = pred_flat[cur]
        steps += 1
        if steps % 2 == 0:
            live = cur != stop
            n_live = int(np.count_nonzero(live))
            if n_live < 0.8 * cur.size:
                cur, stop, w = cur[live], stop[live], w[live]
        if steps > nr + 2:
            raise DataError("shortest-path tree has a cycle; link costs must be non-negative")
    return flows.reshape(s_count, e + 1)[:, :e]


def _no_path_error(network: TrafficNetwork, o: int, d: int) -> DataError:
    where = ""
    if network.trips_path is not None and network.demand_lines is not None:
        where = f"{network.trips_path}:{int(network.demand_lines[o, d])}: "
    return DataError(
        f"{where}OD pair {o + 1}->{d + 1} has demand {network.demand[o, d]:g} but no path "
        f"exists in {network.name} (zones below <FIRST THRU NODE> "
        f"{network.first_thru_node} cannot be passed through); fix the links or drop the trips"
    )


def all_or_nothing(
    network: TrafficNetwork,
    cost: np.ndarray,
    demand: np.ndarray | None = None,
    graph: RoutingGraph | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``demand`` on shortest paths under fixed link ``cost``.

    Args:
        cost: ``(E,)`` or ``(S, E)`` link costs.
        demand: ``(Z, Z)`` or ``(S, Z, Z)``; defaults to ``network.demand``.

    Returns:
        ``flows`` with the shape of ``cost`` and the OD shortest-path cost matrix
        ``(Z, Z)`` / ``(S, Z, Z)``.

    Raises:
        DataError: an OD pair with positive demand has no path (names the trips file line).
    """
    g = graph or RoutingGraph(network)
    dem = network.demand if demand is None else np.asarray(demand, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    dist, pred, lop = g.shortest_paths(c)
    od = ODPairs(dem)
    skim = zone_skim(dist, g.num_zones)
    check_reachable(network, skim, od)
    flows = aon_load(g, pred, lop, od)
    if c.ndim == 1:
        return flows[0], skim[0]
    return flows, skim


def check_reachable(network: TrafficNetwork, skim: np.ndarray, od: ODPairs) -> None:
    check_od_reachable(network, skim[:, od.orig, od.dest], od)


def check_od_reachable(network: TrafficNetwork, od_cost: np.ndarray, od: ODPairs) -> None:
    """Raise a :class:`DataError` naming the trips-file line of the first OD pair with demand
    but no path (``od_cost`` ``(S, P)`` is ``inf`` there)."""
    bad = ~np.isfinite(od_cost) & (od.values > 0)
    if bad.any():
        s, k = np.argwhere(bad)[0]
        raise _no_path_error(network, int(od.orig[k]), int(od.dest[k]))


def shortest_path_costs(network: TrafficNetwork, cost: np.ndarray | None = None) -> np.ndarray:
    """``(Z, Z)`` zone-to-zone shortest-path costs (free-flow times by default)."""
    g = RoutingGraph(network)
    c = network.free_flow_time if cost is None else np.asarray(cost, dtype=np.float64)
    dist, _, _ = g.shortest_paths(c)
    return zone_skim(dist, network.num_zones)[0]


def zone_skim(dist: np.ndarray, num_zones: int) -> np.ndarray:
    """``(S, Z, Z)`` zone-to-zone costs from routing distances; intra-zonal cost is 0 (a split
    centroid would otherwise report the cost of a round trip to itself)."""
    skim = dist[:, :, :num_zones].copy()
    skim[:, np.arange(num_zones), np.arange(num_zones)] = 0.0
    return skim
