// Small inline math shared by the TGN kernels (tgn_attention.cpp, tgn_memory.cpp): a fast
// float exp and a cosine that costs the same for huge arguments (raw time differences).
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

constexpr double kInv2Pi = 0.15915494309189533577;
constexpr double k2PiHi = 6.28318530717958623200;   // double nearest to 2 pi
constexpr double k2PiLo = 2.4492935982947064e-16;    // 2 pi - k2PiHi
constexpr double kHalfPi = 1.57079632679489661923;
constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52
constexpr double kMaxReduced = 1e15;  // |x| beyond this: std::cos

// x - 2 pi n with n = round(x / 2 pi), in [-pi, pi]
inline double reduce_2pi(double x) {
  // round to nearest by the 1.5 * 2^52 trick (std::floor blocks GCC's vectoriser); exact for
  // |x| < 2^51 * 2 pi, callers route larger arguments to std::cos
  const double n = (x * kInv2Pi + kRound) - kRound;
  double r = x - n * k2PiHi;
  r -= n * k2PiLo;
  return r;
}

// cos(x) for |x| < kMaxReduced; |error| < 1e-11 + |x| * 2e-16
inline double cos_reduced(double x) {
  const double r = reduce_2pi(x);
  const double y = std::fabs(r) - kHalfPi;  // cos(r) = -sin(|r| - pi/2), y in [-pi/2, pi/2]
  const double y2 = y * y;
  // Taylor series of sin(y) / y to y^16 (next term < 7e-12 on [-pi/2, pi/2])
  double p = -1.0 / 1307674368000.0;
  p = p * y2 + 1.0 / 6227020800.0;
  p = p * y2 - 1.0 / 39916800.0;
  p = p * y2 + 1.0 / 362880.0;
  p = p * y2 - 1.0 / 5040.0;
  p = p * y2 + 1.0 / 120.0;
  p = p * y2 - 1.0 / 6.0;
  p = p * y2 + 1.0;
  return -y * p;
}

}  // namespace dyngraph_fast_math
