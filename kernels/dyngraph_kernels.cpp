// Native CPU kernels for dyngraph.ops: CSR segment reductions, fused gather-aggregate,
// segment softmax and the cosine time encoding. Registered as torch custom ops in the
// namespace `dyngraph`; autograd formulas and fake (meta) kernels live in
// dyngraph/ops/_native.py. See kernels/README.md for how this file is built.
//
// Parallelism: at::parallel_for (torch's OpenMP pool, so torch.set_num_threads applies).
// Vectorisation: inner loops run along the contiguous feature axis under `omp simd` (as
// _Pragma, since many loops sit inside AT_DISPATCH macro arguments)
// (compiled with -fopenmp -O3 -march=native).
//
// Load balance: the CSR work is split into chunks of equal *edge* count, not equal row count,
// so a power-law graph (or a single huge segment) still keeps every thread busy. A segment
// that straddles a chunk boundary is reduced partly by its owner chunk (the one holding its
// first edge) and partly by the following chunks into a small scratch row; a serial pass
// merges these partial rows (at most one per chunk) at the end.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace dyngraph_native {
namespace {

constexpr int64_t kSum = 0, kMean = 1, kMax = 2, kMin = 3;
// Below this many scalar operations, run serially: opening a parallel region costs ~1 ms on
// a busy machine, more than the whole reduction.
// Tests lower it (set_parallel_threshold) so that tiny inputs exercise the chunked code paths.
int64_t kSerialWork = 1 << 16;

int64_t set_parallel_threshold(int64_t work) {
  int64_t old = kSerialWork;
  kSerialWork = std::max<int64_t>(work, 0);
  return old;
}

// ------------------------------------------------------------------------------ partition
struct Plan {
  const int64_t* ptr;
  int64_t S, E, n;
  std::vector<int64_t> eb;      // edge boundaries, n + 1
  std::vector<int64_t> sfirst;  // first segment owned by each chunk, n + 1

  Plan(const int64_t* p, int64_t S_, int64_t E_, int64_t work_per_edge)
      : ptr(p), S(S_), E(E_) {
    int64_t threads = at::get_num_threads();
    bool serial = threads <= 1 || E * std::max<int64_t>(work_per_edge, 1) < kSerialWork ||
                  at::in_parallel_region();
    n = serial ? 1 : std::min<int64_t>(threads * 4, std::max<int64_t>(E, 1));
    eb.resize(n + 1);
    sfirst.resize(n + 1);
    for (int64_t k = 0; k <= n; ++k) eb[k] = E * k / n;
    for (int64_t k = 0; k < n; ++k) sfirst[k] = std::lower_bound(ptr, ptr + S, eb[k]) - ptr;
    sfirst[n] = S;
    sfirst[0] = 0;
  }

  // Edge range [e0, e1) of segment s visited by chunk k; `prefix` marks the partial head of a
  // segment owned by an earlier chunk, `complete` an owned segment that ends inside chunk k.
  template <typename Fn>
  void visit(int64_t k, Fn&& fn) const {
    if (k > 0) {
      int64_t owned_start = sfirst[k] < S ? ptr[sfirst[k]] : E;
      int64_t pe = std::min(eb[k + 1], owned_start);
      if (eb[k] < pe) fn(sfirst[k] - 1, eb[k], pe, /*prefix=*/true, /*complete=*/false);
    }
    for (int64_t s = sfirst[k]; s < sfirst[k + 1]; ++s) {
      int64_t e1 = std::min(ptr[s + 1], eb[k + 1]);
      fn(s, ptr[s], e1, false, ptr[s + 1] <= eb[k + 1]);
    }
  }

  template <typename Fn>
  void run(Fn&& fn) const {  // fn(chunk)
    if (n == 1) {
      fn(0);
      return;
    }
    at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) fn(k);
    });
  }

  int64_t prefix_segment(int64_t k) const {  // -1 if chunk k has no prefix
    if (k == 0) return -1;
    int64_t owned_start = sfirst[k] < S ? ptr[sfirst[k]] : E;
    return eb[k] < std::min(eb[k + 1], owned_start) ? sfirst[k] - 1 : -1;
  }
};

// ------------------------------------------------------------------------------ row sources
template <typename scalar_t>
struct RowsSrc {  // row e of a contiguous [E, F] tensor
  static constexpr bool kWeighted = false;
  const scalar_t* base;
  int64_t F;
  inline const scalar_t* row(int64_t e) const { return base + e * F; }
  inline scalar_t w(int64_t) const { return scalar_t(1); }
  inline void prefetch(int64_t) const {}
};

template <typename scalar_t, typename idx_t, bool W>
struct GatherSrc {  // w[e] * x[col[e]]
  static constexpr bool kWeighted = W;
  const scalar_t* x;
  const idx_t* col;
  const scalar_t* wv;
  int64_t F, E;
  inline const scalar_t* row(int64_t e) const { return x + static_cast<int64_t>(col[e]) * F; }
  inline scalar_t w(int64_t e) const {
    if constexpr (W) return wv[e];
    return scalar_t(1);
  }
  inline void prefetch(int64_t e) const {
    // x rows are read in random order: fetch a few edges ahead to hide the miss latency.
    if (e < E) {
      const char* p = reinterpret_cast<const char*>(row(e));
      int64_t bytes = F * static_cast<int64_t>(sizeof(scalar_t));
      for (int64_t o = 0; o < bytes && o < 1024; o += 64) __builtin_prefetch(p + o, 0, 1);
    }
  }
};

constexpr int64_t kAhead = 16;

template <typename scalar_t>
inline bool better(int64_t red, scalar_t v, scalar_t cur) {
  // max/min propagating NaN (the first NaN wins), ties keep the earlier edge
  bool nan_v = v != v, nan_c = cur != cur;
  return red == kMax ? (v > cur || (nan_v && !nan_c)) : (v < cur || (nan_v && !nan_c));
}

// 64-byte vectors through GCC/Clang vector extensions: explicit enough that the accumulators
// of a block stay in registers across the edge loop (the `omp simd` formulation of the sum
// was left as a load-add-store chain by GCC and ran 2.4x slower than this).
template <typename T>
struct V64 {
  static constexpr int L = 64 / sizeof(T);
  typedef T type __attribute__((vector_size(64)));
  static inline type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static inline void store(T* p, type v) { std::memcpy(p, &v, sizeof(v)); }
};

// Reduce edges [e0, e1) (non-empty) for the feature columns [f0, f0 + BW) into out/a. BW is a
// compile-time width, so the accumulators live in vector registers for the whole edge loop.
template <typename scalar_t, typename Src, bool WithArg, int BW>
inline void reduce_block(const Src& src, int64_t red, int64_t e0, int64_t e1, int64_t f0,
                         scalar_t* __restrict out, int64_t* __restrict a) {
  using VT = V64<scalar_t>;
  using vec = typename VT::type;
  constexpr int L = VT::L;
  if constexpr (!WithArg && BW % L == 0) {
    constexpr int NV = BW / L;
    vec acc[NV];
    {
      const scalar_t* r = src.row(e0) + f0;
      const scalar_t w = src.w(e0);
      for (int v = 0; v < NV; ++v) acc[v] = Src::kWeighted ? VT::load(r + v * L) * w
                                                          : VT::load(r + v * L);
    }
    if (red == kSum || red == kMean) {
      for (int64_t e = e0 + 1; e < e1; ++e) {
        if (f0 == 0) src.prefetch(e + kAhead);
        const scalar_t* r = src.row(e) + f0;
        if constexpr (Src::kWeighted) {
          const scalar_t w = src.w(e);
          for (int v = 0; v < NV; ++v) acc[v] += VT::load(r + v * L) * w;
        } else {
          for (int v = 0; v < NV; ++v) acc[v] += VT::load(r + v * L);
        }
      }
    } else if (red == kMax) {
      for (int64_t e = e0 + 1; e < e1; ++e) {
        if (f0 == 0) src.prefetch(e + kAhead);
        const scalar_t* r = src.row(e) + f0;
        const scalar_t w = src.w(e);
        for (int v = 0; v < NV; ++v) {
          vec x = Src::kWeighted ? VT::load(r + v * L) * w : VT::load(r + v * L);
          acc[v] = ((x > acc[v]) | (x != x)) ? x : acc[v];  // a NaN sticks once taken
        }
      }
    } else {
      for (int64_t e = e0 + 1; e < e1; ++e) {
        if (f0 == 0) src.prefetch(e + kAhead);
        const scalar_t* r = src.row(e) + f0;
        const scalar_t w = src.w(e);
        for (int v = 0; v < NV; ++v) {
          vec x = Src::kWeighted ? VT::load(r + v * L) * w : VT::load(r + v * L);
          acc[v] = ((x < acc[v]) | (x != x)) ? x : acc[v];
        }
      }
    }
    for (int v = 0; v < NV; ++v) VT::store(out + f0 + v * L, acc[v]);
    return;
  }
  scalar_t acc[BW];
  int64_t ar[WithArg ? BW : 1];
  {
    const scalar_t* __restrict r = src.row(e0) + f0;
    const scalar_t w = src.w(e0);
    _Pragma("omp simd")
    for (int f = 0; f < BW; ++f) acc[f] = Src::kWeighted ? w * r[f] : r[f];
    if constexpr (WithArg) for (int f = 0; f < BW; ++f) ar[f] = e0;
  }
  if (red == kSum || red == kMean) {
    for (int64_t e = e0 + 1; e < e1; ++e) {
      if (f0 == 0) src.prefetch(e + kAhead);
      const scalar_t* __restrict r = src.row(e) + f0;
      const scalar_t w = src.w(e);
      _Pragma("omp simd")
      for (int f = 0; f < BW; ++f) acc[f] += Src::kWeighted ? w * r[f] : r[f];
    }
  } else {
    const bool is_max = red == kMax;
    for (int64_t e = e0 + 1; e < e1; ++e) {
      if (f0 == 0) src.prefetch(e + kAhead);
      const scalar_t* __restrict r = src.row(e) + f0;
      const scalar_t w = src.w(e);
      _Pragma("omp simd")
      for (int f = 0; f < BW; ++f) {
        scalar_t v = Src::kWeighted ? w * r[f] : r[f];
        scalar_t c = acc[f];
        bool take = (is_max ? v > c : v < c) || (v != v && c == c);
        acc[f] = take ? v : c;
        if constexpr (WithArg) ar[f] = take ? e : ar[f];
      }
    }
  }
  for (int f = 0; f < BW; ++f) out[f0 + f] = acc[f];
  if constexpr (WithArg) for (int f = 0; f < BW; ++f) a[f0 + f] = ar[f];
}

// Reduce edges [e0, e1) into acc (F values) and, for max/min with arg, into a (F positions).
// The feature axis is cut into compile-time blocks (e.g. F = 100 -> 64 + 32 + 4).
template <typename scalar_t, typename Src, bool WithArg>
void reduce_range(const Src& src, int64_t red, int64_t e0, int64_t e1, int64_t F, int64_t E,
                  scalar_t* __restrict acc, int64_t* __restrict a) {
  if (e0 >= e1) {
    for (int64_t f = 0; f < F; ++f) acc[f] = scalar_t(0);
    if constexpr (WithArg) for (int64_t f = 0; f < F; ++f) a[f] = E;
    return;
  }
  for (int64_t e = e0; e < std::min(e1, e0 + kAhead); ++e) src.prefetch(e);
  constexpr int kMaxW = 512 / sizeof(scalar_t);  // 8 zmm / 16 ymm registers of accumulators
  int64_t f0 = 0;
  while (f0 < F) {
    const int64_t rem = F - f0;
    if (rem >= kMaxW) {
      reduce_block<scalar_t, Src, WithArg, kMaxW>(src, red, e0, e1, f0, acc, a);
      f0 += kMaxW;
    } else if (rem >= kMaxW / 2) {
      reduce_block<scalar_t, Src, WithArg, kMaxW / 2>(src, red, e0, e1, f0, acc, a);
      f0 += kMaxW / 2;
    } else if (rem >= 16) {
      reduce_block<scalar_t, Src, WithArg, 16>(src, red, e0, e1, f0, acc, a);
      f0 += 16;
    } else if (rem >= 8) {
      reduce_block<scalar_t, Src, WithArg, 8>(src, red, e0, e1, f0, acc, a);
      f0 += 8;
    } else if (rem >= 4) {
      reduce_block<scalar_t, Src, WithArg, 4>(src, red, e0, e1, f0, acc, a);
      f0 += 4;
    } else if (rem >= 2) {
      reduce_block<scalar_t, Src, WithArg, 2>(src, red, e0, e1, f0, acc, a);
      f0 += 2;
    } else {
      reduce_block<scalar_t, Src, WithArg, 1>(src, red, e0, e1, f0, acc, a);
      f0 += 1;
    }
  }
}

// Merge a later partial (p, pa) into an earlier one (acc, a).
template <typename scalar_t, bool WithArg>
void merge_partial(int64_t red, int64_t F, scalar_t* acc, int64_t* a, const scalar_t* p,
                   const int64_t* pa) {
  if (red == kSum || red == kMean) {
    for (int64_t f = 0; f < F; ++f) acc[f] += p[f];
    return;
  }
  for (int64_t f = 0; f < F; ++f) {
    if (better(red, p[f], acc[f])) {
      acc[f] = p[f];
      if constexpr (WithArg) a[f] = pa[f];
    }
  }
}

template <typename scalar_t, typename Src, bool WithArg>
void csr_reduce(const Src& src, const Plan& plan, int64_t red, int64_t F, scalar_t* out,
                int64_t* arg) {
  const int64_t n = plan.n, E = plan.E;
  std::vector<scalar_t> scratch(static_cast<size_t>(n * F));
  std::vector<int64_t> ascratch(WithArg ? static_cast<size_t>(n * F) : 0);
  const int64_t* ptr = plan.ptr;
  plan.run([&](int64_t k) {
    plan.visit(k, [&](int64_t s, int64_t e0, int64_t e1, bool prefix, bool complete) {
      scalar_t* acc = prefix ? scratch.data() + k * F : out + s * F;
      int64_t* a = nullptr;
      if constexpr (WithArg) a = prefix ? ascratch.data() + k * F : arg + s * F;
      reduce_range<scalar_t, Src, WithArg>(src, red, e0, e1, F, E, acc, a);
      if (red == kMean && complete && e1 > e0) {
        const scalar_t inv = scalar_t(1) / scalar_t(e1 - e0);
_Pragma("omp simd")
        for (int64_t f = 0; f < F; ++f) acc[f] *= inv;
      }
    });
  });
  for (int64_t k = 1; k < n; ++k) {
    int64_t p = plan.prefix_segment(k);
    if (p < 0) continue;
    merge_partial<scalar_t, WithArg>(red, F, out + p * F, WithArg ? arg + p * F : nullptr,
                                     scratch.data() + k * F,
                                     WithArg ? ascratch.data() + k * F : nullptr);
  }
  if (red == kMean) {  // spilled segments were left as sums
    int64_t last = -1;
    for (int64_t k = 1; k < n; ++k) {
      int64_t p = plan.prefix_segment(k);
      if (p < 0 || p == last) continue;
      last = p;
      const scalar_t inv = scalar_t(1) / scalar_t(ptr[p + 1] - ptr[p]);
      for (int64_t f = 0; f < F; ++f) out[p * F + f] *= inv;
    }
  }
}

void check_ptr_arg(const at::Tensor& ptr) {
  TORCH_CHECK(ptr.dim() == 1 && ptr.numel() >= 1, "ptr must be 1-D with S+1 >= 1 entries");
  TORCH_CHECK(ptr.scalar_type() == at::kLong, "ptr must be int64");
  TORCH_CHECK(ptr.is_contiguous(), "ptr must be contiguous");
}

void check_red(int64_t red) {
  TORCH_CHECK(red >= kSum && red <= kMin, "reduce code must be 0..3 (sum, mean, max, min)");
}

// Output [S, F] of a CSR reduction and, for max/min when asked, its winner indices ([0] else).
std::tuple<at::Tensor, at::Tensor, bool> alloc_reduce_out(int64_t S, int64_t F,
                                                          const at::TensorOptions& opt,
                                                          int64_t red, bool need_arg) {
  const bool with_arg = need_arg && red >= kMax;
  at::Tensor arg = at::empty(with_arg ? at::IntArrayRef{S, F} : at::IntArrayRef{0},
                             opt.dtype(at::kLong));
  return {at::empty({S, F}, opt), arg, with_arg};
}

// ------------------------------------------------------------------------------ segment
std::tuple<at::Tensor, at::Tensor> segment_reduce(const at::Tensor& src_, const at::Tensor& ptr,
                                                  int64_t red, bool need_arg) {
  check_ptr_arg(ptr);
  check_red(red);
  TORCH_CHECK(src_.dim() == 2, "segment_reduce: src must be 2-D [E, F]");
  at::Tensor src = src_.contiguous();
  const int64_t E = src.size(0), F = src.size(1), S = ptr.numel() - 1;
  const int64_t* p = ptr.data_ptr<int64_t>();
  TORCH_CHECK(p[0] == 0 && p[S] == E, "segment_reduce: ptr must run from 0 to src.size(0)");
  at::Tensor out, arg;
  bool with_arg;  // not a structured binding: lambdas below capture these (C++17)
  std::tie(out, arg, with_arg) = alloc_reduce_out(S, F, src.options(), red, need_arg);
  if (F == 0 || S == 0) return {out, arg};
  Plan plan(p, S, E, F);
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "segment_reduce", [&] {
    RowsSrc<scalar_t> rs{src.data_ptr<scalar_t>(), F};
    if (with_arg)
      csr_reduce<scalar_t, RowsSrc<scalar_t>, true>(rs, plan, red, F, out.data_ptr<scalar_t>(),
                                                    arg.data_ptr<int64_t>());
    else
      csr_reduce<scalar_t, RowsSrc<scalar_t>, false>(rs, plan, red, F, out.data_ptr<scalar_t>(),
                                                     nullptr);
  });
  return {out, arg};
}

// Adjoint of segment_reduce w.r.t. src: sum/mean broadcast the segment gradient to its rows
// (scaled by 1/count for mean); max/min route it to the recorded winner row.
at::Tensor segment_backward(const at::Tensor& grad_, const at::Tensor& ptr,
                            const at::Tensor& arg_, int64_t red, int64_t num_rows) {
  check_ptr_arg(ptr);
  check_red(red);
  at::Tensor grad = grad_.contiguous();
  const int64_t S = ptr.numel() - 1, F = grad.size(1), E = num_rows;
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == S, "segment_backward: grad must be [S, F]");
  at::Tensor out = at::empty({E, F}, grad.options());
  if (E == 0 || F == 0) return out;
  at::Tensor arg = arg_.contiguous();
  if (red >= kMax) TORCH_CHECK(arg.sizes() == grad.sizes(), "segment_backward: arg must be [S, F]");
  const int64_t* p = ptr.data_ptr<int64_t>();
  Plan plan(p, S, E, F);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "segment_backward", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t* a = red >= kMax ? arg.data_ptr<int64_t>() : nullptr;
    plan.run([&](int64_t k) {
      plan.visit(k, [&](int64_t s, int64_t e0, int64_t e1, bool, bool) {
        const scalar_t* __restrict gs = g + s * F;
        if (red >= kMax) {
          const int64_t* __restrict as = a + s * F;
          for (int64_t e = e0; e < e1; ++e) {
            scalar_t* __restrict oe = o + e * F;
_Pragma("omp simd")
            for (int64_t f = 0; f < F; ++f) oe[f] = as[f] == e ? gs[f] : scalar_t(0);
          }
          return;
        }
        const scalar_t scale =
            red == kMean ? scalar_t(1) / scalar_t(std::max<int64_t>(p[s + 1] - p[s], 1))
                         : scalar_t(1);
        for (int64_t e = e0; e < e1; ++e) {
          scalar_t* __restrict oe = o + e * F;
_Pragma("omp simd")
          for (int64_t f = 0; f < F; ++f) oe[f] = gs[f] * scale;
        }
      });
    });
  });
  return out;
}

// ------------------------------------------------------------------------------ gather-aggregate
std::tuple<at::Tensor, at::Tensor> csr_aggregate(const at::Tensor& x_, const at::Tensor& ptr,
                                                 const at::Tensor& col_,
                                                 const c10::optional<at::Tensor>& weight,
                                                 int64_t red, bool need_arg,
                                                 at::TensorList /*transpose: for autograd*/) {
  check_ptr_arg(ptr);
  check_red(red);
  TORCH_CHECK(x_.dim() == 2, "csr_aggregate: x must be 2-D [N, F]");
  at::Tensor x = x_.contiguous();
  at::Tensor col = col_.contiguous();
  const int64_t S = ptr.numel() - 1, F = x.size(1), E = col.numel();
  const int64_t* p = ptr.data_ptr<int64_t>();
  TORCH_CHECK(p[0] == 0 && p[S] == E, "csr_aggregate: ptr must run from 0 to col.numel()");
  at::Tensor out, arg;
  bool with_arg;  // not a structured binding: lambdas below capture these (C++17)
  std::tie(out, arg, with_arg) = alloc_reduce_out(S, F, x.options(), red, need_arg);
  if (F == 0 || S == 0) return {out, arg};
  at::Tensor w;
  if (weight.has_value() && weight->defined()) {
    w = weight->contiguous();
    TORCH_CHECK(w.numel() == E && w.scalar_type() == x.scalar_type(),
                "csr_aggregate: weight must be [E] of x's dtype");
  }
  Plan plan(p, S, E, F);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "csr_aggregate", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "csr_aggregate_idx", [&] {
      scalar_t* o = out.data_ptr<scalar_t>();
      int64_t* a = with_arg ? arg.data_ptr<int64_t>() : nullptr;
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const index_t* cp = col.data_ptr<index_t>();
      auto go = [&](auto src) {
        using Src = decltype(src);
        if (with_arg)
          csr_reduce<scalar_t, Src, true>(src, plan, red, F, o, a);
        else
          csr_reduce<scalar_t, Src, false>(src, plan, red, F, o, nullptr);
      };
      if (w.defined())
        go(GatherSrc<scalar_t, index_t, true>{xp, cp, w.data_ptr<scalar_t>(), F, E});
      else
        go(GatherSrc<scalar_t, index_t, false>{xp, cp, nullptr, F, E});
    });
  });
  return {out, arg};
}

// Horizontal sum of a 64-byte vector as a tree of halvings: `for (i) s += v[i]` is a serial
// chain of 16 dependent adds (IEEE order), which made the per-edge dot products of the edge
// weight gradient ~4x slower than the row gathers they follow.
template <typename scalar_t>
inline scalar_t hsum(typename V64<scalar_t>::type v) {
  typedef scalar_t h32 __attribute__((vector_size(32)));
  typedef scalar_t h16 __attribute__((vector_size(16)));
  h32 a, b;
  std::memcpy(&a, &v, 32);
  std::memcpy(&b, reinterpret_cast<const char*>(&v) + 32, 32);
  a += b;
  h16 c, d;
  std::memcpy(&c, &a, 16);
  std::memcpy(&d, reinterpret_cast<const char*>(&a) + 16, 16);
  c += d;
  if constexpr (sizeof(scalar_t) == 4) return (c[0] + c[2]) + (c[1] + c[3]);
  return c[0] + c[1];
}

template <typename scalar_t>
inline scalar_t dot(const scalar_t* __restrict a, const scalar_t* __restrict b, int64_t F) {
  using VT = V64<scalar_t>;
  constexpr int L = VT::L;
  typename VT::type acc0 = {}, acc1 = {};
  int64_t f = 0;
  for (; f + 2 * L <= F; f += 2 * L) {
    acc0 += VT::load(a + f) * VT::load(b + f);
    acc1 += VT::load(a + f + L) * VT::load(b + f + L);
  }
  for (; f + L <= F; f += L) acc0 += VT::load(a + f) * VT::load(b + f);
  acc0 += acc1;
  scalar_t s = hsum<scalar_t>(acc0);
  for (; f < F; ++f) s += a[f] * b[f];
  return s;
}

// v[e] = <a[row_e], b[col_e]> for every edge in CSR order.
at::Tensor csr_edge_dot(const at::Tensor& a_, const at::Tensor& b_, const at::Tensor& ptr,
                        const at::Tensor& col_, at::TensorList /*transpose: for autograd*/) {
  check_ptr_arg(ptr);
  at::Tensor a = a_.contiguous(), b = b_.contiguous(), col = col_.contiguous();
  const int64_t S = ptr.numel() - 1, F = a.size(1), E = col.numel();
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && b.size(1) == F && a.size(0) == S,
              "csr_edge_dot: a must be [S, F] and b [N, F]");
  at::Tensor out = at::empty({E}, a.options());
  if (E == 0) return out;
  const int64_t* p = ptr.data_ptr<int64_t>();
  Plan plan(p, S, E, std::max<int64_t>(F, 1));
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "csr_edge_dot", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "csr_edge_dot_idx", [&] {
      const scalar_t* ap = a.data_ptr<scalar_t>();
      GatherSrc<scalar_t, index_t, false> bs{b.data_ptr<scalar_t>(), col.data_ptr<index_t>(),
                                             nullptr, F, E};
      scalar_t* o = out.data_ptr<scalar_t>();
      plan.run([&](int64_t k) {
        plan.visit(k, [&](int64_t s, int64_t e0, int64_t e1, bool, bool) {
          const scalar_t* __restrict as = ap + s * F;
          for (int64_t e = e0; e < std::min(e1, e0 + kAhead); ++e) bs.prefetch(e);
          for (int64_t e = e0; e < e1; ++e) {
            bs.prefetch(e + kAhead);
            o[e] = dot(as, bs.row(e), F);
          }
        });
      });
    });
  });
  return out;
}

// ------------------------------------------------------------------------------ fused backward
// Backward of the sum aggregation out[i] = sum_{e: j -> i} w_e x[j] in ONE pass over the
// transposed graph (rows = source nodes j, columns = targets i):
//   gx[j] = sum_e w_e g[i_e]          and          gw_e = <g[i_e], x[j]>.
// Both read the same randomly placed rows g[i_e], so fusing them halves the random-gather
// traffic of the unfused formulation (aggregate over the transpose, then a separate edge-dot
// pass that gathers x[col_e] again). w and gw stay in forward-CSR order and are reached
// through t_index (transposed position -> CSR position), so no permuted [E] copies are made.
template <typename scalar_t, typename idx_t, bool W, bool NX, bool NW, int BW>
inline void agg_bwd_block(const scalar_t* __restrict g, const idx_t* __restrict col,
                          const scalar_t* __restrict w, const int64_t* __restrict tix,
                          const scalar_t* __restrict xj, int64_t e0, int64_t e1, int64_t f0,
                          int64_t F, scalar_t* __restrict out, scalar_t* __restrict gw) {
  using VT = V64<scalar_t>;
  using vec = typename VT::type;
  constexpr int L = VT::L;
  const bool first = f0 == 0;  // the first feature block writes gw, later ones add to it
  auto prefetch = [&](int64_t e) {
    if (e < e1) {
      const char* p = reinterpret_cast<const char*>(g + static_cast<int64_t>(col[e]) * F);
      const int64_t bytes = F * static_cast<int64_t>(sizeof(scalar_t));
      for (int64_t o = 0; o < bytes && o < 1024; o += 64) __builtin_prefetch(p + o, 0, 1);
      // w[t] and gw[t] sit at random CSR positions too: without these two prefetches their
      // demand misses made this pass ~5x slower than the forward aggregation
      if constexpr (W || NW) {
        const int64_t t = tix[e];
        if constexpr (W) __builtin_prefetch(w + t, 0, 1);
        if constexpr (NW) __builtin_prefetch(gw + t, 1, 1);
      }
    }
  };
  if (first)
    for (int64_t e = e0; e < std::min(e1, e0 + kAhead); ++e) prefetch(e);
  if constexpr (BW % L == 0) {
    constexpr int NV = BW / L;
    vec acc[NV], xv[NV];
    for (int v = 0; v < NV; ++v) {
      acc[v] = vec{};
      if constexpr (NW) xv[v] = VT::load(xj + f0 + v * L);
    }
    for (int64_t e = e0; e < e1; ++e) {
      if (first) prefetch(e + kAhead);
      const scalar_t* r = g + static_cast<int64_t>(col[e]) * F + f0;
      const int64_t t = (W || NW) ? tix[e] : 0;
      vec d = {};
      if constexpr (W) {
        const scalar_t we = w[t];
        for (int v = 0; v < NV; ++v) {
          vec rv = VT::load(r + v * L);
          if constexpr (NX) acc[v] += rv * we;
          if constexpr (NW) d += rv * xv[v];
        }
      } else {
        for (int v = 0; v < NV; ++v) {
          vec rv = VT::load(r + v * L);
          if constexpr (NX) acc[v] += rv;
          if constexpr (NW) d += rv * xv[v];
        }
      }
      if constexpr (NW) {
        const scalar_t s = hsum<scalar_t>(d);
        gw[t] = first ? s : gw[t] + s;
      }
    }
    if constexpr (NX)
      for (int v = 0; v < NV; ++v) VT::store(out + f0 + v * L, acc[v]);
  } else {
    scalar_t acc[BW];
    for (int f = 0; f < BW; ++f) acc[f] = scalar_t(0);
    for (int64_t e = e0; e < e1; ++e) {
      if (first) prefetch(e + kAhead);
      const scalar_t* __restrict r = g + static_cast<int64_t>(col[e]) * F + f0;
      const int64_t t = (W || NW) ? tix[e] : 0;
      const scalar_t we = W ? w[t] : scalar_t(1);
      scalar_t s = 0;
      _Pragma("omp simd reduction(+ : s)")
      for (int f = 0; f < BW; ++f) {
        if constexpr (NX) acc[f] += we * r[f];
        if constexpr (NW) s += r[f] * xj[f0 + f];
      }
      if constexpr (NW) gw[t] = first ? s : gw[t] + s;
    }
    if constexpr (NX)
      for (int f = 0; f < BW; ++f) out[f0 + f] = acc[f];
  }
}

template <typename scalar_t, typename idx_t, bool W, bool NX, bool NW>
void agg_bwd_range(const scalar_t* g, const idx_t* col, const scalar_t* w, const int64_t* tix,
                   const scalar_t* xj, int64_t e0, int64_t e1, int64_t F, scalar_t* out,
                   scalar_t* gw) {
  constexpr int kMaxW = 512 / sizeof(scalar_t);
  int64_t f0 = 0;
  while (f0 < F) {
    const int64_t rem = F - f0;
#define DG_BWD_BLOCK(B)                                                                     \
  {                                                                                         \
    agg_bwd_block<scalar_t, idx_t, W, NX, NW, (B)>(g, col, w, tix, xj, e0, e1, f0, F, out, \
                                                   gw);                                     \
    f0 += (B);                                                                              \
    continue;                                                                               \
  }
    if (rem >= kMaxW) DG_BWD_BLOCK(kMaxW)
    if (rem >= kMaxW / 2) DG_BWD_BLOCK(kMaxW / 2)
    if (rem >= 16) DG_BWD_BLOCK(16)
    if (rem >= 8) DG_BWD_BLOCK(8)
    if (rem >= 4) DG_BWD_BLOCK(4)
    if (rem >= 2) DG_BWD_BLOCK(2)
    DG_BWD_BLOCK(1)
#undef DG_BWD_BLOCK
  }
}

// grad [S, F] (gradient of the forward output), x [N, F], the transposed graph (ptr_t [N+1],
// col_t [E] = target of each edge), weight [E] in forward-CSR order (or none), t_index [E].
// Returns (gx [N, F] or empty, gw [E] in forward-CSR order or empty).
std::tuple<at::Tensor, at::Tensor> csr_aggregate_backward(
    const at::Tensor& grad_, const at::Tensor& x_, const at::Tensor& ptr_t,
    const at::Tensor& col_t_, const c10::optional<at::Tensor>& weight, const at::Tensor& t_index_,
    bool need_x, bool need_w) {
  check_ptr_arg(ptr_t);
  at::Tensor grad = grad_.contiguous(), x = x_.contiguous(), col = col_t_.contiguous();
  at::Tensor tix = t_index_.to(at::kLong).contiguous();
  TORCH_CHECK(grad.dim() == 2 && x.dim() == 2 && grad.size(1) == x.size(1),
              "csr_aggregate_backward: grad must be [S, F] and x [N, F]");
  const int64_t N = ptr_t.numel() - 1, F = grad.size(1), E = col.numel();
  TORCH_CHECK(x.size(0) == N, "csr_aggregate_backward: x must have ptr_t.numel() - 1 rows");
  TORCH_CHECK(tix.numel() == E, "csr_aggregate_backward: t_index must be [E]");
  const int64_t* p = ptr_t.data_ptr<int64_t>();
  TORCH_CHECK(p[0] == 0 && p[N] == E, "csr_aggregate_backward: ptr_t must run from 0 to E");
  at::Tensor w;
  if (weight.has_value() && weight->defined()) {
    w = weight->contiguous();
    TORCH_CHECK(w.numel() == E && w.scalar_type() == x.scalar_type(),
                "csr_aggregate_backward: weight must be [E] of x's dtype");
  }
  need_w = need_w && E > 0;
  at::Tensor gx = need_x ? at::empty({N, F}, x.options()) : at::empty({0}, x.options());
  at::Tensor gw = need_w ? at::empty({E}, x.options()) : at::empty({0}, x.options());
  if (need_w && F == 0) gw.zero_();
  if (N == 0 || F == 0 || (!need_x && !need_w)) return {gx, gw};
  Plan plan(p, N, E, 2 * F);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "csr_aggregate_backward", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "csr_aggregate_backward_idx", [&] {
      const scalar_t* gp = grad.data_ptr<scalar_t>();
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const index_t* cp = col.data_ptr<index_t>();
      const int64_t* tp = tix.data_ptr<int64_t>();
      const scalar_t* wp = w.defined() ? w.data_ptr<scalar_t>() : nullptr;
      scalar_t* gxp = need_x ? gx.data_ptr<scalar_t>() : nullptr;
      scalar_t* gwp = need_w ? gw.data_ptr<scalar_t>() : nullptr;
      std::vector<scalar_t> scratch(need_x ? static_cast<size_t>(plan.n * F) : 0);
      auto go = [&](auto wt, auto nx, auto nw) {
        constexpr bool kW = decltype(wt)::value, kX = decltype(nx)::value,
                       kWg = decltype(nw)::value;
        plan.run([&](int64_t k) {
          plan.visit(k, [&](int64_t s, int64_t e0, int64_t e1, bool prefix, bool) {
            scalar_t* out = nullptr;
            if constexpr (kX) out = prefix ? scratch.data() + k * F : gxp + s * F;
            agg_bwd_range<scalar_t, index_t, kW, kX, kWg>(gp, cp, wp, tp, xp + s * F, e0, e1,
                                                         F, out, gwp);
          });
        });
      };
      using T = std::true_type;
      using Fa = std::false_type;
      if (wp) {
        if (need_x && need_w) go(T{}, T{}, T{});
        else if (need_x) go(T{}, T{}, Fa{});
        else go(T{}, Fa{}, T{});
      } else {
        if (need_x && need_w) go(Fa{}, T{}, T{});
        else if (need_x) go(Fa{}, T{}, Fa{});
        else go(Fa{}, Fa{}, T{});
      }
      if (need_x)
        for (int64_t k = 1; k < plan.n; ++k) {
          const int64_t s = plan.prefix_segment(k);
          if (s < 0) continue;
          const scalar_t* part = scratch.data() + k * F;
          scalar_t* o = gxp + s * F;
          for (int64_t f = 0; f < F; ++f) o[f] += part[f];
        }
    });
  });
  return {gx, gw};
}

// Backward of csr_aggregate max/min: every output entry routes its gradient to the winning
// edge (arg == E: empty row, nothing).
std::tuple<at::Tensor, at::Tensor> csr_arg_backward(const at::Tensor& grad_, const at::Tensor& x_,
                                                    const at::Tensor& col_,
                                                    const c10::optional<at::Tensor>& weight,
                                                    const at::Tensor& arg_, bool need_x,
                                                    bool need_w) {
  at::Tensor grad = grad_.contiguous(), x = x_.contiguous(), col = col_.contiguous();
  at::Tensor arg = arg_.contiguous();
  const int64_t S = grad.size(0), F = grad.size(1), E = col.numel(), N = x.size(0);
  TORCH_CHECK(arg.sizes() == grad.sizes(), "csr_arg_backward: arg must be [S, F]");
  at::Tensor gx = need_x ? at::zeros({N, F}, x.options()) : at::empty({0}, x.options());
  at::Tensor gw = need_w ? at::zeros({E}, x.options()) : at::empty({0}, x.options());
  at::Tensor w;
  if (weight.has_value() && weight->defined()) w = weight->contiguous();
  if (S == 0 || F == 0 || E == 0) return {gx, gw};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "csr_arg_backward", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "csr_arg_backward_idx", [&] {
      const scalar_t* g = grad.data_ptr<scalar_t>();
      const int64_t* a = arg.data_ptr<int64_t>();
      const index_t* c = col.data_ptr<index_t>();
      const scalar_t* wp = w.defined() ? w.data_ptr<scalar_t>() : nullptr;
      if (need_x) {
        // Different rows may share a source node, so split the work along features: blocks
        // of 16 columns (one cache line of float32) never collide.
        scalar_t* o = gx.data_ptr<scalar_t>();
        const int64_t blk = 16, nb = (F + blk - 1) / blk;
        auto body = [&](int64_t b0, int64_t b1) {
          for (int64_t s = 0; s < S; ++s)
            for (int64_t f = b0 * blk; f < std::min(F, b1 * blk); ++f) {
              int64_t e = a[s * F + f];
              if (e < E) o[static_cast<int64_t>(c[e]) * F + f] += (wp ? wp[e] : 1) * g[s * F + f];
            }
        };
        if (S * F < kSerialWork || nb == 1) body(0, nb);
        else at::parallel_for(0, nb, 1, body);
      }
      if (need_w) {
        scalar_t* o = gw.data_ptr<scalar_t>();
        const scalar_t* xp = x.data_ptr<scalar_t>();
        auto body = [&](int64_t s0, int64_t s1) {
          for (int64_t s = s0; s < s1; ++s)
            for (int64_t f = 0; f < F; ++f) {
              int64_t e = a[s * F + f];
              if (e < E) o[e] += g[s * F + f] * xp[static_cast<int64_t>(c[e]) * F + f];
            }
        };
        at::parallel_for(0, S, std::max<int64_t>(1, kSerialWork / F), body);
      }
    });
  });
  return {gx, gw};
}

// ------------------------------------------------------------------------------ softmax
// Softmax / log-softmax of src [E, H] within each CSR segment (column-wise). A segment is
// handled whole by the chunk owning its first edge (three passes over it while it is hot).
at::Tensor segment_softmax(const at::Tensor& src_, const at::Tensor& ptr, bool log) {
  check_ptr_arg(ptr);
  at::Tensor src = src_.contiguous();
  TORCH_CHECK(src.dim() == 2, "segment_softmax: src must be 2-D [E, H]");
  const int64_t E = src.size(0), H = src.size(1), S = ptr.numel() - 1;
  const int64_t* p = ptr.data_ptr<int64_t>();
  TORCH_CHECK(p[0] == 0 && p[S] == E, "segment_softmax: ptr must run from 0 to src.size(0)");
  at::Tensor out = at::empty_like(src);
  if (E == 0 || H == 0) return out;
  Plan plan(p, S, E, 4 * H);
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "segment_softmax", [&] {
    const scalar_t* x = src.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    plan.run([&](int64_t k) {
      std::vector<scalar_t> mx(H), sum(H);
      for (int64_t s = plan.sfirst[k]; s < plan.sfirst[k + 1]; ++s) {
        const int64_t e0 = p[s], e1 = p[s + 1];
        if (e0 == e1) continue;
        for (int64_t h = 0; h < H; ++h) mx[h] = x[e0 * H + h], sum[h] = 0;
        for (int64_t e = e0 + 1; e < e1; ++e)
          for (int64_t h = 0; h < H; ++h) mx[h] = std::max(mx[h], x[e * H + h]);
        for (int64_t e = e0; e < e1; ++e)
          for (int64_t h = 0; h < H; ++h) {
            scalar_t z = x[e * H + h] - mx[h];
            scalar_t ez = std::exp(z);
            sum[h] += ez;
            o[e * H + h] = log ? z : ez;
          }
        for (int64_t h = 0; h < H; ++h) sum[h] = log ? std::log(sum[h]) : scalar_t(1) / sum[h];
        for (int64_t e = e0; e < e1; ++e)
          for (int64_t h = 0; h < H; ++h) {
            if (log) o[e * H + h] -= sum[h];
            else o[e * H + h] *= sum[h];
          }
      }
    });
  });
  return out;
}

// grad_src = y * (g - sum_seg(g * y)) (softmax) or g - exp(y) * sum_seg(g) (log-softmax).
at::Tensor segment_softmax_backward(const at::Tensor& grad_, const at::Tensor& out_,
                                    const at::Tensor& ptr, bool log) {
  check_ptr_arg(ptr);
  at::Tensor grad = grad_.contiguous(), y = out_.contiguous();
  const int64_t E = y.size(0), H = y.size(1), S = ptr.numel() - 1;
  const int64_t* p = ptr.data_ptr<int64_t>();
  at::Tensor gin = at::empty_like(y);
  if (E == 0 || H == 0) return gin;
  Plan plan(p, S, E, 3 * H);
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "segment_softmax_backward", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* o = gin.data_ptr<scalar_t>();
    plan.run([&](int64_t k) {
      std::vector<scalar_t> tot(H);
      for (int64_t s = plan.sfirst[k]; s < plan.sfirst[k + 1]; ++s) {
        const int64_t e0 = p[s], e1 = p[s + 1];
        std::fill(tot.begin(), tot.end(), scalar_t(0));
        for (int64_t e = e0; e < e1; ++e)
          for (int64_t h = 0; h < H; ++h) tot[h] += log ? g[e * H + h] : g[e * H + h] * yp[e * H + h];
        for (int64_t e = e0; e < e1; ++e)
          for (int64_t h = 0; h < H; ++h) {
            const int64_t i = e * H + h;
            o[i] = log ? g[i] - std::exp(yp[i]) * tot[h] : yp[i] * (g[i] - tot[h]);
          }
      }
    });
  });
  return gin;
}

// ------------------------------------------------------------------------------ time encoding
// phi[i, j] = cos(dt[i] * w[j] + b[j]) for dt [M], w, b [T]; dt is cast to w's dtype first,
// exactly as dyngraph.nn.memory.TimeEncoder does (callers take differences of float64
// timestamps before casting).
at::Tensor time_encode(const at::Tensor& dt_, const at::Tensor& w_, const at::Tensor& b_) {
  at::Tensor w = w_.contiguous(), b = b_.contiguous();
  at::Tensor dt = dt_.contiguous().to(w.scalar_type());
  TORCH_CHECK(dt.dim() == 1 && w.dim() == 1 && b.sizes() == w.sizes(),
              "time_encode: dt must be [M], w and b [T]");
  const int64_t M = dt.numel(), T = w.numel();
  at::Tensor out = at::empty({M, T}, w.options());
  if (M == 0 || T == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "time_encode", [&] {
    const scalar_t* d = dt.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    auto body = [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const scalar_t di = d[i];
        scalar_t* __restrict oi = o + i * T;
_Pragma("omp simd")
        for (int64_t j = 0; j < T; ++j) oi[j] = std::cos(di * wp[j] + bp[j]);
      }
    };
    if (M * T < kSerialWork) body(0, M);
    else at::parallel_for(0, M, std::max<int64_t>(1, kSerialWork / (8 * T)), body);
  });
  return out;
}

// Gradients of sum(g * phi) w.r.t. w and b: with s = -sin(dt*w + b),
// dw[j] = sum_i g[i,j] * s[i,j] * dt[i], db[j] = sum_i g[i,j] * s[i,j].
std::tuple<at::Tensor, at::Tensor> time_encode_backward(const at::Tensor& grad_,
                                                        const at::Tensor& dt_,
                                                        const at::Tensor& w_,
                                                        const at::Tensor& b_) {
  at::Tensor w = w_.contiguous(), b = b_.contiguous();
  at::Tensor g = grad_.contiguous(), dt = dt_.contiguous().to(w.scalar_type());
  const int64_t M = dt.numel(), T = w.numel();
  at::Tensor gw = at::zeros({T}, w.options()), gb = at::zeros({T}, w.options());
  if (M == 0 || T == 0) return {gw, gb};
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "time_encode_backward", [&] {
    const scalar_t* d = dt.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    // per-thread partial sums, accumulated in double (M can be ~1e6 slots)
    const int64_t nt =
        M * T < kSerialWork ? 1 : std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), M));
    std::vector<double> pw(nt * T, 0.0), pb(nt * T, 0.0);
    auto body = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        double* __restrict aw = pw.data() + t * T;
        double* __restrict ab = pb.data() + t * T;
        for (int64_t i = M * t / nt; i < M * (t + 1) / nt; ++i) {
          const scalar_t di = d[i];
          const scalar_t* __restrict gi = gp + i * T;
_Pragma("omp simd")
          for (int64_t j = 0; j < T; ++j) {
            scalar_t s = -std::sin(di * wp[j] + bp[j]) * gi[j];
            ab[j] += s;
            aw[j] += s * di;
          }
        }
      }
    };
    if (nt == 1) body(0, 1);
    else at::parallel_for(0, nt, 1, body);
    scalar_t* ow = gw.data_ptr<scalar_t>();
    scalar_t* ob = gb.data_ptr<scalar_t>();
    for (int64_t j = 0; j < T; ++j) {
      double sw = 0, sb = 0;
      for (int64_t t = 0; t < nt; ++t) sw += pw[t * T + j], sb += pb[t * T + j];
      ow[j] = static_cast<scalar_t>(sw);
      ob[j] = static_cast<scalar_t>(sb);
    }
  });
  return {gw, gb};
}

}  // namespace

TORCH_LIBRARY(dyngraph, m) {
  m.def("segment_reduce(Tensor src, Tensor ptr, int reduce, bool need_arg) -> (Tensor, Tensor)");
  m.def(
      "segment_backward(Tensor grad, Tensor ptr, Tensor arg, int reduce, int num_rows) -> Tensor");
  m.def(
      "csr_aggregate(Tensor x, Tensor ptr, Tensor col, Tensor? weight, int reduce, "
      "bool need_arg, Tensor[] transpose) -> (Tensor, Tensor)");
  m.def("csr_edge_dot(Tensor a, Tensor b, Tensor ptr, Tensor col, Tensor[] transpose) -> Tensor");
  m.def(
      "csr_arg_backward(Tensor grad, Tensor x, Tensor col, Tensor? weight, Tensor arg, "
      "bool need_x, bool need_w) -> (Tensor, Tensor)");
  m.def("segment_softmax(Tensor src, Tensor ptr, bool log) -> Tensor");
  m.def("segment_softmax_backward(Tensor grad, Tensor out, Tensor ptr, bool log) -> Tensor");
  m.def(
      "csr_aggregate_backward(Tensor grad, Tensor x, Tensor ptr_t, Tensor col_t, Tensor? weight, "
      "Tensor t_index, bool need_x, bool need_w) -> (Tensor, Tensor)");
  m.def("time_encode(Tensor dt, Tensor w, Tensor b) -> Tensor");
  m.def("set_parallel_threshold(int work) -> int", &set_parallel_threshold);
  m.def("time_encode_backward(Tensor grad, Tensor dt, Tensor w, Tensor b) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(dyngraph, CPU, m) {
  m.impl("segment_reduce", &segment_reduce);
  m.impl("segment_backward", &segment_backward);
  m.impl("csr_aggregate", &csr_aggregate);
  m.impl("csr_edge_dot", &csr_edge_dot);
  m.impl("csr_arg_backward", &csr_arg_backward);
  m.impl("csr_aggregate_backward", &csr_aggregate_backward);
  m.impl("segment_softmax", &segment_softmax);
  m.impl("segment_softmax_backward", &segment_softmax_backward);
  m.impl("time_encode", &time_encode);
  m.impl("time_encode_backward", &time_encode_backward);
}

}  // namespace dyngraph_native
