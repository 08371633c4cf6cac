"""Which Python hooks (`!function`) keep lm-eval's task YAMLs from running in k2, and which few
would unlock the most tasks.

Reads every task YAML of a task tree (lm-eval's own by default) with `include:` merged as lm-eval
merges it, collects each task's `!function` hooks (field, module file, function), and identifies a
hook by the hash of its function's source (so the 300 copies of one `process_docs` in different
folders count as one hook). Prints, per hook: the tasks that need it, and the tasks it alone would
unlock (their only hook). Needs only PyYAML.

    python bench/yaml_tasks/hook_survey.py [TASK_DIR] [--top N]
"""

import argparse
import ast
import collections
import hashlib
import os
import sys

import yaml


class Fn(str):
    pass


def loader_for():
    class L(yaml.SafeLoader):
        pass

    L.add_constructor("!function", lambda l, n: Fn(l.construct_scalar(n)))
    return L


def load(path, seen=()):
    path = os.path.realpath(path)
    if path in seen:
        raise ValueError("include cycle")
    with open(path, "rb") as f:
        cfg = yaml.load(f, Loader=loader_for())
    if not isinstance(cfg, dict):
        raise ValueError("not a mapping")
    cfg = {k: (v, path) for k, v in cfg.items()}
    inc = cfg.pop("include", None)
    if inc is None:
        return cfg
    merged = {}
    for i in inc[0] if isinstance(inc[0], list) else [inc[0]]:
        p = i if os.path.isabs(i) else os.path.join(os.path.dirname(path), i)
        sub = load(p, seen + (path,))
        sub.pop("task_list", None)
        merged.update(sub)
    merged.update(cfg)
    return merged


def hooks_in(value, where, out):
    if isinstance(value, Fn):
        out.append((str(value), where))
    elif isinstance(value, dict):
        for v in value.values():
            hooks_in(v, where, out)
    elif isinstance(value, list):
        for v in value:
            hooks_in(v, where, out)


_src_cache = {}


def hook_id(spec, yaml_path):
    mod, _, fn = spec.rpartition(".")
    mod_path = os.path.join(os.path.dirname(yaml_path), mod.replace(".", "/") + ".py")
    key = (mod_path, fn)
    if key in _src_cache:
        return _src_cache[key]
    src = None
    if os.path.exists(mod_path):
        tree = ast.parse(open(mod_path, encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == fn:
                src = ast.dump(node, annotate_fields=False)
                break
    digest = hashlib.sha256((src or f"<unresolved {spec}>").encode()).hexdigest()[:10]
    _src_cache[key] = (digest, fn, os.path.relpath(mod_path, ROOT))
    return _src_cache[key]


def main():
    global ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("tasks", nargs="?")
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    if a.tasks is None:
        import lm_eval

        a.tasks = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")
    ROOT = a.tasks
    need = {}
    total = 0
    for d, _, files in sorted(os.walk(a.tasks)):
        if "__pycache__" in d:
            continue
        for f in sorted(files):
            if not f.endswith(".yaml"):
                continue
            try:
                cfg = load(os.path.join(d, f))
            except Exception:
                continue
            if "task" not in cfg or "group" in cfg or "class" in cfg:
                continue
            total += 1
            found = []
            for k, (v, p) in cfg.items():
                hooks_in(v, (k, p), found)
            if found:
                need[str(cfg["task"][0])] = {(hook_id(s, p), k) for s, (k, p) in found}
    by_hook = collections.defaultdict(set)  # source digest -> tasks
    names = {}  # source digest -> (function, first module, modules holding a copy)
    alone = collections.Counter()
    by_field = collections.Counter()
    for task, hs in need.items():
        digests = set()
        for (digest, fn, mod), field in hs:
            by_hook[digest].add(task)
            fn0, mod0, mods = names.get(digest, (fn, mod, set()))
            mods.add(mod)
            names[digest] = (fn0, mod0, mods)
            by_field[field] += 1
            digests.add(digest)
        if len(digests) == 1:
            alone[next(iter(digests))] += 1
    print(f"{total} task YAMLs; {len(need)} need a Python hook; {len(by_hook)} distinct hooks (by source)")
    print("hooks per field:", dict(by_field.most_common()))
    print(f"\n| hook (function, a module holding it, copies) | tasks needing it | tasks it alone unlocks |")
    print("|---|---|---|")
    ranked = sorted(by_hook, key=lambda d: (-alone[d], -len(by_hook[d])))
    for d in ranked[: a.top]:
        fn, mod, mods = names[d]
        print(f"| `{fn}` ({mod}, {len(mods)} copies) | {len(by_hook[d])} | {alone[d]} |")
    covered = sum(alone[d] for d in ranked[: a.top])
    single = sum(alone.values())
    print(f"\n{single} of the {len(need)} tasks need exactly one distinct hook; the top {a.top} hooks unlock {covered} tasks")

if __name__ == "__main__":
    sys.exit(main())
