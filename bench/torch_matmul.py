#!/usr/bin/python3
"""PyTorch (OpenBLAS) peer of the per-product benchmarks: the matrix products of one training
step of the tiny128 and small encoders (batch 32 x 128 tokens), written the way
bench/torch_encoder_step.py's model computes them (nn.Linear's forward and gradients, the
attention products on [batch, heads, tokens, dk] views).

Same products as `go test ./matmul/ -bench DotGeneral` and
`go test ./bench/ -bench DotGeneralLayouts`. Run with Debian's interpreter:

    apt-get install -y python3-torch libopenblas0-pthread
    /usr/bin/python3 bench/torch_matmul.py --threads 1

It prints, per product, the median wall time of --reps runs and the GFLOP/s.
"""

import argparse
import statistics
import time

import torch

B, T = 32, 128
N = B * T


def products(hidden, inter, heads):
    dk = hidden // heads
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)
    x, w, v = r(N, hidden), r(inter, hidden), r(N, inter)
    xh = r(N, hidden)
    q = r(B, T, hidden).view(B, T, heads, dk).transpose(1, 2)
    k = r(B, T, hidden).view(B, T, heads, dk).transpose(1, 2)
    p = r(B, heads, T, T)
    vv = r(B, T, hidden).view(B, T, heads, dk).transpose(1, 2)
    bh = B * heads
    return [
        # name, function, multiply-adds
        (f"dense_fwd_x[{N},{hidden}].w[{inter},{hidden}]", lambda: torch.nn.functional.linear(x, w), N * hidden * inter),
        (f"dense_dx_v[{N},{inter}].w[{inter},{hidden}]", lambda: v @ w, N * hidden * inter),
        (f"dense_dw_v[{N},{inter}].x[{N},{hidden}]", lambda: v.t() @ xh, N * hidden * inter),
        (f"attn_scores_q.k[{bh}x({T}x{T}x{dk})]", lambda: q @ k.transpose(-1, -2), bh * T * T * dk),
        (f"attn_context_p.v[{bh}x({T}x{dk}x{T})]", lambda: p @ vv, bh * T * T * dk),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}")
    for config, (hidden, inter, heads) in [("tiny128", (128, 512, 4)), ("small", (256, 1024, 4))]:
        for name, fn, macs in products(hidden, inter, heads):
            fn()  # Warm-up.
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            print(f"{config}/{name}: median {med * 1e3:.3f} ms  {2 * macs / med / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
