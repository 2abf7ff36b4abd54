// The F(4x4, 3x3) transform combinations, shared by the reference and the
// vector kernels (wino4_transform_{ref,avx512}.cc) so that both run the same
// additions in the same order: T is float or a GCC vector type (__m512),
// whose operators act lane by lane. The only multiplies are by 2, 4 and 8,
// exact in binary floating point, so contracting `4 * x + y` into an FMA
// (GCC's default -ffp-contract=fast where FMA exists) changes no bit.
#pragma once

namespace wbs::kernels::sparse::wino4 {

// Row A of B^T d for one column d[0..5] of the window (or entry A of
// e B for one row e[0..5]):
//   4 d0 - 5 d2 + d4 = 4 (d0 - d2) + (d4 - d2)
//   -4 d1 - 4 d2 + d3 + d4 = (d3 + d4) - 4 (d1 + d2)
//   4 d1 - 4 d2 - d3 + d4 = (d4 - d3) + 4 (d1 - d2)
//   -2 d1 - d2 + 2 d3 + d4 = (d4 - d2) + 2 (d3 - d1)
//   2 d1 - d2 - 2 d3 + d4 = (d4 - d2) - 2 (d3 - d1)
//   4 d1 - 5 d3 + d5 = 4 (d1 - d3) + (d5 - d3)
template <int A, class T>
inline T InRow(const T* d) {
  static_assert(A >= 0 && A < 6);
  if constexpr (A == 0) return 4.0f * (d[0] - d[2]) + (d[4] - d[2]);
  if constexpr (A == 1) return (d[3] + d[4]) - 4.0f * (d[1] + d[2]);
  if constexpr (A == 2) return (d[4] - d[3]) + 4.0f * (d[1] - d[2]);
  if constexpr (A == 3) return (d[4] - d[2]) + 2.0f * (d[3] - d[1]);
  if constexpr (A == 4) return (d[4] - d[2]) - 2.0f * (d[3] - d[1]);
  if constexpr (A == 5) return 4.0f * (d[1] - d[3]) + (d[5] - d[3]);
}

// All six (the same expressions; the compiler shares the differences).
template <class T>
inline void In(const T* d, T* t) {
  t[0] = InRow<0>(d);
  t[1] = InRow<1>(d);
  t[2] = InRow<2>(d);
  t[3] = InRow<3>(d);
  t[4] = InRow<4>(d);
  t[5] = InRow<5>(d);
}

// InRow<a> for a run-time a in [0, 6).
template <class T>
inline T InRowAt(int a, const T* d) {
  switch (a) {
    case 0:
      return InRow<0>(d);
    case 1:
      return InRow<1>(d);
    case 2:
      return InRow<2>(d);
    case 3:
      return InRow<3>(d);
    case 4:
      return InRow<4>(d);
    default:
      return InRow<5>(d);
  }
}

// Row U of A^T m for one column m[0..5] (or entry U of s A for one row):
//   m0 + m1 + m2 + m3 + m4, (m1 - m2) + 2 (m3 - m4),
//   (m1 + m2) + 4 (m3 + m4), (m1 - m2) + 8 (m3 - m4) + m5.
template <class T>
inline void Out(const T* m, T* y) {
  const T p12 = m[1] + m[2], n12 = m[1] - m[2], p34 = m[3] + m[4], n34 = m[3] - m[4];
  y[0] = (m[0] + p12) + p34;
  y[1] = n12 + 2.0f * n34;
  y[2] = p12 + 4.0f * p34;
  y[3] = (n12 + 8.0f * n34) + m[5];
}

}  // namespace wbs::kernels::sparse::wino4
