#!/usr/bin/env python3
"""Helpers of bench/gpu-check.sh: comparisons of k2's outputs and the transformers references.

    gpu_check.py compare-scores A.json B.json [--label L]     # k2 model score outputs: per-token |diff|
    gpu_check.py hf-score MODEL TEXT --device cuda --dtype bf16 --out F.json
                                                          # transformers' per-token log-probs (same JSON)
    gpu_check.py compare-losses RUN_A RUN_B [--steps 20]     # metrics.jsonl losses, step by step
    gpu_check.py compare-manifests RUN_A RUN_B               # every checkpoint file's sha256
    gpu_check.py hf-loglik MODEL SAMPLES.jsonl --device cuda --dtype bf16 --batch 8
        # lm-eval HF-backend-style loglikelihood of the requests k2 wrote (context/continuation split
        # by tokenizing context+continuation, sorted longest first, right-padded batches, one forward
        # per request, log_softmax + gather), timed; compares the log-likelihoods with k2's.

Every command prints one JSON line. transformers and torch are needed only by hf-score and hf-loglik.
"""
import argparse
import json
import sys
import time


def load(p):
    with open(p) as f:
        return json.load(f)


def compare_scores(a, b, label):
    x, y = load(a), load(b)
    assert x["tokens"] == y["tokens"], "different token ids"
    d = [abs(p - q) for p, q in zip(x["logprobs"], y["logprobs"])]
    print(json.dumps({
        "check": "logprobs", "label": label, "a": f"{x.get('device')}/{x.get('dtype')}",
        "b": f"{y.get('device')}/{y.get('dtype')}", "n": len(d),
        "max_abs_diff": max(d), "mean_abs_diff": sum(d) / len(d),
        "sum_a": x["sum"], "sum_b": y["sum"],
    }))


def hf_score(model, text_file, device, dtype, out):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dt = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    tok = AutoTokenizer.from_pretrained(model)
    m = AutoModelForCausalLM.from_pretrained(model, dtype=dt, attn_implementation="eager").to(device).eval()
    text = open(text_file).read()
    ids = tok(text)["input_ids"][: m.config.max_position_embeddings]
    t = torch.tensor([ids], device=device)
    with torch.no_grad():
        logits = m(t).logits.float()
    lp = torch.log_softmax(logits[0, :-1], dim=-1).gather(1, t[0, 1:, None])[:, 0]
    res = {"model": model, "device": f"torch-{device}", "dtype": dtype, "tokens": ids,
           "logprobs": lp.cpu().tolist(), "sum": float(lp.sum())}
    with open(out, "w") as f:
        json.dump(res, f)
    print(json.dumps({"check": "hf-score", "out": out, "n": len(ids) - 1, "sum": res["sum"]}))


def losses(run):
    out = {}
    for line in open(f"{run}/metrics.jsonl"):
        v = json.loads(line)
        if "loss" in v and "step" in v:
            out[v["step"]] = v["loss"]  # last row per step = the surviving lineage
    return out


def compare_losses(a, b, steps):
    la, lb = losses(a), losses(b)
    common = sorted(set(la) & set(lb))
    first = [s for s in common if s <= steps]
    d_first = max(abs(la[s] - lb[s]) for s in first)
    d_all = max(abs(la[s] - lb[s]) for s in common)
    last = common[-1]
    print(json.dumps({
        "check": "losses", "a": a, "b": b, "steps_compared": len(common),
        f"max_abs_diff_first_{steps}": d_first, "max_abs_diff_all": d_all,
        "final_step": last, "final_a": la[last], "final_b": lb[last],
        "final_rel_diff": abs(la[last] - lb[last]) / la[last],
    }))


def compare_manifests(a, b):
    import tomllib

    def files(run):
        m = tomllib.load(open(f"{run}/checkpoints.toml", "rb"))
        return {(c["name"], k): v for c in m.get("checkpoint", []) for k, v in c.get("files", {}).items()}

    fa, fb = files(a), files(b)
    same = sum(1 for k in fa if fb.get(k) == fa[k])
    print(json.dumps({"check": "manifests", "a": a, "b": b, "files": len(fa), "identical": same,
                      "bit_identical": fa == fb}))


def hf_loglik(model, samples, device, dtype, batch):
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dt = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    tok = AutoTokenizer.from_pretrained(model)
    m = AutoModelForCausalLM.from_pretrained(model, dtype=dt, attn_implementation="sdpa").to(device).eval()
    reqs, k2_ll = [], []
    for line in open(samples):
        v = json.loads(line)
        for a, r in zip(v["arguments"], v["resps"]):
            reqs.append((a["context"], a["continuation"]))
            k2_ll.append(r["ll"])
    max_len = m.config.max_position_embeddings

    def run():
        t0 = time.perf_counter()
        enc = []
        for i, (ctx, cont) in enumerate(reqs):
            n_sp = len(ctx) - len(ctx.rstrip())
            if n_sp:
                ctx, cont = ctx[:-n_sp], ctx[-n_sp:] + cont
            # Special tokens as the tokenizer adds them (BOS for LLaMA tokenizers), as k2 does.
            whole = tok(ctx + cont)["input_ids"]
            c = tok(ctx)["input_ids"]
            enc.append((i, c, whole[len(c):]))
        order = sorted(enc, key=lambda e: -(len(e[1]) + len(e[2])))
        out = [0.0] * len(reqs)
        with torch.no_grad():
            for s in range(0, len(order), batch):
                chunk = order[s:s + batch]
                inps = [(c + k)[-(max_len + 1):][:-1] for _, c, k in chunk]
                width = max(len(x) for x in inps)
                t = torch.zeros((len(inps), width), dtype=torch.long)
                for j, x in enumerate(inps):
                    t[j, :len(x)] = torch.tensor(x)
                logits = F.log_softmax(m(t.to(device)).logits, dim=-1)
                for j, (i, c, k) in enumerate(chunk):
                    n = len(inps[j])
                    lp = logits[j, n - len(k):n].gather(1, torch.tensor(k, device=device)[:, None])
                    out[i] = float(lp.float().sum())
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out

    run()  # warm-up (kernels, allocator)
    secs, lls = run()
    d = [abs(a - b) for a, b in zip(lls, k2_ll)]
    print(json.dumps({
        "check": "hf-loglik", "impl": f"transformers {__import__('transformers').__version__} "
        f"torch {torch.__version__} sdpa", "device": device, "dtype": dtype, "batch": batch,
        "requests": len(reqs), "seconds": secs, "requests_per_s": len(reqs) / secs,
        "max_abs_ll_diff_vs_k2": max(d), "mean_abs_ll_diff_vs_k2": sum(d) / len(d),
    }))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("compare-scores")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--label", default="")
    p = sub.add_parser("hf-score")
    p.add_argument("model")
    p.add_argument("text")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="f32")
    p.add_argument("--out", required=True)
    p = sub.add_parser("compare-losses")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--steps", type=int, default=20)
    p = sub.add_parser("compare-manifests")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("hf-loglik")
    p.add_argument("model")
    p.add_argument("samples")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()
    if a.cmd == "compare-scores":
        compare_scores(a.a, a.b, a.label)
    elif a.cmd == "hf-score":
        hf_score(a.model, a.text, a.device, a.dtype, a.out)
    elif a.cmd == "compare-losses":
        compare_losses(a.a, a.b, a.steps)
    elif a.cmd == "compare-manifests":
        compare_manifests(a.a, a.b)
    else:
        hf_loglik(a.model, a.samples, a.device, a.dtype, a.batch)


if __name__ == "__main__":
    sys.exit(main())
