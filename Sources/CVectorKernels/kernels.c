#include "CVectorKernels.h"

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
        /* A tile of accumulators stays in vector registers across the whole row. */
        float acc[CVectorKernels_tile] = {0};
        for (size_t t = 0; t < d; t++) {
            const float xt = x[t];
            const float *row = centresT + t * stride + base;
            for (size_t j = 0; j < CVectorKernels_tile; j++) {
                const float diff = xt - row[j];
                acc[j] += diff * diff;
            }
        }
        const size_t count = k - base < CVectorKernels_tile ? k - base : CVectorKernels_tile;
        for (size_t j = 0; j < count; j++) out[base + j] = acc[j];
    }
}
