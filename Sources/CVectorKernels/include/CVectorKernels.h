#ifndef CVECTORKERNELS_H
#define CVECTORKERNELS_H

#include <stddef.h>
#include <stdint.h>

/* The number of centres one pass of the kernel handles; `stride` below is a multiple of it. */
#define CVectorKernels_tile 32

/*
 * Squared Euclidean distances from one row `x` (d floats) to k centres stored transposed:
 * coordinate t of centre j at centresT[t * stride + j], stride a multiple of
 * CVectorKernels_tile and at least k (the padding columns are read, never reported).
 * Writes k distances to `out`.
 *
 * Exact differences, not |x|² − 2x·c + |c|² (no cancellation for near points), summed in four
 * partial sums (every fourth coordinate) added in a fixed order: the same inputs give the same
 * result on a given CPU. The widest vector unit the CPU has (AVX-512, AVX2 with FMA, or the
 * baseline) is chosen when the program loads.
 */
void CVectorKernels_distancesToCentres(const float *x, const float *centresT, size_t d, size_t k, size_t stride, float *out);

/*
 * The state of one assignment step of Elkan's k-means (see Lloyd.Workspace in KMeans.swift for
 * what each buffer holds). Points are independent: ranges of them may be assigned in parallel.
 */
typedef struct {
    const float *x;          /* n × d points, row-major */
    size_t d;
    size_t k;
    const float *c;          /* k × d centres, row-major */
    const float *centresT;   /* the centres transposed, as CVectorKernels_distancesToCentres reads them */
    size_t stride;
    int32_t *label;          /* n */
    float *upper;            /* n upper bounds */
    float *lower;            /* n × k lower bounds, stored plus drift[j] */
    float *second;           /* n lower bounds on the second-nearest distance, stored plus secondDrift */
    const float *drift;      /* k: how far each centre has moved in total */
    float secondDrift;       /* the running sum of the largest shift */
    const float *shift;      /* k: each centre's last shift */
    const float *half;       /* k: half the distance to the nearest other centre */
    const float *halfPair;   /* k × k: half the distance between two centres, infinity on the diagonal */
} CVectorKernels_Elkan;

/*
 * Assigns the points begin..<end against the current centres, tightening their bounds, and
 * returns how many changed label. What they changed is written to `sumChanges` (k × d: for
 * each centre, the rows it gained minus the rows it lost, added in point order) and
 * `countChanges` (k: members gained minus lost). `scratch`: k floats of the caller's. The nearest centre wins; the lowest
 * index on ties.
 */
size_t CVectorKernels_elkanAssign(const CVectorKernels_Elkan *state, size_t begin, size_t end, float *scratch,
                                  double *sumChanges, intptr_t *countChanges);

#endif
