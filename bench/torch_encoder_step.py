#!/usr/bin/python3
"""PyTorch peer of bench/encoder_step_test.go: one BERT training step, same model and step.

The encoder mirrors models/bert.go (Hugging Face BERT layout): word + position + token-type
embeddings, LayerNorm(eps=1e-12), post-LN layers with 1/sqrt(dk) multi-head attention and an
additive padding mask, exact (erf) GELU, dropout 0.1 in training. The head is a linear layer on
the [CLS] state, the loss softmax cross-entropy, the optimizer AdamW(lr=1e-4, betas=(0.9, 0.999),
eps=1e-8, weight_decay=0.01) over every parameter. Batch 32, sequence 128, int32 ids drawn
uniformly from the 30522-token vocabulary, no padding.

Run with Debian's interpreter (the pyenv python3 on PATH does not see python3-torch):

    apt-get install -y python3-torch libopenblas0-pthread
    /usr/bin/python3 bench/torch_encoder_step.py --config tiny128 --steps 10
    /usr/bin/python3 bench/torch_encoder_step.py --config small --steps 10

It prints the median wall time and the median process CPU time per step (ms).
"""

import argparse
import math
import os
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    # name: (layers, hidden, heads, intermediate)
    "tiny128": (2, 128, 4, 512),
    "tiny": (2, 64, 2, 256),
    "small": (4, 256, 4, 1024),
    "base": (12, 768, 12, 3072),
}
VOCAB, MAX_POS, TYPE_VOCAB, DROPOUT, EPS = 30522, 512, 2, 0.1, 1e-12


class Layer(nn.Module):
    def __init__(self, h, heads, inter):
        super().__init__()
        self.heads, self.dk = heads, h // heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_out, self.attn_norm = nn.Linear(h, h), nn.LayerNorm(h, eps=EPS)
        self.inter, self.out, self.out_norm = nn.Linear(h, inter), nn.Linear(inter, h), nn.LayerNorm(h, eps=EPS)
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x, mask_bias):
        b, t, h = x.shape
        split = lambda y: y.view(b, t, self.heads, self.dk).transpose(1, 2)
        q = split(self.query(x) * (1.0 / math.sqrt(self.dk)))
        k, v = split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) + mask_bias
        probs = self.drop(torch.softmax(scores, dim=-1))
        ctx = (probs @ v).transpose(1, 2).reshape(b, t, h)
        x = self.attn_norm(x + self.drop(self.attn_out(ctx)))
        ff = self.out(F.gelu(self.inter(x)))
        return self.out_norm(x + self.drop(ff))


class Encoder(nn.Module):
    def __init__(self, layers, h, heads, inter, classes=2):
        super().__init__()
        self.word, self.pos, self.types = nn.Embedding(VOCAB, h), nn.Embedding(MAX_POS, h), nn.Embedding(TYPE_VOCAB, h)
        self.norm, self.drop = nn.LayerNorm(h, eps=EPS), nn.Dropout(DROPOUT)
        self.layers = nn.ModuleList([Layer(h, heads, inter) for _ in range(layers)])
        self.head = nn.Linear(h, classes)
        for m in self.modules():  # HF BERT init.
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids, mask):
        t = ids.shape[1]
        x = self.word(ids) + self.pos.weight[:t].unsqueeze(0) + self.types.weight[0]
        x = self.drop(self.norm(x))
        mask_bias = ((1.0 - mask.float()) * -1e9)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask_bias)
        return self.head(x[:, 0])


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="tiny128", choices=sorted(CONFIGS))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--phase", default="step", choices=["fwd", "fwdbwd", "step"],
                   help="time only the forward, forward+backward, or the full step")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layers, h, heads, inter = CONFIGS[args.config]
    model = Encoder(layers, h, heads, inter).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    ids = torch.randint(0, VOCAB, (args.batch, args.seq), dtype=torch.int32).long()
    mask = torch.ones(args.batch, args.seq, dtype=torch.int32)
    labels = torch.randint(0, 2, (args.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(ids, mask), labels)
        if args.phase != "fwd":
            loss.backward()
        if args.phase == "step":
            opt.step()
        return loss.item()

    step()  # Warm-up.
    walls, cpus = [], []
    for _ in range(args.steps):
        w0, c0 = time.perf_counter(), cpu_seconds()
        loss = step()
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((cpu_seconds() - c0) * 1000)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} config={args.config} phase={args.phase} params={n_params} "
          f"batch={args.batch} seq={args.seq} loss={loss:.4f} load={os.getloadavg()[0]:.2f}")
    print(f"wall ms/step: median={statistics.median(walls):.1f} min={min(walls):.1f} all={[round(w) for w in walls]}")
    print(f"cpu  ms/step: median={statistics.median(cpus):.1f} min={min(cpus):.1f}")


if __name__ == "__main__":
    main()
