// Small inline math shared by the TGN kernels (tgn_attention.cpp, tgn_memory.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace dyngraph_fast_math {

// exp for float32 that GCC inlines and vectorises (libm's expf is a scalar call through the
// PLT per element): 2^n * p(r) with x = n ln2 + r, |r| <= ln2 / 2, p the degree-6 Taylor
// polynomial (relative error < 2e-7). Double keeps std::exp (the gradcheck precision).
inline float exp_fast(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln2)
  float r = x - n * 0.693145751953125f;  // ln2 in two parts: n * hi is exact
  r -= n * 1.42860682030941723212e-6f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  union {
    int32_t i;
    float f;
  } scale;
  scale.i = (static_cast<int32_t>(n) + 127) << 23;
  return p * scale.f;
}
inline double exp_fast(double x) { return std::exp(x); }

}  // namespace dyngraph_fast_math
