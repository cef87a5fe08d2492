#ifndef CVECTORKERNELS_H
#define CVECTORKERNELS_H

#include <stddef.h>

/* The number of centres one pass of the kernel handles; `stride` below is a multiple of it. */
#define CVectorKernels_tile 32

/*
 * Squared Euclidean distances from one row `x` (d floats) to k centres stored transposed:
 * coordinate t of centre j at centresT[t * stride + j], stride a multiple of
 * CVectorKernels_tile and at least k (the padding columns are read, never reported).
 * Writes k distances to `out`.
 *
 * Exact differences, not |x|² − 2x·c + |c|² (no cancellation for near points), summed over t in
 * order: the same inputs give the same result on a given CPU. The widest vector unit the CPU has
 * (AVX-512, AVX2 with FMA, or the baseline) is chosen when the program loads.
 */
void CVectorKernels_distancesToCentres(const float *x, const float *centresT, size_t d, size_t k, size_t stride, float *out);

#endif
