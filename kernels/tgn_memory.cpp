// Fused element-wise part of the TGN memory updater (a GRU cell), forward and backward, for
// dyngraph/nn/memory/updater.py (`gru_cell`).
//
// The two gate matmuls gi = x W_ih^T + b_ih and gh = s W_hh^T + b_hh ([n, 3D] each, gate
// order r | z | n as torch.nn.GRUCell) run in BLAS; everything after them is one pass here:
//
//   r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  c = tanh(gi_n + r * gh_n),
//   s' = c + z * (s - c)            (= (1 - z) c + z s)
//
// The forward keeps [r | z | c | gh_n] ([n, 4D]) for the backward, which returns the gradients
// of the pre-activations of both matmuls (g_gi, g_gh, [n, 3D]) and the direct gradient of s
// (z * g); the caller turns them into weight / input gradients with matmuls. torch's own
// gru_cell on CPU runs ~10 separate element-wise ops forward and as many autograd nodes
// backward for the same arithmetic.
//
// Also the per-batch bookkeeping of the memory model for its common case (one message slot
// per node, each endpoint's message holding (s_self, s_other)), each as one pass instead of
// ~30 small tensor ops:
//   tgn_memory_persist   -- write the updated memory / last-update rows, mark them consumed;
//   tgn_store_push_last  -- store each endpoint's last message of a batch (memory snapshots
//                           read from the memory table);
//   tgn_memory_gather    -- read the memory of a node set, and for the nodes with a pending
//                           message build the message [s_a | s_b | cos(dt w + b) | feat].

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fast_math.h"

namespace dyngraph_tgn_memory {
namespace {

constexpr int64_t kSerialRows = 256;  // below this many rows a call runs serially

using namespace dyngraph_fast_math;  // exp_fast, cos_reduced and their constants

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t x) {
  return scalar_t(1) / (scalar_t(1) + exp_fast(-x));
}

// tanh through exp (absolute error ~1e-7 in float32 near 0, where 1 - 2 / (e^2x + 1) cancels)
inline float tanh_fast(float x) { return 1.0f - 2.0f / (exp_fast(2.0f * x) + 1.0f); }
inline double tanh_fast(double x) { return std::tanh(x); }

template <typename scalar_t>
void gates_forward_rows(int64_t r0, int64_t r1, int64_t D, const scalar_t* gi, const scalar_t* gh,
                        const scalar_t* s, scalar_t* out, scalar_t* saved) {
  for (int64_t row = r0; row < r1; ++row) {
    const scalar_t* __restrict a = gi + row * 3 * D;
    const scalar_t* __restrict b = gh + row * 3 * D;
    const scalar_t* __restrict h = s + row * D;
    scalar_t* __restrict o = out + row * D;
    scalar_t* __restrict sv = saved + row * 4 * D;
_Pragma("omp simd")
    for (int64_t i = 0; i < D; ++i) {
      const scalar_t r = sigmoid(a[i] + b[i]);
      const scalar_t z = sigmoid(a[D + i] + b[D + i]);
      const scalar_t c = tanh_fast(a[2 * D + i] + r * b[2 * D + i]);
      o[i] = c + z * (h[i] - c);
      sv[i] = r, sv[D + i] = z, sv[2 * D + i] = c, sv[3 * D + i] = b[2 * D + i];
    }
  }
}

template <typename scalar_t>
void gates_backward_rows(int64_t r0, int64_t r1, int64_t D, const scalar_t* g,
                         const scalar_t* saved, const scalar_t* s, scalar_t* g_gi,
                         scalar_t* g_gh, scalar_t* g_s) {
  for (int64_t row = r0; row < r1; ++row) {
    const scalar_t* __restrict go = g + row * D;
    const scalar_t* __restrict sv = saved + row * 4 * D;
    const scalar_t* __restrict h = s + row * D;
    scalar_t* __restrict gi = g_gi + row * 3 * D;
    scalar_t* __restrict gh = g_gh + row * 3 * D;
    scalar_t* __restrict gs = g_s + row * D;
_Pragma("omp simd")
    for (int64_t i = 0; i < D; ++i) {
      const scalar_t r = sv[i], z = sv[D + i], c = sv[2 * D + i], hn = sv[3 * D + i];
      const scalar_t gc = go[i] * (scalar_t(1) - z) * (scalar_t(1) - c * c);  // d pre-tanh
      const scalar_t gz = go[i] * (h[i] - c) * z * (scalar_t(1) - z);         // d pre-sigmoid z
      const scalar_t gr = gc * hn * r * (scalar_t(1) - r);                     // d pre-sigmoid r
      gi[i] = gr, gi[D + i] = gz, gi[2 * D + i] = gc;
      gh[i] = gr, gh[D + i] = gz, gh[2 * D + i] = gc * r;
      gs[i] = go[i] * z;
    }
  }
}

void check(const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& s, const char* what) {
  TORCH_CHECK(s.dim() == 2 && gi.dim() == 2 && gh.dim() == 2, what,
              ": expected gi [n, 3D], gh [n, 3D], s [n, D]");
  const int64_t n = s.size(0), D = s.size(1);
  TORCH_CHECK(gi.size(0) == n && gi.size(1) == 3 * D && gh.size(0) == n && gh.size(1) == 3 * D,
              what, ": expected gi [n, 3D], gh [n, 3D] for s [n, D]");
  TORCH_CHECK(gi.scalar_type() == s.scalar_type() && gh.scalar_type() == s.scalar_type(), what,
              ": inputs must share one floating dtype");
}

template <typename F>
void rows(int64_t n, const F& f) {
  if (n < kSerialRows || at::get_num_threads() <= 1 || at::in_parallel_region()) {
    f(0, n);
  } else {
    at::parallel_for(0, n, kSerialRows / 2, f);
  }
}

// returns (s' [n, D], saved [n, 4D] = r | z | c | gh_n)
std::tuple<at::Tensor, at::Tensor> tgn_gru_gates(const at::Tensor& gi_, const at::Tensor& gh_,
                                                 const at::Tensor& s_) {
  check(gi_, gh_, s_, "tgn_gru_gates");
  at::Tensor gi = gi_.contiguous(), gh = gh_.contiguous(), s = s_.contiguous();
  const int64_t n = s.size(0), D = s.size(1);
  at::Tensor out = at::empty({n, D}, s.options());
  at::Tensor saved = at::empty({n, 4 * D}, s.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "tgn_gru_gates", [&] {
    const scalar_t* a = gi.data_ptr<scalar_t>();
    const scalar_t* b = gh.data_ptr<scalar_t>();
    const scalar_t* h = s.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    scalar_t* sv = saved.data_ptr<scalar_t>();
    rows(n, [&](int64_t r0, int64_t r1) { gates_forward_rows(r0, r1, D, a, b, h, o, sv); });
  });
  return {out, saved};
}

// returns (g_gi [n, 3D], g_gh [n, 3D], g_s [n, D]) for the upstream gradient g [n, D]
std::tuple<at::Tensor, at::Tensor, at::Tensor> tgn_gru_gates_backward(const at::Tensor& g_,
                                                                      const at::Tensor& saved_,
                                                                      const at::Tensor& s_) {
  TORCH_CHECK(g_.dim() == 2 && s_.dim() == 2 && g_.sizes() == s_.sizes() &&
                  saved_.dim() == 2 && saved_.size(0) == s_.size(0) &&
                  saved_.size(1) == 4 * s_.size(1) && g_.scalar_type() == s_.scalar_type() &&
                  saved_.scalar_type() == s_.scalar_type(),
              "tgn_gru_gates_backward: expected g [n, D], saved [n, 4D], s [n, D] of one dtype");
  at::Tensor g = g_.contiguous(), saved = saved_.contiguous(), s = s_.contiguous();
  const int64_t n = s.size(0), D = s.size(1);
  at::Tensor g_gi = at::empty({n, 3 * D}, s.options());
  at::Tensor g_gh = at::empty({n, 3 * D}, s.options());
  at::Tensor g_s = at::empty({n, D}, s.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "tgn_gru_gates_backward", [&] {
    const scalar_t* go = g.data_ptr<scalar_t>();
    const scalar_t* sv = saved.data_ptr<scalar_t>();
    const scalar_t* h = s.data_ptr<scalar_t>();
    scalar_t* a = g_gi.data_ptr<scalar_t>();
    scalar_t* b = g_gh.data_ptr<scalar_t>();
    scalar_t* c = g_s.data_ptr<scalar_t>();
    rows(n, [&](int64_t r0, int64_t r1) { gates_backward_rows(r0, r1, D, go, sv, h, a, b, c); });
  });
  return {g_gi, g_gh, g_s};
}

// ---------------------------------------------------------------- memory bookkeeping

// phi[i] = cos(d * w[i] (+ b[i])) with torch's roundings: d * w is rounded before the sum
template <typename scalar_t>
void time_encode_row(scalar_t d, const scalar_t* __restrict w, const scalar_t* b, int64_t T,
                     scalar_t* __restrict phi) {
_Pragma("omp simd")
  for (int64_t i = 0; i < T; ++i) phi[i] = d * w[i];
  if (b) {
    for (int64_t i = 0; i < T; ++i) phi[i] = phi[i] + b[i];
  }
  bool small = true;
  for (int64_t i = 0; i < T; ++i) small = small && std::fabs(phi[i]) < kMaxReduced;
  if (small) {
_Pragma("omp simd")
    for (int64_t i = 0; i < T; ++i)
      phi[i] = static_cast<scalar_t>(cos_reduced(static_cast<double>(phi[i])));
  } else {  // huge, infinite or NaN arguments: as torch.cos
    for (int64_t i = 0; i < T; ++i) phi[i] = std::cos(phi[i]);
  }
}

void check_rows(const at::Tensor& ids, int64_t n, const char* what) {
  const int64_t* p = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    TORCH_CHECK(p[i] >= 0 && p[i] < n, what, ": node id ", p[i], " out of range [0, ", n, ")");
}

// memory[n_id[i]] = new_mem[i], last_update[n_id[i]] = new_lu[i], num_pending[n_id[i]] = 0
// for every i with updated[i]
void tgn_memory_persist(at::Tensor memory, at::Tensor last_update, at::Tensor num_pending,
                        const at::Tensor& n_id_, const at::Tensor& new_mem_,
                        const at::Tensor& new_lu_, const at::Tensor& updated_) {
  TORCH_CHECK(memory.dim() == 2 && memory.is_contiguous() && last_update.is_contiguous() &&
                  num_pending.is_contiguous() && last_update.scalar_type() == at::kDouble &&
                  num_pending.scalar_type() == at::kLong,
              "tgn_memory_persist: memory [N, D], last_update [N] float64, num_pending [N] "
              "int64, contiguous");
  at::Tensor n_id = n_id_.contiguous(), new_mem = new_mem_.contiguous();
  at::Tensor new_lu = new_lu_.contiguous(), updated = updated_.contiguous();
  const int64_t n = n_id.numel(), D = memory.size(1), N = memory.size(0);
  TORCH_CHECK(n_id.scalar_type() == at::kLong && updated.scalar_type() == at::kBool &&
                  new_lu.scalar_type() == at::kDouble &&
                  new_mem.scalar_type() == memory.scalar_type() && new_mem.dim() == 2 &&
                  new_mem.size(0) == n && new_mem.size(1) == D && new_lu.numel() == n &&
                  updated.numel() == n,
              "tgn_memory_persist: n_id [n] int64, new_mem [n, D], new_lu [n] float64, "
              "updated [n] bool");
  check_rows(n_id, N, "tgn_memory_persist");
  AT_DISPATCH_FLOATING_TYPES(memory.scalar_type(), "tgn_memory_persist", [&] {
    scalar_t* mem = memory.data_ptr<scalar_t>();
    const scalar_t* src = new_mem.data_ptr<scalar_t>();
    double* lu = last_update.data_ptr<double>();
    const double* nlu = new_lu.data_ptr<double>();
    int64_t* pend = num_pending.data_ptr<int64_t>();
    const int64_t* ids = n_id.data_ptr<int64_t>();
    const bool* upd = updated.data_ptr<bool>();
    for (int64_t i = 0; i < n; ++i) {
      if (!upd[i]) continue;
      const int64_t v = ids[i];
      std::copy(src + i * D, src + (i + 1) * D, mem + v * D);
      lu[v] = nlu[i];
      pend[v] = 0;
    }
  });
}

// events (src[i], dst[i], t[i], feat[i]) in order; each endpoint's message slot gets the last
// message of the batch: counterpart, time, role (0 source, 1 destination), features and the
// memory snapshots (s_self, s_other) read from `memory`
void tgn_store_push_last(const at::Tensor& memory_, const at::Tensor& src_,
                         const at::Tensor& dst_, const at::Tensor& t_,
                         const c10::optional<at::Tensor>& feat_, at::Tensor other,
                         at::Tensor t_buf, at::Tensor role, at::Tensor feat_buf, at::Tensor mem_a,
                         at::Tensor mem_b, at::Tensor count, at::Tensor num_pending) {
  at::Tensor memory = memory_.contiguous(), src = src_.contiguous(), dst = dst_.contiguous();
  at::Tensor t = t_.contiguous();
  const int64_t N = memory.size(0), D = memory.size(1), b = src.numel();
  const int64_t F = feat_buf.dim() == 3 ? feat_buf.size(2) : -1;
  TORCH_CHECK(src.scalar_type() == at::kLong && dst.scalar_type() == at::kLong &&
                  dst.numel() == b && t.scalar_type() == at::kDouble && t.numel() == b,
              "tgn_store_push_last: src, dst [b] int64, t [b] float64");
  TORCH_CHECK(other.sizes() == at::IntArrayRef({N, 1}) && other.scalar_type() == at::kLong &&
                  role.sizes() == at::IntArrayRef({N, 1}) && role.scalar_type() == at::kLong &&
                  t_buf.sizes() == at::IntArrayRef({N, 1}) && t_buf.scalar_type() == at::kDouble &&
                  F >= 0 && feat_buf.size(0) == N && feat_buf.size(1) == 1 &&
                  mem_a.sizes() == at::IntArrayRef({N, 1, D}) &&
                  mem_b.sizes() == at::IntArrayRef({N, 1, D}) &&
                  mem_a.scalar_type() == memory.scalar_type() &&
                  mem_b.scalar_type() == memory.scalar_type() &&
                  feat_buf.scalar_type() == memory.scalar_type() &&
                  count.numel() == N && count.scalar_type() == at::kLong &&
                  num_pending.numel() == N && num_pending.scalar_type() == at::kLong,
              "tgn_store_push_last: store buffers must be one-slot [N, 1, ...] of the memory's "
              "dtype");
  for (const at::Tensor* buf : {&other, &t_buf, &role, &feat_buf, &mem_a, &mem_b, &count,
                                &num_pending})
    TORCH_CHECK(buf->is_contiguous(), "tgn_store_push_last: store buffers must be contiguous");
  at::Tensor feat;
  if (feat_.has_value() && feat_->defined() && F > 0) {
    feat = feat_->contiguous();
    TORCH_CHECK(feat.dim() == 2 && feat.size(0) == b && feat.size(1) == F &&
                    feat.scalar_type() == memory.scalar_type(),
                "tgn_store_push_last: feat must be [b, F] of the memory's dtype");
  }
  check_rows(src, N, "tgn_store_push_last");
  check_rows(dst, N, "tgn_store_push_last");
  AT_DISPATCH_FLOATING_TYPES(memory.scalar_type(), "tgn_store_push_last", [&] {
    const scalar_t* mem = memory.data_ptr<scalar_t>();
    const int64_t* ps = src.data_ptr<int64_t>();
    const int64_t* pd = dst.data_ptr<int64_t>();
    const double* pt = t.data_ptr<double>();
    const scalar_t* pf = feat.defined() ? feat.data_ptr<scalar_t>() : nullptr;
    int64_t* po = other.data_ptr<int64_t>();
    double* ptb = t_buf.data_ptr<double>();
    int64_t* pr = role.data_ptr<int64_t>();
    scalar_t* pfb = feat_buf.data_ptr<scalar_t>();
    scalar_t* pa = mem_a.data_ptr<scalar_t>();
    scalar_t* pb = mem_b.data_ptr<scalar_t>();
    int64_t* pc = count.data_ptr<int64_t>();
    int64_t* pp = num_pending.data_ptr<int64_t>();
    // later messages overwrite earlier ones: the slot ends with each node's last message
    for (int64_t i = 0; i < b; ++i) {
      for (int64_t side = 0; side < 2; ++side) {
        const int64_t v = side ? pd[i] : ps[i], u = side ? ps[i] : pd[i];
        po[v] = u, ptb[v] = pt[i], pr[v] = side, pc[v] = 1, pp[v] = 1;
        if (F > 0) {
          if (pf) std::copy(pf + i * F, pf + (i + 1) * F, pfb + v * F);
          else std::fill(pfb + v * F, pfb + (v + 1) * F, scalar_t(0));
        }
        std::copy(mem + v * D, mem + (v + 1) * D, pa + v * D);
        std::copy(mem + u * D, mem + (u + 1) * D, pb + v * D);
      }
    }
  });
}

// For the (distinct) nodes n_id: their memory mem0 [n, D] and last update lu0 [n], which of
// them have a pending message (has [n] bool) and, for those (rows idx [m] of n_id), the
// message msg [m, (2 | 1) D + T + F] = [s_a | s_b | cos(dt w + b) | feat] (s_a dropped when
// include_self is false) with dt = float(t_msg - lu0), and the message time t_new [m].
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
tgn_memory_gather(const at::Tensor& memory_, const at::Tensor& last_update_,
                  const at::Tensor& num_pending_, const at::Tensor& n_id_,
                  const at::Tensor& st_t_, const at::Tensor& st_feat_, const at::Tensor& mem_a_,
                  const at::Tensor& mem_b_, const at::Tensor& w_, const c10::optional<at::Tensor>& b_,
                  bool include_self) {
  at::Tensor memory = memory_.contiguous(), last_update = last_update_.contiguous();
  at::Tensor num_pending = num_pending_.contiguous(), n_id = n_id_.contiguous();
  at::Tensor st_t = st_t_.contiguous(), st_feat = st_feat_.contiguous();
  at::Tensor mem_a = mem_a_.contiguous(), mem_b = mem_b_.contiguous(), w = w_.contiguous();
  at::Tensor b;
  if (b_.has_value() && b_->defined()) b = b_->contiguous();
  const int64_t N = memory.size(0), D = memory.size(1), n = n_id.numel(), T = w.numel();
  const int64_t F = st_feat.dim() == 3 ? st_feat.size(2) : -1;
  TORCH_CHECK(memory.dim() == 2 && last_update.scalar_type() == at::kDouble &&
                  last_update.numel() == N && num_pending.scalar_type() == at::kLong &&
                  num_pending.numel() == N && n_id.scalar_type() == at::kLong &&
                  st_t.scalar_type() == at::kDouble && st_t.numel() == N && F >= 0 &&
                  st_feat.size(0) == N && st_feat.size(1) == 1 &&
                  mem_a.sizes() == at::IntArrayRef({N, 1, D}) &&
                  mem_b.sizes() == at::IntArrayRef({N, 1, D}) &&
                  mem_a.scalar_type() == memory.scalar_type() &&
                  mem_b.scalar_type() == memory.scalar_type() &&
                  st_feat.scalar_type() == memory.scalar_type() &&
                  w.scalar_type() == memory.scalar_type() &&
                  (!b.defined() || (b.numel() == T && b.scalar_type() == memory.scalar_type())),
              "tgn_memory_gather: inconsistent memory / one-slot store buffers");
  check_rows(n_id, N, "tgn_memory_gather");
  const int64_t M = (include_self ? 2 : 1) * D + T + F;
  at::Tensor mem0 = at::empty({n, D}, memory.options());
  at::Tensor lu0 = at::empty({n}, last_update.options());
  at::Tensor has = at::empty({n}, n_id.options().dtype(at::kBool));
  const int64_t* ids = n_id.data_ptr<int64_t>();
  const int64_t* pend = num_pending.data_ptr<int64_t>();
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i) m += pend[ids[i]] > 0;
  at::Tensor idx = at::empty({m}, n_id.options());
  at::Tensor msg = at::empty({m, M}, memory.options());
  at::Tensor t_new = at::empty({m}, last_update.options());
  AT_DISPATCH_FLOATING_TYPES(memory.scalar_type(), "tgn_memory_gather", [&] {
    const scalar_t* mem = memory.data_ptr<scalar_t>();
    const double* lu = last_update.data_ptr<double>();
    const double* pt = st_t.data_ptr<double>();
    const scalar_t* pf = st_feat.data_ptr<scalar_t>();
    const scalar_t* pa = mem_a.data_ptr<scalar_t>();
    const scalar_t* pb = mem_b.data_ptr<scalar_t>();
    const scalar_t* pw = w.data_ptr<scalar_t>();
    const scalar_t* pbias = b.defined() ? b.data_ptr<scalar_t>() : nullptr;
    scalar_t* m0 = mem0.data_ptr<scalar_t>();
    double* l0 = lu0.data_ptr<double>();
    bool* ph = has.data_ptr<bool>();
    int64_t* pi = idx.data_ptr<int64_t>();
    scalar_t* pm = msg.data_ptr<scalar_t>();
    double* ptn = t_new.data_ptr<double>();
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = ids[i];
      std::copy(mem + v * D, mem + (v + 1) * D, m0 + i * D);
      l0[i] = lu[v];
      ph[i] = pend[v] > 0;
      if (!ph[i]) continue;
      pi[k] = i;
      ptn[k] = pt[v];
      scalar_t* row = pm + k * M;
      if (include_self) {
        std::copy(pa + v * D, pa + (v + 1) * D, row);
        row += D;
      }
      std::copy(pb + v * D, pb + (v + 1) * D, row);
      // the time difference in float64, then rounded to the memory's dtype (as torch)
      time_encode_row(static_cast<scalar_t>(pt[v] - lu[v]), pw, pbias, T, row + D);
      std::copy(pf + v * F, pf + (v + 1) * F, row + D + T);
      ++k;
    }
  });
  return {mem0, lu0, has, idx, msg, t_new};
}

}  // namespace
}  // namespace dyngraph_tgn_memory

TORCH_LIBRARY_FRAGMENT(dyngraph, m) {
  m.def("tgn_gru_gates(Tensor gi, Tensor gh, Tensor s) -> (Tensor, Tensor)");
  m.def("tgn_gru_gates_backward(Tensor g, Tensor saved, Tensor s) -> (Tensor, Tensor, Tensor)");
  m.def(
      "tgn_memory_persist(Tensor(a!) memory, Tensor(b!) last_update, Tensor(c!) num_pending, "
      "Tensor n_id, Tensor new_mem, Tensor new_lu, Tensor updated) -> ()");
  m.def(
      "tgn_store_push_last(Tensor memory, Tensor src, Tensor dst, Tensor t, Tensor? feat, "
      "Tensor(a!) other, Tensor(b!) t_buf, Tensor(c!) role, Tensor(d!) feat_buf, "
      "Tensor(e!) mem_a, Tensor(f!) mem_b, Tensor(g!) count, Tensor(h!) num_pending) -> ()");
  m.def(
      "tgn_memory_gather(Tensor memory, Tensor last_update, Tensor num_pending, Tensor n_id, "
      "Tensor st_t, Tensor st_feat, Tensor mem_a, Tensor mem_b, Tensor w, Tensor? b, "
      "bool include_self) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(dyngraph, CPU, m) {
  m.impl("tgn_gru_gates", &dyngraph_tgn_memory::tgn_gru_gates);
  m.impl("tgn_gru_gates_backward", &dyngraph_tgn_memory::tgn_gru_gates_backward);
  m.impl("tgn_memory_persist", &dyngraph_tgn_memory::tgn_memory_persist);
  m.impl("tgn_store_push_last", &dyngraph_tgn_memory::tgn_store_push_last);
  m.impl("tgn_memory_gather", &dyngraph_tgn_memory::tgn_memory_gather);
}
