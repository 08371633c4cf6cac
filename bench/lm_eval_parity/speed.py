#!/usr/bin/env python3
"""Evaluation throughput: `k2 bench eval` vs real lm-evaluation-harness (HFLM) on the same work.

Usage (from anywhere; paths default to this checkout):
    /work/pyref/bin/python bench/lm_eval_parity/speed.py                       # both models, 3 reps, + 1-thread + e2e
    /work/pyref/bin/python bench/lm_eval_parity/speed.py --models /tmp/m17 --reps 1 --no-single --no-e2e

Work (--task): hellaswag 0-shot, --limit 200 docs (800 loglikelihood requests), batch size 8; or
mmlu: 5-shot (first_n, as lm-eval's MMLU) on --subjects (default 5), --limit 20 docs each (400 requests),
which needs a model whose context holds the 5-shot prompts (e.g. `k2 model init bench-17m --max-positions 4096`).

* k2:      `k2 bench eval --model M --tasks hellaswag --shots hellaswag=0 --limit 200 --batch-size 8 --threads T
            --data D` prints one JSON line; `seconds` covers scoring only (tokenise + forward + ll), model load excluded.
* lm-eval: a fresh Python process (OMP/MKL_NUM_THREADS=T, torch.set_num_threads(T)) builds
            `HFLM(pretrained=M, dtype="float32", batch_size=8, device="cpu")` once, builds the parity_hellaswag
            requests once (tasks/parity_hellaswag.yaml, the same docs k2 sees, see README), then times
            `lm.loglikelihood(requests)` (TemplateLM.loglikelihood: _encode_pair + _loglikelihood_tokens), i.e. the
            same scope as k2's `seconds`. acc/acc_norm are recomputed from the returned lls as a sanity check.
* lm-eval end to end (context): `simple_evaluate(model="hf", ..., tasks=["parity_hellaswag"], limit=200)` timed
  inside the process (after imports: model load + dataset + requests + scoring + metrics), plus the whole
  process wall time; k2's process wall time (`k2 bench eval`, which loads the model too) is shown beside it.

Runs alternate k2 / lm-eval, `--reps` times each at `--threads`; medians are reported. Before each run the script
waits (up to --quiet-wait s) until the machine is quiet (other processes use < --busy-max cores, sampled from
/proc/stat over 1 s), and it records the 1-min load average and that busy-core figure for every run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
TASKS = os.path.join(HERE, "tasks")
HS_DATA = os.path.join(HERE, "work", "data", "hellaswag.jsonl")  # referenced (relative to REPO) by the yaml


# ---------------------------------------------------------------- worker (runs in a fresh process)
def worker(args):
    import torch
    torch.set_num_threads(args.threads)
    import numpy as np
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager, get_task_dict

    out = {"impl": "lm-eval", "threads": args.threads, "torch_threads": torch.get_num_threads()}
    if args.worker == "e2e":
        from lm_eval.evaluator import simple_evaluate
        t = time.perf_counter()
        names = parity_tasks(args)
        r = simple_evaluate(model="hf", model_args=f"pretrained={args.model},dtype=float32",
                            tasks=names, limit=args.limit, batch_size=args.batch_size, device="cpu",
                            task_manager=TaskManager(include_path=TASKS), log_samples=False)
        out["e2e_seconds"] = time.perf_counter() - t
        res = r["results"][names[0]]
        out["metrics"] = {k.split(",")[0]: v for k, v in res.items() if k in ("acc,none", "acc_norm,none")}
        print("SPEED " + json.dumps(out), flush=True)
        return

    t = time.perf_counter()
    lm = HFLM(pretrained=args.model, dtype="float32", batch_size=args.batch_size, device="cpu")
    out["load_seconds"] = time.perf_counter() - t

    t = time.perf_counter()
    names = parity_tasks(args)
    tasks = get_task_dict(names, TaskManager(include_path=TASKS))
    reqs = []
    for name in names:
        tasks[name].build_all_requests(limit=args.limit, rank=0, world_size=1)
        reqs += [(name, i) for i in tasks[name].instances for _ in range(i.repeats)]
    out["build_seconds"] = time.perf_counter() - t
    out["requests"] = len(reqs)
    out["docs"] = len({(n, i.doc_id) for n, i in reqs})

    # One loglikelihood call over every task's requests (lm-eval sorts and batches them together).
    t = time.perf_counter()
    resps = lm.loglikelihood([i for _, i in reqs], disable_tqdm=True)
    out["seconds"] = time.perf_counter() - t
    out["requests_per_s"] = len(reqs) / out["seconds"]

    # sanity: acc / acc_norm from the lls, as lm-eval's multiple_choice process_results does
    by_doc = {}
    for (name, inst), (ll, _) in zip(reqs, resps):
        by_doc.setdefault((name, inst.doc_id), (name, inst.doc, {}))[2][inst.idx] = ll
    acc = acc_norm = 0.0
    for name, doc, d in by_doc.values():
        lls = np.array([d[k] for k in sorted(d)])
        lens = np.array([float(len(c)) for c in tasks[name].doc_to_choice(doc)])
        gold = tasks[name].doc_to_target(doc)
        acc += float(np.argmax(lls) == gold)
        acc_norm += float(np.argmax(lls / lens) == gold)
    out["metrics"] = {"acc": acc / len(by_doc), "acc_norm": acc_norm / len(by_doc)}
    print("SPEED " + json.dumps(out), flush=True)


def parity_tasks(args):
    """lm-eval's task names for the work (bench/lm_eval_parity/tasks)."""
    if args.task == "mmlu":
        return [f"parity_mmlu_{s}" for s in args.subjects]
    return ["parity_hellaswag"]


# ---------------------------------------------------------------- orchestration
def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v) - idle, sum(v)


def busy_cores(interval=1.0):
    """Cores kept busy (by anything) over `interval` s; sampled between runs, so it measures *other* load."""
    b0, t0 = cpu_times()
    time.sleep(interval)
    b1, t1 = cpu_times()
    return (b1 - b0) / max(t1 - t0, 1) * os.cpu_count()


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_quiet(args):
    t0 = time.time()
    while True:
        b = busy_cores()
        if b < args.busy_max or time.time() - t0 > args.quiet_wait:
            return b, time.time() - t0


def run_json(cmd, env, prefix=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    if prefix:
        lines = [l[len(prefix):] for l in lines if l.startswith(prefix)]
        o = json.loads(lines[-1])
    else:
        # `k2 bench eval` prints one line per task: the work is their sum.
        parts = [json.loads(l) for l in lines if l.startswith("{")]
        o = dict(parts[-1])
        for key in ("seconds", "requests", "docs"):
            o[key] = sum(x[key] for x in parts)
        o["requests_per_s"] = o["requests"] / o["seconds"]
        if len(parts) > 1:
            o["metrics"] = {"acc": sum(dict(x["metrics"])["acc,none"] * x["docs"] for x in parts) / o["docs"]}
    o["process_wall_s"] = wall
    return o


def k2_cmd(args, model, threads):
    import compare
    if args.task == "mmlu":
        tasks, shots = ",".join(f"mmlu_{s}" for s in args.subjects), "mmlu=5"
    else:
        tasks, shots = "hellaswag", "hellaswag=0"
    return [args.k2, "bench", "eval", "--model", model, "--tasks", tasks, "--shots", shots,
            "--limit", str(args.limit), "--batch-size", str(args.batch_size), "--threads", str(threads),
            "--data", compare.k2_data(args)]


def lm_cmd(args, model, threads, mode="scoring"):
    return [sys.executable, os.path.abspath(__file__), "--worker", mode, "--model", model, "--threads", str(threads),
            "--limit", str(args.limit), "--batch-size", str(args.batch_size), "--task", args.task,
            "--subjects", *args.subjects]


def env_for(threads):
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")


def one(args, impl, model, threads, mode="scoring"):
    busy, waited = wait_quiet(args)
    la = loadavg()
    if impl == "k2":
        o = run_json(k2_cmd(args, model, threads), env_for(threads))
    else:
        o = run_json(lm_cmd(args, model, threads, mode), env_for(threads), prefix="SPEED ")
    o.update(impl=impl, model=model, threads=threads, load1_before=la, busy_before=busy, waited_s=waited)
    if "metrics" in o and isinstance(o["metrics"], list):  # k2: [["acc,none", x], ...]
        o["metrics"] = {k.split(",")[0]: v for k, v in o["metrics"]}
    s = o.get("seconds", o.get("e2e_seconds"))
    print(f"  {impl:8s} {mode:7s} t={threads} {os.path.basename(model):16s} {s:8.3f} s  "
          f"({o.get('requests_per_s', float('nan')):7.1f} req/s)  proc {o['process_wall_s']:6.2f} s  "
          f"metrics {o.get('metrics')}  [load1 {la:.2f}, other busy {busy:.2f} cores]", flush=True)
    return o


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+",
                    default=[os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "models", "stories260K-hf"), "/tmp/m17"])
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--k2-data", default=None,
                    help="benchmarks laid out like the Hub for k2 (default: --data re-encoded into target/hub-data)")
    ap.add_argument("--k2", default=os.path.join(REPO, "target/release/k2"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--task", choices=["hellaswag", "mmlu"], default="hellaswag")
    ap.add_argument("--subjects", nargs="+",
                    default=["abstract_algebra", "anatomy", "astronomy", "college_biology", "high_school_geography"],
                    help="MMLU subjects for --task mmlu (each needs tasks/parity_mmlu_<subject>.yaml)")
    ap.add_argument("--limit", type=int, default=None, help="documents per task (default 200 hellaswag, 20 mmlu)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-single", action="store_true", help="skip the 1-thread context runs")
    ap.add_argument("--no-e2e", action="store_true", help="skip lm-eval's simple_evaluate end-to-end run")
    ap.add_argument("--busy-max", type=float, default=0.3, help="max other-process cores before a run")
    ap.add_argument("--quiet-wait", type=float, default=120, help="max seconds to wait for a quiet machine")
    ap.add_argument("--json", default=os.path.join(HERE, "work", "speed.json"))
    ap.add_argument("--worker", choices=["scoring", "e2e"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.limit is None:
        args.limit = 20 if args.task == "mmlu" else 200
    if args.worker:
        os.chdir(REPO)  # the task yaml's data_files path is relative to the repo root
        return worker(args)

    sys.path.insert(0, HERE)
    import compare
    compare.DDIR = os.path.dirname(HS_DATA)
    if not os.path.exists(HS_DATA):
        compare.convert_hellaswag(args.data)
    if args.task == "mmlu" and not all(
            os.path.exists(os.path.join(compare.DDIR, f"mmlu/{s}_test.jsonl")) for s in args.subjects):
        compare.MMLU_SUBJECTS = args.subjects
        compare.convert_mmlu(args.data)

    up0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print("before:", up0, f"(nproc {os.cpu_count()})", flush=True)
    runs = []
    for model in args.models:
        print(f"== {model}", flush=True)
        for _ in range(args.reps):
            runs.append(one(args, "k2", model, args.threads))
            runs.append(one(args, "lm-eval", model, args.threads))
        if not args.no_single:
            runs.append(one(args, "k2", model, 1))
            runs.append(one(args, "lm-eval", model, 1))
        if not args.no_e2e:
            runs.append(one(args, "lm-eval", model, args.threads, mode="e2e"))
    up1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print("after: ", up1, flush=True)

    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"uptime_before": up0, "uptime_after": up1, "runs": runs}, f, indent=1)

    print("\n| model | impl | threads | runs | seconds (median) | req/s | ratio k2/lm-eval (req/s) | all runs (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models:
        name = os.path.basename(model.rstrip("/"))
        for threads in sorted({r["threads"] for r in runs if r["model"] == model and "seconds" in r}, reverse=True):
            med = {}
            for impl in ("k2", "lm-eval"):
                rs = [r for r in runs if r["model"] == model and r["impl"] == impl and r["threads"] == threads
                      and "seconds" in r]
                if rs:
                    s = statistics.median(r["seconds"] for r in rs)
                    med[impl] = (s, rs[0]["requests"] / s, rs)
            for impl, (s, rps, rs) in med.items():
                ratio = f"**{med['lm-eval'][0] / med['k2'][0]:.2f}x**" if impl == "k2" and len(med) == 2 else ""
                print(f"| {name} | {impl} | {threads} | {len(rs)} | {s:.3f} | {rps:.1f} | {ratio} | "
                      + ", ".join("%.3f" % r["seconds"] for r in rs) + " |")
    e2e = [r for r in runs if "e2e_seconds" in r]
    if e2e:
        print("\nEnd to end (context, includes model load / task build / metrics):")
        print("| model | lm-eval simple_evaluate (in-process) | lm-eval process wall | k2 bench eval process wall (median) |")
        print("|---|---|---|---|")
        for r in e2e:
            k = [x["process_wall_s"] for x in runs if x["model"] == r["model"] and x["impl"] == "k2"
                 and x["threads"] == r["threads"] and "seconds" in x]
            print(f"| {os.path.basename(r['model'].rstrip('/'))} | {r['e2e_seconds']:.2f} s | "
                  f"{r['process_wall_s']:.2f} s | {statistics.median(k):.2f} s |")
    print(f"\nuptime before: {up0}\nuptime after:  {up1}\nraw runs: {args.json}")


if __name__ == "__main__":
    main()
