#!/usr/bin/env python3
"""k2 eval vs real lm-evaluation-harness on the same model and the same local data, offline.

Usage (from anywhere; paths default to this checkout):
    /work/pyref/bin/python bench/lm_eval_parity/compare.py            # convert data, run both, compare
    /work/pyref/bin/python bench/lm_eval_parity/compare.py --skip-run # only re-compare existing outputs

Steps
1. Convert the local files under --data into the upstream HF schemas of each task (ai2_arc, Rowan/hellaswag,
   baber/piqa, winogrande_xl, lambada_openai, cais/mmlu, super_glue boolq, allenai/openbookqa, truthful_qa,
   wikitext_document_level) in work/data/, mirroring k2's own reconstruction
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
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(HERE, "work")
DDIR = os.path.join(WORK, "data")

MMLU_SUBJECTS = ["abstract_algebra", "anatomy", "astronomy", "college_biology", "high_school_geography"]
# (output dir, limit, {task: shots}) — one lm_eval call and one k2 call per group, since both CLIs take one --limit.
GROUPS = [
    ("limit200", 200, {"arc_easy": 0, "piqa": 0, "winogrande": 0, "lambada_openai": 0}),
    ("limit100", 100, {"hellaswag": 0}),
    ("limit50", 50, {f"mmlu_{s}": 5 for s in MMLU_SUBJECTS}),
    ("limit200_boolq_obqa", 200, {"boolq": 0, "openbookqa": 0}),
    ("limit100_truthfulqa", 100, {"truthfulqa_mc1": 0, "truthfulqa_mc2": 0}),
    ("limit5_wikitext", 5, {"wikitext": 0}),
    # The per-family check (issue 11): tiny GPT-NeoX / OLMo-2 models from tests/fixtures/families.
    ("limit50_arc_lambada", 50, {"arc_easy": 0, "lambada_openai": 0}),
    # generate_until: greedy generations and both filters' extracted answers, request for request.
    ("limit20_gsm8k", 20, {"gsm8k": 5}),
]
# Groups k2 also runs with K2_PREFIX_CACHE=0: every loglikelihood bit and every generation must be the
# same with and without its shared-prefix cache (the few-shot prefixes of MMLU and TruthfulQA's preamble).
NOCACHE_GROUPS = ["limit50", "limit100_truthfulqa", "limit20_gsm8k"]
# Tasks whose metrics carry lm-eval filter names instead of "none".
FILTERS = {"gsm8k": ["strict-match", "flexible-extract"]}
METRICS = {
    "arc_easy": ["acc", "acc_norm"],
    "hellaswag": ["acc", "acc_norm"],
    "piqa": ["acc", "acc_norm"],
    "winogrande": ["acc"],
    "lambada_openai": ["acc", "perplexity"],
    **{f"mmlu_{s}": ["acc"] for s in MMLU_SUBJECTS},
    "boolq": ["acc"],
    "openbookqa": ["acc", "acc_norm"],
    "truthfulqa_mc1": ["acc"],
    "truthfulqa_mc2": ["acc"],
    "wikitext": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
    "gsm8k": ["exact_match"],
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


def convert_boolq(data):
    """llm-foundry {query: "Passage: p\nQuestion: q?", choices [no, yes], gold} -> super_glue boolq
    {passage, question, label}. As in k2's boolq.rs the passage has NO "<title> -- " prefix (the local file
    lost it), so this deviates from upstream aps/super_glue on purpose. Row 2417 has two "\nQuestion: "; split
    at the last one (only the question ends in "?"), which reassembles byte-identically."""
    rows = []
    for d in read_jsonl(os.path.join(data, "boolq/boolq_validation.jsonl")):
        body = d["query"][len("Passage: "):]
        assert d["query"].startswith("Passage: ") and d["choices"] == ["no", "yes"]
        k = body.rfind("\nQuestion: ")
        passage, q = body[:k], body[k + len("\nQuestion: "):]
        assert q.endswith("?"), q
        rows.append({"passage": passage, "question": q[:-1], "label": d["gold"]})
        assert f"{rows[-1]['passage']}\nQuestion: {rows[-1]['question']}?" == body
    write_jsonl(os.path.join(DDIR, "boolq.jsonl"), rows)


def convert_openbookqa(data):
    """llm-foundry {query: question_stem, choices, gold} -> allenai/openbookqa main
    {question_stem, choices{text,label A..D}, answerKey}."""
    rows = []
    for d in read_jsonl(os.path.join(data, "openbookqa/openbookqa_test.jsonl")):
        labels = [chr(ord("A") + i) for i in range(len(d["choices"]))]
        rows.append({"question_stem": d["query"], "choices": {"text": d["choices"], "label": labels},
                     "answerKey": labels[d["gold"]]})
    write_jsonl(os.path.join(DDIR, "openbookqa.jsonl"), rows)


def convert_truthfulqa(data):
    """TruthfulQA v0 mc_task.json {question, mc1_targets{ans: 0|1}, mc2_targets{...}} -> truthful_qa
    multiple_choice {question, mc1_targets{choices, labels}, mc2_targets{choices, labels}}; dict order = choice
    order (Python json keeps the first position and the last value of a duplicated key, as k2's Ordered does)."""
    with open(os.path.join(data, "truthfulqa/mc_task_v0.json"), encoding="utf-8") as f:
        items = json.load(f)
    rows = [{"question": it["question"],
             **{k: {"choices": list(it[k].keys()), "labels": [int(v) for v in it[k].values()]}
                for k in ("mc1_targets", "mc2_targets")}} for it in items]
    write_jsonl(os.path.join(DDIR, "truthfulqa.jsonl"), rows)


# --- wikitext: Python port of k2's eval/src/tasks/wikitext.rs (reconstruct_raw + split_pages), see its docs.
def _py_strip(s):
    return s.strip()  # Python str.strip() == trim_matches(py_isspace)


def _heading_level(line):
    toks = line.strip().split(" ")  # Rust str::trim (Unicode White_Space) ~ Python strip on this file
    lead = next((i for i, t in enumerate(toks) if t != "="), len(toks))
    trail = next((i for i, t in enumerate(reversed(toks)) if t != "="), len(toks))
    return lead if lead > 0 and lead == trail and len(toks) > lead + trail else None


def _is_real_heading(lines, i):
    if _heading_level(lines[i]) is None:
        return False
    prev = lines[i - 1].rstrip() if i > 0 else ""
    prev_ends = prev == "" or _heading_level(prev) is not None or prev.endswith(
        (".", "!", "?", '"', ":", ";", ")", "\u201d"))
    nxt = lines[i + 1].lstrip() if i + 1 < len(lines) else ""
    next_cont = bool(nxt) and (nxt[0] in "0123456789" or nxt[0].islower())
    return not next_cont or prev_ends


def wikitext_pages_like_k2(stripped):
    body = stripped[:-1] if stripped.endswith("\n") else stripped
    lines = [l[:-1] if l.endswith("\r") else l for l in body.split("\n")]
    out = []
    for i, l in enumerate(lines):
        if _is_real_heading(lines, i):
            out.append(" ")
            if _heading_level(l) == 1 and i > 0:
                out.append(" ")
            out += [l, " "]
        else:
            out.append(l)
    raw = "\n".join(out) + "\n"
    # = EleutherAI/wikitext_document_level._generate_examples
    pages, ret = [], []
    for line in raw.split("\n"):
        r = line.replace("= = =", "===").replace("= =", "==").strip()
        if r.startswith("= ") and r.endswith(" ="):
            page = "\n".join(ret)
            if page.strip():
                pages.append(page)
            ret = []
        ret.append(line)
    pages.append("\n".join(ret))
    return pages


def convert_wikitext(data):
    """CRLF file without blank lines -> wikitext_document_level {page}, rebuilt exactly as k2 does (blank lines
    put back by k2's rule; its rebuilt file is NOT byte-identical to the original wiki.test.raw, see
    wikitext.rs), so both sides score the same pages. Upstream wikitext_detokenizer/process_results then run."""
    with open(os.path.join(data, "wikitext2/wiki.test.raw"), encoding="utf-8", newline="") as f:
        pages = wikitext_pages_like_k2(f.read())
    write_jsonl(os.path.join(DDIR, "wikitext.jsonl"), [{"page": p} for p in pages])


def convert_gsm8k(data):
    """The shared files are openai/gsm8k main's rows ({question, answer}) already."""
    for split in ("test", "train"):
        write_jsonl(os.path.join(DDIR, f"gsm8k_{split}.jsonl"),
                    [{"question": r["question"], "answer": r["answer"]}
                     for r in read_jsonl(os.path.join(data, f"gsm8k/{split}.jsonl"))])


def convert_all(data):
    for fn in (convert_arc, convert_hellaswag, convert_piqa, convert_winogrande, convert_lambada, convert_mmlu,
               convert_boolq, convert_openbookqa, convert_truthfulqa, convert_wikitext, convert_gsm8k):
        fn(data)


# ---------------------------------------------------------------- runs
def sel_groups(args):
    return [g for g in GROUPS if not args.groups or g[0] in args.groups.split(",")]


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
    for name, limit, tasks in sel_groups(args):
        out = os.path.join(WORK, "lm_eval", name)
        cmd = [args.lm_eval, "--model", "hf",
               "--model_args", f"pretrained={args.model},dtype=float32",
               "--tasks", ",".join("parity_" + t for t in tasks),
               "--include_path", os.path.join(HERE, "tasks"),
               "--device", "cpu", "--batch_size", "8", "--limit", str(limit),
               "--log_samples", "--output_path", out, "--seed", "0,1234,1234,1234"]
        run(cmd, env=env, log=os.path.join(WORK, f"lm_eval_{name}.log"))


def run_k2(args):
    for name, limit, tasks in sel_groups(args):
        runs = [("k2", "1")] + ([("k2_nocache", "0")] if name in NOCACHE_GROUPS else [])
        for side, cache in runs:
            out = os.path.join(WORK, side, name)
            # k2 eval resumes into an existing folder: old results would be compared, not this build's.
            shutil.rmtree(out, ignore_errors=True)
            cmd = [args.k2, "eval", "--model", args.model, "--tasks", ",".join(tasks),
                   "--shots", ",".join(f"{t}={n}" for t, n in tasks.items()),
                   "--limit", str(limit), "--output", out, "--data", k2_data(args),
                   "--threads", str(args.threads), "--batch-size", "8", "--quiet"]
            run(cmd, env=dict(os.environ, K2_PREFIX_CACHE=cache), log=os.path.join(WORK, f"{side}_{name}.log"))


# ---------------------------------------------------------------- comparison
def latest(pattern):
    files = sorted(glob.glob(pattern))
    if not files:
        sys.exit(f"no file matches {pattern}")
    return files[-1]


def load_lm_eval(task, name):
    base = os.path.join(WORK, "lm_eval", name)
    res = json.load(open(latest(os.path.join(base, "*", "results_*.json"))))["results"]["parity_" + task]
    samples = {}
    for s in read_jsonl(latest(os.path.join(base, "*", f"samples_parity_{task}_*.jsonl"))):
        if task in FILTERS:  # generate_until: one row per (doc, filter)
            ctx = s["arguments"]["gen_args_0"]["arg_0"] if isinstance(s["arguments"], dict) else s["arguments"][0][0]
            text = s["resps"][0][0]
            prev = samples.get(s["doc_id"], ([("", ctx)], [(text, None)], {}))
            prev[2][s["filter"]] = s["filtered_resps"][0]
            samples[s["doc_id"]] = prev
            continue
        reqs = [(a["arg_0"], a.get("arg_1")) if "arg_1" in a else ("", a["arg_0"]) for a in s["arguments"].values()] \
            if isinstance(s["arguments"], dict) else [tuple(a) if len(a) == 2 else ("", a[0]) for a in s["arguments"]]
        # --log_samples writes each response as strings: [["-11.36", "False"]]; loglikelihood_rolling: [["-15233.9"]]
        lls = [(float(r[0][0]), str(r[0][1]) == "True") if isinstance(r[0], list) and len(r[0]) == 2
               else (float(r[0][0] if isinstance(r[0], list) else r[0]), None) for r in s["resps"]]
        samples[s["doc_id"]] = (reqs, lls)
    return res, samples


def load_k2(task, name, side="k2"):
    base = os.path.join(WORK, side, name)
    res = json.load(open(os.path.join(base, f"{task}.json")))["results"][task]
    samples = {}
    for s in read_jsonl(os.path.join(base, f"{task}.samples.jsonl")):
        if task in FILTERS:  # generate_until: (context, generation, {filter: extracted answer})
            samples[s["doc_id"]] = ([("", s["arguments"][0]["context"])], [(s["resps"][0]["text"], None)],
                                    s.get("filtered", {}))
            continue
        # rolling requests (wikitext) have only "text": compared as ("", text)
        reqs = [(a["context"], a["continuation"]) if "context" in a else ("", a["text"]) for a in s["arguments"]]
        lls = [(float(r["ll"]), bool(r["is_greedy"]) if "is_greedy" in r else None) for r in s["resps"]]
        samples[s["doc_id"]] = (reqs, lls)
    return res, samples


def fmt(v):
    if isinstance(v, str) or v is None:
        return str(v)
    return f"{v:.6g}" if abs(v) >= 1000 else f"{v:.4f}"


def compare_generations(task, ks, ls, notes):
    """gsm8k: prompts, greedy generations and each filter's extracted answer, doc for doc."""
    docs = sorted(set(ks) & set(ls))
    n_prompt = sum(ks[d][0] != ls[d][0] for d in docs)
    n_text = sum(ks[d][1][0][0] != ls[d][1][0][0] for d in docs)
    n_ans = {f: sum(ks[d][2].get(f) != ls[d][2].get(f) for d in docs) for f in FILTERS[task]}
    for d in docs:
        if ks[d][1][0][0] != ls[d][1][0][0] and n_text <= 2:
            notes.append(f"{task} doc {d}: generations differ\n    k2:      {ks[d][1][0][0][:200]!r}\n"
                         f"    lm-eval: {ls[d][1][0][0][:200]!r}")
    notes.append(f"{task}: {len(docs)} docs, {n_prompt} prompt diffs, {n_text} generation diffs, extracted-answer diffs "
                 + ", ".join(f"{f} {n}" for f, n in n_ans.items())
                 + f"; doc {docs[0]} answers k2 {ks[docs[0]][2]} lm-eval {ls[docs[0]][2]}")
    return n_prompt + n_text + sum(n_ans.values())


def compare_nocache(args, notes):
    """k2 with and without its prefix cache: every response identical (lls as written, bit for bit)."""
    bad = 0
    for name, limit, tasks in sel_groups(args):
        if name not in NOCACHE_GROUPS or not os.path.isdir(os.path.join(WORK, "k2_nocache", name)):
            continue
        for task in tasks:
            a = read_jsonl(os.path.join(WORK, "k2", name, f"{task}.samples.jsonl"))
            b = read_jsonl(os.path.join(WORK, "k2_nocache", name, f"{task}.samples.jsonl"))
            n = sum(len(x["resps"]) for x in a)
            diff = sum(x["resps"] != y["resps"] or x.get("filtered") != y.get("filtered") for x, y in zip(a, b))
            diff += abs(len(a) - len(b))
            bad += diff
            notes.append(f"{task}: with vs without the prefix cache: {n} responses, {diff} docs differ")
    return bad


def compare(args):
    rows, notes = [], []
    gen_bad = 0
    for name, limit, tasks in sel_groups(args):
        for task in tasks:
            kres, ks = load_k2(task, name)
            lres, ls = load_lm_eval(task, name)
            if task in FILTERS:
                gen_bad += compare_generations(task, ks, ls, notes)
                for m in METRICS[task]:
                    for f in FILTERS[task]:
                        for key in (m, m + "_stderr"):
                            rows.append((task, f"{key},{f}", kres.get(f"{key},{f}"), lres.get(f"{key},{f}"), 0.0))
                continue
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
                    n_greedy_diff += x[1] != y[1]  # None == None for rolling requests
            if task == "wikitext":  # per-page word/byte counts: k2 "target" vs lm-eval process_results tuples
                base = os.path.join(WORK, "lm_eval", name)
                lw = {x["doc_id"]: (x["word_perplexity"][1], x["byte_perplexity"][1]) for x in
                      read_jsonl(latest(os.path.join(base, "*", "samples_parity_wikitext_*.jsonl")))}
                kw = {x["doc_id"]: tuple(int(t.split()[0]) for t in x["target"].split(", ")) for x in
                      read_jsonl(os.path.join(WORK, "k2", name, "wikitext.samples.jsonl"))}
                nd = sum(lw[d] != kw.get(d) for d in lw)
                notes.append(f"wikitext: per-page (words, bytes) differ on {nd}/{len(lw)} pages; "
                             f"Σwords {sum(v[0] for v in kw.values())} vs {sum(v[0] for v in lw.values())}, "
                             f"Σbytes {sum(v[1] for v in kw.values())} vs {sum(v[1] for v in lw.values())}")
            # first doc's prompt, printed for eyeballing
            d0 = min(set(ks) & set(ls))
            same0 = ks[d0][0] == ls[d0][0]
            c0, t0 = ks[d0][0][0]
            notes.append(f"{task} doc {d0}: prompts {'IDENTICAL' if same0 else 'DIFFERENT'}; "
                         f"req 0 ctx=...{c0[-90:]!r} cont={t0[:120]!r}")
            notes.append(f"{task}: {n_req} requests, {n_prompt_diff} prompt diffs, {n_greedy_diff} is_greedy diffs, "
                         f"max|Δll|={max_d:.3g}" + (f" at doc {worst[0]} req {worst[1]} (k2 {worst[2]:.6f}, lm-eval {worst[3]:.6f})" if worst else ""))
            for m in METRICS[task]:
                for key in (m, m + "_stderr"):
                    rows.append((task, key, kres.get(f"{key},none"), lres.get(f"{key},none"), max_d))
    nocache_bad = compare_nocache(args, notes)
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
    # truthfulqa_mc2 acc is a continuous function of the lls (normalized exp(ll) mass), so it also gets 1e-4.
    # wikitext's metrics are exp/ratios of Σll (|Δll| ~1e-3 on ll ~ -6e4, i.e. ~2e-8 relative): also 1e-4.
    def tol(task, m):
        return 1e-4 if m.startswith("perplexity") or task in ("truthfulqa_mc2", "wikitext") else 1e-9
    bad = [r for r in rows if not (r[2] == r[3] or same(r[2], r[3], tol(r[0], r[1])))]
    print(f"\n{len(rows) - len(bad)}/{len(rows)} metric values agree (acc/acc_norm/stderr exactly; perplexity, "
          "truthfulqa_mc2 and wikitext to 1e-4 rel; N/A == N/A)")
    for r in bad:
        print(f"  DIFFERS: {r[0]} {r[1]}: k2={r[2]!r} lm-eval={r[3]!r}")
    print(f"generate_until: {gen_bad} prompt/generation/extracted-answer differences; "
          f"prefix cache on vs off: {nocache_bad} differing docs")


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


def k2_data(args):
    """k2 reads benchmarks laid out like the Hub's dataset repositories: --k2-data, else a full
    re-encoding of --data made once by scripts/hub_datasets_from_shared.py into target/hub-data."""
    if args.k2_data:
        return args.k2_data
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    out = os.path.join(repo, "target", "hub-data")
    if not os.path.isdir(os.path.join(out, "cais")):
        subprocess.run([sys.executable, os.path.join(repo, "scripts", "hub_datasets_from_shared.py"),
                        "--full", "--src", args.data, "--out", out], check=True)
    return out


def edge_probe(args):
    """k2 vs lm-eval on requests whose context ends in non-space whitespace or starts with "<s>"."""
    d = os.path.join(WORK, "edge_data")
    write_jsonl(os.path.join(d, "EleutherAI", "lambada_openai", "default", "test.jsonl"),
                [{"text": c + " " + w} for c, w in EDGE_ROWS])
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


# ---------------------------------------------------------------- mc2 probe: non-contiguous mc2 labels
MC2_PROBE = r"""
import json, sys
import numpy as np
from lm_eval.tasks.truthfulqa.utils import process_results_mc2
docs, samples = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("MC2PROBE " + json.dumps([[process_results_mc2(d, [(l, False) for l in s])["acc"],
                                 process_results_mc2(d, [(0.0, False) for l in s])["acc"]] for d, s in zip(docs, samples)]))
"""


def mc2_probe(args):
    """TruthfulQA v0 has docs whose mc2 labels are not all-1s-then-all-0s. Run k2 truthfulqa_mc2 on just those docs,
    and score k2's own lls with lm-eval 0.4.13's process_results_mc2 (probs_norm[labels == 1])."""
    with open(os.path.join(args.data, "truthfulqa/mc_task_v0.json"), encoding="utf-8") as f:
        items = json.load(f)
    idx = [i for i, it in enumerate(items)
           if any(list(it["mc2_targets"].values())[list(it["mc2_targets"].values()).index(0):])]
    if not idx:
        return
    d = os.path.join(WORK, "mc2_data")
    targets = lambda t: {"choices": list(t.keys()), "labels": [int(v) for v in t.values()]}
    write_jsonl(os.path.join(d, "truthfulqa", "truthful_qa", "multiple_choice", "validation.jsonl"),
                [{"question": items[i]["question"], "mc1_targets": targets(items[i]["mc1_targets"]),
                  "mc2_targets": targets(items[i]["mc2_targets"])} for i in idx])
    out = os.path.join(WORK, "k2", "mc2_probe")
    run([args.k2, "eval", "--model", args.model, "--tasks", "truthfulqa_mc2", "--shots", "truthfulqa_mc2=0",
         "--output", out, "--data", d, "--threads", str(args.threads), "--quiet"], log=os.path.join(WORK, "k2_mc2.log"))
    k2 = read_jsonl(os.path.join(out, "truthfulqa_mc2.samples.jsonl"))
    docs = [{"mc2_targets": {"labels": [int(v) for v in items[i]["mc2_targets"].values()]}} for i in idx]
    lls = [[r["ll"] for r in s["resps"]] for s in k2]
    p = subprocess.run([sys.executable, "-c", MC2_PROBE, json.dumps(docs), json.dumps(lls)], capture_output=True, text=True)
    line = [l for l in p.stdout.splitlines() if l.startswith("MC2PROBE ")]
    if not line:
        print("mc2 probe failed:\n" + p.stderr[-2000:])
        return
    up = json.loads(line[0][len("MC2PROBE "):])
    print("\nmc2 probe (TruthfulQA v0 docs with non-contiguous mc2 labels; same k2 lls, two scorers):")
    print("| doc (0-based in mc_task_v0.json) | labels | k2 mc2 acc | lm-eval 0.4.13 process_results_mc2 "
          "| if all lls were equal: k2 rule (labels before first 0) / lm-eval (labels == 1) |")
    print("|---|---|---|---|---|")
    for i, doc, s, (u, u0) in zip(idx, docs, k2, up):
        lab = doc["mc2_targets"]["labels"]
        k0 = lab.index(0) / len(lab)  # eval/src/tasks/truthfulqa.rs::mc2_score on equal lls
        print(f"| {i} | {''.join(map(str, lab))} | {s['metrics']['acc,none']:.6e} | {u:.6e} | {k0:.4f} / {u0:.4f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "models", "stories260K-hf"))
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--k2-data", default=None,
                    help="benchmarks laid out like the Hub for k2 (default: --data re-encoded into target/hub-data)")
    ap.add_argument("--k2", default=os.path.join(REPO, "target/release/k2"))
    ap.add_argument("--lm-eval", default=os.path.join(os.path.dirname(sys.executable), "lm_eval"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-run", action="store_true", help="only compare existing outputs in work/")
    ap.add_argument("--edge", action="store_true", help="with --skip-run: still run the edge probe")
    ap.add_argument("--groups", help="comma-separated subset of group names (" + ",".join(g[0] for g in GROUPS) + ")")
    ap.add_argument("--only", choices=["k2", "lm_eval"], help="run only one side")
    ap.add_argument("--work", help="folder under work/ for this model's outputs (default: work/ itself)")
    ap.add_argument("--no-probes", action="store_true", help="skip the BOS, mc2 and edge probes (stories260K-specific)")
    args = ap.parse_args()
    if args.work:
        global WORK
        WORK = os.path.join(HERE, "work", args.work)
        os.makedirs(WORK, exist_ok=True)
    if not args.skip_run:
        convert_all(args.data)
        if args.only != "lm_eval":
            run_k2(args)
        if args.only != "k2":
            run_lm_eval(args)
    compare(args)
    if args.no_probes:
        return
    bos_probe(args)
    if not args.skip_run or args.edge:
        mc2_probe(args)
    if not args.skip_run or args.edge:
        edge_probe(args)


if __name__ == "__main__":
    main()
