#!/usr/bin/env python3
"""PyTorch reference for k2's training-step benchmark (CPU or CUDA; float32, or bf16 autocast).

Builds the same LLaMA as k2's bench presets with transformers
(`LlamaConfig` + `LlamaForCausalLM`, eager attention, fp32, no TF32) and times
one full training step:

    forward -> mean CE loss (labels = inputs, HF shifts) -> backward
    -> clip_grad_norm_(1.0) -> AdamW(lr 3e-4, betas (0.9, 0.95), eps 1e-8,
       wd 0.1 on >=2-D params, 0 on 1-D) -> zero_grad(set_to_none=True)

Reports medians over --steps timed steps (after --warmup untimed ones) of the
whole step, of forward+backward alone, and of the optimizer part alone
(clip + AdamW.step). Prints one JSON line to stdout (and to --out if given):

    {"impl":"pytorch","torch":..,"preset":..,"batch":..,"seq":..,"threads":..,
     "params":..,"step_s_median":..,"fwd_bwd_s_median":..,"optim_s_median":..,
     "tokens_per_s":..,"flops_per_token":..,"achieved_tflops":..}

flops_per_token = 6*N_matmul + 12*layers*hidden*seq, where N_matmul counts all
parameters except the embedding table and the RMSNorm weights (layer matrices +
lm_head), the convention k2's Rust bench uses. tokens_per_s = batch*seq /
step_s_median; achieved_tflops = flops_per_token * tokens_per_s / 1e12.

Usage:
    python bench/torch_train.py --preset bench-17m [--batch 8 --seq 256]
        [--threads 2 --warmup 2 --steps 10 --out result.json]
"""

import argparse
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {
    # name: model shape + default (batch, seq)
    "bench-17m": dict(vocab=8192, hidden=384, layers=6, heads=6, inter=1024, batch=8, seq=256),
    "default": dict(vocab=1024, hidden=128, layers=4, heads=4, inter=352, batch=16, seq=128),
    # GPU shapes (issue 10): 134M with untied embeddings, and TinyLlama-1.1B (GQA 32/4).
    "bench-134m": dict(vocab=32000, hidden=768, layers=12, heads=12, inter=2048, batch=16, seq=512),
    "tinyllama-1.1b": dict(vocab=32000, hidden=2048, layers=22, heads=32, kv_heads=4, inter=5632,
                           batch=4, seq=2048),
}


def build_model(p, seed, attn="eager", max_pos=256):
    kw = dict(
        vocab_size=p["vocab"],
        hidden_size=p["hidden"],
        intermediate_size=p["inter"],
        num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"],
        num_key_value_heads=p.get("kv_heads", p["heads"]),
        max_position_embeddings=max_pos,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        initializer_range=0.02,
        use_cache=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
    )
    # transformers >= 5 keeps rope_theta in rope_parameters; older takes rope_theta.
    try:
        cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **kw)
    except TypeError:
        cfg = LlamaConfig(rope_theta=10000.0, **kw)
    torch.manual_seed(seed)
    model = LlamaForCausalLM._from_config(cfg, attn_implementation=attn, dtype=torch.float32) \
        if hasattr(LlamaForCausalLM, "_from_config") else LlamaForCausalLM(cfg)
    if model.config._attn_implementation != attn:
        model.config._attn_implementation = attn
    # Explicit init: normal(0, 0.02) for every matrix, ones for norm weights.
    with torch.no_grad():
        for name, w in model.named_parameters():
            if w.ndim >= 2:
                w.normal_(0.0, 0.02)
            else:
                w.fill_(1.0)
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert all(w.dtype == torch.float32 for w in model.parameters())
    return model


def main():
    ap = argparse.ArgumentParser(description="PyTorch reference training-step benchmark for k2")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="bench-17m")
    ap.add_argument("--batch", type=int, default=None, help="default: 8 (bench-17m), 16 (default)")
    ap.add_argument("--seq", type=int, default=None, help="default: 256 (bench-17m), 128 (default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON result to this file")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                    help="bf16: autocast to bf16 with f32 master weights and AdamW state (K2's mixed precision)")
    ap.add_argument("--attn", choices=["eager", "sdpa"], default="eager")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="MFU denominator (default: 790 for bf16 on cuda, none otherwise)")
    args = ap.parse_args()

    p = PRESETS[args.preset]
    batch = args.batch or p["batch"]
    seq = args.seq or p["seq"]
    dev = torch.device(args.device)

    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    model = build_model(p, args.seed, attn=args.attn, max_pos=max(256, seq)).to(dev)
    model.train()
    fwd = torch.compile(model) if args.compile else model
    amp = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    params = [w for w in model.parameters() if w.requires_grad]
    n_params = sum(w.numel() for w in params)
    n_matmul = sum(
        w.numel() for n, w in model.named_parameters() if "embed_tokens" not in n and "norm" not in n
    )
    flops_per_token = 6 * n_matmul + 12 * p["layers"] * p["hidden"] * seq

    decay = [w for w in params if w.ndim >= 2]
    no_decay = [w for w in params if w.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=3e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True,
    )

    g = torch.Generator().manual_seed(args.seed)
    n_total = args.warmup + args.steps
    batches = [torch.randint(0, p["vocab"], (batch, seq), generator=g).to(dev) for _ in range(n_total)]

    step_t, fb_t, opt_t, losses = [], [], [], []
    for i in range(n_total):
        x = batches[i]
        sync()
        t0 = time.perf_counter()
        with amp:
            loss = fwd(input_ids=x, labels=x, use_cache=False).loss  # mean CE over B*(T-1)
        loss.backward()
        sync()
        t1 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sync()
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        losses.append(loss.item())
        if i >= args.warmup:
            step_t.append(t3 - t0)
            fb_t.append(t1 - t0)
            opt_t.append(t2 - t1)
        print(f"step {i:3d} loss {losses[-1]:.4f} step {t3 - t0:.3f}s fwd_bwd {t1 - t0:.3f}s "
              f"optim {t2 - t1:.3f}s{'  (warmup)' if i < args.warmup else ''}", file=sys.stderr)

    step_s = statistics.median(step_t)
    tokens_per_s = batch * seq / step_s
    res = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "preset": args.preset,
        "device": args.device,
        "dtype": args.dtype,
        "attn": args.attn,
        "compile": args.compile,
        "batch": batch,
        "seq": seq,
        "threads": args.threads,
        "params": n_params,
        "step_s_median": step_s,
        "fwd_bwd_s_median": statistics.median(fb_t),
        "optim_s_median": statistics.median(opt_t),
        "tokens_per_s": tokens_per_s,
        "flops_per_token": flops_per_token,
        "achieved_tflops": flops_per_token * tokens_per_s / 1e12,
    }
    peak = args.peak_tflops or (790.0 if dev.type == "cuda" and args.dtype == "bf16" else None)
    if peak:
        res["peak_tflops"] = peak
        res["mfu"] = res["achieved_tflops"] / peak
    print(f"transformers {transformers.__version__}, n_matmul {n_matmul}, "
          f"loss first {losses[0]:.4f} last {losses[-1]:.4f}", file=sys.stderr)
    line = json.dumps(res)
    print(line)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
