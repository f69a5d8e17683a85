// The k most recent neighbours of each query (node v, time t) strictly before t, read from the
// per-node CSR of dyngraph.data.TemporalNeighborIndex in one pass.
//
// The Python path finds each query's cut with two global searchsorted calls (time -> event id
// over all events, then (node, event id) over all 2E entries) and gathers with ~10 small ops;
// inside a TGN training step those searches run on cold cache lines (~60 us each per batch).
// Here each query binary-searches only its own node's entries, whose times are non-decreasing
// (entries are stored in event order and events are time-sorted), and writes its k slots.
//
//   tgn_neighbors(ptr [N+1] int64, entry_t [M] float64, nbr [M] int64, eid [M] int64,
//                 nodes [B] int64, t [B] float64, k)
//     -> (nbr [B, k] int64, eid [B, k] int64, t [B, k] float64, mask [B, k] bool)
//
// Slot j of query i is entry end_i - 1 - j (most recent first) when it lies in the node's
// segment, else padding (nbr 0, eid -1, t 0, mask false) -- the NeighborBlock convention.

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cstdint>

namespace dyngraph_temporal_neighbors {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> tgn_neighbors(
    const at::Tensor& ptr_, const at::Tensor& entry_t_, const at::Tensor& nbr_,
    const at::Tensor& eid_, const at::Tensor& nodes_, const at::Tensor& t_, int64_t k) {
  TORCH_CHECK(k >= 0, "tgn_neighbors: k must be non-negative");
  at::Tensor ptr = ptr_.contiguous(), entry_t = entry_t_.contiguous(), nbr = nbr_.contiguous();
  at::Tensor eid = eid_.contiguous(), nodes = nodes_.contiguous(), t = t_.contiguous();
  TORCH_CHECK(ptr.scalar_type() == at::kLong && nbr.scalar_type() == at::kLong &&
                  eid.scalar_type() == at::kLong && nodes.scalar_type() == at::kLong,
              "tgn_neighbors: ptr, nbr, eid, nodes must be int64");
  TORCH_CHECK(entry_t.scalar_type() == at::kDouble && t.scalar_type() == at::kDouble,
              "tgn_neighbors: entry_t and t must be float64");
  const int64_t n = ptr.numel() - 1, m = entry_t.numel(), b = nodes.numel();
  TORCH_CHECK(n >= 0 && nbr.numel() == m && eid.numel() == m && t.numel() == b,
              "tgn_neighbors: ptr [N+1], entry_t/nbr/eid [M], nodes/t [B]");
  auto lopt = nodes.options();
  at::Tensor o_nbr = at::empty({b, k}, lopt), o_eid = at::empty({b, k}, lopt);
  at::Tensor o_t = at::empty({b, k}, t.options()), o_mask = at::empty({b, k}, lopt.dtype(at::kBool));
  const int64_t* P = ptr.data_ptr<int64_t>();
  const double* ET = entry_t.data_ptr<double>();
  const int64_t* NB = nbr.data_ptr<int64_t>();
  const int64_t* EI = eid.data_ptr<int64_t>();
  const int64_t* Q = nodes.data_ptr<int64_t>();
  const double* T = t.data_ptr<double>();
  int64_t* on = o_nbr.data_ptr<int64_t>();
  int64_t* oe = o_eid.data_ptr<int64_t>();
  double* ot = o_t.data_ptr<double>();
  bool* om = o_mask.data_ptr<bool>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t v = Q[i];
    TORCH_CHECK(v >= 0 && v < n, "tgn_neighbors: query node ", v, " outside [0, ", n, ")");
    const int64_t start = P[v];
    // first entry of v at time >= t: entries before it happened strictly before t
    int64_t lo = start, hi = P[v + 1];
    const double ti = T[i];
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (ET[mid] < ti) lo = mid + 1; else hi = mid;
    }
    const int64_t avail = lo - start;
    const int64_t real = avail < k ? avail : k;
    int64_t* rn = on + i * k;
    int64_t* re = oe + i * k;
    double* rt = ot + i * k;
    bool* rm = om + i * k;
    for (int64_t j = 0; j < real; ++j) {
      const int64_t p = lo - 1 - j;
      rn[j] = NB[p], re[j] = EI[p], rt[j] = ET[p], rm[j] = true;
    }
    for (int64_t j = real; j < k; ++j) rn[j] = 0, re[j] = -1, rt[j] = 0.0, rm[j] = false;
  }
  return {o_nbr, o_eid, o_t, o_mask};
}

}  // namespace
}  // namespace dyngraph_temporal_neighbors

TORCH_LIBRARY_FRAGMENT(dyngraph, m) {
  m.def(
      "tgn_neighbors(Tensor ptr, Tensor entry_t, Tensor nbr, Tensor eid, Tensor nodes, Tensor t, "
      "int k) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(dyngraph, CPU, m) {
  m.impl("tgn_neighbors", &dyngraph_temporal_neighbors::tgn_neighbors);
}
