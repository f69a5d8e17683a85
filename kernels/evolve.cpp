// The graph convolution of EvolveGCN (dyngraph/nn/evolve.py), forward and backward:
//
//   out = Ahat X W,   Ahat = D + O   (D: the diagonal -- the normalised self loops --, O: the rest)
//
// On a snapshot sequence most nodes have no edge in a given step (Bitcoin OTC: ~260 edges for
// 5,881 nodes), so Ahat is diagonal except on a few hundred rows. Instead of a general sparse
// product over N + E entries plus a dense matmul (two passes over [N, F] and a fresh [N, F]
// temporary), one pass computes
//
//   out[i] = src_i W * scale_i,   src_i = x[i], scale_i = D_ii        (rows without off-diagonal)
//                                 src_i = z[t] = (Ahat X)[i], scale 1 (the T "touched" rows)
//
// with z ([T, F], tiny) built first from the off-diagonal CSR restricted to the touched rows
// (rows / ptr / col / val; slot[i] = t or -1). The backward uses the same decomposition:
//
//   dW = sum_i scale_i src_i^T g_i                 (one pass over X and G, no [N, F] temporary)
//   dX = D (G W^T) + O^T (G W^T)                   (dense part in one pass, O^T part on T rows)
//
// The dense part is a register-blocked GEMM (6 rows x up to 64 columns of accumulators, the
// weight row broadcast against each source element) written with GCC vector extensions; on
// this project's machines (AVX-512) it runs ~2.5x faster than MKL's sgemm for these skinny
// shapes ([N, 64] x [64, 64]), which is where EvolveGCN spends its time. float32 and float64.
// The split (diag, slot, rows, ptr, col, val) comes from dyngraph.nn.gcn_norm (DiagonalSplit),
// whose ids are validated there; the kernels trust them.
//
// Also the matrix GRU step of EvolveGCN (evolve_mat_gru / _backward, see below) as one op each
// way, on the same GEMM.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "fast_math.h"

namespace dyngraph_evolve {
namespace {

template <typename T>
struct VT;
template <>
struct VT<float> {
  typedef float v __attribute__((vector_size(64)));
  static constexpr int64_t L = 16;
};
template <>
struct VT<double> {
  typedef double v __attribute__((vector_size(64)));
  static constexpr int64_t L = 8;
};

template <typename V>
inline V vload(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V>
inline void vstore(void* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// a * b + c with one rounding: the extension is built with -std=c++17, which turns off GCC's
// automatic FMA contraction, so it is asked for explicitly where the ISA has it
inline VT<float>::v vfma(VT<float>::v a, VT<float>::v b, VT<float>::v c) {
#if defined(__AVX512F__)
  return (VT<float>::v)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#else
  return a * b + c;
#endif
}
inline VT<double>::v vfma(VT<double>::v a, VT<double>::v b, VT<double>::v c) {
#if defined(__AVX512F__)
  return (VT<double>::v)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#else
  return a * b + c;
#endif
}

inline void prefetch_rows(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
}

// prefetches [p, p + bytes) in `slices` equal steps
struct Prefetcher {
  const char* p;
  const char* end;
  int64_t slice;
  Prefetcher(const void* start, int64_t bytes, int64_t slices)
      : p(static_cast<const char*>(start)),
        end(p + bytes),
        slice((bytes / std::max<int64_t>(1, slices) + 63) / 64 * 64) {}
  void step() {
    if (p >= end) return;
    const int64_t n = std::min<int64_t>(slice, end - p);
    prefetch_rows(p, n);
    p += n;
  }
};

constexpr int kRows = 6;    // rows per register tile
constexpr int kCols = 4;    // vectors per register tile (64 floats)
constexpr int kDepth = 6;   // rows of dW per register tile in the backward
constexpr int64_t kChunk = 64;  // rows of X/G per backward block (both stay in L1)
// multiply-adds per parallel chunk: smaller calls (the matrix GRU's 64 x 64 products) run
// serially, as opening a parallel region costs more than they do
constexpr int64_t kSerialWork = 1 << 21;

// dst[r][c0 : c0 + CT*L] (clipped to C columns) = scale[r] * sum_k src[r][k*sk] * B[k][c0 : ...]
// (+ the old dst when acc). B is [K, ldb] with ldb a multiple of L, zero-padded beyond C; sk is
// the stride of a source row (1, or the row stride of A when the rows are columns of A, A^T B).
template <typename T, int R, int CT>
inline void tile(const T* const* src, int64_t sk, const T* scale, int64_t K, const T* B,
                 int64_t ldb, T* const* dst, int64_t c0, int64_t C, bool accumulate) {
  using V = typename VT<T>::v;
  constexpr int64_t L = VT<T>::L;
  V acc[R][CT];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < CT; ++c) acc[r][c] = V{} + T(0);
  const T* b = B + c0;
  for (int64_t k = 0; k < K; ++k, b += ldb) {
    V w[CT];
    for (int c = 0; c < CT; ++c) w[c] = vload<V>(b + c * L);
    for (int r = 0; r < R; ++r) {
      const V s = V{} + src[r][k * sk];
      for (int c = 0; c < CT; ++c) acc[r][c] = vfma(s, w[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const V sc = V{} + scale[r];
    for (int c = 0; c < CT; ++c) {
      const int64_t col = c0 + c * L;
      V v = acc[r][c] * sc;
      if (col + L <= C) {
        if (accumulate) v += vload<V>(dst[r] + col);
        vstore(dst[r] + col, v);
      } else {
        T tmp[L];
        vstore(tmp, v);
        for (int64_t j = 0; j < C - col; ++j) dst[r][col + j] = (accumulate ? dst[r][col + j] : T(0)) + tmp[j];
      }
    }
  }
}

template <typename T, int R>
inline void tile_row_block(const T* const* src, int64_t sk, const T* scale, int64_t K,
                           const T* B, int64_t ldb, T* const* dst, int64_t C, bool acc) {
  constexpr int64_t L = VT<T>::L;
  const int64_t nvec = (C + L - 1) / L;
  int64_t v = 0;
  for (; v + kCols <= nvec; v += kCols)
    tile<T, R, kCols>(src, sk, scale, K, B, ldb, dst, v * L, C, acc);
  switch (nvec - v) {
    case 3: tile<T, R, 3>(src, sk, scale, K, B, ldb, dst, v * L, C, acc); break;
    case 2: tile<T, R, 2>(src, sk, scale, K, B, ldb, dst, v * L, C, acc); break;
    case 1: tile<T, R, 1>(src, sk, scale, K, B, ldb, dst, v * L, C, acc); break;
    default: break;
  }
}

// B [K, C] (row stride ldb_in) as a [K, ldb] matrix whose rows are whole vectors: the
// matrix itself when already so, else a zero-padded copy in `store`
template <typename T>
const T* padded(const T* m, int64_t K, int64_t C, int64_t ldb_in, int64_t* ldb,
                std::vector<T>& store) {
  constexpr int64_t L = VT<T>::L;
  *ldb = (C + L - 1) / L * L;
  if (*ldb == C && ldb_in == C) return m;
  store.assign(K * *ldb, T(0));
  for (int64_t k = 0; k < K; ++k)
    std::memcpy(store.data() + k * *ldb, m + k * ldb_in, sizeof(T) * C);
  return store.data();
}

// out_i = scale_i * src_i @ B (+ out_i when acc) for i in [0, M); row(i, &src, &scale, &dst)
// says where row i comes from and goes to. B: [K, C], row stride ldb_in.
template <typename T, typename RowFn>
void drive(int64_t M, int64_t K, const T* Bm, int64_t ldb_in, int64_t C, bool acc, int64_t sk,
           RowFn row, const T* prefetch_base = nullptr) {
  std::vector<T> store;
  int64_t ldb;
  const T* B = padded(Bm, K, C, ldb_in, &ldb, store);
  const int64_t tiles = (M + kRows - 1) / kRows;
  const int64_t grain = std::max<int64_t>(1, kSerialWork / std::max<int64_t>(1, kRows * K * C));
  at::parallel_for(0, tiles, grain, [&](int64_t t0, int64_t t1) {
    const T* src[kRows];
    T scale[kRows];
    T* dst[kRows];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = t * kRows;
      const int R = static_cast<int>(std::min<int64_t>(kRows, M - i0));
      if (prefetch_base && i0 + 3 * kRows <= M)
        prefetch_rows(prefetch_base + (i0 + 2 * kRows) * K, kRows * K * sizeof(T));
      for (int r = 0; r < R; ++r) row(i0 + r, &src[r], &scale[r], &dst[r]);
      switch (R) {
        case 6: tile_row_block<T, 6>(src, sk, scale, K, B, ldb, dst, C, acc); break;
        case 5: tile_row_block<T, 5>(src, sk, scale, K, B, ldb, dst, C, acc); break;
        case 4: tile_row_block<T, 4>(src, sk, scale, K, B, ldb, dst, C, acc); break;
        case 3: tile_row_block<T, 3>(src, sk, scale, K, B, ldb, dst, C, acc); break;
        case 2: tile_row_block<T, 2>(src, sk, scale, K, B, ldb, dst, C, acc); break;
        default: tile_row_block<T, 1>(src, sk, scale, K, B, ldb, dst, C, acc); break;
      }
    }
  });
}

// out[i] = scale_i * src_i @ B for i in [0, N): src_i = z[slot[i]] (scale 1) when slot[i] >= 0,
// else a[i] (scale diag[i]). slot may be null (every row from a).
template <typename T>
void rows_times(const T* a, const T* z, const int64_t* slot, const T* diag, int64_t N, int64_t K,
                const T* B, int64_t C, T* out) {
  drive<T>(
      N, K, B, C, C, false, 1,
      [&](int64_t i, const T** src, T* scale, T** dst) {
        const int64_t s = slot ? slot[i] : -1;
        *src = s >= 0 ? z + s * K : a + i * K;
        *scale = s >= 0 ? T(1) : diag[i];
        *dst = out + i * C;
      },
      a);
}

// C [M, N] (row stride ldc) = op(A) @ B [K, N] (row stride ldb), or += it; op(A) = A [M, K]
// (row stride lda), or with trans_a A^T for A [K, M] (row stride lda)
template <typename T>
void gemm(const T* A, int64_t lda, const T* B, int64_t ldb, T* Cm, int64_t ldc, int64_t M,
          int64_t K, int64_t N, bool acc, bool trans_a = false) {
  drive<T>(M, K, B, ldb, N, acc, trans_a ? lda : 1,
           [&](int64_t i, const T** src, T* scale, T** dst) {
             *src = trans_a ? A + i : A + i * lda;
             *scale = T(1);
             *dst = Cm + i * ldc;
           });
}

// acc[k0 + d][c0 : c0 + CT*L] += sum_r scale_r src_r[k0 + d] * g_r[c0 : ...] for d < KB; g rows
// are read with stride ldg and must be readable for whole vectors (padded by the caller when
// C is not a multiple of L).
template <typename T, int KB, int CT>
inline void outer_tile(const T* const* src, const T* scale, const T* g, int64_t ldg, int64_t n,
                       int64_t k0, T* acc, int64_t lda, int64_t c0) {
  using V = typename VT<T>::v;
  constexpr int64_t L = VT<T>::L;
  V a[KB][CT];
  for (int d = 0; d < KB; ++d)
    for (int c = 0; c < CT; ++c) a[d][c] = vload<V>(acc + (k0 + d) * lda + c0 + c * L);
  for (int64_t r = 0; r < n; ++r) {
    V gv[CT];
    for (int c = 0; c < CT; ++c) gv[c] = vload<V>(g + r * ldg + c0 + c * L);
    const T* s = src[r] + k0;
    const T sc = scale[r];
    for (int d = 0; d < KB; ++d) {
      const V b = V{} + s[d] * sc;
      for (int c = 0; c < CT; ++c) a[d][c] = vfma(b, gv[c], a[d][c]);
    }
  }
  for (int d = 0; d < KB; ++d)
    for (int c = 0; c < CT; ++c) vstore(acc + (k0 + d) * lda + c0 + c * L, a[d][c]);
}

template <typename T, int KB>
inline void outer_depth_block(const T* const* src, const T* scale, const T* g, int64_t ldg,
                              int64_t n, int64_t k0, T* acc, int64_t lda) {
  constexpr int64_t L = VT<T>::L;
  const int64_t nvec = lda / L;
  int64_t v = 0;
  for (; v + kCols <= nvec; v += kCols)
    outer_tile<T, KB, kCols>(src, scale, g, ldg, n, k0, acc, lda, v * L);
  switch (nvec - v) {
    case 3: outer_tile<T, KB, 3>(src, scale, g, ldg, n, k0, acc, lda, v * L); break;
    case 2: outer_tile<T, KB, 2>(src, scale, g, ldg, n, k0, acc, lda, v * L); break;
    case 1: outer_tile<T, KB, 1>(src, scale, g, ldg, n, k0, acc, lda, v * L); break;
    default: break;
  }
}

// dW [K, C] = sum_i scale_i src_i^T g_i with src_i / scale_i as in rows_times
template <typename T>
void weight_grad(const T* x, const T* z, const int64_t* slot, const T* diag, const T* g,
                 int64_t N, int64_t K, int64_t C, T* dw) {
  constexpr int64_t L = VT<T>::L;
  const int64_t lda = (C + L - 1) / L * L;
  const int64_t chunks = (N + kChunk - 1) / kChunk;
  const int64_t grain =
      std::max<int64_t>(1, kSerialWork / std::max<int64_t>(1, kChunk * K * C));
  const int nthreads = std::max(1, at::get_num_threads());
  std::vector<T> part(static_cast<size_t>(nthreads) * K * lda, T(0));
  at::parallel_for(0, chunks, grain, [&](int64_t c0, int64_t c1) {
    T* acc = part.data() + static_cast<size_t>(at::get_thread_num()) * K * lda;
    const T* src[kChunk];
    T scale[kChunk];
    std::vector<T> gpad(lda == C ? 0 : kChunk * lda, T(0));
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t i0 = ch * kChunk;
      const int64_t n = std::min(kChunk, N - i0);
      for (int64_t r = 0; r < n; ++r) {
        const int64_t i = i0 + r;
        const int64_t s = slot[i];
        src[r] = s >= 0 ? z + s * K : x + i * K;
        scale[r] = s >= 0 ? T(1) : diag[i];
      }
      const T* gc = g + i0 * C;
      int64_t ldg = C;
      if (lda != C) {
        for (int64_t r = 0; r < n; ++r)
          std::memcpy(gpad.data() + r * lda, g + (i0 + r) * C, sizeof(T) * C);
        gc = gpad.data();
        ldg = lda;
      }
      // the next chunk's rows of X and G are prefetched into L1 in slices, one per k-block,
      // while this chunk is computed: the rows are read a few bytes at a time (one k-block
      // each), which the hardware prefetcher does not stream well (X comes from DRAM: it was
      // last read by the forward, many snapshots ago)
      const int64_t next = std::max<int64_t>(0, std::min(N, i0 + 2 * kChunk) - i0 - kChunk);
      const int64_t slices = K / kDepth + 1;
      const int64_t i1 = std::min(N, i0 + kChunk);
      Prefetcher px(x + i1 * K, next * K * sizeof(T), slices);
      Prefetcher pg(g + i1 * C, next * C * sizeof(T), slices);
      int64_t k = 0;
      for (; k + kDepth <= K; k += kDepth) {
        px.step();
        pg.step();
        outer_depth_block<T, kDepth>(src, scale, gc, ldg, n, k, acc, lda);
      }
      px.step();
      pg.step();
      switch (K - k) {
        case 5: outer_depth_block<T, 5>(src, scale, gc, ldg, n, k, acc, lda); break;
        case 4: outer_depth_block<T, 4>(src, scale, gc, ldg, n, k, acc, lda); break;
        case 3: outer_depth_block<T, 3>(src, scale, gc, ldg, n, k, acc, lda); break;
        case 2: outer_depth_block<T, 2>(src, scale, gc, ldg, n, k, acc, lda); break;
        case 1: outer_depth_block<T, 1>(src, scale, gc, ldg, n, k, acc, lda); break;
        default: break;
      }
    }
  });
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t c = 0; c < C; ++c) {
      T s = T(0);
      for (int t = 0; t < nthreads; ++t) s += part[(static_cast<size_t>(t) * K + k) * lda + c];
      dw[k * C + c] = s;
    }
  }
}

void check_graph(const at::Tensor& x, const at::Tensor& diag, const at::Tensor& slot,
                 const at::Tensor& rows, const at::Tensor& ptr, const at::Tensor& col,
                 const at::Tensor& val) {
  const int64_t N = x.size(0);
  TORCH_CHECK(x.dim() == 2, "evolve_gcn_conv: x must be [N, F]");
  TORCH_CHECK(diag.dim() == 1 && diag.size(0) == N && diag.scalar_type() == x.scalar_type(),
              "evolve_gcn_conv: diag must be [N] of x's dtype");
  TORCH_CHECK(slot.dim() == 1 && slot.size(0) == N && slot.scalar_type() == at::kLong,
              "evolve_gcn_conv: slot must be [N] int64");
  TORCH_CHECK(rows.dim() == 1 && rows.scalar_type() == at::kLong,
              "evolve_gcn_conv: rows must be [T] int64");
  TORCH_CHECK(ptr.dim() == 1 && ptr.size(0) == rows.size(0) + 1 &&
                  ptr.scalar_type() == at::kLong,
              "evolve_gcn_conv: ptr must be [T + 1] int64");
  TORCH_CHECK(col.dim() == 1 && col.scalar_type() == at::kLong && val.dim() == 1 &&
                  val.size(0) == col.size(0) && val.scalar_type() == x.scalar_type(),
              "evolve_gcn_conv: col [nnz] int64 and val [nnz] of x's dtype");
}

// z[t] = diag[rows[t]] x[rows[t]] + sum_e val[e] x[col[e]]: the touched rows of Ahat X
template <typename T>
void touched_rows(const T* x, const T* diag, const int64_t* rows, const int64_t* ptr,
                  const int64_t* col, const T* val, int64_t Tn, int64_t F, T* z) {
  for (int64_t t = 0; t < Tn; ++t) {
    T* __restrict zt = z + t * F;
    const T d = diag[rows[t]];
    const T* xr = x + rows[t] * F;
    for (int64_t f = 0; f < F; ++f) zt[f] = d * xr[f];
    for (int64_t e = ptr[t]; e < ptr[t + 1]; ++e) {
      const T v = val[e];
      const T* xs = x + col[e] * F;
      for (int64_t f = 0; f < F; ++f) zt[f] += v * xs[f];
    }
  }
}

std::tuple<at::Tensor, at::Tensor> evolve_gcn_conv(const at::Tensor& x_, const at::Tensor& w_,
                                                   const at::Tensor& diag_,
                                                   const at::Tensor& slot_,
                                                   const at::Tensor& rows_,
                                                   const at::Tensor& ptr_,
                                                   const at::Tensor& col_,
                                                   const at::Tensor& val_) {
  check_graph(x_, diag_, slot_, rows_, ptr_, col_, val_);
  TORCH_CHECK(w_.dim() == 2 && w_.size(0) == x_.size(1) && w_.scalar_type() == x_.scalar_type(),
              "evolve_gcn_conv: w must be [F, O] of x's dtype");
  const auto x = x_.contiguous(), w = w_.contiguous(), diag = diag_.contiguous();
  const auto slot = slot_.contiguous(), rows = rows_.contiguous(), ptr = ptr_.contiguous();
  const auto col = col_.contiguous(), val = val_.contiguous();
  const int64_t N = x.size(0), F = x.size(1), O = w.size(1), Tn = rows.size(0);
  auto out = at::empty({N, O}, x.options());
  auto z = at::empty({Tn, F}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "evolve_gcn_conv", [&] {
    touched_rows<scalar_t>(x.data_ptr<scalar_t>(), diag.data_ptr<scalar_t>(),
                           rows.data_ptr<int64_t>(), ptr.data_ptr<int64_t>(),
                           col.data_ptr<int64_t>(), val.data_ptr<scalar_t>(), Tn, F,
                           z.data_ptr<scalar_t>());
    rows_times<scalar_t>(x.data_ptr<scalar_t>(), z.data_ptr<scalar_t>(),
                         slot.data_ptr<int64_t>(), diag.data_ptr<scalar_t>(), N, F,
                         w.data_ptr<scalar_t>(), O, out.data_ptr<scalar_t>());
  });
  return {out, z};
}

std::tuple<at::Tensor, at::Tensor> evolve_gcn_conv_backward(
    const at::Tensor& g_, const at::Tensor& x_, const at::Tensor& w_, const at::Tensor& diag_,
    const at::Tensor& slot_, const at::Tensor& rows_, const at::Tensor& ptr_,
    const at::Tensor& col_, const at::Tensor& val_, const at::Tensor& z_, bool need_x,
    bool need_w) {
  check_graph(x_, diag_, slot_, rows_, ptr_, col_, val_);
  const int64_t N = x_.size(0), F = x_.size(1), O = w_.size(1), Tn = rows_.size(0);
  TORCH_CHECK(g_.dim() == 2 && g_.size(0) == N && g_.size(1) == O &&
                  g_.scalar_type() == x_.scalar_type(),
              "evolve_gcn_conv_backward: grad must be [N, O] of x's dtype");
  TORCH_CHECK(z_.dim() == 2 && z_.size(0) == Tn && z_.size(1) == F,
              "evolve_gcn_conv_backward: z must be [T, F]");
  const auto g = g_.contiguous(), x = x_.contiguous(), w = w_.contiguous();
  const auto diag = diag_.contiguous(), slot = slot_.contiguous(), rows = rows_.contiguous();
  const auto ptr = ptr_.contiguous(), col = col_.contiguous(), val = val_.contiguous();
  const auto z = z_.contiguous();
  at::Tensor gx, gw;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "evolve_gcn_conv_backward", [&] {
    const scalar_t* gp = g.data_ptr<scalar_t>();
    if (need_w) {
      gw = at::empty({F, O}, x.options());
      weight_grad<scalar_t>(x.data_ptr<scalar_t>(), z.data_ptr<scalar_t>(),
                            slot.data_ptr<int64_t>(), diag.data_ptr<scalar_t>(), gp, N, F, O,
                            gw.data_ptr<scalar_t>());
    }
    if (need_x) {
      // dX = D (G W^T) + O^T (G W^T); the O^T part reads G W^T on the T touched rows only
      const auto wt = w.t().contiguous();
      const scalar_t* wtp = wt.data_ptr<scalar_t>();
      gx = at::empty({N, F}, x.options());
      scalar_t* gxp = gx.data_ptr<scalar_t>();
      rows_times<scalar_t>(gp, nullptr, nullptr, diag.data_ptr<scalar_t>(), N, O, wtp, F, gxp);
      const int64_t* rp = rows.data_ptr<int64_t>();
      const int64_t* pp = ptr.data_ptr<int64_t>();
      const int64_t* cp = col.data_ptr<int64_t>();
      const scalar_t* vp = val.data_ptr<scalar_t>();
      std::vector<scalar_t> h(F);
      for (int64_t t = 0; t < Tn; ++t) {
        if (pp[t] == pp[t + 1]) continue;
        std::fill(h.begin(), h.end(), scalar_t(0));
        const scalar_t* gr = gp + rp[t] * O;
        for (int64_t o = 0; o < O; ++o) {
          const scalar_t go = gr[o];
          const scalar_t* wr = wtp + o * F;
          for (int64_t f = 0; f < F; ++f) h[f] += go * wr[f];
        }
        for (int64_t e = pp[t]; e < pp[t + 1]; ++e) {
          scalar_t* dst = gxp + cp[e] * F;
          const scalar_t v = vp[e];
          for (int64_t f = 0; f < F; ++f) dst[f] += v * h[f];
        }
      }
    }
  });
  if (!gx.defined()) gx = at::empty({0}, x.options());
  if (!gw.defined()) gw = at::empty({0}, x.options());
  return {gx, gw};
}

// ------------------------------------------------------------------ the matrix GRU (eq. 4-7)
// One step W' = GRU(X, H) over [r, c] matrices with gate matrices wx, wh [3, r, r] (order
// update z, reset g, candidate) and bias b [3, r, c]:
//   z = sig(wx0 X + wh0 H + b0), g = sig(wx1 X + wh1 H + b1),
//   hh = tanh(wx2 X + wh2 (g * H) + b2), W' = H + z * (hh - H)
// as one op each way (torch: ~20 small ops and as many autograd nodes per step).

inline float sigmoid_v(float v) { return 1.0f / (1.0f + dyngraph_fast_math::exp_fast(-v)); }
inline double sigmoid_v(double v) { return 1.0 / (1.0 + std::exp(-v)); }
inline float tanh_v(float v) { return 1.0f - 2.0f / (dyngraph_fast_math::exp_fast(2.0f * v) + 1.0f); }
inline double tanh_v(double v) { return std::tanh(v); }

template <typename T>
void transpose(const T* a, int64_t rows, int64_t cols, T* out) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out[j * rows + i] = a[i * cols + j];
}

void check_gru(const at::Tensor& x, const at::Tensor& h, const at::Tensor& wx,
               const at::Tensor& wh, const at::Tensor& b) {
  TORCH_CHECK(h.dim() == 2 && x.sizes() == h.sizes(), "evolve_mat_gru: x and h must be [r, c]");
  const int64_t r = h.size(0), c = h.size(1);
  TORCH_CHECK(wx.dim() == 3 && wx.size(0) == 3 && wx.size(1) == r && wx.size(2) == r &&
                  wh.sizes() == wx.sizes(),
              "evolve_mat_gru: wx and wh must be [3, r, r]");
  TORCH_CHECK(b.dim() == 3 && b.size(0) == 3 && b.size(1) == r && b.size(2) == c,
              "evolve_mat_gru: b must be [3, r, c]");
  for (const auto* t : {&x, &wx, &wh, &b})
    TORCH_CHECK(t->scalar_type() == h.scalar_type(), "evolve_mat_gru: dtypes differ");
}

// tied: X is H (EvolveGCN-O feeds the weight to itself): the z and g gates then need one
// matmul with wx + wh instead of two, and the backward shares their weight gradients
std::tuple<at::Tensor, at::Tensor> evolve_mat_gru(const at::Tensor& x_, const at::Tensor& h_,
                                                  const at::Tensor& wx_, const at::Tensor& wh_,
                                                  const at::Tensor& b_, bool tied) {
  check_gru(x_, h_, wx_, wh_, b_);
  const auto x = x_.contiguous(), h = h_.contiguous(), wx = wx_.contiguous();
  const auto wh = wh_.contiguous(), b = b_.contiguous();
  const int64_t r = h.size(0), c = h.size(1), n = r * c;
  auto pre = b.clone();  // [3, r, c]
  auto out = at::empty({r, c}, h.options());
  auto saved = at::empty({4, r, c}, h.options());  // z, g, g * H, hh
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "evolve_mat_gru", [&] {
    using T = scalar_t;
    T* p = pre.data_ptr<T>();
    const T* xp = x.data_ptr<T>();
    const T* hp = h.data_ptr<T>();
    const T* whp = wh.data_ptr<T>();
    const T* wxp = wx.data_ptr<T>();
    if (tied) {
      std::vector<T> wsum(2 * r * r);
      for (int64_t i = 0; i < 2 * r * r; ++i) wsum[i] = wxp[i] + whp[i];
      gemm<T>(wsum.data(), r, hp, c, p, c, 2 * r, r, c, true);
      gemm<T>(wxp + 2 * r * r, r, hp, c, p + 2 * n, c, r, r, c, true);
    } else {
      gemm<T>(wxp, r, xp, c, p, c, 3 * r, r, c, true);
      gemm<T>(whp, r, hp, c, p, c, 2 * r, r, c, true);
    }
    T* z = saved.data_ptr<T>();
    T* g = z + n;
    T* rh = g + n;
    T* hh = rh + n;
    T* o = out.data_ptr<T>();
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) {
      z[i] = sigmoid_v(p[i]);
      g[i] = sigmoid_v(p[n + i]);
      rh[i] = g[i] * hp[i];
    }
    gemm<T>(whp + 2 * r * r, r, rh, c, p + 2 * n, c, r, r, c, true);
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) {
      hh[i] = tanh_v(p[2 * n + i]);
      o[i] = hp[i] + z[i] * (hh[i] - hp[i]);
    }
  });
  return {out, saved};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> evolve_mat_gru_backward(
    const at::Tensor& go_, const at::Tensor& x_, const at::Tensor& h_, const at::Tensor& wx_,
    const at::Tensor& wh_, const at::Tensor& saved_, bool tied) {
  check_gru(x_, h_, wx_, wh_, at::empty({3, h_.size(0), h_.size(1)}, h_.options()));
  TORCH_CHECK(go_.sizes() == h_.sizes() && go_.scalar_type() == h_.scalar_type(),
              "evolve_mat_gru_backward: grad must be [r, c]");
  TORCH_CHECK(saved_.dim() == 3 && saved_.size(0) == 4 && saved_.size(1) == h_.size(0) &&
                  saved_.size(2) == h_.size(1),
              "evolve_mat_gru_backward: saved must be [4, r, c]");
  const auto go = go_.contiguous(), x = x_.contiguous(), h = h_.contiguous();
  const auto wx = wx_.contiguous(), wh = wh_.contiguous(), saved = saved_.contiguous();
  const int64_t r = h.size(0), c = h.size(1), n = r * c;
  auto dpre = at::empty({3, r, c}, h.options());  // also the bias gradient
  auto dx = tied ? at::empty({0}, h.options()) : at::empty({r, c}, h.options());
  auto dh = at::empty({r, c}, h.options());
  auto dwx = at::empty({3, r, r}, h.options());
  auto dwh = at::empty({3, r, r}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "evolve_mat_gru_backward", [&] {
    using T = scalar_t;
    const T* gp = go.data_ptr<T>();
    const T* xp = x.data_ptr<T>();
    const T* hp = h.data_ptr<T>();
    const T* wxp = wx.data_ptr<T>();
    const T* whp = wh.data_ptr<T>();
    const T* z = saved.data_ptr<T>();
    const T* g = z + n;
    const T* rh = g + n;
    const T* hh = rh + n;
    T* dp = dpre.data_ptr<T>();
    T* dpz = dp;
    T* dpg = dp + n;
    T* dph = dp + 2 * n;
    T* dhp = dh.data_ptr<T>();
    std::vector<T> drh(n), tr(n);  // tr: X^T, H^T, (g H)^T in turn
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) {
      dph[i] = gp[i] * z[i] * (T(1) - hh[i] * hh[i]);
      dpz[i] = gp[i] * (hh[i] - hp[i]) * z[i] * (T(1) - z[i]);
      dhp[i] = gp[i] * (T(1) - z[i]);
    }
    gemm<T>(whp + 2 * r * r, r, dph, c, drh.data(), c, r, r, c, false, true);  // wh2^T dph
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) {
      dpg[i] = drh[i] * hp[i] * g[i] * (T(1) - g[i]);
      dhp[i] += drh[i] * g[i];
    }
    T* dwxp = dwx.data_ptr<T>();
    T* dwhp = dwh.data_ptr<T>();
    if (tied) {
      // d(X = H) = (wx0 + wh0)^T dpz + (wx1 + wh1)^T dpg + wx2^T dph + the direct terms (dh)
      std::vector<T> wsum(3 * r * r);
      for (int64_t i = 0; i < 2 * r * r; ++i) wsum[i] = wxp[i] + whp[i];
      std::memcpy(wsum.data() + 2 * r * r, wxp + 2 * r * r, sizeof(T) * r * r);
      gemm<T>(wsum.data(), r, dp, c, dhp, c, r, 3 * r, c, true, true);
      transpose<T>(hp, r, c, tr.data());  // H^T = X^T
      gemm<T>(dp, c, tr.data(), r, dwxp, r, 3 * r, c, r, false);
      std::memcpy(dwhp, dwxp, sizeof(T) * 2 * r * r);
    } else {
      gemm<T>(whp, r, dp, c, dhp, c, r, 2 * r, c, true, true);  // [wh0; wh1]^T [dpz; dpg]
      gemm<T>(wxp, r, dp, c, dx.data_ptr<T>(), c, r, 3 * r, c, false, true);  // wx^T dpre
      transpose<T>(xp, r, c, tr.data());  // X^T: [c, r]
      gemm<T>(dp, c, tr.data(), r, dwxp, r, 3 * r, c, r, false);
      transpose<T>(hp, r, c, tr.data());  // H^T
      gemm<T>(dp, c, tr.data(), r, dwhp, r, 2 * r, c, r, false);
    }
    transpose<T>(rh, r, c, tr.data());  // (g * H)^T
    gemm<T>(dph, c, tr.data(), r, dwh.data_ptr<T>() + 2 * r * r, r, r, c, r, false);
  });
  return {dx, dh, dwx, dwh, dpre};
}

}  // namespace
}  // namespace dyngraph_evolve

TORCH_LIBRARY_FRAGMENT(dyngraph, m) {
  m.def(
      "evolve_gcn_conv(Tensor x, Tensor w, Tensor diag, Tensor slot, Tensor rows, Tensor ptr, "
      "Tensor col, Tensor val) -> (Tensor, Tensor)");
  m.def(
      "evolve_gcn_conv_backward(Tensor grad, Tensor x, Tensor w, Tensor diag, Tensor slot, "
      "Tensor rows, Tensor ptr, Tensor col, Tensor val, Tensor z, bool need_x, bool need_w) -> "
      "(Tensor, Tensor)");
  m.def(
      "evolve_mat_gru(Tensor x, Tensor h, Tensor wx, Tensor wh, Tensor b, bool tied) -> "
      "(Tensor, Tensor)");
  m.def(
      "evolve_mat_gru_backward(Tensor grad, Tensor x, Tensor h, Tensor wx, Tensor wh, "
      "Tensor saved, bool tied) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(dyngraph, CPU, m) {
  m.impl("evolve_gcn_conv", &dyngraph_evolve::evolve_gcn_conv);
  m.impl("evolve_gcn_conv_backward", &dyngraph_evolve::evolve_gcn_conv_backward);
  m.impl("evolve_mat_gru", &dyngraph_evolve::evolve_mat_gru);
  m.impl("evolve_mat_gru_backward", &dyngraph_evolve::evolve_mat_gru_backward);
}
