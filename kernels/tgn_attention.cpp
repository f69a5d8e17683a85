// Fused TGN neighbour attention (time encoding + masked multi-head softmax attention over the
// k most recent neighbours of each query), forward and backward, for
// dyngraph/nn/memory/attention.py (`slot_attention`).
//
// Each of Q queries attends over K slots. Slot j of query q has the input (width E = D + C)
// y_qj = [mem[index_qj] | feat_qj | cos(dt_qj * w + b) | 1]  (widths D | F | T | 1, C = F+T+1),
// and each head h has a query vector c_hq = qv[h, qrow_q] already mapped into slot space (the
// caller folds the key projection into the query and applies the value projection after the
// sum; a node queried at several times shares one row through qrow):
//
//   s_qjh = scale * y_qj . c_hq,  a_q.h = softmax_j(s_q.h) over real slots,
//   out[h, q] = sum_j drop_qjh a_qjh y_qj.
//
// Head-major layouts ([H, U, E] in, [H, Q, E] out) are what the caller's per-head projections
// (batched matmuls over h) produce and consume, so no transposed copies are needed either way.
// Done per query in cache: the [Q, K, D] gather of neighbour memories, the [Q, K, T] cosine
// block and the batched matmuls with inner size h = 2 that the PyTorch path needs are never
// materialised, and the backward scatters the memory gradient straight into [N, D].
// The time encoding is data here (no gradient for w, b, feat): the learnable-encoding case
// uses the PyTorch path.
//
// The cosine: x = dt * w + b is formed in the input precision (as torch does), then reduced
// modulo 2 pi in double (Cody-Waite, two-part 2 pi) and evaluated by a polynomial (in float
// for float inputs), so large arguments (raw second differences times w ~ 1 reach 1e7 rad)
// cost the same as small ones; torch's vectorised cos takes a slow path for them.
//
// With save_slots the forward keeps every query's slot block (rows y_qj of its real slots,
// [Q, K, E]) and the backward reads it in place: no second gather, no cosines recomputed.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "fast_math.h"

namespace dyngraph_tgn {
namespace {

// below this many scalar operations a call runs serially (a parallel region costs more)
constexpr int64_t kSerialWork = 1 << 16;

using namespace dyngraph_fast_math;  // exp_fast, cos_reduced and their constants


// phi[i] = cos(phi[i] + b[i]) for arguments below kMaxReduced. Double: cos_reduced. Float:
// the argument is reduced modulo 2 pi in double (exact enough for ~1e7 rad), the reduced
// r in [-pi, pi] rounded to float and cos(r) = -sin(|r| - pi/2) evaluated in float (twice
// the vector lanes of double; |error| < 3e-7)
inline void cos_block(double* phi, const double* b, int64_t T) {
_Pragma("omp simd")
  for (int64_t i = 0; i < T; ++i) phi[i] = cos_reduced(phi[i] + b[i]);
}

inline void cos_block(float* phi, const float* b, int64_t T) {
_Pragma("omp simd")
  for (int64_t i = 0; i < T; ++i) phi[i] = static_cast<float>(reduce_2pi(phi[i] + b[i]));
_Pragma("omp simd")
  for (int64_t i = 0; i < T; ++i) {
    const float y = std::fabs(phi[i]) - 1.57079632679489661923f;
    const float y2 = y * y;
    float p = 1.0f / 6227020800.0f;
    p = p * y2 - 1.0f / 39916800.0f;
    p = p * y2 + 1.0f / 362880.0f;
    p = p * y2 - 1.0f / 5040.0f;
    p = p * y2 + 1.0f / 120.0f;
    p = p * y2 - 1.0f / 6.0f;
    p = p * y2 + 1.0f;
    phi[i] = -y * p;
  }
}

template <typename scalar_t>
struct Args {
  int64_t Q, K, H, D, F, T, C, E, N, U;
  const scalar_t* qv;   // [H, U, E]
  const int64_t* qrow;  // [Q] row of each query in qv, or nullptr (U = Q, identity)
  const scalar_t* mem;  // [N, D]
  const int64_t* idx;   // [Q, K]
  const scalar_t* feat; // [Q, K, F]
  const scalar_t* dt;   // [Q, K]
  const scalar_t* w;    // [T]
  const scalar_t* b;    // [T]
  const bool* mask;     // [Q, K]
  const scalar_t* drop; // [Q, K, H] or nullptr
  scalar_t scale;
  double wmax, bmax;    // max |w|, max |b|: |dt w + b| <= |dt| wmax + bmax

  const scalar_t* qvec(int64_t h, int64_t q) const {
    return qv + (h * U + (qrow ? qrow[q] : q)) * E;
  }
  const scalar_t* nbr(int64_t q, int64_t j) const { return mem + idx[q * K + j] * D; }
};

template <typename scalar_t>
inline scalar_t dot(const scalar_t* __restrict a, const scalar_t* __restrict b, int64_t n) {
  scalar_t s = 0;
_Pragma("omp simd reduction(+ : s)")
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <typename scalar_t>
inline void axpy(scalar_t a, const scalar_t* __restrict x, scalar_t* __restrict y, int64_t n) {
_Pragma("omp simd")
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// slot data [feat | cos(dt w + b) | 1] of slot j of query q into y [C]
template <typename scalar_t>
void slot_data(const Args<scalar_t>& A, int64_t q, int64_t j, scalar_t* __restrict y) {
  const int64_t K = A.K, F = A.F, T = A.T, C = A.C;
  const scalar_t* __restrict f = A.feat + (q * K + j) * F;
  for (int64_t i = 0; i < F; ++i) y[i] = f[i];
  const scalar_t d = A.dt[q * K + j];
  scalar_t* __restrict phi = y + F;
  const scalar_t* __restrict w = A.w;
  const scalar_t* __restrict b = A.b;
  // dt * w and + b rounded separately, as torch's cos(dt * w + b) does: the product goes
  // through memory so it is not contracted into a fused multiply-add with the sum (an fma
  // differs by an ulp of x, visible for x ~ 1e6 in float32)
_Pragma("omp simd")
  for (int64_t i = 0; i < T; ++i) phi[i] = d * w[i];
  // one bound per slot, not a max over its arguments (false for a NaN or infinite dt)
  if (std::fabs(static_cast<double>(d)) * A.wmax + A.bmax < 0.5 * kMaxReduced) {
    cos_block(phi, b, T);
  } else {  // huge or infinite arguments (cos(inf) = NaN, as torch)
    for (int64_t i = 0; i < T; ++i) phi[i] = std::cos(phi[i] + b[i]);
  }
  y[C - 1] = 1;
}

// The real slots of query q as a contiguous block Y [n, E] (rows [mem[index] | slot data]);
// slot[r] is the slot index of row r, *Yp receives the block. The forward writes the block
// into `save` [Q, K, E] (query q's rows at q * K * E, real slots first) when given, else into
// `scratch`; the backward reads it from `saved` (the forward's `save`) without copying, or
// rebuilds it in `scratch`.
template <typename scalar_t>
int64_t gather_slots(const Args<scalar_t>& A, int64_t q, const scalar_t* saved, scalar_t* save,
                     scalar_t* scratch, int64_t* slot, const scalar_t** Yp) {
  const int64_t K = A.K, D = A.D, E = A.E;
  int64_t n = 0;
  for (int64_t j = 0; j < K; ++j)
    if (A.mask[q * K + j]) slot[n++] = j;
  if (saved) {
    *Yp = saved + q * K * E;
    return n;
  }
  scalar_t* Y = save ? save + q * K * E : scratch;
  for (int64_t r = 0; r < n; ++r) {
    const scalar_t* __restrict m = A.nbr(q, slot[r]);
    std::copy(m, m + D, Y + r * E);
    slot_data(A, q, slot[r], Y + r * E + D);
  }
  *Yp = Y;
  return n;
}

// S [n, H]: S[r, h] = Y[r] . V[h] (V rows given by pointers); two heads share one pass
template <typename scalar_t>
inline void block_dots(const scalar_t* Y, int64_t n, int64_t E, const scalar_t* const* V,
                       int64_t H, scalar_t* S) {
  if (H == 2) {
    const scalar_t* __restrict v0 = V[0];
    const scalar_t* __restrict v1 = V[1];
    for (int64_t r = 0; r < n; ++r) {
      const scalar_t* __restrict y = Y + r * E;
      scalar_t s0 = 0, s1 = 0;
_Pragma("omp simd reduction(+ : s0, s1)")
      for (int64_t i = 0; i < E; ++i) {
        s0 += y[i] * v0[i];
        s1 += y[i] * v1[i];
      }
      S[2 * r] = s0, S[2 * r + 1] = s1;
    }
    return;
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < H; ++h) S[r * H + h] = dot(Y + r * E, V[h], E);
}

// o_h (+)= sum_r a[r, h] * Y[r] for two heads in one pass over each row
template <typename scalar_t>
inline void block_combine2(const scalar_t* __restrict Y, int64_t n, int64_t E,
                           const scalar_t* __restrict a, scalar_t* __restrict o0,
                           scalar_t* __restrict o1, bool accumulate) {
  if (!accumulate) std::fill(o0, o0 + E, scalar_t(0)), std::fill(o1, o1 + E, scalar_t(0));
  for (int64_t r = 0; r < n; ++r) {
    const scalar_t a0 = a[2 * r], a1 = a[2 * r + 1];
    const scalar_t* __restrict y = Y + r * E;
_Pragma("omp simd")
    for (int64_t i = 0; i < E; ++i) {
      o0[i] += a0 * y[i];
      o1[i] += a1 * y[i];
    }
  }
}

// o[i] (+)= sum_r a[r * H] * Y[r, i]  (a strided by H: one head's column of a [n, H] block)
template <typename scalar_t>
inline void block_combine(const scalar_t* __restrict Y, int64_t n, int64_t E,
                          const scalar_t* __restrict a, int64_t H, scalar_t* __restrict o,
                          bool accumulate) {
  if (!accumulate) std::fill(o, o + E, scalar_t(0));
  for (int64_t r = 0; r < n; ++r) axpy(a[r * H], Y + r * E, o, E);
}

template <typename scalar_t>
void forward_range(const Args<scalar_t>& A, int64_t q0, int64_t q1, scalar_t* out,
                   scalar_t* alpha, scalar_t* save) {
  const int64_t K = A.K, H = A.H, E = A.E, Q = A.Q;
  std::vector<scalar_t> scratch(K * E), S(K * H), ad(K * H);
  std::vector<int64_t> slot(K);
  std::vector<const scalar_t*> V(H);
  const scalar_t* Y = nullptr;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t n = gather_slots(A, q, static_cast<const scalar_t*>(nullptr), save,
                                   scratch.data(), slot.data(), &Y);
    scalar_t* al = alpha + q * K * H;  // zero-initialised by the caller
    for (int64_t h = 0; h < H; ++h) V[h] = A.qvec(h, q);
    block_dots(Y, n, E, V.data(), H, S.data());
    for (int64_t h = 0; h < H; ++h) {
      scalar_t mx = -INFINITY, tot = 0;
      for (int64_t r = 0; r < n; ++r) mx = std::max(mx, S[r * H + h] * A.scale);
      for (int64_t r = 0; r < n; ++r) {
        S[r * H + h] = exp_fast(S[r * H + h] * A.scale - mx);
        tot += S[r * H + h];
      }
      const scalar_t inv = scalar_t(1) / tot;  // n > 0 whenever this loop body runs
      for (int64_t r = 0; r < n; ++r) {
        const int64_t j = slot[r];
        const scalar_t a = S[r * H + h] * inv;
        al[j * H + h] = a;
        ad[r * H + h] = A.drop ? a * A.drop[(q * K + j) * H + h] : a;
      }
      if (H != 2) block_combine(Y, n, E, ad.data() + h, H, out + (h * Q + q) * E, false);
    }
    if (H == 2) block_combine2(Y, n, E, ad.data(), out + q * E, out + (Q + q) * E, false);
  }
}

// g_qv [H, U, E] and g_mem [N, D] are accumulated (rows shared between queries)
template <typename scalar_t>
void backward_range(const Args<scalar_t>& A, int64_t q0, int64_t q1, const scalar_t* g_out,
                    const scalar_t* alpha, const scalar_t* saved, scalar_t* g_qv,
                    scalar_t* g_mem) {
  const int64_t K = A.K, H = A.H, D = A.D, E = A.E, Q = A.Q, U = A.U;
  std::vector<scalar_t> scratch(K * E), G(K * H), gs(K * H), ad(K * H);
  std::vector<int64_t> slot(K);
  std::vector<const scalar_t*> V(H);
  const scalar_t* Y = nullptr;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t n = gather_slots(A, q, saved, static_cast<scalar_t*>(nullptr), scratch.data(),
                                   slot.data(), &Y);
    if (n == 0) continue;
    const scalar_t* al = alpha + q * K * H;
    for (int64_t h = 0; h < H; ++h) V[h] = g_out + (h * Q + q) * E;
    block_dots(Y, n, E, V.data(), H, G.data());  // dL/d(drop * alpha)
    for (int64_t h = 0; h < H; ++h) {
      scalar_t sa = 0;
      for (int64_t r = 0; r < n; ++r) {
        const int64_t j = slot[r];
        const scalar_t dr = A.drop ? A.drop[(q * K + j) * H + h] : scalar_t(1);
        ad[r * H + h] = al[j * H + h] * dr;
        G[r * H + h] *= dr;  // dL/d alpha
        sa += al[j * H + h] * G[r * H + h];
      }
      for (int64_t r = 0; r < n; ++r)
        gs[r * H + h] = A.scale * al[slot[r] * H + h] * (G[r * H + h] - sa);
    }
    const int64_t row = A.qrow ? A.qrow[q] : q;
    if (g_qv && H == 2) {
      block_combine2(Y, n, E, gs.data(), g_qv + row * E, g_qv + (U + row) * E, true);
    } else if (g_qv) {
      for (int64_t h = 0; h < H; ++h)
        block_combine(Y, n, E, gs.data() + h, H, g_qv + (h * U + row) * E, true);
    }
    if (g_mem) {
      for (int64_t r = 0; r < n; ++r) {
        scalar_t* __restrict dst = g_mem + A.idx[q * K + slot[r]] * D;
        if (H == 2) {
          const scalar_t* __restrict go0 = V[0];
          const scalar_t* __restrict go1 = V[1];
          const scalar_t* __restrict q0 = A.qvec(0, q);
          const scalar_t* __restrict q1 = A.qvec(1, q);
          const scalar_t a0 = ad[2 * r], a1 = ad[2 * r + 1], g0 = gs[2 * r], g1 = gs[2 * r + 1];
_Pragma("omp simd")
          for (int64_t i = 0; i < D; ++i)
            dst[i] += a0 * go0[i] + g0 * q0[i] + a1 * go1[i] + g1 * q1[i];
          continue;
        }
        for (int64_t h = 0; h < H; ++h) {
          const scalar_t* __restrict go = V[h];
          const scalar_t* __restrict qh = A.qvec(h, q);
          const scalar_t a = ad[r * H + h], g = gs[r * H + h];
_Pragma("omp simd")
          for (int64_t i = 0; i < D; ++i) dst[i] += a * go[i] + g * qh[i];
        }
      }
    }
  }
}

// [lo, hi] of a non-empty int64 tensor (a plain loop: at::min / at::max + item() cost a
// dispatch, an allocation and a sync each)
inline std::pair<int64_t, int64_t> int_range(const at::Tensor& t) {
  const int64_t* p = t.data_ptr<int64_t>();
  int64_t lo = p[0], hi = p[0];
  const int64_t n = t.numel();
  for (int64_t i = 1; i < n; ++i) lo = std::min(lo, p[i]), hi = std::max(hi, p[i]);
  return {lo, hi};
}

struct Checked {
  at::Tensor qv, mem, idx, feat, dt, w, b, mask, drop, qrow;
};

Checked check(const at::Tensor& qv, const at::Tensor& mem, const at::Tensor& index,
              const at::Tensor& feat, const at::Tensor& dt, const at::Tensor& w,
              const at::Tensor& b, const at::Tensor& mask, const c10::optional<at::Tensor>& drop,
              const c10::optional<at::Tensor>& qrow) {
  TORCH_CHECK(qv.dim() == 3 && mem.dim() == 2 && index.dim() == 2 && feat.dim() == 3 &&
                  dt.dim() == 2 && w.dim() == 1 && b.dim() == 1 && mask.dim() == 2,
              "tgn_slot_attention: expected q [H,U,D+F+T+1], mem [N,D], index [Q,K], "
              "feat [Q,K,F], dt [Q,K], w [T], b [T], mask [Q,K]");
  const int64_t H = qv.size(0), U = qv.size(1), D = mem.size(1);
  const int64_t Q = index.size(0), K = index.size(1);
  const int64_t F = feat.size(2), T = w.size(0);
  TORCH_CHECK(qv.size(2) == D + F + T + 1, "tgn_slot_attention: q must be [H, U, D + F + T + 1]");
  TORCH_CHECK(feat.size(0) == Q && feat.size(1) == K && dt.size(0) == Q && dt.size(1) == K &&
                  b.size(0) == T && mask.size(0) == Q && mask.size(1) == K,
              "tgn_slot_attention: inconsistent shapes");
  auto st = qv.scalar_type();
  TORCH_CHECK(mem.scalar_type() == st && feat.scalar_type() == st && dt.scalar_type() == st &&
                  w.scalar_type() == st && b.scalar_type() == st,
              "tgn_slot_attention: floating inputs must share one dtype");
  TORCH_CHECK(index.scalar_type() == at::kLong && mask.scalar_type() == at::kBool,
              "tgn_slot_attention: index must be int64 and mask bool");
  Checked c{qv.contiguous(), mem.contiguous(), index.contiguous(), feat.contiguous(),
            dt.contiguous(), w.contiguous(), b.contiguous(), mask.contiguous(), at::Tensor(),
            at::Tensor()};
  if (drop.has_value() && drop->defined()) {
    TORCH_CHECK(drop->sizes() == at::IntArrayRef({Q, K, H}) && drop->scalar_type() == st,
                "tgn_slot_attention: drop must be [Q, K, H] of the inputs' dtype");
    c.drop = drop->contiguous();
  }
  if (qrow.has_value() && qrow->defined()) {
    TORCH_CHECK(qrow->dim() == 1 && qrow->size(0) == Q && qrow->scalar_type() == at::kLong,
                "tgn_slot_attention: qrow must be int64 [Q]");
    c.qrow = qrow->contiguous();
    if (Q > 0) {
      const auto [lo, hi] = int_range(c.qrow);
      TORCH_CHECK(lo >= 0 && hi < U, "tgn_slot_attention: qrow out of range [0, ", U, ")");
    }
  } else {
    TORCH_CHECK(U == Q, "tgn_slot_attention: without qrow, q must have one row per query");
  }
  if (Q > 0 && K > 0) {
    const auto [lo, hi] = int_range(c.idx);
    TORCH_CHECK(lo >= 0 && hi < mem.size(0), "tgn_slot_attention: index out of range [0, ",
                mem.size(0), ")");
  }
  return c;
}

template <typename scalar_t>
Args<scalar_t> make_args(const Checked& c, double scale) {
  Args<scalar_t> A;
  A.H = c.qv.size(0), A.U = c.qv.size(1), A.E = c.qv.size(2), A.D = c.mem.size(1);
  A.Q = c.idx.size(0), A.K = c.idx.size(1);
  A.F = c.feat.size(2), A.T = c.w.size(0), A.C = A.F + A.T + 1, A.N = c.mem.size(0);
  A.qv = c.qv.data_ptr<scalar_t>();
  A.qrow = c.qrow.defined() ? c.qrow.data_ptr<int64_t>() : nullptr;
  A.mem = c.mem.data_ptr<scalar_t>(), A.idx = c.idx.data_ptr<int64_t>();
  A.feat = c.feat.data_ptr<scalar_t>(), A.dt = c.dt.data_ptr<scalar_t>();
  A.w = c.w.data_ptr<scalar_t>(), A.b = c.b.data_ptr<scalar_t>();
  A.mask = c.mask.data_ptr<bool>();
  A.drop = c.drop.defined() ? c.drop.data_ptr<scalar_t>() : nullptr;
  A.scale = static_cast<scalar_t>(scale);
  A.wmax = A.bmax = 0;
  for (int64_t i = 0; i < A.T; ++i) {  // written so that a NaN propagates
    const double wi = std::fabs(static_cast<double>(A.w[i]));
    const double bi = std::fabs(static_cast<double>(A.b[i]));
    if (!(wi <= A.wmax)) A.wmax = wi;
    if (!(bi <= A.bmax)) A.bmax = bi;
  }
  if (!std::isfinite(A.wmax) || !std::isfinite(A.bmax)) A.wmax = A.bmax = INFINITY;
  return A;
}

// save_slots: also return the slot inputs [Q, K, E] (gathered memories and cosines, each
// query's real slots first) for the backward, which then reads them in place instead of
// gathering and recomputing them
std::tuple<at::Tensor, at::Tensor, at::Tensor> tgn_slot_attention(
    const at::Tensor& qv, const at::Tensor& mem, const at::Tensor& index, const at::Tensor& feat,
    const at::Tensor& dt, const at::Tensor& w, const at::Tensor& b, const at::Tensor& mask,
    const c10::optional<at::Tensor>& drop, const c10::optional<at::Tensor>& qrow, double scale,
    bool save_slots) {
  Checked c = check(qv, mem, index, feat, dt, w, b, mask, drop, qrow);
  const int64_t H = c.qv.size(0), E = c.qv.size(2), Q = c.idx.size(0), K = c.idx.size(1);
  at::Tensor out = at::empty({H, Q, E}, c.qv.options());
  at::Tensor alpha = at::zeros({Q, K, H}, c.qv.options());
  at::Tensor slots = save_slots ? at::empty({Q, K, E}, c.qv.options())
                                : at::empty({0}, c.qv.options());
  if (Q == 0) return {out, alpha, slots};
  AT_DISPATCH_FLOATING_TYPES(c.qv.scalar_type(), "tgn_slot_attention", [&] {
    Args<scalar_t> A = make_args<scalar_t>(c, scale);
    scalar_t* po = out.data_ptr<scalar_t>();
    scalar_t* pa = alpha.data_ptr<scalar_t>();
    scalar_t* ps = save_slots ? slots.data_ptr<scalar_t>() : nullptr;
    const int64_t per_q = std::max<int64_t>(1, 2 * K * H * E + K * A.T * 8);
    if (Q * per_q < kSerialWork || at::get_num_threads() <= 1 || at::in_parallel_region()) {
      forward_range(A, 0, Q, po, pa, ps);
    } else {
      at::parallel_for(0, Q, std::max<int64_t>(1, kSerialWork / per_q),
                       [&](int64_t q0, int64_t q1) { forward_range(A, q0, q1, po, pa, ps); });
    }
  });
  return {out, alpha, slots};
}

std::tuple<at::Tensor, at::Tensor> tgn_slot_attention_backward(
    const at::Tensor& g_out_, const at::Tensor& qv, const at::Tensor& mem,
    const at::Tensor& index, const at::Tensor& feat, const at::Tensor& dt, const at::Tensor& w,
    const at::Tensor& b, const at::Tensor& mask, const c10::optional<at::Tensor>& drop,
    const c10::optional<at::Tensor>& qrow, const at::Tensor& alpha_,
    const c10::optional<at::Tensor>& slots_, double scale, bool need_q, bool need_mem) {
  Checked c = check(qv, mem, index, feat, dt, w, b, mask, drop, qrow);
  at::Tensor g_out = g_out_.contiguous(), alpha = alpha_.contiguous();
  const int64_t H = c.qv.size(0), E = c.qv.size(2), Q = c.idx.size(0), K = c.idx.size(1);
  at::Tensor slots;
  if (slots_.has_value() && slots_->defined() && slots_->numel() > 0) {
    TORCH_CHECK(slots_->sizes() == at::IntArrayRef({Q, K, E}) &&
                    slots_->scalar_type() == c.qv.scalar_type(),
                "tgn_slot_attention_backward: slots must be the forward's [Q, K, E]");
    slots = slots_->contiguous();
  }
  TORCH_CHECK(g_out.sizes() == at::IntArrayRef({H, Q, E}) &&
                  alpha.sizes() == at::IntArrayRef({Q, K, H}),
              "tgn_slot_attention_backward: gradient / alpha shapes do not match the inputs");
  // gradients that are not needed come back as empty tensors; the needed ones are sums over
  // queries (rows shared through qrow / index), so they start at zero
  at::Tensor g_qv = at::empty({0}, c.qv.options()), g_mem = g_qv;
  if (need_q) g_qv = at::zeros_like(c.qv);
  if (need_mem) g_mem = at::zeros_like(c.mem);
  if (Q == 0) return {g_qv, g_mem};
  AT_DISPATCH_FLOATING_TYPES(c.qv.scalar_type(), "tgn_slot_attention_backward", [&] {
    Args<scalar_t> A = make_args<scalar_t>(c, scale);
    const scalar_t* pg = g_out.data_ptr<scalar_t>();
    const scalar_t* pa = alpha.data_ptr<scalar_t>();
    const scalar_t* psl = slots.defined() ? slots.data_ptr<scalar_t>() : nullptr;
    const int64_t per_q = std::max<int64_t>(1, 4 * K * H * E + K * A.T * 8);
    int64_t chunks = 1;
    if (Q * per_q >= kSerialWork && !at::in_parallel_region())
      chunks = std::min<int64_t>(at::get_num_threads(), Q);
    // the gradients are scatters (queries share neighbours and query rows): every chunk but
    // the first accumulates into its own buffers, summed at the end (no atomics)
    std::vector<at::Tensor> pq(chunks), pm(chunks);
    pq[0] = g_qv, pm[0] = g_mem;
    for (int64_t i = 1; i < chunks; ++i) {
      if (need_q) pq[i] = at::zeros_like(c.qv);
      if (need_mem) pm[i] = at::zeros_like(c.mem);
    }
    auto run = [&](int64_t ch) {
      backward_range(A, Q * ch / chunks, Q * (ch + 1) / chunks, pg, pa, psl,
                     need_q ? pq[ch].data_ptr<scalar_t>() : nullptr,
                     need_mem ? pm[ch].data_ptr<scalar_t>() : nullptr);
    };
    if (chunks == 1) {
      run(0);
      return;
    }
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch) run(ch);
    });
    for (int64_t i = 1; i < chunks; ++i) {
      if (need_q) g_qv.add_(pq[i]);
      if (need_mem) g_mem.add_(pm[i]);
    }
  });
  return {g_qv, g_mem};
}

}  // namespace
}  // namespace dyngraph_tgn

TORCH_LIBRARY_FRAGMENT(dyngraph, m) {
  m.def(
      "tgn_slot_attention(Tensor q, Tensor mem, Tensor index, Tensor feat, Tensor dt, "
      "Tensor w, Tensor b, Tensor mask, Tensor? drop, Tensor? qrow, float scale, "
      "bool save_slots) -> (Tensor, Tensor, Tensor)");
  m.def(
      "tgn_slot_attention_backward(Tensor g_out, Tensor q, Tensor mem, Tensor index, "
      "Tensor feat, Tensor dt, Tensor w, Tensor b, Tensor mask, Tensor? drop, Tensor? qrow, "
      "Tensor alpha, Tensor? slots, float scale, bool need_q, bool need_mem) "
      "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(dyngraph, CPU, m) {
  m.impl("tgn_slot_attention", &dyngraph_tgn::tgn_slot_attention);
  m.impl("tgn_slot_attention_backward", &dyngraph_tgn::tgn_slot_attention_backward);
}
