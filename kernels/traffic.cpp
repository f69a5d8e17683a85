// All-or-nothing traffic assignment for dyngraph.traffic: shortest paths from every origin
// and the loading of OD demand onto them, for S cost/demand scenarios in one call.
// Registered into the `dyngraph` namespace as
//   traffic_aon(cost, adj_ptr, adj_link, link_tail, link_head, sources, od_ptr, od_dest,
//               demand, need_cost, algo, plan)
//     -> (flows (S, E), od_cost (S, P) or (0,))
// algo: 0 auto (sweep when its plan is given, else FW or Dijkstra by an operation count),
//       1 Dijkstra per origin (indexed binary heap), 2 all-pairs Floyd-Warshall,
//       3 ordered label-correcting sweeps vectorised across scenarios (needs `plan`, built
//         once per network by RoutingGraph.sweep_plan; see "ordered sweeps" below).
// and traffic_poly_root(coef (S, p + 1), g1 (S,)) -> tau (S,), the exact line-search step of
// the UE solvers (assignment._poly_line_search).
// Python side and pure-numpy fallback: dyngraph/traffic/paths.py (RoutingGraph.aon).
//
// Why native: in the numpy path each scenario-iteration paid for scipy's dense Dijkstra
// output and a level-by-level walk of every OD path; here a tree is loaded in one reverse
// pass over its settle order (O(nodes) per origin, no per-path work at all). Dijkstra uses an
// indexed binary heap with decrease-key (each node queued once; on road networks with ~25-100
// nodes per origin tree this was ~2x faster than a lazy std::priority_queue).
//
// Graph: routing nodes R, links E; adj_ptr (R+1) / adj_link: links grouped by routing tail.
// Origins: sources (Z) routing node of each zone; od_ptr (Z+1) / od_dest: OD pairs grouped by
// origin zone, destination routing node. demand: (S, P) or (1, P) shared by all scenarios.
// Ties between equal-cost paths: the first label found wins (strict `<`), deterministic.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace dyngraph_traffic {
namespace {

using HeapItem = std::pair<double, int64_t>;

// ------------------------------------------------------------------ ordered sweeps (algo 3)
// Per origin, Bellman-Ford sweeps over the links in a fixed order -- tails by increasing
// free-flow distance from the origin, the "plan" built once per network in Python -- with W
// scenarios in the lanes of one SIMD vector (dist[v] holds v's label in all W scenarios).
// Costs are usually ordered much like free-flow times, so one sweep in this Dijkstra-like
// order is nearly exact. A link whose head does not come after its tail in the order is
// "backward" (about half of them: the way back towards the origin); a label lowered through
// one arrived after that node's out-links were relaxed, so the node is marked dirty and only
// the out-links of dirty nodes are swept again (in order, cascading) until none is left.
// There is no heap and no branch in the full sweep: a few vector operations per link for
// W scenarios at once. Batches run two registers of 8 lanes side by side (K = 2 blocks, 16
// scenarios): a label usually depends on the node just before it in the order, so one
// block's chain of add / compare / select waits on memory while the other's runs (~25%
// faster than one register). Measured on the TNTP networks (one core, one AON): Eastern
// Massachusetts (R = 74, E = 258) ~4 us per scenario in batches of 64 (6 us with one
// register and link-by-link relaxation, ~45 us for Floyd-Warshall); Sioux Falls ~1.2 us.
// Loading: nodes in reverse order push their subtree demand onto their tree link and into
// their predecessor, which normally comes earlier in the order (still to be processed); when
// a re-sweep gave a node a predecessor placed after it, the load is carried up through such
// already-processed ancestors to the first one still to come. When all lanes share a tree
// link (scenarios differ little) the push is one vector operation.
// Ties: strict `<` in plan order, per lane, so a scenario gets the same tree (and flows)
// whether it is solved alone or in any batch.
template <int W>
struct SweepLanes {
  typedef double vd __attribute__((vector_size(W * 8)));
  typedef int64_t vi __attribute__((vector_size(W * 8)));
  typedef int32_t vp __attribute__((vector_size(W * 4)));  // tree links (half the traffic)
};

// Is any lane of a comparison mask set? (one instruction where the ISA has it)
template <int W>
inline bool any_lane(typename SweepLanes<W>::vi m) {
#if defined(__AVX512F__)
  if constexpr (W == 8) return _mm512_test_epi64_mask((__m512i)m, (__m512i)m) != 0;
#endif
#if defined(__AVX__)
  if constexpr (W == 4) return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#endif
  bool a = false;
  for (int w = 0; w < W; ++w) a |= m[w] != 0;
  return a;
}

template <int W>
inline bool any_pred_lane(typename SweepLanes<W>::vp m) {
#if defined(__AVX__)
  if constexpr (W == 8) return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#endif
  bool a = false;
  for (int w = 0; w < W; ++w) a |= m[w] != 0;
  return a;
}

// The lane operations of the sweeps and the loading: comparisons as masks, masked selects.
// Generic GCC vector code, and an AVX-512 version for 8 lanes: there a comparison is one
// instruction into a mask register that selects directly (the generic code widened each
// 64-bit compare result, narrowed it to the 32-bit tree-link lanes and compared again).
template <int W>
struct LaneOps {
  using vd = typename SweepLanes<W>::vd;
  using vi = typename SweepLanes<W>::vi;
  using vp = typename SweepLanes<W>::vp;
  using mask = vi;
  static mask lt(vd a, vd b) { return a < b; }
  static bool any(mask m) { return any_lane<W>(m); }
  static vd select(mask m, vd t, vd f) { return m ? t : f; }
  static vp select_link(mask m, int32_t l, vp f) {
    return __builtin_convertvector(m, vp) ? (vp{} + l) : f;
  }
  static bool any_nonzero(vd a) { return any_lane<W>(a != vd{}); }
  static bool all_links(vp p, int32_t l) { return !any_pred_lane<W>(p != (vp{} + l)); }
};

#if defined(__AVX512F__) && defined(__AVX512VL__)
template <>
struct LaneOps<8> {
  using vd = SweepLanes<8>::vd;
  using vp = SweepLanes<8>::vp;
  using mask = __mmask8;
  static mask lt(vd a, vd b) { return _mm512_cmp_pd_mask((__m512d)a, (__m512d)b, _CMP_LT_OQ); }
  static bool any(mask m) { return m != 0; }
  static vd select(mask m, vd t, vd f) {
    return (vd)_mm512_mask_blend_pd(m, (__m512d)f, (__m512d)t);
  }
  static vp select_link(mask m, int32_t l, vp f) {
    return (vp)_mm256_mask_set1_epi32((__m256i)f, m, l);
  }
  static bool any_nonzero(vd a) {
    return _mm512_cmp_pd_mask((__m512d)a, _mm512_setzero_pd(), _CMP_NEQ_UQ) != 0;
  }
  static bool all_links(vp p, int32_t l) {
    return _mm256_cmpneq_epi32_mask((__m256i)p, _mm256_set1_epi32(l)) == 0;
  }
};
#endif

struct SweepCtx {
  int64_t R, E, Z, P, S;
  const int64_t *opp, *odp, *srcp;
  const int32_t* lt32;
  const int32_t* plan;       // (3, N): tails, heads, links (~link when backward)
  int64_t plan_n;
  const int64_t* plan_ptr;   // (Z + 1)
  const int32_t* pos;        // (Z, R): position of each node in its origin's order
  const int32_t* order;      // (Z, R)
  const int32_t* seg;        // (Z, 2, R + 1): forward / backward entries per position
  const int32_t* pull;       // (2, M): forward links by head position: tails, links
  int64_t pull_n;
  const int64_t* pull_ptr;   // (Z + 1)
  const int32_t* pull_seg;   // (Z, R + 1): forward in-links of the node at each position
  const double* cp;
  const double* dp;
  bool shared_demand;
  double* fp;
  double* ocp;
};

// Plan entry k as (tail, head, link): columns (3, stride), backward links stored as ~link.
struct PlanEntries {
  const int32_t* et;
  const int32_t* eh;
  const int32_t* el;
  PlanEntries(const int32_t* en, int64_t stride)
      : et(en), eh(en + stride), el(en + 2 * stride) {}
  void operator()(int64_t k, int32_t& t, int32_t& h, int32_t& l) const {
    t = et[k];
    h = eh[k];
    const int32_t e = el[k];
    l = e < 0 ? ~e : e;
  }
};

// Steps 2 and 3 below, shared by the vector and the scalar sweeps: `relax(k)` relaxes plan
// entry k, marks its head dirty and returns whether a label improved.
template <class Relax>
bool sweep_repair(int64_t nf, int64_t ne, int64_t R, const int32_t* o, const int32_t* seg,
                  uint8_t* dirty, Relax&& relax) {
  bool again = false;
  for (int64_t k = nf; k < ne; ++k) again |= relax(k);
  const int32_t* sb = seg + (R + 1);
  for (int64_t round = 0; again; ++round) {
    if (round > R) return false;
    again = false;
    for (int64_t i = 0; i < R; ++i) {
      const int32_t v = o[i];
      if (!dirty[v]) continue;
      dirty[v] = 0;
      for (int part = 0; part < 2; ++part) {
        const int32_t* s = part ? sb : seg;
        const int64_t k1 = std::min<int64_t>(s[i + 1], ne);
        // forward: processed later in this round; backward: next round
        for (int64_t k = std::max<int64_t>(s[i], 0); k < k1; ++k)
          if (relax(k)) again |= part;
      }
    }
  }
  return true;
}

// One origin. The plan lists the forward links (head after tail in the order) first, by tail
// position, then the backward ones (about half: the way back towards the origin); `pull`
// lists the forward links again grouped by head.
//  1. one pass over the forward links relaxes them in order: exact shortest paths within
//     that acyclic part, no bookkeeping (vector code: node by node over its in-links, see
//     below; the scalar code: link by link);
//  2. one check of every backward link, stores only where it improves a label (rare: the
//     order follows typical costs) -- that node becomes dirty;
//  3. rounds over the out-links (forward and backward) of dirty nodes in order, cascading,
//     until no backward link improves a label.
// Ends with every link satisfying d[head] <= d[tail] + c: exact. False if that takes more
// than R + 1 rounds (impossible with non-negative costs). `seg` is (2, R + 1): the forward and
// the backward entries of the node at position i are seg[0][i]..seg[0][i + 1] and
// seg[1][i]..seg[1][i + 1] (clamped: memory-safe for any input).
template <int W, int K>
bool sweep_origin(const int32_t* en, int64_t ne, int64_t stride, int64_t R, const int32_t* o,
                  const int32_t* seg, const int32_t* pt, const int32_t* pl, int64_t np,
                  const int32_t* ps, typename SweepLanes<W>::vd* const* cT,
                  typename SweepLanes<W>::vd* const* dist, typename SweepLanes<W>::vp* const* pred,
                  uint8_t* dirty) {
  using vd = typename SweepLanes<W>::vd;
  using vp = typename SweepLanes<W>::vp;
  using L = LaneOps<W>;
  const PlanEntries entry(en, stride);
  const int64_t nf = std::min<int64_t>(std::max<int64_t>(seg[R], 0), ne);
  vd vinf, vzero = {};
  vp vneg;
  for (int w = 0; w < W; ++w) { vinf[w] = std::numeric_limits<double>::infinity(); vneg[w] = -1; }
  // Step 1 as a pull: node by node in order, the minimum over its forward in-links (by tail
  // position, then link id: the order of relaxing them tail by tail, so the same labels and
  // tie breaks) stays in registers and is stored once; the node's earlier-placed tails are
  // final by then. (Relaxing link by link chained every update through memory.) Every node
  // is written (the origin, position 0, gets 0), so the labels need no fill per origin. The
  // K blocks are independent dependency chains (a label is often the previous node's plus a
  // link): interleaved, one block's additions run while the other's wait.
  for (int64_t i = 0; i < R; ++i) {
    const int64_t k0 = std::max<int64_t>(ps[i], 0), k1 = std::min<int64_t>(ps[i + 1], np);
    const int32_t v = o[i];
    vd acc[K];
    vp pr[K];
    for (int q = 0; q < K; ++q) { acc[q] = i == 0 ? vzero : vinf; pr[q] = vneg; }
    for (int64_t k = k0; k < k1; ++k) {
      const int32_t l = pl[k], t = pt[k];
      for (int q = 0; q < K; ++q) {
        const vd nd = dist[q][t] + cT[q][l];
        const auto m = L::lt(nd, acc[q]);
        acc[q] = L::select(m, nd, acc[q]);
        pr[q] = L::select_link(m, l, pr[q]);
      }
    }
    for (int q = 0; q < K; ++q) { dist[q][v] = acc[q]; pred[q][v] = pr[q]; }
  }
  // Steps 2-3: a node is dirty when a label improved in any lane of any block (a relaxation
  // that improves nothing changes nothing, so the lanes do not affect each other).
  return sweep_repair(nf, ne, R, o, seg, dirty, [&](int64_t k) {
    int32_t t, h, l;
    entry(k, t, h, l);
    bool improved = false;
    for (int q = 0; q < K; ++q) {
      const vd nd = dist[q][t] + cT[q][l];
      const vd od = dist[q][h];
      const auto m = L::lt(nd, od);
      if (__builtin_expect(!L::any(m), 1)) continue;
      dist[q][h] = L::select(m, nd, od);
      pred[q][h] = L::select_link(m, l, pred[q][h]);
      improved = true;
    }
    if (improved) dirty[h] = 1;
    return improved;
  });
}

// One scenario: plain scalar code (a 1-lane vector type compiles poorly), relaxing the
// forward links tail by tail (the labels must be filled with inf first).
bool sweep_origin_scalar(const int32_t* en, int64_t ne, int64_t stride, int64_t R,
                         const int32_t* o, const int32_t* seg, double* d, int32_t* pr,
                         const double* c, uint8_t* dirty) {
  const PlanEntries entry(en, stride);
  const int64_t nf = std::min<int64_t>(std::max<int64_t>(seg[R], 0), ne);
  for (int64_t k = 0; k < nf; ++k) {
    int32_t t, h, l;
    entry(k, t, h, l);
    const double nd = d[t] + c[l], od = d[h];
    const int32_t op = pr[h];
    const bool m = nd < od;
    d[h] = std::min(od, nd);                             // == m ? nd : od
    pr[h] = op ^ ((op ^ l) & -static_cast<int32_t>(m));  // no branch (GCC would add one)
  }
  return sweep_repair(nf, ne, R, o, seg, dirty, [&](int64_t k) {
    int32_t t, h, l;
    entry(k, t, h, l);
    const double nd = d[t] + c[l];
    if (__builtin_expect(!(nd < d[h]), 1)) return false;
    d[h] = nd;
    pr[h] = l;
    dirty[h] = 1;
    return true;
  });
}

// Scenarios s0 .. s0 + n - 1 in K blocks of W lanes (lanes past n repeat the last scenario).
template <int W, int K>
void sweep_block(const SweepCtx& x, int64_t s0, int64_t n, std::atomic<bool>& bad,
                 std::atomic<bool>& negative) {
  using vd = typename SweepLanes<W>::vd;
  using vp = typename SweepLanes<W>::vp;
  using L = LaneOps<W>;
  const int64_t R = x.R, E = x.E, P = x.P;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<vd> cT_(K * E), fT_(K * E), dist_(K * R), ld_(K * R);
  std::vector<vp> pred_(K * R);
  std::vector<uint8_t> dirty(R, 0);  // sweep_repair leaves every flag cleared
  vd* cT[K];
  vd* fT[K];
  vd* dist[K];
  vd* ld[K];  // subtree demand still to push, per node
  vp* pred[K];
  for (int q = 0; q < K; ++q) {
    ld[q] = ld_.data() + q * R;
    cT[q] = cT_.data() + q * E;
    fT[q] = fT_.data() + q * E;
    dist[q] = dist_.data() + q * R;
    pred[q] = pred_.data() + q * R;
  }
  bool neg = false;
  const double* drow[K * W];
  for (int g = 0; g < K * W; ++g) {
    const int64_t s = s0 + std::min<int64_t>(g, n - 1);
    const double* cs = x.cp + s * E;
    double* ct = reinterpret_cast<double*>(cT[g / W]) + g % W;
    for (int64_t l = 0; l < E; ++l) {
      ct[l * W] = cs[l];
      neg |= !(cs[l] >= 0.0);  // also NaN
    }
    drow[g] = x.dp + (x.shared_demand ? 0 : s * P);
  }
  if (neg) {  // the caller raises; labels would not be shortest paths
    negative.store(true, std::memory_order_relaxed);
    return;
  }
  vd vinf, vzero = {};
  vp vneg;
  for (int w = 0; w < W; ++w) { vinf[w] = inf; vneg[w] = -1; }
  std::fill(fT_.begin(), fT_.end(), vzero);
  std::fill(ld_.begin(), ld_.end(), vzero);  // the reverse pass leaves it zero again
  for (int64_t z = 0; z < x.Z; ++z) {
    const int64_t pb = x.opp[z], pe = x.opp[z + 1];
    if (pb == pe) continue;
    const int32_t root = static_cast<int32_t>(x.srcp[z]);
    const int32_t* en = x.plan + x.plan_ptr[z];
    const int64_t ne = x.plan_ptr[z + 1] - x.plan_ptr[z];
    const int32_t* o = x.order + z * R;
    const int32_t* sg = x.seg + z * 2 * (R + 1);
    bool ok;
    if constexpr (W == 1) {
      std::fill(dist_.begin(), dist_.end(), vinf);
      std::fill(pred_.begin(), pred_.end(), vneg);
      dist[0][root] = vzero;
      ok = sweep_origin_scalar(en, ne, x.plan_n, R, o, sg, reinterpret_cast<double*>(dist[0]),
                               reinterpret_cast<int32_t*>(pred[0]),
                               reinterpret_cast<const double*>(cT[0]), dirty.data());
    } else {
      const int64_t q0 = x.pull_ptr[z];
      ok = sweep_origin<W, K>(en, ne, x.plan_n, R, o, sg, x.pull + q0, x.pull + x.pull_n + q0,
                              x.pull_ptr[z + 1] - q0, x.pull_seg + z * (R + 1), cT, dist, pred,
                              dirty.data());
    }
    if (!ok) {
      bad.store(true, std::memory_order_relaxed);
      std::fill(dirty.begin(), dirty.end(), uint8_t{0});
    }
    // load the demand of this origin onto the trees (the K blocks interleaved node by node:
    // each block's pushes chain through its own loads, the other's fill the wait)
    const int32_t* pos = x.pos + z * R;
    for (int q = 0; q < K; ++q) {
      vd* dq = dist[q];
      vd* lq = ld[q];
      const double* const* dr = drow + q * W;
      for (int64_t p = pb; p < pe; ++p) {
        const int64_t d = x.odp[p];
        const vd dd = dq[d];
        vd dem;
        for (int w = 0; w < W; ++w) dem[w] = dr[w][p];
        lq[d] += L::select(L::lt(dd, vinf), dem, vzero);
        if (x.ocp)
          for (int64_t w = 0; w < W && q * W + w < n; ++w)
            x.ocp[(s0 + q * W + w) * P + p] = d == root ? 0.0 : dd[w];
      }
    }
    for (int64_t i = R - 1; i >= 0; --i) {
      const int32_t v = o[i];
      if (v == root) continue;
      for (int q = 0; q < K; ++q) {
        vd* lq = ld[q];
        const vd xv = lq[v];
        if (!L::any_nonzero(xv)) continue;  // on no path with demand (common)
        lq[v] = vzero;  // consumed: ld is all zero again for the next origin
        vp* prq = pred[q];
        vd* fq = fT[q];
        const vp pv = prq[v];
        const int64_t l0 = pv[0];
        const bool same = L::all_links(pv, static_cast<int32_t>(l0));
        if (same) {
          if (l0 < 0) continue;  // unreached in every lane (then it carries no load)
          fq[l0] += xv;
          const int32_t u = x.lt32[l0];
          if (pos[u] < i) { lq[u] += xv; continue; }
        }
        for (int w = 0; w < W; ++w) {
          const double xw = xv[w];
          if (xw == 0.0) continue;
          int64_t l = pv[w];
          if (!same) fq[l][w] += xw;
          int32_t u = x.lt32[l];
          // u placed after v has already pushed its load: carry this lane's load up through
          // such done ancestors to the first one still to come (at worst the root, position 0)
          for (int64_t step = 0; pos[u] >= i; ++step) {
            if (step > R) { bad.store(true, std::memory_order_relaxed); break; }
            l = prq[u][w];
            fq[l][w] += xw;
            u = x.lt32[l];
          }
          lq[u][w] += xw;
        }
      }
    }
    for (int q = 0; q < K; ++q) ld[q][root] = vzero;
  }
  for (int64_t g = 0; g < n; ++g) {
    double* fs = x.fp + (s0 + g) * E;
    const double* ft = reinterpret_cast<const double*>(fT[g / W]) + g % W;
    for (int64_t l = 0; l < E; ++l) fs[l] = ft[l * W];
  }
}

std::tuple<at::Tensor, at::Tensor> traffic_aon(
    const at::Tensor& cost, const at::Tensor& adj_ptr, const at::Tensor& adj_link,
    const at::Tensor& link_tail, const at::Tensor& link_head, const at::Tensor& sources,
    const at::Tensor& od_ptr, const at::Tensor& od_dest, const at::Tensor& demand,
    bool need_cost, int64_t algo, at::TensorList plan) {
  TORCH_CHECK(algo >= 0 && algo <= 3,
              "traffic_aon: algo is 0 (auto), 1 (Dijkstra), 2 (FW) or 3 (sweep)");
  TORCH_CHECK(cost.dim() == 2 && cost.scalar_type() == at::kDouble,
              "traffic_aon: cost must be a (S, E) float64 tensor");
  TORCH_CHECK(demand.dim() == 2 && demand.scalar_type() == at::kDouble,
              "traffic_aon: demand must be a (S, P) or (1, P) float64 tensor");
  for (const at::Tensor* t : {&adj_ptr, &adj_link, &link_tail, &link_head, &sources, &od_ptr,
                              &od_dest})
    TORCH_CHECK(t->dim() == 1 && t->scalar_type() == at::kLong,
                "traffic_aon: index arrays must be 1-D int64");
  const at::Tensor c = cost.contiguous(), dem = demand.contiguous();
  const at::Tensor ap = adj_ptr.contiguous(), al = adj_link.contiguous(),
                   lt = link_tail.contiguous(), lh = link_head.contiguous(),
                   src = sources.contiguous(), op = od_ptr.contiguous(),
                   od = od_dest.contiguous();
  const int64_t S = c.size(0), E = c.size(1), R = ap.size(0) - 1, Z = src.size(0);
  const int64_t P = od.size(0);
  TORCH_CHECK(lt.size(0) == E && lh.size(0) == E && al.size(0) == E,
              "traffic_aon: link arrays must have E entries");
  TORCH_CHECK(op.size(0) == Z + 1, "traffic_aon: od_ptr must have Z + 1 entries");
  TORCH_CHECK(dem.size(1) == P && (dem.size(0) == S || dem.size(0) == 1),
              "traffic_aon: demand must be (S, P) or (1, P)");
  const int64_t* app = ap.data_ptr<int64_t>();
  const int64_t* alp = al.data_ptr<int64_t>();
  const int64_t* ltp = lt.data_ptr<int64_t>();
  const int64_t* lhp = lh.data_ptr<int64_t>();
  const int64_t* srcp = src.data_ptr<int64_t>();
  const int64_t* opp = op.data_ptr<int64_t>();
  const int64_t* odp = od.data_ptr<int64_t>();
  TORCH_CHECK(app[0] == 0 && app[R] == E, "traffic_aon: adj_ptr must run from 0 to E");
  for (int64_t e = 0; e < E; ++e)
    TORCH_CHECK(ltp[e] >= 0 && ltp[e] < R && lhp[e] >= 0 && lhp[e] < R && alp[e] >= 0 &&
                    alp[e] < E, "traffic_aon: link endpoint or id out of range");
  for (int64_t z = 0; z < Z; ++z)
    TORCH_CHECK(srcp[z] >= 0 && srcp[z] < R && opp[z] <= opp[z + 1],
                "traffic_aon: bad source or od_ptr");
  TORCH_CHECK(opp[0] == 0 && opp[Z] == P, "traffic_aon: od_ptr must run from 0 to P");
  for (int64_t p = 0; p < P; ++p)
    TORCH_CHECK(odp[p] >= 0 && odp[p] < R, "traffic_aon: OD destination out of range");

  const bool have_plan = !plan.empty();
  const bool sweep = have_plan && (algo == 0 || algo == 3);
  // (the sweeps check the costs as they read them: one pass less)
  TORCH_CHECK(sweep || c.numel() == 0 || c.min().item<double>() >= 0.0,
              "traffic_aon: link costs must be non-negative");

  // the sweeps write every entry; the other algorithms accumulate into zeros
  at::Tensor flows = sweep ? at::empty({S, E}, c.options()) : at::zeros({S, E}, c.options());
  at::Tensor odc = need_cost ? at::empty({S, P}, c.options()) : at::empty({0}, c.options());
  const double* cp = c.data_ptr<double>();
  const double* dp = dem.data_ptr<double>();
  double* fp = flows.data_ptr<double>();
  double* ocp = need_cost ? odc.data_ptr<double>() : nullptr;
  const bool shared_demand = dem.size(0) == 1 && S > 1;
  const double inf = std::numeric_limits<double>::infinity();

  // One tree per (scenario, origin); scenarios are independent, so they are split across
  // threads (each writes only its own rows).
  // Which algorithm: Floyd-Warshall costs ~R^3 vectorised min-plus steps per scenario, one
  // Dijkstra per origin ~Z (E + R) log R branchy heap steps. On the small zone-dense TNTP
  // networks (Sioux Falls R = 24, Eastern Massachusetts R = 74) FW was 2-4x faster; on large
  // sparse ones Dijkstra wins by orders of magnitude. The threshold is conservative (an FW
  // step measured ~10x cheaper than a heap step on both networks).
  // plan = [sweep (3, N) int32, sweep_ptr (Z + 1) int64, order (Z, R) int32,
  //         position (Z, R) int32, segment (Z, 2, R + 1) int32, pull (2, M) int32,
  //         pull_ptr (Z + 1) int64, pull_segment (Z, R + 1) int32], see
  //         RoutingGraph.sweep_plan.
  TORCH_CHECK(!have_plan || plan.size() == 8,
              "traffic_aon: plan is [sweep, sweep_ptr, order, position, segment, pull, "
              "pull_ptr, pull_segment]");
  TORCH_CHECK(algo != 3 || have_plan, "traffic_aon: algo 3 (sweep) needs the plan");
  std::atomic<bool> cycle{false}, negative{false};
  if (sweep) {
    const at::Tensor pl = plan[0].contiguous(), pp = plan[1].contiguous(),
                     ord = plan[2].contiguous(), psn = plan[3].contiguous(),
                     sgt = plan[4].contiguous();
    TORCH_CHECK(pl.dim() == 2 && pl.size(0) == 3 && pl.scalar_type() == at::kInt,
                "traffic_aon: sweep must be a (3, N) int32 tensor");
    TORCH_CHECK(pp.dim() == 1 && pp.size(0) == Z + 1 && pp.scalar_type() == at::kLong,
                "traffic_aon: sweep_ptr must be a (Z + 1) int64 tensor");
    TORCH_CHECK(ord.dim() == 2 && ord.size(0) == Z && ord.size(1) == R &&
                    ord.scalar_type() == at::kInt,
                "traffic_aon: order must be a (Z, R) int32 tensor");
    TORCH_CHECK(psn.sizes() == ord.sizes() && psn.scalar_type() == at::kInt,
                "traffic_aon: position must be a (Z, R) int32 tensor");
    TORCH_CHECK(sgt.dim() == 3 && sgt.size(0) == Z && sgt.size(1) == 2 &&
                    sgt.size(2) == R + 1 && sgt.scalar_type() == at::kInt,
                "traffic_aon: segment must be a (Z, 2, R + 1) int32 tensor");
    TORCH_CHECK(R < (int64_t{1} << 30) && E < (int64_t{1} << 30),
                "traffic_aon: sweep needs fewer than 2^30 nodes and links");
    const int32_t* plp = pl.data_ptr<int32_t>();
    const int64_t* ppp = pp.data_ptr<int64_t>();
    const int32_t* orp = ord.data_ptr<int32_t>();
    const int64_t N = pl.size(1);
    TORCH_CHECK(ppp[0] == 0 && ppp[Z] == N, "traffic_aon: sweep_ptr must run from 0 to N");
    for (int64_t z = 0; z < Z; ++z)
      TORCH_CHECK(ppp[z] <= ppp[z + 1], "traffic_aon: sweep_ptr must be non-decreasing");
    // Range checks only (memory safety): the plan's meaning (tails by free-flow distance,
    // backward flags) is the caller's contract, see RoutingGraph.sweep_plan.
    // (a ~link entry lies in [-E, -1], so [-E, E) covers both signs).
    // Unsigned compares OR-reduced: vectorises (a min/max pair did not, and cost more than
    // the sweeps of a single scenario).
    uint32_t out = 0;
    const uint32_t uR = static_cast<uint32_t>(R), uE = static_cast<uint32_t>(E);
    const uint32_t* up = reinterpret_cast<const uint32_t*>(plp);
#pragma omp simd reduction(| : out)
    for (int64_t k = 0; k < 2 * N; ++k) out |= static_cast<uint32_t>(up[k] >= uR);
#pragma omp simd reduction(| : out)
    for (int64_t k = 2 * N; k < 3 * N; ++k) out |= static_cast<uint32_t>(up[k] + uE >= 2 * uE);
    TORCH_CHECK(out == 0, "traffic_aon: sweep entry out of range");
    // Node indices from `order` address memory: range-checked. Positions are only compared,
    // so a row that is not a permutation gives wrong flows, never a wild access.
    uint32_t oout = 0;
    const uint32_t* uo = reinterpret_cast<const uint32_t*>(orp);
#pragma omp simd reduction(| : oout)
    for (int64_t k = 0; k < Z * R; ++k) oout |= static_cast<uint32_t>(uo[k] >= uR);
    TORCH_CHECK(oout == 0, "traffic_aon: order entry out of range");
    for (int64_t z = 0; z < Z; ++z)
      TORCH_CHECK(orp[z * R] == srcp[z], "traffic_aon: order[z] must start at the origin");
    const at::Tensor pu = plan[5].contiguous(), pup = plan[6].contiguous(),
                     pus = plan[7].contiguous();
    TORCH_CHECK(pu.dim() == 2 && pu.size(0) == 2 && pu.scalar_type() == at::kInt,
                "traffic_aon: pull must be a (2, M) int32 tensor");
    TORCH_CHECK(pup.dim() == 1 && pup.size(0) == Z + 1 && pup.scalar_type() == at::kLong,
                "traffic_aon: pull_ptr must be a (Z + 1) int64 tensor");
    TORCH_CHECK(pus.dim() == 2 && pus.size(0) == Z && pus.size(1) == R + 1 &&
                    pus.scalar_type() == at::kInt,
                "traffic_aon: pull_segment must be a (Z, R + 1) int32 tensor");
    const int64_t M = pu.size(1);
    const int64_t* pupp = pup.data_ptr<int64_t>();
    TORCH_CHECK(pupp[0] == 0 && pupp[Z] == M, "traffic_aon: pull_ptr must run from 0 to M");
    for (int64_t z = 0; z < Z; ++z)
      TORCH_CHECK(pupp[z] <= pupp[z + 1], "traffic_aon: pull_ptr must be non-decreasing");
    uint32_t pout = 0;
    const uint32_t* upu = reinterpret_cast<const uint32_t*>(pu.data_ptr<int32_t>());
#pragma omp simd reduction(| : pout)
    for (int64_t k = 0; k < M; ++k) pout |= static_cast<uint32_t>(upu[k] >= uR);
#pragma omp simd reduction(| : pout)
    for (int64_t k = M; k < 2 * M; ++k) pout |= static_cast<uint32_t>(upu[k] >= uE);
    TORCH_CHECK(pout == 0, "traffic_aon: pull entry out of range");
    std::vector<int32_t> lt32(E);
    for (int64_t l = 0; l < E; ++l) lt32[l] = static_cast<int32_t>(ltp[l]);
    SweepCtx ctx{R, E, Z, P, S, opp, odp, srcp, lt32.data(), plp, N, ppp,
                 psn.data_ptr<int32_t>(), orp, sgt.data_ptr<int32_t>(),
                 pu.data_ptr<int32_t>(), M, pupp, pus.data_ptr<int32_t>(),
                 cp, dp, shared_demand, fp, ocp};
    // blocks of 2 x 8 lanes (one register each); a remainder takes 8, 4 or 1 lanes
    constexpr int64_t kW = 16;
    const int64_t blocks = (S + kW - 1) / kW;
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t s0 = b * kW, n = std::min(kW, S - s0);
        if (n == 1)
          sweep_block<1, 1>(ctx, s0, n, cycle, negative);
        else if (n <= 4)
          sweep_block<4, 1>(ctx, s0, n, cycle, negative);
        else if (n <= 8)
          sweep_block<8, 1>(ctx, s0, n, cycle, negative);
        else
          sweep_block<8, 2>(ctx, s0, n, cycle, negative);
      }
    });
    TORCH_CHECK(!negative.load(), "traffic_aon: link costs must be non-negative");
    TORCH_CHECK(!cycle.load(), "traffic_aon: sweep did not converge or the tree has a cycle");
    return {flows, odc};
  }
  bool use_fw = algo == 2;
  if (algo == 0) {
    double logr = 1.0;
    while ((int64_t{1} << static_cast<int64_t>(logr)) < R) logr += 1.0;
    use_fw = R <= 512 && static_cast<double>(R) * R * R <=
                             4.0 * static_cast<double>(Z) * (E + R) * logr;
  }
  if (use_fw) {
    const int64_t Rp = (R + 7) / 8 * 8;
    at::parallel_for(0, S, 1, [&](int64_t s0, int64_t s1) {
      std::vector<double> D(R * Rp);
      std::vector<int64_t> L(R * Rp);
      for (int64_t s = s0; s < s1; ++s) {
        const double* cs = cp + s * E;
        const double* ds = dp + (shared_demand ? 0 : s * P);
        double* fs = fp + s * E;
        std::fill(D.begin(), D.end(), inf);
        std::fill(L.begin(), L.end(), -1);
        for (int64_t i = 0; i < R; ++i) D[i * Rp + i] = 0.0;
        for (int64_t l = 0; l < E; ++l) {
          const int64_t a = ltp[l] * Rp + lhp[l];
          if (cs[l] < D[a]) { D[a] = cs[l]; L[a] = l; }
        }
        for (int64_t k = 0; k < R; ++k) {
          const double* Dk = D.data() + k * Rp;
          const int64_t* Lk = L.data() + k * Rp;
          for (int64_t i = 0; i < R; ++i) {
            const double dik = D[i * Rp + k];
            if (dik == inf) continue;
            double* Di = D.data() + i * Rp;
            int64_t* Li = L.data() + i * Rp;
  #pragma omp simd
            for (int64_t j = 0; j < Rp; ++j) {
              const double nd = dik + Dk[j];
              const bool m = nd < Di[j];
              Di[j] = m ? nd : Di[j];
              Li[j] = m ? Lk[j] : Li[j];
            }
          }
        }
        for (int64_t z = 0; z < Z; ++z) {
          const int64_t root = srcp[z];
          const double* Dr = D.data() + root * Rp;
          const int64_t* Lr = L.data() + root * Rp;
          for (int64_t p = opp[z]; p < opp[z + 1]; ++p) {
            const int64_t d = odp[p];
            if (ocp) ocp[s * P + p] = d == root ? 0.0 : Dr[d];
            const double w = ds[p];
            if (w == 0.0 || Dr[d] == inf) continue;
            int64_t v = d;
            int64_t step = 0;
            for (; v != root && step < R; ++step) {
              const int64_t l = Lr[v];
              fs[l] += w;
              v = ltp[l];
            }
            if (v != root) cycle.store(true, std::memory_order_relaxed);
          }
        }
      }
    });
  } else {
    // Adjacency in CSR order as int32 (heads, link ids): the inner loop streams them.
    std::vector<int32_t> adj_head(E), adj_lk(E);
    for (int64_t k = 0; k < E; ++k) {
      adj_lk[k] = static_cast<int32_t>(alp[k]);
      adj_head[k] = static_cast<int32_t>(lhp[alp[k]]);
    }
    at::parallel_for(0, S, 1, [&](int64_t s0, int64_t s1) {
      std::vector<double> dist(R), load(R), cadj(E);
      std::vector<int32_t> pred_k(R), pred_u(R), order(R), heap(R), pos(R);
      for (int64_t s = s0; s < s1; ++s) {
        const double* cs = cp + s * E;
        const double* ds = dp + (shared_demand ? 0 : s * P);
        double* fs = fp + s * E;
        for (int64_t k = 0; k < E; ++k) cadj[k] = cs[adj_lk[k]];
        for (int64_t z = 0; z < Z; ++z) {
          const int64_t pb = opp[z], pe = opp[z + 1];
          if (pb == pe) continue;
          std::fill(dist.begin(), dist.end(), inf);
          std::fill(pos.begin(), pos.end(), -1);  // -1 never queued, -2 settled
          int32_t hn = 0, n_order = 0;
          const int32_t root = static_cast<int32_t>(srcp[z]);
          dist[root] = 0.0;
          pred_k[root] = -1;
          heap[hn] = root; pos[root] = hn++;
          while (hn > 0) {
            const int32_t u = heap[0];
            pos[u] = -2;
            order[n_order++] = u;
            // pop: move the last item to the root and sift it down
            const int32_t last = heap[--hn];
            if (hn > 0) {
              const double dl = dist[last];
              int32_t i = 0;
              for (;;) {
                int32_t c = 2 * i + 1;
                if (c >= hn) break;
                if (c + 1 < hn && dist[heap[c + 1]] < dist[heap[c]]) ++c;
                if (!(dist[heap[c]] < dl)) break;
                heap[i] = heap[c]; pos[heap[i]] = i; i = c;
              }
              heap[i] = last; pos[last] = i;
            }
            const double du = dist[u];
            for (int64_t k = app[u]; k < app[u + 1]; ++k) {
              const int32_t v = adj_head[k];
              const double nd = du + cadj[k];
              if (nd < dist[v]) {
                dist[v] = nd;
                pred_k[v] = static_cast<int32_t>(k);
                pred_u[v] = u;
                int32_t i = pos[v];
                if (i == -1) i = hn++;
                // sift up (new or decreased key)
                while (i > 0) {
                  const int32_t p = (i - 1) >> 1;
                  if (!(nd < dist[heap[p]])) break;
                  heap[i] = heap[p]; pos[heap[i]] = i; i = p;
                }
                heap[i] = v; pos[v] = i;
              }
            }
          }
          for (int32_t j = 0; j < n_order; ++j) load[order[j]] = 0.0;
          for (int64_t p = pb; p < pe; ++p) {
            const int64_t d = odp[p];
            if (ocp) ocp[s * P + p] = dist[d];
            if (pos[d] == -2) load[d] += ds[p];
          }
          for (int32_t j = n_order - 1; j > 0; --j) {  // order[0] is the root
            const int32_t v = order[j];
            const double w = load[v];
            if (w == 0.0) continue;
            fs[adj_lk[pred_k[v]]] += w;
            load[pred_u[v]] += w;
          }
        }
      }
    });
  }
  TORCH_CHECK(!cycle.load(), "traffic_aon: shortest-path tree has a cycle (zero-cost cycle?)");
  return {flows, odc};
}

// Exact line-search step of dyngraph.traffic.assignment._poly_line_search: per row, the root
// in (0, 1) of g(tau) = sum_k coef[k] tau^k given coef[0] < 0 < g1 = g(1), by safeguarded
// Newton -- the same floating-point steps, in the same order, as its Python twin _poly_root,
// with contraction into FMA disabled, so a scenario gets bit-identical steps from either (and
// alone or in a batch). Batches paid ~15 numpy calls per Newton step on (S,) arrays.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
__attribute__((optimize("fp-contract=off"))) double poly_root_row(const double* c, int64_t p,
                                                                   double g1) {
  double dc[16];
  for (int64_t k = 1; k <= p; ++k) dc[k - 1] = static_cast<double>(k) * c[k];
  double lo = 0.0, hi = 1.0;
  double t = c[0] / (c[0] - g1);
  for (int it = 0; it < 100; ++it) {
    double g = c[p];
    for (int64_t k = p - 1; k >= 0; --k) g = g * t + c[k];
    double gp = dc[p - 1];
    for (int64_t k = p - 2; k >= 0; --k) gp = gp * t + dc[k];
    if (g < 0) lo = t; else hi = t;
    const double delta = gp != 0 ? g / gp : std::numeric_limits<double>::infinity();
    if (std::fabs(delta) <= 1e-15 || g == 0 || hi - lo <= 1e-15) return t;
    const double nt = t - delta;
    t = (lo < nt && nt < hi) ? nt : 0.5 * (lo + hi);
  }
  return t;
}

at::Tensor traffic_poly_root(const at::Tensor& coef, const at::Tensor& g1) {
  TORCH_CHECK(coef.dim() == 2 && coef.scalar_type() == at::kDouble && coef.size(1) >= 2 &&
                  coef.size(1) <= 16,
              "traffic_poly_root: coef must be (S, p + 1) float64 with 1 <= p <= 15");
  TORCH_CHECK(g1.dim() == 1 && g1.scalar_type() == at::kDouble && g1.size(0) == coef.size(0),
              "traffic_poly_root: g1 must be (S,) float64");
  const at::Tensor c = coef.contiguous(), g = g1.contiguous();
  const int64_t S = c.size(0), p = c.size(1) - 1;
  at::Tensor tau = at::empty({S}, c.options());
  const double* cp = c.data_ptr<double>();
  const double* gp = g.data_ptr<double>();
  double* tp = tau.data_ptr<double>();
  for (int64_t s = 0; s < S; ++s) tp[s] = poly_root_row(cp + s * (p + 1), p, gp[s]);
  return tau;
}


// The rest of assignment._poly_line_search for a batch, from numpy's row sums: coef[0] = g0,
// coef[k] = scale[k] dots[k]; g1 = coef summed in numpy's order for these rows (column by
// column, left to right: checked against numpy in the tests); tau = 1 where g1 <= 0 (or
// NaN), else the root above. dots (p + 1, n), scale (p + 1,) -> tau (n,).
__attribute__((optimize("fp-contract=off"))) at::Tensor traffic_poly_step(
    const at::Tensor& dots, const at::Tensor& scale) {
  TORCH_CHECK(dots.dim() == 2 && dots.scalar_type() == at::kDouble && dots.is_contiguous() &&
                  dots.size(0) >= 2 && dots.size(0) <= 16,
              "traffic_poly_step: dots must be (p + 1, n) float64 with 1 <= p <= 15");
  TORCH_CHECK(scale.dim() == 1 && scale.scalar_type() == at::kDouble &&
                  scale.is_contiguous() && scale.size(0) == dots.size(0),
              "traffic_poly_step: scale must be (p + 1,) float64");
  const int64_t p = dots.size(0) - 1, n = dots.size(1);
  at::Tensor tau = at::empty({n}, dots.options());
  const double* dp = dots.data_ptr<double>();
  const double* sp = scale.data_ptr<double>();
  double* tp = tau.data_ptr<double>();
  double c[16];
  for (int64_t r = 0; r < n; ++r) {
    c[0] = dp[r];
    double g1 = c[0];
    for (int64_t k = 1; k <= p; ++k) {
      c[k] = sp[k] * dp[k * n + r];
      g1 = g1 + c[k];
    }
    tp[r] = g1 > 0 ? poly_root_row(c, p, g1) : 1.0;
  }
  return tau;
}

// ------------------------------------------------------------ fused row arithmetic (batches)
// The element-wise parts of a batched FW / CFW / BFW iteration (assignment._Workspace.times,
// assignment._iterate, assignment._poly_line_search), one pass over the (n, E) rows instead of
// 5-10 numpy calls that each stream every array through memory. Every value is the same
// IEEE operation, in the same order, as the numpy code it replaces (contraction into FMA
// disabled), so a scenario keeps its bits whether its batch took this path or numpy's; the
// row sums stay in numpy. Arrays: float64, (n, E) C-contiguous unless stated.
inline void check_rows(const at::Tensor& a, int64_t n, int64_t E, const char* what) {
  TORCH_CHECK(a.scalar_type() == at::kDouble && a.is_contiguous() && a.dim() == 2 &&
                  a.size(0) == n && a.size(1) == E,
              "traffic fused ops: ", what, " must be a contiguous (n, E) float64 tensor");
}

// per-scenario (n, E) or shared (E,) BPR coefficients; returns whether they are per scenario
inline bool check_coef(const at::Tensor& coef, int64_t n, int64_t E, const char* op) {
  const bool rows = coef.dim() == 2;
  TORCH_CHECK(coef.scalar_type() == at::kDouble && coef.is_contiguous() &&
                  (rows ? (coef.size(0) == n && coef.size(1) == E)
                        : (coef.dim() == 1 && coef.size(0) == E)),
              op, ": coef must be contiguous float64 (n, E) or (E,)");
  return rows;
}

#if defined(__clang__)
#pragma clang fp contract(off)
#endif
// t = t0 + coef x^p (as (coef x^(p-1)) x + t0), h = p coef x^(p-1), and x^2 .. x^(p-1).
__attribute__((optimize("fp-contract=off"))) void bpr_times_rows(
    const double* x, const double* coef, bool coef_rows, const double* t0, double power,
    double* const* xp, int64_t np_, double* t, double* h, int64_t n, int64_t E) {
  for (int64_t r = 0; r < n; ++r) {
    const double* xr = x + r * E;
    const double* cr = coef + (coef_rows ? r * E : 0);
    double* tr = t + r * E;
    double* hr = h + r * E;
    if (np_ == 0) {
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) {
        const double cv = cr[e] * xr[e];
        tr[e] = cv * xr[e] + t0[e];
        hr[e] = cv * power;
      }
      continue;
    }
    // x^k = x^(k-1) * x, written out (the line search reads them)
    const double* prev = xr;
    for (int64_t k = 0; k < np_; ++k) {
      double* o = xp[k] + r * E;
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) o[e] = prev[e] * xr[e];
      prev = o;
    }
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) {
      const double cv = cr[e] * prev[e];
      tr[e] = cv * xr[e] + t0[e];
      hr[e] = cv * power;
    }
  }
}

// traffic_bpr_times(x, coef (n, E) or (E,), t0 (E,), power, out = [x^2, .., x^(p-1), t, h])
void traffic_bpr_times(const at::Tensor& x, const at::Tensor& coef, const at::Tensor& t0,
                       double power, at::TensorList out) {
  TORCH_CHECK(out.size() >= 2, "traffic_bpr_times: out is [x^2, .., x^(p-1), t, h]");
  const int64_t n = x.size(0), E = x.dim() == 2 ? x.size(1) : -1;
  check_rows(x, n, E, "x");
  const bool coef_rows = check_coef(coef, n, E, "traffic_bpr_times");
  TORCH_CHECK(t0.scalar_type() == at::kDouble && t0.is_contiguous() && t0.dim() == 1 &&
                  t0.size(0) == E, "traffic_bpr_times: t0 must be (E,) float64");
  const int64_t np_ = static_cast<int64_t>(out.size()) - 2;
  std::vector<double*> xp(np_ + 1);
  for (int64_t k = 0; k < np_ + 2; ++k) check_rows(out[k], n, E, "out");
  for (int64_t k = 0; k < np_; ++k) xp[k] = out[k].data_ptr<double>();
  bpr_times_rows(x.data_ptr<double>(), coef.data_ptr<double>(), coef_rows,
                 t0.data_ptr<double>(), power, xp.data(), np_, out[np_].data_ptr<double>(),
                 out[np_ + 1].data_ptr<double>(), n, E);
}

// The conjugate-direction products of assignment._iterate. mode bit 0: CFW rows present,
// bit 1: BFW rows present. out = [y - x, s1 - x, h (s1 - x), y - s1, hd2, s2 - s1] with
// hd2 = ((tp s1 - x) + (1 - tp) s2) h, tp = tau_prev per row; entries a mode does not
// need are left untouched.
__attribute__((optimize("fp-contract=off"))) void bfw_prep_rows(
    const double* y, const double* x, const double* s1, const double* s2, const double* h,
    const double* tp, int64_t mode, double* const* o, int64_t n, int64_t E) {
  const bool is1 = mode & 1, is2 = mode & 2;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t b = r * E;
    const double* yr = y + b; const double* xr = x + b; const double* ar = s1 + b;
    const double* cr = s2 + b; const double* hr = h + b;
    double* yx = o[0] + b; double* sx = o[1] + b; double* hd1 = o[2] + b;
    double* ys = o[3] + b; double* hd2 = o[4] + b; double* ss = o[5] + b;
    const double tpr = tp[r], omt = 1.0 - tpr;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) {
      yx[e] = yr[e] - xr[e];
      const double d1 = ar[e] - xr[e];
      sx[e] = d1;
      hd1[e] = hr[e] * d1;
    }
    if (is1) {
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) ys[e] = yr[e] - ar[e];
    }
    if (is2) {
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) {
        hd2[e] = ((tpr * ar[e] - xr[e]) + omt * cr[e]) * hr[e];
        ss[e] = cr[e] - ar[e];
      }
    }
  }
}

void traffic_bfw_prep(const at::Tensor& y, const at::Tensor& x, const at::Tensor& s1,
                      const at::Tensor& s2, const at::Tensor& h, const at::Tensor& tp,
                      int64_t mode, at::TensorList out) {
  const int64_t n = x.size(0), E = x.dim() == 2 ? x.size(1) : -1;
  TORCH_CHECK(mode >= 1 && mode <= 3, "traffic_bfw_prep: mode is 1, 2 or 3");
  TORCH_CHECK(out.size() == 6, "traffic_bfw_prep: out has 6 arrays");
  for (const at::Tensor* a : {&y, &x, &s1, &s2, &h}) check_rows(*a, n, E, "input");
  for (const auto& a : out) check_rows(a, n, E, "out");
  TORCH_CHECK(tp.scalar_type() == at::kDouble && tp.is_contiguous() && tp.dim() == 1 &&
                  tp.size(0) == n, "traffic_bfw_prep: tau_prev must be (n,) float64");
  double* o[6];
  for (int k = 0; k < 6; ++k) o[k] = out[k].data_ptr<double>();
  bfw_prep_rows(y.data_ptr<double>(), x.data_ptr<double>(), s1.data_ptr<double>(),
                s2.data_ptr<double>(), h.data_ptr<double>(), tp.data_ptr<double>(), mode, o,
                n, E);
}

// The BFW / CFW weights of assignment._iterate from the row sums (numpy's, passed in) and
// then s = ((y + nu s1) + mu s2) b0 (the mu term only with BFW rows), d = s - x. Per row
// the same operations as the numpy code on (n,) arrays: _safe_div, clip, where, maximum
// (NaN propagating, as numpy's).
inline double safe_div(double num, double den) { return den != 0 ? num / den : 0.0; }
inline double np_max0(double v) { return (std::isnan(v) || v >= 0.0) ? v : 0.0; }

__attribute__((optimize("fp-contract=off"))) void bfw_step_rows(
    const double* y, const double* x, const double* s1, const double* s2, const double* dots,
    const double* tp, const int64_t* phase, int64_t max_phase, bool is1, bool is2, double* s,
    double* d, int64_t n, int64_t E) {
  const double* num1 = dots;
  const double* den1 = dots + n;
  const double* m_num = dots + 2 * n;
  const double* m_den = dots + 3 * n;
  const double* n_den = dots + 4 * n;
  const double conj_max = 0.99999;  // assignment._CONJ_MAX
  for (int64_t r = 0; r < n; ++r) {
    const int64_t ph = std::min(phase[r], max_phase);
    double b0 = 1.0, nu = 0.0, mu = 0.0;
    if (is1) {
      const double q = safe_div(num1[r], den1[r]);
      double a = std::isnan(q) ? q : (q < 0.0 ? 0.0 : (q > conj_max ? conj_max : q));
      if (ph != 1) a = 0.0;
      b0 = 1.0 - a;
      nu = a / b0;
    }
    if (is2 && ph == 2) {
      const double m = np_max0(-safe_div(m_num[r], m_den[r]));
      const double v = -safe_div(num1[r], n_den[r]);
      const double ratio = tp[r] / (1.0 - tp[r]);
      const double w = np_max0(v + m * ratio);
      b0 = 1.0 / ((1.0 + m) + w);
      nu = w;
      mu = m;
    }
    const int64_t b = r * E;
    const double* yr = y + b; const double* xr = x + b; const double* ar = s1 + b;
    double* sr = s + b; double* dr = d + b;
    if (is2) {
      const double* cr = s2 + b;
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) {
        const double v = ((yr[e] + nu * ar[e]) + mu * cr[e]) * b0;
        sr[e] = v;
        dr[e] = v - xr[e];
      }
    } else {
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) {
        const double v = (yr[e] + nu * ar[e]) * b0;
        sr[e] = v;
        dr[e] = v - xr[e];
      }
    }
  }
}

// dots (5, n): <h(s1-x), y-x>, <h(s1-x), y-s1>, <hd2, y-x>, <hd2, s2-s1>, <h(s1-x), s1-x>
// (rows a mode does not need are not read); mode bit 0: CFW rows, bit 1: BFW rows.
void traffic_bfw_step(const at::Tensor& y, const at::Tensor& x, const at::Tensor& s1,
                      const at::Tensor& s2, const at::Tensor& dots, const at::Tensor& tp,
                      const at::Tensor& phase, int64_t max_phase, int64_t mode,
                      at::TensorList out) {
  const int64_t n = x.size(0), E = x.dim() == 2 ? x.size(1) : -1;
  TORCH_CHECK(mode >= 1 && mode <= 3, "traffic_bfw_step: mode is 1, 2 or 3");
  for (const at::Tensor* a : {&y, &x, &s1, &s2}) check_rows(*a, n, E, "input");
  TORCH_CHECK(out.size() == 2, "traffic_bfw_step: out is [s, d]");
  for (const auto& a : out) check_rows(a, n, E, "out");
  TORCH_CHECK(dots.scalar_type() == at::kDouble && dots.is_contiguous() && dots.dim() == 2 &&
                  dots.size(0) == 5 && dots.size(1) == n,
              "traffic_bfw_step: dots must be (5, n) float64");
  TORCH_CHECK(tp.scalar_type() == at::kDouble && tp.is_contiguous() && tp.dim() == 1 &&
                  tp.size(0) == n, "traffic_bfw_step: tau_prev must be (n,) float64");
  TORCH_CHECK(phase.scalar_type() == at::kLong && phase.is_contiguous() && phase.dim() == 1 &&
                  phase.size(0) == n, "traffic_bfw_step: phase must be (n,) int64");
  bfw_step_rows(y.data_ptr<double>(), x.data_ptr<double>(), s1.data_ptr<double>(),
                s2.data_ptr<double>(), dots.data_ptr<double>(), tp.data_ptr<double>(),
                phase.data_ptr<int64_t>(), max_phase, mode & 1, mode & 2,
                out[0].data_ptr<double>(), out[1].data_ptr<double>(), n, E);
}

// Line-search products c d^k (k = 1 .. p) of assignment._poly_line_search:
// out[0] = (c d) d, out[k] = out[k - 1] d; c is (n, E) or (E,).
__attribute__((optimize("fp-contract=off"))) void cdk_rows(const double* c, bool c_rows,
                                                           const double* d, double* const* o,
                                                           int64_t p, int64_t n, int64_t E) {
  for (int64_t r = 0; r < n; ++r) {
    const int64_t b = r * E;
    const double* cr = c + (c_rows ? b : 0);
    const double* dr = d + b;
    double* o0 = o[0] + b;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) o0[e] = (cr[e] * dr[e]) * dr[e];
    for (int64_t k = 1; k < p; ++k) {
      const double* prev = o[k - 1] + b;
      double* ok = o[k] + b;
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) ok[e] = prev[e] * dr[e];
    }
  }
}

void traffic_line_products(const at::Tensor& coef, const at::Tensor& d, at::TensorList out) {
  const int64_t n = d.size(0), E = d.dim() == 2 ? d.size(1) : -1;
  check_rows(d, n, E, "d");
  const bool c_rows = check_coef(coef, n, E, "traffic_line_products");
  TORCH_CHECK(!out.empty(), "traffic_line_products: out has p arrays");
  std::vector<double*> o(out.size());
  for (size_t k = 0; k < out.size(); ++k) {
    check_rows(out[k], n, E, "out");
    o[k] = out[k].data_ptr<double>();
  }
  cdk_rows(coef.data_ptr<double>(), c_rows, d.data_ptr<double>(), o.data(),
           static_cast<int64_t>(out.size()), n, E);
}

}  // namespace
}  // namespace dyngraph_traffic

TORCH_LIBRARY_FRAGMENT(dyngraph, m) {
  m.def(
      "traffic_aon(Tensor cost, Tensor adj_ptr, Tensor adj_link, Tensor link_tail, "
      "Tensor link_head, Tensor sources, Tensor od_ptr, Tensor od_dest, Tensor demand, "
      "bool need_cost, int algo, Tensor[] plan) -> (Tensor, Tensor)");
  m.def("traffic_poly_root(Tensor coef, Tensor g1) -> Tensor");
  m.def("traffic_bpr_times(Tensor x, Tensor coef, Tensor t0, float power, Tensor(a!)[] out) "
        "-> ()");
  m.def("traffic_bfw_prep(Tensor y, Tensor x, Tensor s1, Tensor s2, Tensor h, Tensor tp, "
        "int mode, Tensor(a!)[] out) -> ()");
  m.def("traffic_bfw_step(Tensor y, Tensor x, Tensor s1, Tensor s2, Tensor dots, Tensor tp, "
        "Tensor phase, int max_phase, int mode, Tensor(a!)[] out) -> ()");
  m.def("traffic_line_products(Tensor coef, Tensor d, Tensor(a!)[] out) -> ()");
  m.def("traffic_poly_step(Tensor dots, Tensor scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(dyngraph, CPU, m) {
  m.impl("traffic_aon", &dyngraph_traffic::traffic_aon);
  m.impl("traffic_poly_root", &dyngraph_traffic::traffic_poly_root);
  m.impl("traffic_bpr_times", &dyngraph_traffic::traffic_bpr_times);
  m.impl("traffic_bfw_prep", &dyngraph_traffic::traffic_bfw_prep);
  m.impl("traffic_bfw_step", &dyngraph_traffic::traffic_bfw_step);
  m.impl("traffic_line_products", &dyngraph_traffic::traffic_line_products);
  m.impl("traffic_poly_step", &dyngraph_traffic::traffic_poly_step);
}
