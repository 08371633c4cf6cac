#!/usr/bin/env python3
"""k2 eval vs real lm-evaluation-harness (0.4.13) on lm-eval's own task YAMLs, offline.

Usage (from anywhere):
    /work/pyref/bin/python bench/yaml_parity/run.py             # generate data + wrappers, run both, compare
    /work/pyref/bin/python bench/yaml_parity/run.py --skip-run  # only re-compare existing outputs

1. For each lm-eval task, writes a small deterministic data file in the dataset's real schema
   (work/data/<task>.jsonl) and a wrapper YAML work/yamls/parity_<task>.yaml that `include:`s lm-eval's
   own YAML for the task and points dataset_path: json / data_files at the local file.
   Plus the group parity_bbh_fewshot mirroring bbh/fewshot/_bbh_fewshot.yaml.
2. Runs `lm_eval --include_path work/yamls --log_samples` and `k2 eval --include-path work/yamls`
   on the same names, one call per limit group.
3. Compares per doc and per request: prompts, lls, is_greedy, generations, filtered answers,
   per-doc metrics and aggregate metrics; writes RESULTS.md.
"""
import argparse, glob, json, math, os, random, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(HERE, "work")
DDIR, YDIR = os.path.join(WORK, "data"), os.path.join(WORK, "yamls")
TASKS = "/work/pyref/lib/python3.11/site-packages/lm_eval/tasks"
MODEL = os.path.join(REPO, "fixtures/models/stories260K-hf")
K2 = os.path.join(REPO, "target/release/k2")
LM_EVAL = "/work/pyref/bin/lm_eval"

BLIMP = ["adjunct_island", "anaphor_gender_agreement", "anaphor_number_agreement", "animate_subject_passive",
         "causative", "complex_NP_island", "determiner_noun_agreement_1", "drop_argument",
         "existential_there_quantifiers_1", "irregular_past_participle_adjectives", "npi_present_1",
         "only_npi_licensor_present", "passive_1", "regular_plural_subject_verb_agreement_1",
         "wh_questions_object_gap"]
BBH_FEW = ["boolean_expressions", "sports_understanding", "navigate", "web_of_lies", "causal_judgement",
           "object_counting"]
BBH_ZERO = ["boolean_expressions", "causal_judgement", "navigate", "formal_fallacies", "dyck_languages"]

# task -> (lm-eval yaml relative to TASKS, splits the task names, data kind)
SPEC = {}
for s in BLIMP:
    SPEC[f"blimp_{s}"] = (f"blimp/{s}.yaml", ["train"], "blimp")
SPEC["sciq"] = ("sciq/sciq.yaml", ["train", "validation", "test"], "sciq")
SPEC["lambada_openai"] = ("lambada/lambada_openai.yaml", ["test"], "lambada")
SPEC["lambada_standard"] = ("lambada/lambada_standard.yaml", ["validation", "test"], "lambada")
SPEC["lambada_openai_cloze_yaml"] = ("lambada_cloze/lambada_openai_cloze.yaml", ["test"], "lambada")
SPEC["pile_10k"] = ("pile_10k/pile_10k.yaml", ["train"], "pile")
SPEC["cola"] = ("glue/cola/default.yaml", ["train", "validation"], "cola")
SPEC["mrpc"] = ("glue/mrpc/default.yaml", ["train", "validation"], "mrpc")
SPEC["qqp"] = ("glue/qqp/default.yaml", ["train", "validation"], "qqp")
SPEC["arithmetic_1dc"] = ("arithmetic/arithmetic_1dc.yaml", ["validation"], "arith")
for s in BBH_FEW:
    SPEC[f"bbh_fewshot_{s}"] = (f"bbh/fewshot/{s}.yaml", ["test"], f"bbh_{s}")
for s in BBH_ZERO:
    SPEC[f"bbh_zeroshot_{s}"] = (f"bbh/zeroshot/{s}.yaml", ["test"], f"bbh_{s}")

# multi_choice_regex (with group_select 0 and -1, ignore_case, ignore_punctuation)
MMLU_FLAN = {"mmlu_flan_n_shot_generative_anatomy": "flan_n_shot/generative/mmlu_anatomy.yaml",
             "mmlu_flan_n_shot_generative_astronomy": "flan_n_shot/generative/mmlu_astronomy.yaml",
             "mmlu_flan_n_shot_generative_virology": "flan_n_shot/generative/mmlu_virology.yaml",
             "mmlu_flan_cot_zeroshot_anatomy": "flan_cot_zeroshot/mmlu_anatomy.yaml",
             "mmlu_flan_cot_zeroshot_marketing": "flan_cot_zeroshot/mmlu_marketing.yaml"}
for t, rel in MMLU_FLAN.items():
    SPEC[t] = (f"mmlu/{rel}", ["test", "validation", "dev"], "mmlu")

# gen_prefix ("The best answer is"), 5-shot first_n from dev, remove_whitespace, regexes_to_ignore
MMLU_LLAMA = {"mmlu_llama_anatomy": "mmlu_anatomy.yaml", "mmlu_llama_astronomy": "mmlu_astronomy.yaml",
              "mmlu_llama_virology": "mmlu_virology.yaml"}
for t, rel in MMLU_LLAMA.items():
    SPEC[t] = (f"llama3/instruct/mmlu/{rel}", ["test", "dev"], "mmlu")

GENERATIVE = ("bbh_", "mmlu_flan", "mmlu_llama")
LL_TASKS = [t for t in SPEC if not t.startswith(GENERATIVE)]
GEN_TASKS = [t for t in SPEC if t.startswith(GENERATIVE)]
# (run name, limit, task names to pass) — both CLIs take one --limit per call
RUNS = [("ll", 20, [f"parity_{t}" for t in LL_TASKS]),
        ("gen", 5, [f"parity_{t}" for t in GEN_TASKS if t.startswith("bbh_zeroshot")] + ["parity_bbh_fewshot"]),
        ("mc", 8, [f"parity_{t}" for t in MMLU_FLAN]),
        ("prefix", 8, [f"parity_{t}" for t in MMLU_LLAMA])]

WORDS = ("the a little girl boy dog cat tree house river sun moon bird fish ball red blue big small happy sad "
         "ran jumped played saw found made gave took went came looked said wanted liked loved park garden "
         "friend mom dad toy box car book water sky day night fast slow old new good bad warm cold").split()
NAMES = ["Lily", "Tom", "Ben", "Sue", "Max", "Anna", "Tim", "Mia", "Sam", "Lucy"]


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def sent(r, n=None):
    n = n or r.randint(5, 12)
    w = [r.choice(WORDS) for _ in range(n)]
    if r.random() < 0.3:
        w[r.randrange(n)] = r.choice(NAMES)
    s = " ".join(w)
    return s[0].upper() + s[1:] + "."


def bool_expr(r, depth=0):
    if depth > 2 or r.random() < 0.3:
        return r.choice(["True", "False"])
    k = r.random()
    if k < 0.3:
        return "not " + bool_expr(r, depth + 1)
    if k < 0.5:
        return "( " + bool_expr(r, depth + 1) + " )"
    return bool_expr(r, depth + 1) + r.choice([" and ", " or "]) + bool_expr(r, depth + 1)


def gen_rows(kind, r, n):
    rows = []
    for i in range(n):
        if kind == "blimp":
            subj = r.choice(NAMES)
            verb = r.choice(["likes", "sees", "finds", "helps"])
            obj = r.choice(WORDS)
            good = f"{subj} {verb} the {obj}."
            bad = f"{subj} {verb[:-1]} the {obj}." if r.random() < 0.5 else f"{subj} the {obj} {verb}."
            rows.append({"sentence_good": good, "sentence_bad": bad, "field": "syntax",
                         "linguistics_term": "parity", "UID": kind, "simple_LM_method": True,
                         "one_prefix_method": False, "two_prefix_method": False, "lexically_identical": False,
                         "pairID": str(i)})
        elif kind == "sciq":
            sup = " ".join(sent(r) for _ in range(r.randint(0, 3)))
            sup = ["", " ", "\n", "  \t"][i % 4] + sup  # exercise support.lstrip() (incl. empty support)
            rows.append({"question": sent(r)[:-1] + "?", "distractor1": r.choice(WORDS),
                         "distractor2": r.choice(WORDS), "distractor3": " ".join(r.sample(WORDS, 2)),
                         "correct_answer": r.choice(WORDS), "support": sup})
        elif kind == "lambada":
            t = " ".join(sent(r) for _ in range(r.randint(2, 5)))
            t = t[:-1] + " " + r.choice(NAMES + WORDS)  # last word without final period
            if i == 3:
                t = t.replace(" ", "  ", 1)  # a double space: split(' ') yields an empty token
            if i == 5:
                t = t.replace(". ", ".\n", 1)  # newline inside the context
            rows.append({"text": t, "domain": None} if False else {"text": t})
        elif kind == "pile":
            paras = ["\n".join(" ".join(sent(r) for _ in range(r.randint(1, 4))) for _ in range(r.randint(1, 3)))
                     for _ in range(r.randint(1, 12 if i % 3 == 0 else 3))]
            rows.append({"text": "\n\n".join(paras), "meta": {"pile_set_name": "Pile-CC"}})
        elif kind == "cola":
            rows.append({"sentence": sent(r), "label": r.randint(0, 1), "idx": i})
        elif kind == "mrpc":
            rows.append({"sentence1": sent(r), "sentence2": sent(r), "label": r.randint(0, 1), "idx": i})
        elif kind == "qqp":
            rows.append({"question1": sent(r)[:-1] + "?", "question2": sent(r)[:-1] + "?",
                         "label": r.randint(0, 1), "idx": i})
        elif kind == "arith":
            a, b, c = r.randint(0, 9), r.randint(0, 9), r.randint(0, 9)
            rows.append({"context": f"\n\nQ: What is ({a} + {b}) * {c}?\n\nA:", "completion": f" {(a + b) * c}"})
        elif kind == "mmlu":
            # Choices are story words, so that the tiny model's generations contain some of them
            # (multi_choice_regex's second stage); some carry punctuation and capitals.
            cs = r.sample(WORDS, 4)
            if i % 3 == 0:
                cs[r.randrange(4)] = r.choice(NAMES) + "!"
            if i % 4 == 1:
                cs[r.randrange(4)] = "the " + r.choice(WORDS) + "."
            rows.append({"question": " " + sent(r)[:-1] + "? ", "subject": "parity", "choices": cs,
                         "answer": r.randrange(4)})
        elif kind == "bbh_boolean_expressions":
            e = bool_expr(r)
            rows.append({"input": e + " is", "target": str(eval(e))})
        elif kind == "bbh_sports_understanding":
            p = r.choice(["Joao Moutinho", "Kyle Anderson", "Tom Brady", "Lionel Messi"])
            a = r.choice(["caught the screen pass", "hit a three pointer", "scored a penalty kick", "took a corner"])
            c = r.choice(["in the NFC championship", "in the Western Conference Finals", "in the World Cup"])
            rows.append({"input": f'Is the following sentence plausible? "{p} {a} {c}."',
                         "target": r.choice(["yes", "no"])})
        elif kind == "bbh_navigate":
            steps = [f"Take {r.randint(1, 9)} steps {r.choice(['forward', 'backward', 'left', 'right'])}."
                     for _ in range(r.randint(2, 6))]
            rows.append({"input": "If you follow these instructions, do you return to the starting point? "
                                  "Always face forward. " + " ".join(steps) + "\nOptions:\n- Yes\n- No",
                         "target": r.choice(["Yes", "No"])})
        elif kind == "bbh_web_of_lies":
            ns = r.sample(NAMES, 5)
            s = [f"{ns[0]} {r.choice(['lies', 'tells the truth'])}."]
            for a, b in zip(ns, ns[1:]):
                s.append(f"{b} says {a} {r.choice(['lies', 'tells the truth'])}.")
            rows.append({"input": "Question: " + " ".join(s) + f" Does {ns[-1]} tell the truth?",
                         "target": r.choice(["Yes", "No"])})
        elif kind == "bbh_causal_judgement":
            rows.append({"input": "How would a typical person answer each of the following questions about "
                                  "causation?\n" + " ".join(sent(r) for _ in range(3)) +
                                  f" Did {r.choice(NAMES)} cause the {r.choice(WORDS)} to fall?\nOptions:\n- Yes\n- No",
                         "target": r.choice(["Yes", "No"])})
        elif kind == "bbh_object_counting":
            items = r.sample(["a flute", "a piano", "a trombone", "two violins", "an accordion", "a drum"],
                             r.randint(2, 5))
            cnt = sum(2 if x.startswith("two") else 1 for x in items)
            rows.append({"input": "I have " + ", ".join(items[:-1]) + ", and " + items[-1] +
                                  ". How many musical instruments do I have?", "target": str(cnt)})
        elif kind == "bbh_formal_fallacies":
            rows.append({"input": '"Here comes a perfectly valid argument: ' + sent(r) + " " + sent(r) +
                                  ' Hence, ' + sent(r) + '"\nIs the argument, given the explicitly stated premises, '
                                  'deductively valid or invalid?\nOptions:\n- valid\n- invalid',
                         "target": r.choice(["valid", "invalid"])})
        elif kind == "bbh_dyck_languages":
            opens = [r.choice("([{<") for _ in range(r.randint(2, 5))]
            close = {"(": ")", "[": "]", "{": "}", "<": ">"}
            rows.append({"input": "Complete the rest of the sequence, making sure that the parentheses are "
                                  "closed properly. Input: " + " ".join(opens),
                         "target": " ".join(close[o] for o in reversed(opens))})
        else:
            raise ValueError(kind)
    return rows


def generate():
    os.makedirs(YDIR, exist_ok=True)
    for f in glob.glob(os.path.join(YDIR, "*.yaml")):
        os.remove(f)
    for ti, (task, (rel, splits, kind)) in enumerate(SPEC.items()):
        r = random.Random(1000 + ti)
        n = 5 if task.startswith("bbh_") else 20
        files = {}
        for sp in splits:
            p = os.path.join(DDIR, f"{task}.{sp}.jsonl")
            write_jsonl(p, gen_rows(kind, r, n))
            files[sp] = p
        with open(os.path.join(YDIR, f"parity_{task}.yaml"), "w") as f:
            f.write(f"include: {os.path.join(TASKS, rel)}\ntask: parity_{task}\ndataset_path: json\n"
                    f"dataset_name: null\ndataset_kwargs:\n  data_files:\n")
            for sp, p in files.items():
                f.write(f"    {sp}: {p}\n")
    with open(os.path.join(YDIR, "parity_bbh_fewshot.yaml"), "w") as f:
        f.write("group: parity_bbh_fewshot\ntask:\n" + "".join(f"  - parity_bbh_fewshot_{s}\n" for s in BBH_FEW) +
                "aggregate_metric_list:\n  - metric: exact_match\n    aggregation: mean\n    weight_by_size: true\n"
                "metadata:\n  version: 3.0\n")


def sh(cmd, log, env=None):
    print("+ " + " ".join(cmd), flush=True)
    t = time.time()
    with open(log, "w") as f:
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    print(f"  rc={p.returncode} in {time.time() - t:.0f}s (log {os.path.relpath(log, REPO)})", flush=True)
    return p.returncode


def lm_cmd(name, limit, tasks):
    return [LM_EVAL, "--model", "hf", "--model_args", f"pretrained={MODEL},dtype=float32", "--device", "cpu",
            "--batch_size", "8", "--include_path", YDIR, "--tasks", ",".join(tasks), "--log_samples",
            "--output_path", os.path.join(WORK, "lm_eval", name), "--limit", str(limit)]


K2_REFUSED = ["parity_arithmetic_1dc"]  # !function process_docs: k2 refuses (see logs/k2_refused.log)


def k2_cmd(name, limit, tasks):
    tasks = [t for t in tasks if t not in K2_REFUSED] or tasks
    return [K2, "eval", "--model", "fixtures/models/stories260K-hf", "--include-path", "bench/yaml_parity/work/yamls",
            "--tasks", ",".join(tasks), "--limit", str(limit), "--output", f"bench/yaml_parity/work/k2/{name}",
            "--threads", "2", "--batch-size", "8", "--quiet"]


def run_all(only=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    sh([K2, "eval", "--list-tasks", "--include-path", "bench/yaml_parity/work/yamls", "--verbose"],
       os.path.join(WORK, "logs", "k2_list_tasks.log"), env)
    sh(k2_cmd("refused", 5, K2_REFUSED), os.path.join(WORK, "logs", "k2_refused.log"), env)
    for name, limit, tasks in RUNS:
        if only and name not in only:
            continue
        sh(k2_cmd(name, limit, tasks), os.path.join(WORK, "logs", f"k2_{name}.log"), env)
        sh(lm_cmd(name, limit, tasks), os.path.join(WORK, "logs", f"lm_eval_{name}.log"), env)


# ------------------------------------------------------------------------------------------ loading
def latest(pattern):
    c = sorted(glob.glob(pattern), key=os.path.getmtime)
    return c[-1] if c else None


def load_lm(name, task):
    base = os.path.join(WORK, "lm_eval", name)
    rp = latest(os.path.join(base, "*", "results_*.json"))
    if not rp:
        return None
    res = json.load(open(rp))["results"]
    # samples_<task>_<timestamp>.jsonl: match the timestamp so that `lambada_openai` does not
    # pick up `lambada_openai_cloze_yaml`'s file.
    sp = latest(os.path.join(base, "*", f"samples_parity_{task}_[0-9][0-9][0-9][0-9]-*.jsonl"))
    if not sp:
        return res.get(f"parity_{task}"), None
    docs = {}
    for s in read_jsonl(sp):
        d = docs.setdefault(s["doc_id"], {"reqs": [], "resps": [], "filtered": {}, "metrics": {}})
        filt = s.get("filter", "none")
        args = s["arguments"]
        args = list(args.values()) if isinstance(args, dict) else args
        if not d["reqs"]:
            for a, r in zip(args, s["resps"]):
                a = list(a.values()) if isinstance(a, dict) else list(a)
                r = r[0] if isinstance(r, list) else r
                if isinstance(a[-1], dict) or (len(a) == 2 and not isinstance(a[1], str)):  # generate_until
                    g = a[1] if isinstance(a[1], dict) else {}
                    d["reqs"].append(("generate", a[0], tuple(g.get("until", []))))
                    d["resps"].append(("generate", r))
                elif len(a) == 2:
                    d["reqs"].append(("loglikelihood", a[0], a[1]))
                    d["resps"].append(("ll", float(r[0]), str(r[1]) == "True"))
                else:
                    d["reqs"].append(("rolling", a[0]))
                    d["resps"].append(("ll", float(r[0] if isinstance(r, list) else r), None))
        if d["reqs"] and d["reqs"][0][0] == "generate":
            fr = s["filtered_resps"]
            d["filtered"][filt] = fr[0] if isinstance(fr, list) else fr
        for k, v in s.items():
            if k in ("doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
                     "doc_hash", "prompt_hash", "target_hash"):
                continue
            if k in s.get("metrics", [k]):
                d["metrics"][f"{k},{filt}"] = v
    return res.get(f"parity_{task}"), docs


def load_k2(name, task):
    base = os.path.join(WORK, "k2", name)
    p = os.path.join(base, f"parity_{task}.json")
    if not os.path.exists(p):
        return None
    res = json.load(open(p))["results"].get(f"parity_{task}")
    sp = os.path.join(base, f"parity_{task}.samples.jsonl")
    if not os.path.exists(sp):
        return res, None
    docs = {}
    for s in read_jsonl(sp):
        d = {"reqs": [], "resps": [], "filtered": s.get("filtered") or {}, "metrics": s.get("metrics") or {}}
        for a in s["arguments"]:
            if a["type"] == "loglikelihood":
                d["reqs"].append(("loglikelihood", a["context"], a["continuation"]))
            elif a["type"] == "rolling":
                d["reqs"].append(("rolling", a["text"]))
            else:
                d["reqs"].append(("generate", a["context"], tuple(a.get("until", []))))
        for r in s["resps"]:
            if r["type"] == "generate":
                d["resps"].append(("generate", r["text"]))
            else:
                d["resps"].append(("ll", float(r["ll"]), r.get("is_greedy")))
        docs[s["doc_id"]] = d
    return res, docs


def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def close(a, b, rel=1e-4, ab=1e-5):
    if num(a) and num(b):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=rel, abs_tol=ab)
    return a == b


def compare():
    rows, notes = [], []
    for name, limit, names in RUNS:
        tasks = [t for t in SPEC if f"parity_{t}" in names or (t.startswith("bbh_fewshot") and "parity_bbh_fewshot" in names)]
        for task in tasks + (["bbh_fewshot"] if name == "gen" else []):
            group = task == "bbh_fewshot"
            k = load_k2(name, task)
            l = load_lm(name, task)
            otype = "group" if group else ("generate_until" if task.startswith(GENERATIVE) else
                                           "loglikelihood_rolling" if task == "pile_10k" else
                                           "loglikelihood" if task.startswith(("lambada", "arith")) else "multiple_choice")
            if k is None and f"parity_{task}" in K2_REFUSED:
                reason = open(os.path.join(WORK, "logs", "k2_refused.log")).read().strip().split("k2 cannot run it: ")[-1]
                rows.append([task, otype, "-", "-", "-", "-", "-", "-", f"refused by k2: {reason}"])
                continue
            if k is None or l is None:
                rows.append([task, otype, "-", "-", "-", "-", "-", "-",
                             f"MISSING ({'k2' if k is None else ''}{' lm-eval' if l is None else ''})"])
                continue
            kres, kd = k
            lres, ld = l
            nreq = pdiff = gdiff = gendiff = fdiff = mdiff = 0
            maxd, worst = 0.0, None
            ndocs = "-"
            if kd is not None and ld is not None:
                if set(kd) != set(ld):
                    notes.append(f"{task}: doc ids differ: k2 {sorted(kd)} vs lm-eval {sorted(ld)}")
                docs = sorted(set(kd) & set(ld))
                ndocs = f"{len(docs)}" + ("" if len(kd) == len(ld) else f" (k2 {len(kd)}, lm {len(ld)})")
                for d in docs:
                    a, b = kd[d], ld[d]
                    if len(a["reqs"]) != len(b["reqs"]):
                        notes.append(f"{task} doc {d}: {len(a['reqs'])} vs {len(b['reqs'])} requests")
                        pdiff += 1
                        continue
                    for i, (ra, rb, sa, sb) in enumerate(zip(a["reqs"], b["reqs"], a["resps"], b["resps"])):
                        nreq += 1
                        if ra != rb:
                            pdiff += 1
                            if pdiff <= 2:
                                notes.append(f"{task} doc {d} req {i}: prompt differs\n    k2:      {ra!r}\n    lm-eval: {rb!r}")
                        if sa[0] == "ll" and sb[0] == "ll":
                            dd = abs(sa[1] - sb[1])
                            if dd > maxd:
                                maxd, worst = dd, (d, i, sa[1], sb[1])
                            if not close(sa[1], sb[1]):
                                notes.append(f"{task} doc {d} req {i}: ll k2 {sa[1]!r} lm-eval {sb[1]!r}") if dd > 1e-3 and len(notes) < 400 else None
                            if sa[2] != sb[2]:
                                gdiff += 1
                                if gdiff <= 2:
                                    notes.append(f"{task} doc {d} req {i}: is_greedy k2 {sa[2]} lm-eval {sb[2]}")
                        elif sa[0] == "generate" and sb[0] == "generate":
                            if sa[1] != sb[1]:
                                gendiff += 1
                                if gendiff <= 2:
                                    notes.append(f"{task} doc {d}: generation differs\n    k2:      {sa[1][:200]!r}\n    lm-eval: {sb[1][:200]!r}")
                        else:
                            notes.append(f"{task} doc {d} req {i}: response kinds differ {sa[0]} vs {sb[0]}")
                    for f, v in b["filtered"].items():
                        if a["filtered"].get(f) != v:
                            fdiff += 1
                            if fdiff <= 3:
                                notes.append(f"{task} doc {d}: filtered[{f}] k2 {a['filtered'].get(f)!r} lm-eval {v!r}")
                    for m, v in b["metrics"].items():
                        kv = a["metrics"].get(m)
                        if isinstance(v, list):
                            # lm-eval keeps a pair per doc for corpus-level metrics: (gold, pred) for
                            # mcc/f1, (loglikelihood, words or bytes) for word/byte perplexity and
                            # bits per byte; k2's samples keep its first element (the aggregate,
                            # compared below, uses both).
                            ok = close(kv, float(v[0]))
                        elif isinstance(v, (int, float)):
                            ok = close(kv, v)
                        else:
                            ok = kv == v
                        if not ok:
                            mdiff += 1
                            if mdiff <= 3:
                                notes.append(f"{task} doc {d}: per-doc metric {m} k2 {kv!r} lm-eval {v!r}")
                if worst and maxd > 1e-5:
                    notes.append(f"{task}: max|Δll| {maxd:.3g} at doc {worst[0]} req {worst[1]} (k2 {worst[2]!r}, lm-eval {worst[3]!r})")
            # aggregate metrics
            kres, lres = kres or {}, lres or {}
            keys = sorted(k_ for k_ in lres if "," in k_ and not k_.startswith("alias"))
            agg_bad = []
            for key in keys:
                lv, kv = lres[key], kres.get(key)
                if lv == "N/A" or kv in ("N/A", None) and "stderr" in key:
                    if not (lv == kv or (kv is None and lv == "N/A")):
                        agg_bad.append(f"{key}: k2 {kv!r} lm-eval {lv!r}")
                    continue
                tol = 1e-4 if ("perplexity" in key or "bits" in key or "stderr" in key) else 1e-9
                if not close(kv, lv, rel=tol, ab=1e-9):
                    agg_bad.append(f"{key}: k2 {kv!r} lm-eval {lv!r}")
            extra = sorted(set(k_ for k_ in kres if "," in k_) - set(keys))
            if extra:
                notes.append(f"{task}: metric keys only k2 reports: {extra}")
            for x in agg_bad:
                notes.append(f"{task}: aggregate {x}")
            mtxt = "yes" if not agg_bad and not mdiff and keys else ("no keys from lm-eval" if not keys else
                    f"NO ({len(agg_bad)} agg, {mdiff} per-doc)")
            rows.append([task, otype, ndocs, nreq, pdiff, f"{maxd:.2e}", gdiff,
                         f"{gendiff} (filtered {fdiff})" if otype == "generate_until" else "-", mtxt])
    hdr = "| task | output type | docs | requests | prompt diffs | max \\|Δll\\| | greedy diffs | generation diffs | metrics equal? |"
    lines = [hdr, "|" + "---|" * 9] + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    table = "\n".join(lines)
    print(table)
    print()
    for n in notes:
        print(n)
    return table, notes


def versions():
    out = {}
    try:
        out["lm_eval"] = subprocess.run([sys.executable, "-c", "import lm_eval,torch,transformers,datasets;"
                                         "print(lm_eval.__version__, torch.__version__, transformers.__version__, datasets.__version__)"],
                                        capture_output=True, text=True).stdout.strip()
    except Exception as e:  # noqa
        out["lm_eval"] = str(e)
    out["k2"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-run", action="store_true")
    ap.add_argument("--runs", help="comma-separated run names to (re)run (default: all)")
    args = ap.parse_args()
    if not args.skip_run:
        generate()
        run_all(args.runs.split(",") if args.runs else None)
    table, notes = compare()
    v = versions()
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("# k2 eval vs lm-evaluation-harness on lm-eval task YAMLs (wrapped onto local data)\n\n")
        f.write(f"lm_eval / torch / transformers / datasets: {v['lm_eval']}; k2 checkout {v['k2']} "
                f"(binary target/release/k2); model fixtures/models/stories260K-hf, CPU, fp32, batch 8.\n\n")
        f.write("Commands (run from the repository root; HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1):\n\n```\n")
        f.write("/work/pyref/bin/python bench/yaml_parity/run.py\n")
        for name, limit, tasks in RUNS:
            f.write(" ".join(k2_cmd(name, limit, tasks)).replace(REPO + "/", "") + "\n")
            f.write(" ".join(lm_cmd(name, limit, tasks)).replace(REPO + "/", "") + "\n")
        f.write("```\n\n" + table + "\n\n## Notes / mismatches\n\n```\n" + "\n".join(notes) + "\n```\n")


if __name__ == "__main__":
    main()
