"""Per-call time of a layer call at S1 sizes (T=100 and T=1), median of many calls:
what bench/results/house-options-s1-compare.txt compares between two trees (run
with each tree on PYTHONPATH: PYTHONPATH=TREE python3 bench/layer_call.py)."""
import statistics
import time

import numpy as np

import rnnkern as rk

out = []
for cls in ("SimpleRNN", "LSTM", "GRU"):
    for T in (1, 100):
        layer = getattr(rk, cls)(128, return_sequences=True, seed=1)
        x = np.random.default_rng(0).standard_normal((1, T, 32)).astype(np.float32)
        for training in (False, None):
            for _ in range(200):
                layer(x, training=training)
            ts = []
            for _ in range(15 if T == 100 else 25):
                t0 = time.perf_counter()
                for _ in range(40):
                    layer(x, training=training)
                ts.append((time.perf_counter() - t0) / 40)
            out.append(f"{cls:9s} T={T:<3d} training={str(training):5s} {statistics.median(ts)*1e6:8.1f} us")
print("\n".join(out))
