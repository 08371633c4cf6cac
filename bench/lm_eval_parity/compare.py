#!/usr/bin/env python3
"""k2 eval vs real lm-evaluation-harness on the same model and the same local data, offline.

Usage (from anywhere; paths default to this checkout):
    /work/pyref/bin/python bench/lm_eval_parity/compare.py            # convert data, run both, compare
    /work/pyref/bin/python bench/lm_eval_parity/compare.py --skip-run # only re-compare existing outputs

Steps
1. Convert the local files under --data into the upstream HF schemas of each task (ai2_arc, Rowan/hellaswag,
   baber/piqa, winogrande_xl, lambada_openai, cais/mmlu) in work/data/, mirroring k2's own reconstruction
   where the local file lost information (hellaswag ctx_a/ctx_b), so the upstream lm-eval task code
   (tasks/*.yaml, which copy lm-eval's own yaml bodies) sees the same docs k2 sees.
2. Run `lm_eval --include_path tasks` (hf backend, CPU, fp32, batch 8, --log_samples) and `k2 eval`
   with the same tasks / limits / shots, one call per limit group.
3. Compare per request: prompt strings (context, continuation) and loglikelihoods (max |Δll|), is_greedy,
   and the aggregate metrics. Prints the table: task | metric | k2 | lm-eval | max|Δll|.
"""
import argparse
import csv
import glob
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(HERE, "work")
DDIR = os.path.join(WORK, "data")

MMLU_SUBJECTS = ["abstract_algebra", "anatomy", "high_school_geography"]
# (limit, {task: shots}) — one lm_eval call and one k2 call per group, since both CLIs take one --limit.
GROUPS = [
    (200, {"arc_easy": 0, "piqa": 0, "winogrande": 0, "lambada_openai": 0}),
    (100, {"hellaswag": 0}),
    (50, {f"mmlu_{s}": 5 for s in MMLU_SUBJECTS}),
]
METRICS = {
    "arc_easy": ["acc", "acc_norm"],
    "hellaswag": ["acc", "acc_norm"],
    "piqa": ["acc", "acc_norm"],
    "winogrande": ["acc"],
    "lambada_openai": ["acc", "perplexity"],
    **{f"mmlu_{s}": ["acc"] for s in MMLU_SUBJECTS},
}

# k2's hellaswag.rs::WIKIHOW_CATEGORIES
WIKIHOW = {
    "Cars & Other Vehicles", "Computers and Electronics", "Education and Communications", "Family Life",
    "Finance and Business", "Food and Entertaining", "Health", "Holidays and Traditions", "Home and Garden",
    "Home,Categories", "Personal Care and Style", "Pets and Animals", "Philosophy and Religion", "Relationships",
    "Sports and Fitness", "Travel", "Uncategorized", "Work World", "Youth",
}


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


# ---------------------------------------------------------------- data conversion (local -> upstream schema)
def convert_arc(data):
    rows = []
    for d in read_jsonl(os.path.join(data, "arc/arc_easy_test.jsonl")):
        q = d["query"]
        assert q.startswith("Question: "), q
        labels = [chr(ord("A") + i) for i in range(len(d["choices"]))]
        rows.append({"question": q[len("Question: "):],
                     "choices": {"text": d["choices"], "label": labels},
                     "answerKey": labels[d["gold"]]})
    write_jsonl(os.path.join(DDIR, "arc_easy.jsonl"), rows)


def convert_hellaswag(data):
    """klosax 6-line items -> {activity_label, ctx_a, ctx_b, endings, label}, split exactly as k2's
    hellaswag.rs::reconstruct_query (label = before the first ": "; WikiHow: ctx_b = ""; ActivityNet:
    ctx_b = text after the last ". ", ctx_a = up to and including that "."). lm-eval's own process_docs
    then applies ctx_b.capitalize() and preprocess()."""
    with open(os.path.join(data, "hellaswag/hellaswag_val_full.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    assert len(lines) % 6 == 0
    rows = []
    for i in range(0, len(lines), 6):
        label, ctx = lines[i].split(": ", 1)
        if label in WIKIHOW:
            ctx_a, ctx_b = ctx, ""
        else:
            k = ctx.rfind(". ")
            ctx_a, ctx_b = (ctx[: k + 1], ctx[k + 2:]) if k >= 0 else ("", ctx)
        rows.append({"activity_label": label, "ctx_a": ctx_a, "ctx_b": ctx_b,
                     "endings": lines[i + 2: i + 6], "label": lines[i + 1].strip()})
    write_jsonl(os.path.join(DDIR, "hellaswag.jsonl"), rows)


def convert_piqa(data):
    docs = read_jsonl(os.path.join(data, "piqa/valid.jsonl"))
    with open(os.path.join(data, "piqa/valid-labels.lst")) as f:
        labels = [int(l) for l in f if l.strip()]
    assert len(docs) == len(labels)
    write_jsonl(os.path.join(DDIR, "piqa.jsonl"),
                [{"goal": d["goal"], "sol1": d["sol1"], "sol2": d["sol2"], "label": y} for d, y in zip(docs, labels)])


def convert_winogrande(data):
    """llm-foundry {context_options, continuation, gold} -> winogrande_xl {sentence, option1, option2, answer}
    with sentence = "_ " + continuation, so upstream doc_to_choice = ["" + opt1, "" + opt2] = the two
    contexts and doc_to_target = sentence[2:].strip() = continuation.strip()."""
    rows = []
    for d in read_jsonl(os.path.join(data, "winogrande/winogrande_validation.jsonl")):
        o1, o2 = d["context_options"]
        rows.append({"sentence": "_ " + d["continuation"], "option1": o1, "option2": o2,
                     "answer": str(d["gold"] + 1)})
    write_jsonl(os.path.join(DDIR, "winogrande.jsonl"), rows)


def convert_lambada(data):
    rows = [{"text": d["context"] + " " + d["continuation"]}
            for d in read_jsonl(os.path.join(data, "lambada/lambada_openai_test.jsonl"))]
    write_jsonl(os.path.join(DDIR, "lambada_openai.jsonl"), rows)


def convert_mmlu(data):
    for s in MMLU_SUBJECTS:
        for split in ("test", "dev"):
            with open(os.path.join(data, f"mmlu/{split}/{s}_{split}.csv"), encoding="utf-8", newline="") as f:
                recs = [r for r in csv.reader(f) if r]
            write_jsonl(os.path.join(DDIR, f"mmlu/{s}_{split}.jsonl"),
                        [{"question": r[0], "subject": s, "choices": r[1:5], "answer": "ABCD".index(r[5].strip())}
                         for r in recs])


def convert_all(data):
    for fn in (convert_arc, convert_hellaswag, convert_piqa, convert_winogrande, convert_lambada, convert_mmlu):
        fn(data)


# ---------------------------------------------------------------- runs
def run(cmd, env=None, log=None):
    print("+", " ".join(cmd), flush=True)
    t = time.time()
    with open(log, "w") if log else open(os.devnull, "w") as lf:
        p = subprocess.run(cmd, cwd=REPO, env=env, stdout=lf, stderr=subprocess.STDOUT)
    print(f"  -> rc={p.returncode} in {time.time() - t:.0f}s" + (f" (log {log})" if log else ""), flush=True)
    if p.returncode != 0:
        sys.exit(f"command failed, see {log}")


def run_lm_eval(args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
    for limit, tasks in GROUPS:
        out = os.path.join(WORK, "lm_eval", f"limit{limit}")
        cmd = [args.lm_eval, "--model", "hf",
               "--model_args", f"pretrained={args.model},dtype=float32",
               "--tasks", ",".join("parity_" + t for t in tasks),
               "--include_path", os.path.join(HERE, "tasks"),
               "--device", "cpu", "--batch_size", "8", "--limit", str(limit),
               "--log_samples", "--output_path", out, "--seed", "0,1234,1234,1234"]
        run(cmd, env=env, log=os.path.join(WORK, f"lm_eval_limit{limit}.log"))


def run_k2(args):
    for limit, tasks in GROUPS:
        out = os.path.join(WORK, "k2", f"limit{limit}")
        cmd = [args.k2, "eval", "--model", args.model, "--tasks", ",".join(tasks),
               "--shots", ",".join(f"{t}={n}" for t, n in tasks.items()),
               "--limit", str(limit), "--output", out, "--data", args.data,
               "--threads", str(args.threads), "--batch-size", "8", "--quiet"]
        run(cmd, log=os.path.join(WORK, f"k2_limit{limit}.log"))


# ---------------------------------------------------------------- comparison
def latest(pattern):
    files = sorted(glob.glob(pattern))
    if not files:
        sys.exit(f"no file matches {pattern}")
    return files[-1]


def load_lm_eval(task, limit):
    base = os.path.join(WORK, "lm_eval", f"limit{limit}")
    res = json.load(open(latest(os.path.join(base, "*", "results_*.json"))))["results"]["parity_" + task]
    samples = {}
    for s in read_jsonl(latest(os.path.join(base, "*", f"samples_parity_{task}_*.jsonl"))):
        reqs = [(a["arg_0"], a["arg_1"]) for a in s["arguments"].values()] if isinstance(s["arguments"], dict) \
            else [tuple(a) for a in s["arguments"]]
        # --log_samples writes each response as strings: [["-11.36", "False"]]
        lls = [(float(r[0][0]), str(r[0][1]) == "True") for r in s["resps"]]
        samples[s["doc_id"]] = (reqs, lls)
    return res, samples


def load_k2(task, limit):
    base = os.path.join(WORK, "k2", f"limit{limit}")
    res = json.load(open(os.path.join(base, f"{task}.json")))["results"][task]
    samples = {}
    for s in read_jsonl(os.path.join(base, f"{task}.samples.jsonl")):
        reqs = [(a["context"], a["continuation"]) for a in s["arguments"]]
        lls = [(float(r["ll"]), bool(r["is_greedy"])) for r in s["resps"]]
        samples[s["doc_id"]] = (reqs, lls)
    return res, samples


def fmt(v):
    if isinstance(v, str) or v is None:
        return str(v)
    return f"{v:.6g}" if abs(v) >= 1000 else f"{v:.4f}"


def compare(args):
    rows, notes = [], []
    for limit, tasks in GROUPS:
        for task in tasks:
            kres, ks = load_k2(task, limit)
            lres, ls = load_lm_eval(task, limit)
            n_req = n_prompt_diff = n_greedy_diff = 0
            max_d, worst = 0.0, None
            if set(ks) != set(ls):
                notes.append(f"{task}: doc ids differ (k2 {len(ks)} docs, lm-eval {len(ls)} docs)")
            for d in sorted(set(ks) & set(ls)):
                kr, kl = ks[d]
                lr, ll = ls[d]
                if len(kr) != len(lr):
                    notes.append(f"{task} doc {d}: {len(kr)} vs {len(lr)} requests")
                    continue
                for i, (a, b, x, y) in enumerate(zip(kr, lr, kl, ll)):
                    n_req += 1
                    if a != b:
                        n_prompt_diff += 1
                        if n_prompt_diff <= 2:
                            notes.append(f"{task} doc {d} req {i}: prompt differs\n    k2:      {a!r}\n    lm-eval: {b!r}")
                    dd = abs(x[0] - y[0])
                    if dd > max_d:
                        max_d, worst = dd, (d, i, x[0], y[0])
                    n_greedy_diff += x[1] != y[1]
            # first doc's prompt, printed for eyeballing
            d0 = min(set(ks) & set(ls))
            same0 = ks[d0][0] == ls[d0][0]
            c0, t0 = ks[d0][0][0]
            notes.append(f"{task} doc {d0}: prompts {'IDENTICAL' if same0 else 'DIFFERENT'}; "
                         f"req 0 ctx=...{c0[-90:]!r} cont={t0!r}")
            notes.append(f"{task}: {n_req} requests, {n_prompt_diff} prompt diffs, {n_greedy_diff} is_greedy diffs, "
                         f"max|Δll|={max_d:.3g}" + (f" at doc {worst[0]} req {worst[1]} (k2 {worst[2]:.6f}, lm-eval {worst[3]:.6f})" if worst else ""))
            for m in METRICS[task]:
                for key in (m, m + "_stderr"):
                    rows.append((task, key, kres.get(f"{key},none"), lres.get(f"{key},none"), max_d))
    print()
    print("| task | metric | k2 | lm-eval | max\\|Δll\\| |")
    print("|---|---|---|---|---|")
    for task, m, kv, lv, md in rows:
        print(f"| {task} | {m} | {fmt(kv)} | {fmt(lv)} | {md:.2e} |")
    print()
    for n in notes:
        print(n)
    def same(a, b, rel):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
    # acc-type metrics are exact functions of argmax/is_greedy -> must be equal; perplexity = exp(-mean ll)
    # inherits the fp32 ll noise (|Δll| ~1e-5 -> relative ~1e-5), so it gets 1e-4.
    bad = [r for r in rows if not same(r[2], r[3], 1e-4 if r[1].startswith("perplexity") else 1e-9)]
    print(f"\n{len(rows) - len(bad)}/{len(rows)} metric values agree (acc/acc_norm/stderr exactly, perplexity to 1e-4 rel)")
    for r in bad:
        print(f"  DIFFERS: {r[0]} {r[1]}: k2={r[2]!r} lm-eval={r[3]!r}")


# ---------------------------------------------------------------- BOS probe
BOS_PROBE = r"""
import json, sys
from lm_eval.models.huggingface import HFLM
from lm_eval.api.instance import Instance
model, ctx, cont, k2_ll = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
out = {}
for name, kw in (("default", {}), ("add_bos_token=False", {"add_bos_token": False})):
    lm = HFLM(pretrained=model, dtype="float32", device="cpu", batch_size=1, **kw)
    ce, te = lm._encode_pair(ctx, cont)
    req = Instance(request_type="loglikelihood", doc={}, arguments=(ctx, cont), idx=0)
    ll, greedy = lm.loglikelihood([req], disable_tqdm=True)[0]
    out[name] = {"ctx_ids_head": ce[:6], "cont_ids": te, "ll": ll,
                 "tokenizer_add_bos_token": getattr(lm.tokenizer, "add_bos_token", None),
                 "lm.add_bos_token": lm.add_bos_token}
out["k2_ll"] = k2_ll
print("BOSPROBE " + json.dumps(out))
"""


def bos_probe(args):
    """Tokenize + score the first arc_easy request with lm-eval's HFLM, default vs add_bos_token=False,
    and set the result beside k2's ll for the same request."""
    s = read_jsonl(os.path.join(WORK, "k2", "limit200", "arc_easy.samples.jsonl"))[0]
    a, r = s["arguments"][0], s["resps"][0]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               OMP_NUM_THREADS=str(args.threads))
    p = subprocess.run([sys.executable, "-c", BOS_PROBE, args.model, a["context"], a["continuation"], str(r["ll"])],
                       env=env, capture_output=True, text=True)
    line = [l for l in p.stdout.splitlines() if l.startswith("BOSPROBE ")]
    if not line:
        print("BOS probe failed:\n" + p.stderr[-2000:])
        return
    o = json.loads(line[0][len("BOSPROBE "):])
    print("\nBOS probe (arc_easy doc 0, request 0; lm-eval HFLM._encode_pair + loglikelihood):")
    for name in ("default", "add_bos_token=False"):
        d = o[name]
        print(f"  lm-eval {name:20s}: ctx ids {d['ctx_ids_head']}..., cont ids {d['cont_ids'][:6]}..., "
              f"ll {d['ll']:.6f} (|Δ| vs k2 {abs(d['ll'] - o['k2_ll']):.2e})")
    print(f"  k2                          : ll {o['k2_ll']:.6f}")


# ---------------------------------------------------------------- edge probe: _encode_pair corner cases
# (context, last word) rows in lambada format; k2 makes the request (context, " " + word).
EDGE_ROWS = [
    ("Once upon a time there was a little girl named", "Lily"),          # control
    ("Once upon a time there was a little girl named\n", "Lily"),        # context ends in a newline
    ("Once upon a time there was a little girl named\t", "Lily"),        # ... in a tab
    ("Once upon a time there was a little girl named \n", "Lily"),       # ... in space + newline
    ("Once upon a time there was a little girl named\u00a0", "Lily"),    # ... in a no-break space
    ("<s>Once upon a time there was a little girl named", "Lily"),       # context starts with the BOS text
]

EDGE_PROBE = r"""
import json, sys
from lm_eval.models.huggingface import HFLM
from lm_eval.api.instance import Instance
model, reqs = sys.argv[1], json.loads(sys.argv[2])
lm = HFLM(pretrained=model, dtype="float32", device="cpu", batch_size=1)
out = []
for ctx, cont in reqs:
    ce, te = lm._encode_pair(ctx, cont)
    ll, g = lm.loglikelihood([Instance("loglikelihood", {}, (ctx, cont), 0)], disable_tqdm=True)[0]
    out.append({"ctx_tail": ce[-3:], "ctx_head": ce[:2], "cont": te, "ll": ll})
print("EDGEPROBE " + json.dumps(out))
"""


def edge_probe(args):
    """k2 vs lm-eval on requests whose context ends in non-space whitespace or starts with "<s>"."""
    d = os.path.join(WORK, "edge_data")
    write_jsonl(os.path.join(d, "lambada", "lambada_openai_test.jsonl"),
                [{"context": c, "continuation": w} for c, w in EDGE_ROWS])
    out = os.path.join(WORK, "k2", "edge")
    run([args.k2, "eval", "--model", args.model, "--tasks", "lambada_openai", "--output", out, "--data", d,
         "--threads", str(args.threads), "--quiet"], log=os.path.join(WORK, "k2_edge.log"))
    k2 = read_jsonl(os.path.join(out, "lambada_openai.samples.jsonl"))
    reqs = [(s["arguments"][0]["context"], s["arguments"][0]["continuation"]) for s in k2]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               OMP_NUM_THREADS=str(args.threads))
    p = subprocess.run([sys.executable, "-c", EDGE_PROBE, args.model, json.dumps(reqs)],
                       env=env, capture_output=True, text=True)
    line = [l for l in p.stdout.splitlines() if l.startswith("EDGEPROBE ")]
    if not line:
        print("edge probe failed:\n" + p.stderr[-2000:])
        return
    le = json.loads(line[0][len("EDGEPROBE "):])
    print("\nEdge probe (_encode_pair corner cases; lm-eval HFLM vs k2 eval on a lambada-format file):")
    print("| context (repr, tail) | k2 ll | lm-eval ll | Δll | lm-eval ctx ids (head..tail) / cont ids |")
    print("|---|---|---|---|---|")
    for (c, _), s, l in zip(reqs, k2, le):
        kll = s["resps"][0]["ll"]
        print(f"| {c[:4]!r}..{c[-8:]!r} | {kll:.4f} | {l['ll']:.4f} | {kll - l['ll']:+.4f} "
              f"| {l['ctx_head']}..{l['ctx_tail']} / {l['cont']} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/work/shared/data/models/stories260K-hf")
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--k2", default=os.path.join(REPO, "target/release/k2"))
    ap.add_argument("--lm-eval", default=os.path.join(os.path.dirname(sys.executable), "lm_eval"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-run", action="store_true", help="only compare existing outputs in work/")
    ap.add_argument("--edge", action="store_true", help="with --skip-run: still run the edge probe")
    ap.add_argument("--only", choices=["k2", "lm_eval"], help="run only one side")
    args = ap.parse_args()
    if not args.skip_run:
        convert_all(args.data)
        if args.only != "lm_eval":
            run_k2(args)
        if args.only != "k2":
            run_lm_eval(args)
    compare(args)
    bos_probe(args)
    if not args.skip_run or args.edge:
        edge_probe(args)


if __name__ == "__main__":
    main()
