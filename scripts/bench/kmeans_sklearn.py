"""scikit-learn side of `faultline bench kmeans`: reads the file it writes, times
KMeans(lloyd, n_init=1, same initial centroids, max_iter=300, tol=1e-4) on float32 with the
default thread count and with one thread, and computes both inertias in float64.
Usage: python3 kmeans_sklearn.py FILE [REPEATS]. Last line: one JSON object."""
import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_info, threadpool_limits


def inertia(x64, centres):
    c = centres.astype(np.float64)
    best = np.full(x64.shape[0], np.inf)
    for start in range(0, x64.shape[0], 8192):
        block = x64[start:start + 8192]
        d2 = ((block[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        best[start:start + 8192] = d2.min(axis=1)
    return float(best.sum())


def main():
    path = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    raw = open(path, "rb").read()
    n, d, k = np.frombuffer(raw, dtype="<i8", count=3)
    n, d, k = int(n), int(d), int(k)
    offset = 24
    x = np.frombuffer(raw, dtype="<f4", count=n * d, offset=offset).reshape(n, d)
    offset += 4 * n * d
    init = np.frombuffer(raw, dtype="<f4", count=k * d, offset=offset).reshape(k, d)
    offset += 4 * k * d
    faultline_centres = np.frombuffer(raw, dtype="<f4", count=k * d, offset=offset).reshape(k, d)
    offset += 4 * k * d
    faultline_labels = np.frombuffer(raw, dtype="<i4", count=n, offset=offset)
    x = np.ascontiguousarray(x)
    init = np.ascontiguousarray(init)

    def run():
        best, best_cpu, model = float("inf"), float("inf"), None
        for _ in range(repeats):
            km = KMeans(n_clusters=k, n_init=1, init=init, max_iter=300, tol=1e-4, algorithm="lloyd")
            start, start_cpu = time.perf_counter(), time.process_time()
            km.fit(x)
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)  # all threads of the process
            model = km
        return best, best_cpu, model

    default_s, default_cpu, model = run()
    with threadpool_limits(limits=1):
        one_thread_s, one_thread_cpu, _ = run()
    x64 = x.astype(np.float64)
    result = {
        "sklearn_s": default_s,
        "sklearn_1thread_s": one_thread_s,
        "sklearn_cpu_s": default_cpu,
        "sklearn_1thread_cpu_s": one_thread_cpu,
        "sklearn_iterations": int(model.n_iter_),
        "sklearn_inertia": inertia(x64, model.cluster_centers_),
        "sklearn_inertia_own": float(model.inertia_),
        "faultline_inertia": inertia(x64, faultline_centres),
        "ari_between": float(adjusted_rand_score(model.labels_, faultline_labels)),
        "threads": [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()],
        "dtype": str(model.cluster_centers_.dtype),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
