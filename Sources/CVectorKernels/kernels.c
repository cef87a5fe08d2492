#include "CVectorKernels.h"

#include <math.h>

/* One loop, compiled once per instruction set; the loader picks the widest the CPU runs. */
#if defined(__x86_64__) && defined(__ELF__)
#define CVECTORKERNELS_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define CVECTORKERNELS_CLONES
#endif

CVECTORKERNELS_CLONES
void CVectorKernels_distancesToCentres(const float *restrict x, const float *restrict centresT, size_t d, size_t k,
                                       size_t stride, float *restrict out) {
    for (size_t base = 0; base < k; base += CVectorKernels_tile) {
        /* Four partial sums per centre, each over every fourth coordinate: independent chains of
         * multiply-adds, so the vector unit is not held up by the latency of each one. Four tiles
         * of accumulators stay in vector registers across the whole row. */
        float acc[4][CVectorKernels_tile] = {{0}};
        size_t t = 0;
        for (; t + 4 <= d; t += 4)
            for (size_t set = 0; set < 4; set++) {
                const float xt = x[t + set];
                const float *row = centresT + (t + set) * stride + base;
                for (size_t j = 0; j < CVectorKernels_tile; j++) {
                    const float diff = xt - row[j];
                    acc[set][j] += diff * diff;
                }
            }
        for (; t < d; t++) {
            const float xt = x[t];
            const float *row = centresT + t * stride + base;
            for (size_t j = 0; j < CVectorKernels_tile; j++) {
                const float diff = xt - row[j];
                acc[0][j] += diff * diff;
            }
        }
        const size_t count = k - base < CVectorKernels_tile ? k - base : CVectorKernels_tile;
        for (size_t j = 0; j < count; j++) out[base + j] = (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]);
    }
}

/* The squared distance of two rows, 16 lanes at a time (the order is fixed: deterministic). */
static inline __attribute__((always_inline)) float squaredDistance(const float *restrict a, const float *restrict b, size_t d) {
    float acc[16] = {0};
    size_t t = 0;
    for (; t + 16 <= d; t += 16)
        for (size_t l = 0; l < 16; l++) {
            const float diff = a[t + l] - b[t + l];
            acc[l] += diff * diff;
        }
    float total = 0;
    for (size_t l = 0; l < 16; l++) total += acc[l];
    for (; t < d; t++) {
        const float diff = a[t] - b[t];
        total += diff * diff;
    }
    return total;
}

/* Lanes of the reductions below: independent minima the compiler keeps in vector registers. */
#define LANES 16

/* The smallest of a[j] over j < k. */
static inline __attribute__((always_inline)) float smallest(const float *restrict a, size_t k) {
    float lane[LANES];
    for (size_t l = 0; l < LANES; l++) lane[l] = INFINITY;
    size_t j = 0;
    for (; j + LANES <= k; j += LANES)
        for (size_t l = 0; l < LANES; l++) lane[l] = a[j + l] < lane[l] ? a[j + l] : lane[l];
    float lowest = INFINITY;
    for (size_t l = 0; l < LANES; l++) lowest = lane[l] < lowest ? lane[l] : lowest;
    for (; j < k; j++) lowest = a[j] < lowest ? a[j] : lowest;
    return lowest;
}

/* The first j with a[j] == value (k when there is none), without a branch per element. */
static inline __attribute__((always_inline)) size_t firstEqual(const float *restrict a, size_t k, float value) {
    uint32_t first = (uint32_t)k;
    for (uint32_t j = 0; j < (uint32_t)k; j++) {
        const uint32_t candidate = a[j] == value ? j : (uint32_t)k;
        first = candidate < first ? candidate : first;
    }
    return first;
}

/* The smallest of a[j] − b[j] over j < k. */
static inline __attribute__((always_inline)) float smallestDifference(const float *restrict a, const float *restrict b, size_t k) {
    float lane[LANES];
    for (size_t l = 0; l < LANES; l++) lane[l] = INFINITY;
    size_t j = 0;
    for (; j + LANES <= k; j += LANES)
        for (size_t l = 0; l < LANES; l++) {
            const float value = a[j + l] - b[j + l];
            lane[l] = value < lane[l] ? value : lane[l];
        }
    float lowest = INFINITY;
    for (size_t l = 0; l < LANES; l++) lowest = lane[l] < lowest ? lane[l] : lowest;
    for (; j < k; j++) lowest = a[j] - b[j] < lowest ? a[j] - b[j] : lowest;
    return lowest;
}

CVECTORKERNELS_CLONES
size_t CVectorKernels_elkanAssign(const CVectorKernels_Elkan *s, size_t begin, size_t end, float *restrict row,
                                  double *restrict sumChanges, intptr_t *restrict countChanges) {
    const size_t d = s->d, k = s->k;
    const float *restrict drift = s->drift;
    const float secondDrift = s->secondDrift;
    size_t changed = 0;
    for (size_t t = 0; t < k * d; t++) sumChanges[t] = 0;
    for (size_t j = 0; j < k; j++) countChanges[j] = 0;
    /* With this many candidates per tile of 32 centres, every distance at once (one pass of the
     * kernel, which makes every bound exact) is cheaper than the candidates one at a time:
     * measured with AVX-512, 2 was fastest and 3 to 12 slower. */
    const size_t denseFrom = s->stride / 16 > 2 ? s->stride / 16 : 2;
    for (size_t i = begin; i < end; i++) {
        /* The rows a few points ahead, which the hardware's prefetcher misses when points skip. */
        if (i + 6 < end) {
            const char *nx = (const char *)(s->x + (i + 6) * d);
            for (size_t line = 0; line < d * sizeof(float); line += 64) __builtin_prefetch(nx + line);
            const char *nb = (const char *)(s->lower + (i + 6) * k);
            for (size_t line = 0; line < k * sizeof(float); line += 64) __builtin_prefetch(nb + line, 1);
        }
        const size_t a = (size_t)s->label[i];
        float u = s->upper[i] + s->shift[a];
        const float secondBound = s->second[i] - secondDrift;
        if (u <= (s->half[a] > secondBound ? s->half[a] : secondBound)) {
            s->upper[i] = u;
            continue;
        }
        float *restrict bounds = s->lower + i * k;
        const float *restrict xi = s->x + i * d;
        const float *restrict separations = s->halfPair + a * k;
        /* The centres that may be nearer, against the decayed bounds and the separations. */
        size_t candidates = 0;
        for (size_t j = 0; j < k; j++) candidates += (u > bounds[j] - drift[j]) & (u > separations[j]);
        if (candidates == 0) {
            s->upper[i] = u;
            continue;
        }
        size_t best = a;
        if (candidates >= denseFrom) {
            CVectorKernels_distancesToCentres(xi, s->centresT, d, k, s->stride, row);
            /* The nearest by squared distance (the square root keeps the order), then the first
             * centre at that distance. */
            u = smallest(row, k);
            best = firstEqual(row, k, u);
            u = sqrtf(u);
            for (size_t j = 0; j < k; j++) bounds[j] = sqrtf(row[j]) + drift[j];
        } else {
            u = sqrtf(squaredDistance(xi, s->c + a * d, d));
            bounds[a] = u + drift[a];
            for (size_t base = 0; base < k; base += 8) {
                const size_t stop = base + 8 < k ? base + 8 : k;
                const float blockU = u;
                unsigned mask = 0;
                for (size_t j = base; j < stop; j++)
                    mask |= (unsigned)((blockU > bounds[j] - drift[j]) & (blockU > separations[j])) << (j - base);
                while (mask) {
                    const size_t j = base + (size_t)__builtin_ctz(mask);
                    mask &= mask - 1;
                    if (j == best || u <= bounds[j] - drift[j] || u <= s->halfPair[best * k + j]) continue;
                    const float distance = sqrtf(squaredDistance(xi, s->c + j * d, d));
                    bounds[j] = distance + drift[j];
                    if (distance < u || (distance == u && j < best)) {
                        best = j;
                        u = distance;
                    }
                }
            }
        }
        s->upper[i] = u;
        /* A lower bound on the second-nearest distance: the smallest decayed bound of the others. */
        const float own = bounds[best];
        bounds[best] = INFINITY;
        const float lowest = smallestDifference(bounds, drift, k);
        bounds[best] = own;
        s->second[i] = lowest + secondDrift;
        if (best != a) {
            double *restrict from = sumChanges + a * d;
            double *restrict to = sumChanges + best * d;
            for (size_t t = 0; t < d; t++) {
                from[t] -= (double)xi[t];
                to[t] += (double)xi[t];
            }
            countChanges[a]--;
            countChanges[best]++;
            changed++;
            s->label[i] = (int32_t)best;
        }
    }
    return changed;
}
