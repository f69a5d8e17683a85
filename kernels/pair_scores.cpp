// Scores of a two-layer pair MLP for a block of source rows against every node, without the
// [R, N, H] hidden block:
//
//   out[r, j] = sum_h v[h] * relu(a[r, h] + bt[h, j]) + c
//
// a [R, H] holds the rows' first-layer source terms (bias included), bt [H, N] the transposed
// destination terms. This is EvolveGCN's link classifier (MLP on [h_u || h_v]) evaluated on
// all node pairs, the cost of the paper's MAP/MRR protocol: PyTorch materialises R*N*H floats
// per block and reads them three times; here each (row, node) score is accumulated in
// registers, vectorised over nodes (16 at a time) with 4 rows sharing each load of bt.
//
// pair_mlp_forward / pair_mlp_backward: the same classifier on sampled training pairs, with
// both output classes and a backward that never stores the [M, H] hidden block.
//
// threshold_counts: the histogram average precision needs, counts[k] = #{x : exactly k
// thresholds are <= x} (torch.searchsorted(right=True) + bincount). All-pairs AP on Bitcoin
// OTC bins 34.6M scores per step against a few hundred positive scores; a branchless binary
// search over 8 values at a time keeps the dependent loads overlapped.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace dyngraph_pair_scores {
namespace {

constexpr int64_t kLanes = 16;
constexpr int64_t kRows = 4;
typedef float vf __attribute__((vector_size(kLanes * sizeof(float))));

inline vf load(const float* p) {
  vf x;
  __builtin_memcpy(&x, p, sizeof(vf));
  return x;
}

inline void store(float* p, vf x) { __builtin_memcpy(p, &x, sizeof(vf)); }

inline vf relu(vf x) {
  const vf zero = {};
  return x > zero ? x : zero;
}

// rows [r0, r0 + nr) (nr <= kRows) against nodes [j0, j0 + kLanes)
template <int NR>
inline void block(const float* a, const float* bt, const float* v, float c, int64_t H,
                  int64_t N, int64_t r0, int64_t j0, float* out) {
  vf acc[NR];
  for (int i = 0; i < NR; ++i) acc[i] = vf{} + c;
  for (int64_t h = 0; h < H; ++h) {
    const vf b = load(bt + h * N + j0);
    const float vh = v[h];
    for (int i = 0; i < NR; ++i) acc[i] += vh * relu(b + a[(r0 + i) * H + h]);
  }
  for (int i = 0; i < NR; ++i) store(out + (r0 + i) * N + j0, acc[i]);
}

template <int NR>
inline void block_tail(const float* a, const float* bt, const float* v, float c, int64_t H,
                       int64_t N, int64_t r0, int64_t j0, float* out) {
  for (int i = 0; i < NR; ++i) {
    for (int64_t j = j0; j < N; ++j) {
      float s = c;
      for (int64_t h = 0; h < H; ++h) s += v[h] * std::max(a[(r0 + i) * H + h] + bt[h * N + j], 0.f);
      out[(r0 + i) * N + j] = s;
    }
  }
}

template <int NR>
void rows_all_nodes(const float* a, const float* bt, const float* v, float c, int64_t H,
                    int64_t N, int64_t r0, float* out) {
  int64_t j = 0;
  for (; j + kLanes <= N; j += kLanes) block<NR>(a, bt, v, c, H, N, r0, j, out);
  if (j < N) block_tail<NR>(a, bt, v, c, H, N, r0, j, out);
}

at::Tensor pair_mlp_scores(const at::Tensor& a_, const at::Tensor& bt_, const at::Tensor& v_,
                           double c) {
  TORCH_CHECK(a_.scalar_type() == at::kFloat && bt_.scalar_type() == at::kFloat &&
                  v_.scalar_type() == at::kFloat,
              "pair_mlp_scores: float32 tensors expected");
  TORCH_CHECK(a_.dim() == 2 && bt_.dim() == 2 && v_.dim() == 1 && a_.size(1) == bt_.size(0) &&
                  v_.size(0) == a_.size(1),
              "pair_mlp_scores: a [R, H], bt [H, N], v [H]");
  at::Tensor a = a_.contiguous(), bt = bt_.contiguous(), v = v_.contiguous();
  const int64_t R = a.size(0), H = a.size(1), N = bt.size(1);
  at::Tensor out = at::empty({R, N}, a.options());
  const float* A = a.data_ptr<float>();
  const float* BT = bt.data_ptr<float>();
  const float* V = v.data_ptr<float>();
  float* O = out.data_ptr<float>();
  const float cf = static_cast<float>(c);
  const int64_t groups = (R + kRows - 1) / kRows;
  // one group of kRows rows costs ~kRows * N * H operations
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, kRows * N * H));
  at::parallel_for(0, groups, grain, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t r0 = g * kRows, nr = std::min(kRows, R - r0);
      switch (nr) {
        case 4: rows_all_nodes<4>(A, BT, V, cf, H, N, r0, O); break;
        case 3: rows_all_nodes<3>(A, BT, V, cf, H, N, r0, O); break;
        case 2: rows_all_nodes<2>(A, BT, V, cf, H, N, r0, O); break;
        default: rows_all_nodes<1>(A, BT, V, cf, H, N, r0, O); break;
      }
    }
  });
  return out;
}

// Training-time pair classifier on sampled pairs (src[m], dst[m]), two output classes:
//   hid[m] = relu(a[src[m]] + b[dst[m]]),  logits[m, c] = w2[c] . hid[m] + b2[c]
// The backward recomputes hid instead of keeping [M, H] and scatters the hidden gradient
// into g_a[src] and g_b[dst] (serial over pairs: no write conflicts).
template <typename T>
void pair_forward_impl(const T* A, const T* B, const int64_t* S, const int64_t* D, const T* W,
                       const T* b2, int64_t M, int64_t H, T* out) {
  at::parallel_for(0, M, 2048, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const T* __restrict ar = A + S[m] * H;
      const T* __restrict br = B + D[m] * H;
      T s0 = 0, s1 = 0;
_Pragma("omp simd reduction(+ : s0, s1)")
      for (int64_t h = 0; h < H; ++h) {
        const T x = std::max(ar[h] + br[h], T(0));
        s0 += W[h] * x;
        s1 += W[H + h] * x;
      }
      out[2 * m] = s0 + b2[0];
      out[2 * m + 1] = s1 + b2[1];
    }
  });
}

template <typename T>
void pair_backward_impl(const T* G, const T* A, const T* B, const int64_t* S, const int64_t* D,
                        const T* W, int64_t M, int64_t H, T* ga, T* gb, T* gw, T* gb2) {
  T gb0 = 0, gb1 = 0;
  for (int64_t m = 0; m < M; ++m) {
    const T* __restrict ar = A + S[m] * H;
    const T* __restrict br = B + D[m] * H;
    T* __restrict gar = ga + S[m] * H;
    T* __restrict gbr = gb + D[m] * H;
    const T g0 = G[2 * m], g1 = G[2 * m + 1];
    gb0 += g0, gb1 += g1;
_Pragma("omp simd")
    for (int64_t h = 0; h < H; ++h) {
      const T pre = ar[h] + br[h];
      const T x = pre > T(0) ? pre : T(0);
      gw[h] += g0 * x;
      gw[H + h] += g1 * x;
      const T gh = pre > T(0) ? g0 * W[h] + g1 * W[H + h] : T(0);
      gar[h] += gh;
      gbr[h] += gh;
    }
  }
  gb2[0] = gb0, gb2[1] = gb1;
}

void check_pair_args(const at::Tensor& a, const at::Tensor& b, const at::Tensor& src,
                     const at::Tensor& dst, const at::Tensor& w2) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1) && w2.dim() == 2 &&
                  w2.size(0) == 2 && w2.size(1) == a.size(1),
              "pair_mlp: a [N, H], b [N', H], w2 [2, H]");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && a.scalar_type() == w2.scalar_type() &&
                  (a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble),
              "pair_mlp: a, b, w2 of one float dtype");
  TORCH_CHECK(src.scalar_type() == at::kLong && dst.scalar_type() == at::kLong &&
                  src.numel() == dst.numel(),
              "pair_mlp: src, dst int64 [M]");
  const int64_t M = src.numel();
  if (M) {
    const auto sa = at::aminmax(src), sb = at::aminmax(dst);
    TORCH_CHECK(std::get<0>(sa).item<int64_t>() >= 0 &&
                    std::get<1>(sa).item<int64_t>() < a.size(0) &&
                    std::get<0>(sb).item<int64_t>() >= 0 &&
                    std::get<1>(sb).item<int64_t>() < b.size(0),
                "pair_mlp: pair index out of range");
  }
}

at::Tensor pair_mlp_forward(const at::Tensor& a_, const at::Tensor& b_, const at::Tensor& src_,
                            const at::Tensor& dst_, const at::Tensor& w2_, const at::Tensor& b2_) {
  at::Tensor a = a_.contiguous(), b = b_.contiguous(), src = src_.contiguous();
  at::Tensor dst = dst_.contiguous(), w2 = w2_.contiguous(), b2 = b2_.contiguous();
  check_pair_args(a, b, src, dst, w2);
  const int64_t M = src.numel(), H = a.size(1);
  at::Tensor out = at::empty({M, 2}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "pair_mlp_forward", [&] {
    pair_forward_impl<scalar_t>(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                                src.data_ptr<int64_t>(), dst.data_ptr<int64_t>(),
                                w2.data_ptr<scalar_t>(), b2.to(a.scalar_type()).data_ptr<scalar_t>(),
                                M, H, out.data_ptr<scalar_t>());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> pair_mlp_backward(
    const at::Tensor& g_, const at::Tensor& a_, const at::Tensor& b_, const at::Tensor& src_,
    const at::Tensor& dst_, const at::Tensor& w2_) {
  at::Tensor g = g_.contiguous(), a = a_.contiguous(), b = b_.contiguous();
  at::Tensor src = src_.contiguous(), dst = dst_.contiguous(), w2 = w2_.contiguous();
  check_pair_args(a, b, src, dst, w2);
  const int64_t M = src.numel(), H = a.size(1);
  TORCH_CHECK(g.sizes() == at::IntArrayRef({M, 2}) && g.scalar_type() == a.scalar_type(),
              "pair_mlp_backward: grad [M, 2] of the inputs' dtype");
  at::Tensor ga = at::zeros_like(a), gb = at::zeros_like(b), gw = at::zeros_like(w2);
  at::Tensor gb2 = at::empty({2}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "pair_mlp_backward", [&] {
    pair_backward_impl<scalar_t>(g.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(),
                                 b.data_ptr<scalar_t>(), src.data_ptr<int64_t>(),
                                 dst.data_ptr<int64_t>(), w2.data_ptr<scalar_t>(), M, H,
                                 ga.data_ptr<scalar_t>(), gb.data_ptr<scalar_t>(),
                                 gw.data_ptr<scalar_t>(), gb2.data_ptr<scalar_t>());
  });
  return {ga, gb, gw, gb2};
}

at::Tensor threshold_counts(const at::Tensor& values_, const at::Tensor& thresholds_) {
  TORCH_CHECK(values_.scalar_type() == at::kFloat && thresholds_.scalar_type() == at::kFloat,
              "threshold_counts: float32 tensors expected");
  TORCH_CHECK(thresholds_.dim() == 1, "threshold_counts: thresholds [P], sorted ascending");
  at::Tensor values = values_.contiguous().view(-1), thr = thresholds_.contiguous();
  const int64_t P = thr.numel(), M = values.numel();
  at::Tensor counts = at::zeros({P + 1}, values.options().dtype(at::kLong));
  int64_t* C = counts.data_ptr<int64_t>();
  const float* X = values.data_ptr<float>();
  // pad to a power of two with +inf so every probe is in range
  int64_t S = 1;
  while (S < P + 1) S *= 2;
  std::vector<float> t(S, std::numeric_limits<float>::infinity());
  std::copy(thr.data_ptr<float>(), thr.data_ptr<float>() + P, t.begin());
  for (int64_t k = 1; k < P; ++k)
    TORCH_CHECK(t[k - 1] <= t[k], "threshold_counts: thresholds must be sorted ascending");
  const float* T = t.data();
  constexpr int64_t kBatch = 8;
  for (int64_t m = 0; m < M; m += kBatch) {
    const int64_t nb = std::min(kBatch, M - m);  // the tail runs padded lanes it ignores
    int64_t idx[kBatch];
    float x[kBatch];
    for (int i = 0; i < kBatch; ++i) x[i] = i < nb ? X[m + i] : 0.f, idx[i] = 0;
    for (int64_t step = S / 2; step >= 1; step /= 2)
      for (int i = 0; i < kBatch; ++i) idx[i] += (T[idx[i] + step - 1] <= x[i]) ? step : 0;
    // NaN sorts last, as in torch.searchsorted; +inf passes the padding
    for (int i = 0; i < nb; ++i) ++C[x[i] != x[i] ? P : std::min(idx[i], P)];
  }
  return counts;
}

}  // namespace
}  // namespace dyngraph_pair_scores

TORCH_LIBRARY_FRAGMENT(dyngraph, m) {
  m.def("pair_mlp_scores(Tensor a, Tensor bt, Tensor v, float c) -> Tensor");
  m.def("threshold_counts(Tensor values, Tensor thresholds) -> Tensor");
  m.def("pair_mlp_forward(Tensor a, Tensor b, Tensor src, Tensor dst, Tensor w2, Tensor b2) -> Tensor");
  m.def(
      "pair_mlp_backward(Tensor grad, Tensor a, Tensor b, Tensor src, Tensor dst, Tensor w2) -> "
      "(Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(dyngraph, CPU, m) {
  m.impl("pair_mlp_scores", &dyngraph_pair_scores::pair_mlp_scores);
  m.impl("threshold_counts", &dyngraph_pair_scores::threshold_counts);
  m.impl("pair_mlp_forward", &dyngraph_pair_scores::pair_mlp_forward);
  m.impl("pair_mlp_backward", &dyngraph_pair_scores::pair_mlp_backward);
}
