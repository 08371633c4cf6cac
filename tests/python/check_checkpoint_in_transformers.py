#!/usr/bin/env python3
"""Check k2 HF-format checkpoints against Hugging Face transformers.

For each selected checkpoint ckpt_K of a finished k2 run this script

  * loads the model with AutoModelForCausalLM.from_pretrained(ckpt, dtype=float32)
    and the tokenizer with AutoTokenizer.from_pretrained(ckpt), and checks that
    the tokenizer encodes a sample text exactly like the `tokenizers` library
    does from the checkpoint's tokenizer.json;
  * asks the k2 binary for the batch of step s = K * steps_per_checkpoint + 1
    (`k2 data batch --run RUN --step s --json`), i.e. the first step whose
    forward pass used exactly the weights stored in ckpt_K;
  * computes the mean next-token cross-entropy of that batch with transformers
    in float32 (labels=input_ids: HF shifts internally, mean over all tokens;
    all samples have the same length, so this equals k2's mean over equal-size
    micro-batches) and compares it with the `loss` logged for step s in
    metrics.jsonl.

Exits non-zero if any |diff| > --tol (default 1e-4), or if a tokenizer check
fails.  `--greedy` additionally generates 30 tokens greedily from a short
prompt with the last checkpoint and prints the text.

Usage:
  python tests/python/check_checkpoint_in_transformers.py RUN_DIR \
      [--ckpts ckpt_0001,ckpt_0013] [--k2 target/release/k2] [--greedy]

Default checkpoints: the first, a middle one, the first stage-2 checkpoint
after the stage boundary (if any), and the last-but-one (the last checkpoint
has no following step and is skipped).

Note: the checkpoint written at the last step of a stage (e.g. ckpt_0012 of
the default run, step 240) carries the *old* stage's config (rope_theta 1e4,
128 context) while step 241 already runs stage 2 (rope_theta 5e5, 256-token
samples); such a checkpoint cannot reproduce the next step's loss from its
own config.json, so it is not part of the default list.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

# CPU only, 2 threads -- set before importing torch.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_TEXT = (
    "Emma lived in a small house near the river. She had 3 cats!\n"
    "def add(a, b):\n    return a + b\n12 + 30 = 42. Paris is the capital of France."
)
GREEDY_PROMPT = "Emma lived in a"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="finished k2 run directory")
    p.add_argument(
        "--ckpts",
        default=None,
        help="comma-separated checkpoint names or numbers (e.g. ckpt_0001,13); "
        "default: first, middle, first stage-2, last-but-one",
    )
    p.add_argument("--k2", default="target/release/k2", help="path to the k2 binary")
    p.add_argument("--tol", type=float, default=1e-4, help="max allowed |diff|")
    p.add_argument("--greedy", action="store_true",
                   help="also generate 30 tokens greedily with the last checkpoint")
    return p.parse_args()


def resolve_k2(path_str):
    p = Path(path_str)
    if p.is_file():
        return p.resolve()
    if not p.is_absolute() and (REPO_ROOT / p).is_file():
        return (REPO_ROOT / p).resolve()
    sys.exit(f"error: k2 binary not found at {path_str!r} (nor under {REPO_ROOT})")


def ckpt_number(name):
    m = re.fullmatch(r"ckpt_(\d+)", name)
    return int(m.group(1)) if m else None


def rope_theta_of(config):
    rp = getattr(config, "rope_parameters", None)
    if isinstance(rp, dict) and "rope_theta" in rp:
        return rp["rope_theta"]
    return getattr(config, "rope_theta", None)


def default_ckpts(all_ckpts, run_dir):
    """first, middle, first stage-2 checkpoint, last-but-one (all but the last)."""
    usable = all_ckpts[:-1]  # the last one has no following step
    if not usable:
        return []
    chosen = [usable[0], usable[len(usable) // 2], usable[-1]]
    # First checkpoint whose own config is stage 2+ (rope_theta differs from the
    # first checkpoint's), and whose predecessor is too -> not a boundary checkpoint.
    def theta(name):
        cfg = json.loads((run_dir / name / "config.json").read_text())
        return cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta"))

    t0 = theta(usable[0])
    for name in usable:
        if theta(name) != t0:
            chosen.append(name)
            break
    out = []
    for c in sorted(set(chosen), key=ckpt_number):
        out.append(c)
    return out


def load_batch(k2, run_dir, step):
    res = subprocess.run(
        [str(k2), "data", "batch", "--run", str(run_dir), "--step", str(step), "--json"],
        capture_output=True, text=True, check=False,
    )
    if res.returncode != 0:
        sys.exit(f"error: k2 data batch --step {step} failed (rc={res.returncode}):\n{res.stderr}")
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    seqs = [r["token_ids"] for r in rows]
    lens = {len(s) for s in seqs}
    if len(lens) != 1:
        sys.exit(f"error: step {step}: samples of unequal length {sorted(lens)}")
    return torch.tensor(seqs, dtype=torch.long)


def check_tokenizer(ckpt_dir):
    """AutoTokenizer must encode like the tokenizers library on tokenizer.json."""
    hf_tok = AutoTokenizer.from_pretrained(ckpt_dir)
    raw = tokenizers.Tokenizer.from_file(str(Path(ckpt_dir) / "tokenizer.json"))
    ok = True
    for add_special in (True, False):
        a = hf_tok(SAMPLE_TEXT, add_special_tokens=add_special)["input_ids"]
        b = raw.encode(SAMPLE_TEXT, add_special_tokens=add_special).ids
        ok &= a == b
    ok &= hf_tok.decode(raw.encode(SAMPLE_TEXT).ids) == raw.decode(raw.encode(SAMPLE_TEXT).ids)
    return hf_tok, ok, len(raw.encode(SAMPLE_TEXT).ids)


@torch.no_grad()
def batch_loss(model, input_ids, micro_batch):
    """Mean next-token CE over all tokens; done per micro-batch (equal sizes) and averaged."""
    losses = []
    for mb in input_ids.split(micro_batch):
        out = model(input_ids=mb, labels=mb)
        losses.append(out.loss.double().item())
    return sum(losses) / len(losses)


def main():
    args = parse_args()
    torch.set_num_threads(2)
    transformers.utils.logging.disable_progress_bar()
    run_dir = args.run_dir.resolve()
    k2 = resolve_k2(args.k2)

    cfg = tomllib.loads((run_dir / "config.toml").read_text())
    train = cfg["train"]
    spc = int(train["steps_per_checkpoint"])
    global_batch = int(train["global_batch"])
    micro_batch = int(train.get("micro_batch", global_batch))

    metrics = {}
    with open(run_dir / "metrics.jsonl") as f:
        for line in f:
            if line.strip():
                m = json.loads(line)
                metrics[int(m["step"])] = m

    all_ckpts = sorted(
        (p.name for p in run_dir.iterdir() if p.is_dir() and ckpt_number(p.name) is not None),
        key=ckpt_number,
    )
    if not all_ckpts:
        sys.exit(f"error: no ckpt_NNNN directories in {run_dir}")
    if args.ckpts:
        sel = []
        for tok in args.ckpts.split(","):
            tok = tok.strip()
            sel.append(tok if tok.startswith("ckpt_") else f"ckpt_{int(tok):04d}")
    else:
        sel = default_ckpts(all_ckpts, run_dir)

    print(f"versions: python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__} "
          f"(device=cpu, threads={torch.get_num_threads()})")
    print(f"run: {run_dir}  k2: {k2}")
    print(f"steps_per_checkpoint={spc} global_batch={global_batch} micro_batch={micro_batch} "
          f"tol={args.tol:g}")
    print()
    hdr = (f"{'ckpt':<10} {'step':>5} {'rope_theta':>10} {'ctx':>4} {'batch':>8} "
           f"{'tok':>3} {'k2 loss':>12} {'hf loss':>12} {'|diff|':>10}  result")
    print(hdr)
    print("-" * len(hdr))

    failures = 0
    for name in sel:
        ckpt_dir = run_dir / name
        k = ckpt_number(name)
        step = k * spc + 1
        if not ckpt_dir.is_dir():
            print(f"{name:<10} missing checkpoint directory")
            failures += 1
            continue
        if step not in metrics:
            print(f"{name:<10} {step:>5}  no metrics for step {step} (last checkpoint?) -> skipped")
            continue

        _, tok_ok, _ = check_tokenizer(ckpt_dir)
        model = AutoModelForCausalLM.from_pretrained(ckpt_dir, dtype=torch.float32).eval()
        ids = load_batch(k2, run_dir, step)
        n, t = ids.shape
        if n != global_batch:
            print(f"  warning: step {step} batch has {n} samples, config global_batch={global_batch}")
        hf = batch_loss(model, ids, micro_batch)
        ref = float(metrics[step]["loss"])
        diff = abs(hf - ref)
        ok = diff <= args.tol and tok_ok and t <= model.config.max_position_embeddings
        failures += not ok
        print(f"{name:<10} {step:>5} {rope_theta_of(model.config):>10g} "
              f"{model.config.max_position_embeddings:>4} {f'{n}x{t}':>8} "
              f"{'ok' if tok_ok else 'BAD':>3} {ref:>12.7f} {hf:>12.7f} {diff:>10.2e}  "
              f"{'PASS' if ok else 'FAIL'}")
        del model

    if args.greedy:
        last = run_dir / all_ckpts[-1]
        tok = AutoTokenizer.from_pretrained(last)
        model = AutoModelForCausalLM.from_pretrained(last, dtype=torch.float32).eval()
        enc = tok(GREEDY_PROMPT, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=30, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        print()
        print(f"greedy ({all_ckpts[-1]}, 30 new tokens): "
              f"{tok.decode(out[0], skip_special_tokens=False)!r}")

    print()
    if failures:
        print(f"FAILED: {failures} checkpoint(s) out of tolerance or with a tokenizer mismatch")
        sys.exit(1)
    print(f"OK: all {len(sel)} checkpoint(s) within {args.tol:g}")


if __name__ == "__main__":
    main()
