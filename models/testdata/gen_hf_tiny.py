#!/usr/bin/python3
"""Generates models/testdata/hf-tiny: a tiny BERT checkpoint in Hugging Face's layout.

Run from the repository root with any Python 3 that has numpy (Debian's python3-numpy:
/usr/bin/python3 models/testdata/gen_hf_tiny.py). Deterministic (seed 7).

Files written to models/testdata/hf-tiny/:
  model.safetensors       BertForPreTraining names with the "bert." prefix and modern
                          LayerNorm names (weight/bias), all F32, plus the extras of a real
                          bert-base-uncased file: bert.pooler.*, cls.predictions.* (no
                          decoder: tied), cls.seq_relationship.* and the int64
                          bert.embeddings.position_ids buffer.
  model-half.safetensors  the same weights without the "bert." prefix, old TF-style
                          LayerNorm names (gamma/beta), the embeddings in BF16 and the
                          rest of the encoder in F16 (as HF's half-precision exports).
  config.json             the HF BertConfig.
  vocab.txt               50 tokens ([PAD] [UNK] [CLS] [SEP] [MASK] + words).
  expected.json           a fixed input (ids, token types, mask) and the encoder's last
                          hidden states and pooled output, from an independent numpy
                          float64 forward pass of HF BERT (post-LN, exact GELU, eps 1e-12,
                          attention scaled by 1/sqrt(head dim), padding keys masked).

Weights are drawn with stddev 0.5 (not BERT's 0.02), so the comparison is sensitive to
scaling, masking and normalisation details.
"""
import json
import math
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf-tiny")
CFG = dict(
    architectures=["BertForPreTraining"], model_type="bert", hidden_size=16,
    num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=24, type_vocab_size=2, vocab_size=50, hidden_act="gelu",
    hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12,
    initializer_range=0.02, pad_token_id=0, position_embedding_type="absolute",
)
WORDS = ("the a and of for with red blue green black white shoes shirt dress size small large "
         "pack ounce free gluten organic cotton wool soft long short men women kids "
         "chair table lamp wood metal glass easy clean").split()


def vocab():
    v = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    v += ["##s", "##ed", "##ing", "##er", "##ly", "##y", "##es"]
    assert len(v) == CFG["vocab_size"], len(v)
    return v


def weights(rng):
    h, inter, v = CFG["hidden_size"], CFG["intermediate_size"], CFG["vocab_size"]
    w = {}

    def n(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    w["embeddings.word_embeddings.weight"] = n(v, h)
    w["embeddings.position_embeddings.weight"] = n(CFG["max_position_embeddings"], h)
    w["embeddings.token_type_embeddings.weight"] = n(CFG["type_vocab_size"], h)
    w["embeddings.LayerNorm.weight"] = (1 + n(h)).astype(np.float32)
    w["embeddings.LayerNorm.bias"] = n(h)
    for l in range(CFG["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        for name, (o, i) in [("attention.self.query", (h, h)), ("attention.self.key", (h, h)),
                             ("attention.self.value", (h, h)), ("attention.output.dense", (h, h)),
                             ("intermediate.dense", (inter, h)), ("output.dense", (h, inter))]:
            w[p + name + ".weight"] = n(o, i)
            w[p + name + ".bias"] = n(o)
        for name in ["attention.output.LayerNorm", "output.LayerNorm"]:
            w[p + name + ".weight"] = (1 + n(h)).astype(np.float32)
            w[p + name + ".bias"] = n(h)
    w["pooler.dense.weight"] = n(h, h)
    w["pooler.dense.bias"] = n(h)
    return w


def head(rng):
    h, v = CFG["hidden_size"], CFG["vocab_size"]
    n = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)
    return {
        "cls.predictions.bias": n(v),
        "cls.predictions.transform.dense.weight": n(h, h),
        "cls.predictions.transform.dense.bias": n(h),
        "cls.predictions.transform.LayerNorm.weight": (1 + n(h)).astype(np.float32),
        "cls.predictions.transform.LayerNorm.bias": n(h),
        "cls.seq_relationship.weight": n(2, h),
        "cls.seq_relationship.bias": n(2),
    }


def to_bf16_bits(a):
    """float32 -> bfloat16 bits (uint16), round to nearest even."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, numpy array already in that dtype's bytes)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        dt, arr = tensors[name]
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return x * 0.5 * (1 + erf(x / math.sqrt(2)))


def forward(w, ids, types, mask):
    """HF BertModel forward in float64: last hidden states [B, T, H] and pooled [B, H]."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    eps, heads = CFG["layer_norm_eps"], CFG["num_attention_heads"]
    B, T = ids.shape
    h = CFG["hidden_size"]
    dk = h // heads
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types] \
        + w["embeddings.position_embeddings.weight"][np.arange(T)][None]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9)
    lin = lambda x, p: x @ w[p + ".weight"].T + w[p + ".bias"]
    for l in range(CFG["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        split = lambda t: t.reshape(B, T, heads, dk).transpose(0, 2, 1, 3)
        q, k, v = (split(lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dk) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        c = (s @ v).transpose(0, 2, 1, 3).reshape(B, T, h)
        x = layer_norm(x + lin(c, p + "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
        x = layer_norm(x + f, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    pooled = np.tanh(lin(x[:, 0], "pooler.dense"))
    return x, pooled


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    w = weights(rng)
    extra = head(rng)

    full = {"bert." + k: ("F32", v) for k, v in w.items()}
    full.update({k: ("F32", v) for k, v in extra.items()})
    full["bert.embeddings.position_ids"] = ("I64", np.arange(CFG["max_position_embeddings"], dtype=np.int64)[None])
    write_safetensors(os.path.join(OUT, "model.safetensors"), full)

    half = {}
    for k, v in w.items():
        name = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        if k.startswith("embeddings."):
            half[name] = ("BF16", to_bf16_bits(v))
        else:
            half[name] = ("F16", v.astype(np.float16))
    write_safetensors(os.path.join(OUT, "model-half.safetensors"), half)

    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab()) + "\n")

    ids = np.array([[2, 5, 10, 15, 20, 3, 25, 30, 45, 3],
                    [2, 12, 13, 14, 49, 3, 0, 0, 0, 0]], dtype=np.int64)
    types = np.array([[0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
                      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=np.int64)
    mask = (np.arange(10)[None] < np.array([[10], [6]])).astype(np.int64)
    hidden, pooled = forward(w, ids, types, mask)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"ids": ids.tolist(), "token_types": types.tolist(), "mask": mask.tolist(),
                   "last_hidden_state": np.round(hidden, 7).tolist(),
                   "pooler_output": np.round(pooled, 7).tolist()}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
