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

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

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

}  // namespace
}  // namespace dyngraph_pair_scores

TORCH_LIBRARY_FRAGMENT(dyngraph, m) {
  m.def("pair_mlp_scores(Tensor a, Tensor bt, Tensor v, float c) -> Tensor");
}

TORCH_LIBRARY_IMPL(dyngraph, CPU, m) {
  m.impl("pair_mlp_scores", &dyngraph_pair_scores::pair_mlp_scores);
}
