#!/usr/bin/env python3
"""Re-encode the benchmark copies in shared/data as Hugging Face Hub dataset repositories.

Reads the files under shared/data (llm-foundry jsonl, klosax's hellaswag text, raw csv/jsonl; each
folder's README says where they come from) and writes parquet files laid out like the Hub
repositories lm-eval's task YAMLs name:

    OUT/<org>/<name>/<the files as that Hub repository (or its parquet export) has them>

with the Hub datasets' column names and types. Fields the shared copies lack are reconstructed
(see each function's docstring); every reconstruction is checked row by row against the source and
the script stops with an error if one does not hold. These are NOT downloads from the Hub.

Modes:
  --rows N   fixture mode: the first N rows of each eval split (mmlu: 4 test rows per subject and
             all 5 dev rows) plus a small few-shot split (for datasets whose train split is not in
             shared/data: source rows N..N+26 of the eval file, written as the train split).
  --full     every row of every eval split; no made-up train splits (gsm8k's real train is kept).

Also writes OUT/hub.json, listing the repositories the Hub serves only from their
`refs/convert/parquet` export (repositories with a loading script).

Compression: snappy (the Hub's default) everywhere except cais/mmlu, which uses zstd, so that
readers are tested on both codecs.

Needs pyarrow (`pip install pyarrow`).

Fixtures committed in the repository:
    python3 scripts/hub_datasets_from_shared.py --rows 24 --out fixtures/datasets
"""

import argparse
import csv
import json
import os
import sys
from pathlib import Path

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover
    sys.exit("this script needs pyarrow: pip install pyarrow")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = REPO_ROOT / ".." / "shared" / "data"

FEWSHOT_ROWS = 26  # size of a made-up train split in fixture mode
MMLU_FIXTURE_TEST_ROWS = 4  # mmlu test rows per subject in fixture mode
WIKITEXT_FIXTURE_PAGES = 3
WIKITEXT_FIXTURE_MAX_BYTES = 150_000

SCRIPT_REPOS = ["Rowan/hellaswag", "EleutherAI/lambada_openai", "EleutherAI/wikitext_document_level"]

STR = pa.string()
STR_LIST = pa.list_(pa.string())
MC_CHOICES = pa.struct([("text", STR_LIST), ("label", STR_LIST)])
TQA_TARGETS = pa.struct([("choices", STR_LIST), ("labels", pa.list_(pa.int32()))])


class Fail(Exception):
    """A source row that does not have the shape a reconstruction relies on."""


def fail(path, row, msg):
    raise Fail(f"{path}: row {row}: {msg}")


# --------------------------------------------------------------------------------------------
# Output


class Out:
    def __init__(self, root: Path, n_rows):
        self.root = root
        self.n = n_rows  # None in --full mode
        self.summary = []  # (relative path, rows, codec, bytes)
        self.cleaned = set()

    @property
    def fixture(self):
        return self.n is not None

    def write(self, repo, relpath, schema, rows, codec="snappy"):
        repo_dir = self.root / repo
        if repo not in self.cleaned:
            # Remove parquet files a previous run (maybe in another mode) left in this repo folder.
            if repo_dir.exists():
                for old in repo_dir.rglob("*.parquet"):
                    old.unlink()
            self.cleaned.add(repo)
        path = repo_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, path, compression=codec)
        self.summary.append((f"{repo}/{relpath}", table.num_rows, codec, path.stat().st_size))

    def split(self, rows):
        """(eval rows, few-shot rows or None): the first N and the next FEWSHOT_ROWS in fixture
        mode, everything and None in --full mode."""
        if self.n is None:
            return rows, None
        return rows[: self.n], rows[self.n : self.n + FEWSHOT_ROWS]


def read_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                rows.append(json.loads(line))
            else:
                fail(path, i, "empty line")
    return rows


def mc_labels(path, i, choices, gold):
    labels = [chr(ord("A") + k) for k in range(len(choices))]
    if not isinstance(gold, int) or not 0 <= gold < len(choices):
        fail(path, i, f"gold {gold!r} out of range for {len(choices)} choices")
    return labels, labels[gold]


# --------------------------------------------------------------------------------------------
# 1. allenai/ai2_arc


ARC_SCHEMA = pa.schema([("id", STR), ("question", STR), ("choices", MC_CHOICES), ("answerKey", STR)])


def arc(src: Path, out: Out):
    """llm-foundry {"query": "Question: <q>", "choices", "gold"} -> ai2_arc rows.

    question = query less "Question: "; labels A, B, C, ... (the raw ids and labels, some of which
    are "1".."4" on the Hub, are not in the source); id = "<Variant>-test-<source row>". There is
    no train data in shared/data: the fixture's train split is test rows N..N+26."""
    for variant, fname in [("ARC-Easy", "arc_easy_test.jsonl"), ("ARC-Challenge", "arc_challenge_test.jsonl")]:
        path = src / "arc" / fname
        rows = []
        for i, r in enumerate(read_jsonl(path)):
            q = r["query"]
            if not q.startswith("Question: "):
                fail(path, i, f"query does not start with 'Question: ': {q[:60]!r}")
            labels, key = mc_labels(path, i, r["choices"], r["gold"])
            rows.append(
                {
                    "id": f"{variant}-test-{i}",
                    "question": q[len("Question: ") :],
                    "choices": {"text": list(r["choices"]), "label": labels},
                    "answerKey": key,
                }
            )
        test, train = out.split(rows)
        out.write("allenai/ai2_arc", f"{variant}/test-00000-of-00001.parquet", ARC_SCHEMA, test)
        if train is not None:
            out.write("allenai/ai2_arc", f"{variant}/train-00000-of-00001.parquet", ARC_SCHEMA, train)


# --------------------------------------------------------------------------------------------
# 2. Rowan/hellaswag (parquet export)

HELLASWAG_SCHEMA = pa.schema(
    [
        ("ind", pa.int32()),
        ("activity_label", STR),
        ("ctx_a", STR),
        ("ctx_b", STR),
        ("ctx", STR),
        ("endings", STR_LIST),
        ("source_id", STR),
        ("split", STR),
        ("split_type", STR),
        ("label", STR),
    ]
)

# The 19 WikiHow categories of eval/src/tasks/hellaswag.rs (WIKIHOW_CATEGORIES, commit 873b849).
WIKIHOW_CATEGORIES = {
    "Cars & Other Vehicles",
    "Computers and Electronics",
    "Education and Communications",
    "Family Life",
    "Finance and Business",
    "Food and Entertaining",
    "Health",
    "Holidays and Traditions",
    "Home and Garden",
    "Home,Categories",
    "Personal Care and Style",
    "Pets and Animals",
    "Philosophy and Religion",
    "Relationships",
    "Sports and Fitness",
    "Travel",
    "Uncategorized",
    "Work World",
    "Youth",
}


def hellaswag_split_ctx(activity_label, ctx):
    """ctx_a, ctx_b as the Rust loader's `reconstruct_query` (hellaswag.rs, commit 873b849) draws
    the boundary: WikiHow -> (ctx, ""); else split at the LAST ". " -> (before + ".", after);
    no ". " -> ("", ctx)."""
    if activity_label in WIKIHOW_CATEGORIES:
        return ctx, ""
    k = ctx.rfind(". ")
    if k < 0:
        return "", ctx
    return ctx[: k + 1], ctx[k + 2 :]


def hellaswag_join_ctx(ctx_a, ctx_b):
    """The Hub's ctx: ctx_a + " " + ctx_b, or whichever one is not empty."""
    if not ctx_b:
        return ctx_a
    if not ctx_a:
        return ctx_b
    return ctx_a + " " + ctx_b


def rust_reconstruct_query(line):
    """Port of hellaswag.rs `reconstruct_query` (commit 873b849): the query the Rust loader built."""
    if ": " not in line:
        return line
    label, ctx = line.split(": ", 1)
    if label in WIKIHOW_CATEGORIES:
        return line
    k = ctx.rfind(". ")
    ctx_a, ctx_b = (ctx[: k + 1], ctx[k + 2 :]) if k >= 0 else ("", ctx)
    return f"{label}: {ctx_a} {ctx_b.capitalize()}"


def hellaswag_preprocess(text):
    """lm-eval hellaswag utils.preprocess."""
    import re

    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag(src: Path, out: Out):
    """klosax's 6-line format -> Rowan/hellaswag rows.

    activity_label / ctx split at the first ": "; ctx_a / ctx_b as in hellaswag_split_ctx
    (reconstructed: the source has only ctx); source_id = "" (not in the source); split = "val",
    split_type = "indomain" (the source does not say which items are zero-shot); label = gold as a
    string; ind = source item index. Endings are written as the source has them (already
    preprocessed by klosax). Fixture train = items N..N+26 with split = "train"."""
    path = src / "hellaswag" / "hellaswag_val_full.txt"
    text = path.read_text(encoding="utf-8")
    # As the Rust loader: str::lines (split on "\n", drop one trailing "\r"), trailing empties dropped.
    lines = text.split("\n")
    lines = [l[:-1] if l.endswith("\r") else l for l in lines]
    while lines and lines[-1] == "":
        lines.pop()
    if len(lines) % 6:
        fail(path, len(lines), f"{len(lines)} lines is not a multiple of 6")
    rows = []
    for item in range(len(lines) // 6):
        l0 = item * 6
        line = lines[l0]
        if ": " not in line:
            fail(path, l0 + 1, "context line has no 'label: '")
        activity_label, ctx = line.split(": ", 1)
        gold = lines[l0 + 1].strip()
        if gold not in ("0", "1", "2", "3"):
            fail(path, l0 + 2, f"bad gold label {gold!r}")
        endings = lines[l0 + 2 : l0 + 6]
        ctx_a, ctx_b = hellaswag_split_ctx(activity_label, ctx)
        joined = hellaswag_join_ctx(ctx_a, ctx_b)
        if joined != ctx:
            fail(path, l0 + 1, f"ctx_a/ctx_b do not rebuild ctx: {ctx_a!r} + {ctx_b!r} != {ctx!r}")
        # lm-eval's query from the Hub fields must equal what the Rust loader scored.
        lm_eval_query = hellaswag_preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())
        if lm_eval_query != hellaswag_preprocess(rust_reconstruct_query(line)):
            fail(path, l0 + 1, f"query differs from the Rust loader's: {lm_eval_query!r}")
        rows.append(
            {
                "ind": item,
                "activity_label": activity_label,
                "ctx_a": ctx_a,
                "ctx_b": ctx_b,
                "ctx": joined,
                "endings": endings,
                "source_id": "",
                "split": "val",
                "split_type": "indomain",
                "label": gold,
            }
        )
    val, train = out.split(rows)
    out.write("Rowan/hellaswag", "default/validation/0000.parquet", HELLASWAG_SCHEMA, val)
    if train is not None:
        train = [dict(r, split="train") for r in train]
        out.write("Rowan/hellaswag", "default/train/0000.parquet", HELLASWAG_SCHEMA, train)


# --------------------------------------------------------------------------------------------
# 3. baber/piqa

PIQA_SCHEMA = pa.schema([("goal", STR), ("sol1", STR), ("sol2", STR), ("label", pa.int64())])


def piqa(src: Path, out: Out):
    """valid.jsonl + valid-labels.lst (line-aligned) -> baber/piqa rows, verbatim.
    Fixture train = rows N..N+26 of the validation file."""
    path = src / "piqa" / "valid.jsonl"
    lpath = src / "piqa" / "valid-labels.lst"
    docs = read_jsonl(path)
    labels = lpath.read_text(encoding="utf-8").split()
    if len(labels) != len(docs):
        fail(lpath, len(labels), f"{len(labels)} labels for {len(docs)} rows")
    rows = []
    for i, (d, l) in enumerate(zip(docs, labels)):
        if set(d) != {"goal", "sol1", "sol2"}:
            fail(path, i, f"keys {sorted(d)}")
        if l not in ("0", "1"):
            fail(lpath, i, f"label {l!r}")
        rows.append({"goal": d["goal"], "sol1": d["sol1"], "sol2": d["sol2"], "label": int(l)})
    val, train = out.split(rows)
    out.write("baber/piqa", "data/validation-00000-of-00001.parquet", PIQA_SCHEMA, val)
    if train is not None:
        out.write("baber/piqa", "data/train-00000-of-00001.parquet", PIQA_SCHEMA, train)


# --------------------------------------------------------------------------------------------
# 4. allenai/winogrande

WINOGRANDE_SCHEMA = pa.schema([("sentence", STR), ("option1", STR), ("option2", STR), ("answer", STR)])


def winogrande(src: Path, out: Out):
    """llm-foundry {"context_options": [c1, c2], "continuation", "gold"} -> winogrande rows.

    Reconstructed: p = longest common prefix of c1 and c2, cut back to just after its last space
    ("" if it has none); option_i = c_i[len(p):]; sentence = p + "_ " + continuation. Checked per
    row: lm-eval's partial_context / partial_target on that sentence give back c1, c2 and the
    continuation exactly. answer = str(gold + 1). Fixture train = rows N..N+26."""
    path = src / "winogrande" / "winogrande_validation.jsonl"
    rows = []
    for i, r in enumerate(read_jsonl(path)):
        c1, c2 = r["context_options"]
        cont = r["continuation"]
        if cont != cont.strip():
            fail(path, i, f"continuation has surrounding whitespace: {cont!r}")
        n = 0
        while n < min(len(c1), len(c2)) and c1[n] == c2[n]:
            n += 1
        p = c1[:n]
        sp = p.rfind(" ")
        p = p[: sp + 1] if sp >= 0 else ""
        o1, o2 = c1[len(p) :], c2[len(p) :]
        sentence = p + "_" + " " + cont
        # lm-eval winogrande: idx = sentence.index("_"); contexts sentence[:idx] + option;
        # target = sentence[idx + 1:].strip().
        idx = sentence.index("_")
        if (sentence[:idx] + o1, sentence[:idx] + o2, sentence[idx + 1 :].strip()) != (c1, c2, cont):
            fail(path, i, f"sentence {sentence!r} does not reproduce the contexts/continuation")
        g = r["gold"]
        if g not in (0, 1):
            fail(path, i, f"gold {g!r}")
        rows.append({"sentence": sentence, "option1": o1, "option2": o2, "answer": str(g + 1)})
    val, train = out.split(rows)
    out.write("allenai/winogrande", "winogrande_xl/validation-00000-of-00001.parquet", WINOGRANDE_SCHEMA, val)
    if train is not None:
        out.write("allenai/winogrande", "winogrande_xl/train-00000-of-00001.parquet", WINOGRANDE_SCHEMA, train)


# --------------------------------------------------------------------------------------------
# 5. aps/super_glue, boolq

BOOLQ_SCHEMA = pa.schema([("question", STR), ("passage", STR), ("idx", pa.int32()), ("label", pa.int64())])


def boolq(src: Path, out: Out):
    """llm-foundry {"query": "Passage: <p>\\nQuestion: <q>?", "choices": ["no","yes"], "gold"}
    -> super_glue boolq rows. Split at the LAST "\\nQuestion: "; passage loses "Passage: ",
    question loses its final "?". The passage is kept byte for byte (it lacks super_glue's
    "<title> -- " prefix, and llm-foundry turned " question" inside passages into "\\nQuestion";
    neither can be undone reliably). idx = source row; label = gold (1 = yes).
    Fixture train = rows N..N+26."""
    path = src / "boolq" / "boolq_validation.jsonl"
    rows = []
    for i, r in enumerate(read_jsonl(path)):
        if r["choices"] != ["no", "yes"]:
            fail(path, i, f"choices {r['choices']!r}")
        q = r["query"]
        if not q.startswith("Passage: "):
            fail(path, i, "query does not start with 'Passage: '")
        k = q.rfind("\nQuestion: ")
        if k < 0:
            fail(path, i, "query has no '\\nQuestion: '")
        passage, question = q[len("Passage: ") : k], q[k + len("\nQuestion: ") :]
        if not question.endswith("?"):
            fail(path, i, f"question does not end with '?': {question!r}")
        question = question[:-1]
        if f"Passage: {passage}\nQuestion: {question}?" != q:
            fail(path, i, "split does not rebuild the query")
        if r["gold"] not in (0, 1):
            fail(path, i, f"gold {r['gold']!r}")
        rows.append({"question": question, "passage": passage, "idx": i, "label": r["gold"]})
    val, train = out.split(rows)
    out.write("aps/super_glue", "boolq/validation-00000-of-00001.parquet", BOOLQ_SCHEMA, val)
    if train is not None:
        out.write("aps/super_glue", "boolq/train-00000-of-00001.parquet", BOOLQ_SCHEMA, train)


# --------------------------------------------------------------------------------------------
# 6. allenai/openbookqa, main

OBQA_SCHEMA = pa.schema([("id", STR), ("question_stem", STR), ("choices", MC_CHOICES), ("answerKey", STR)])


def openbookqa(src: Path, out: Out):
    """llm-foundry {"query", "choices", "gold"} -> openbookqa main rows: question_stem = query,
    labels A-D, answerKey = labels[gold]; id = "test-<source row>" (the real ids are not in the
    source). Fixture train = rows N..N+26."""
    path = src / "openbookqa" / "openbookqa_test.jsonl"
    rows = []
    for i, r in enumerate(read_jsonl(path)):
        labels, key = mc_labels(path, i, r["choices"], r["gold"])
        rows.append(
            {
                "id": f"test-{i}",
                "question_stem": r["query"],
                "choices": {"text": list(r["choices"]), "label": labels},
                "answerKey": key,
            }
        )
    test, train = out.split(rows)
    out.write("allenai/openbookqa", "main/test-00000-of-00001.parquet", OBQA_SCHEMA, test)
    if train is not None:
        out.write("allenai/openbookqa", "main/train-00000-of-00001.parquet", OBQA_SCHEMA, train)


# --------------------------------------------------------------------------------------------
# 7. EleutherAI/lambada_openai (parquet export)

LAMBADA_SCHEMA = pa.schema([("text", STR)])


def lambada(src: Path, out: Out):
    """{"context", "continuation"} -> text = context + " " + continuation. Checked per row: the
    continuation holds no " " and the context does not end in whitespace, so lm-eval's
    text.split(" ") gives back context and continuation exactly. (A few continuations contain
    newlines, e.g. "of\\n\\nPower": lm-eval splits on " " only, so they are its last "word" too.)
    No train split."""
    path = src / "lambada" / "lambada_openai_test.jsonl"
    rows = []
    for i, r in enumerate(read_jsonl(path)):
        ctx, cont = r["context"], r["continuation"]
        if not cont or " " in cont:
            fail(path, i, f"continuation {cont!r} is empty or holds a space")
        if not ctx or ctx[-1].isspace():
            fail(path, i, "context is empty or ends in whitespace")
        t = ctx + " " + cont
        words = t.split(" ")
        if " ".join(words[:-1]) != ctx or words[-1] != cont:
            fail(path, i, "text does not split back into context / continuation")
        rows.append({"text": t})
    test, _ = out.split(rows)
    out.write("EleutherAI/lambada_openai", "default/test/0000.parquet", LAMBADA_SCHEMA, test)


# --------------------------------------------------------------------------------------------
# 8. cais/mmlu (zstd)

MMLU_SCHEMA = pa.schema([("question", STR), ("subject", STR), ("choices", STR_LIST), ("answer", pa.int64())])


def mmlu_rows(path: Path, subject: str):
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for i, rec in enumerate(csv.reader(f)):
            if len(rec) != 6 or rec[5] not in ("A", "B", "C", "D"):
                fail(path, i, f"expected question,A,B,C,D,letter; got {rec!r}")
            rows.append({"question": rec[0], "subject": subject, "choices": rec[1:5], "answer": "ABCD".index(rec[5])})
    return rows


def mmlu(src: Path, out: Out):
    """<subject>_{test,dev}.csv (headerless: question, A, B, C, D, letter) -> cais/mmlu rows for
    every subject; subject = the file name's subject (with underscores, as cais/mmlu has it);
    answer = letter index. Fixture: first 4 test rows per subject, all 5 dev rows."""
    test_dir = src / "mmlu" / "test"
    subjects = sorted(p.name[: -len("_test.csv")] for p in test_dir.glob("*_test.csv"))
    if len(subjects) != 57:
        fail(test_dir, 0, f"{len(subjects)} subjects, expected 57")
    for s in subjects:
        test = mmlu_rows(test_dir / f"{s}_test.csv", s)
        dev = mmlu_rows(src / "mmlu" / "dev" / f"{s}_dev.csv", s)
        if out.fixture:
            test = test[:MMLU_FIXTURE_TEST_ROWS]
        out.write("cais/mmlu", f"{s}/test-00000-of-00001.parquet", MMLU_SCHEMA, test, codec="zstd")
        out.write("cais/mmlu", f"{s}/dev-00000-of-00001.parquet", MMLU_SCHEMA, dev, codec="zstd")


# --------------------------------------------------------------------------------------------
# 9. openai/gsm8k, main

GSM8K_SCHEMA = pa.schema([("question", STR), ("answer", STR)])


def gsm8k(src: Path, out: Out):
    """test.jsonl / train.jsonl verbatim (the real splits). Fixture: first N test, first 26 train."""
    splits = {}
    for split in ("test", "train"):
        path = src / "gsm8k" / f"{split}.jsonl"
        rows = []
        for i, r in enumerate(read_jsonl(path)):
            if set(r) != {"question", "answer"}:
                fail(path, i, f"keys {sorted(r)}")
            rows.append({"question": r["question"], "answer": r["answer"]})
        splits[split] = rows
    test, train = splits["test"], splits["train"]
    if out.fixture:
        test, train = test[: out.n], train[:FEWSHOT_ROWS]
    out.write("openai/gsm8k", "main/test-00000-of-00001.parquet", GSM8K_SCHEMA, test)
    out.write("openai/gsm8k", "main/train-00000-of-00001.parquet", GSM8K_SCHEMA, train)


# --------------------------------------------------------------------------------------------
# 10. truthfulqa/truthful_qa, multiple_choice

TQA_SCHEMA = pa.schema([("question", STR), ("mc1_targets", TQA_TARGETS), ("mc2_targets", TQA_TARGETS)])


def truthfulqa(src: Path, out: Out):
    """mc_task_v0.json [{"question", "mc1_targets": {choice: label}, "mc2_targets": ...}] ->
    truthful_qa multiple_choice rows; choices in the JSON objects' order (checked: no duplicate
    keys, which a dict would silently merge)."""
    path = src / "truthfulqa" / "mc_task_v0.json"

    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise Fail(f"{path}: duplicate keys in an object: {keys}")
        return dict(pairs)

    data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=no_dups)
    rows = []
    for i, r in enumerate(data):
        row = {"question": r["question"]}
        for key in ("mc1_targets", "mc2_targets"):
            t = r[key]
            if not t or any(v not in (0, 1) for v in t.values()):
                fail(path, i, f"{key} labels are not 0/1")
            row[key] = {"choices": list(t.keys()), "labels": list(t.values())}
        if row["mc1_targets"]["labels"].count(1) != 1:
            fail(path, i, "mc1_targets does not have exactly one true choice")
        rows.append(row)
    val, _ = out.split(rows)
    out.write("truthfulqa/truthful_qa", "multiple_choice/validation-00000-of-00001.parquet", TQA_SCHEMA, val)


# --------------------------------------------------------------------------------------------
# 11. EleutherAI/wikitext_document_level (parquet export)
#
# Port of eval/src/tasks/wikitext.rs (commit 873b849): `reconstruct_raw` puts back the blank
# lines the shared file lacks, `split_pages` is the HF wikitext_document_level page splitter.

WIKITEXT_SCHEMA = pa.schema([("page", STR)])
_PY_ONLY_SPACE = "\x1c\x1d\x1e\x1f"  # Python isspace() but not Rust char::is_whitespace()


def _rust_ws(c):
    return c.isspace() and c not in _PY_ONLY_SPACE


def _rust_trim(s):
    a, b = 0, len(s)
    while a < b and _rust_ws(s[a]):
        a += 1
    while b > a and _rust_ws(s[b - 1]):
        b -= 1
    return s[a:b]


def _rust_trim_end(s):
    b = len(s)
    while b > 0 and _rust_ws(s[b - 1]):
        b -= 1
    return s[:b]


def _rust_trim_start(s):
    a = 0
    while a < len(s) and _rust_ws(s[a]):
        a += 1
    return s[a:]


def _heading_level(line):
    toks = _rust_trim(line).split(" ")
    lead = 0
    while lead < len(toks) and toks[lead] == "=":
        lead += 1
    trail = 0
    while trail < len(toks) and toks[len(toks) - 1 - trail] == "=":
        trail += 1
    return lead if lead > 0 and lead == trail and len(toks) > lead + trail else None


def _starts_page(line):
    r = line.replace("= = =", "===").replace("= =", "==").strip()  # Python strip = py_isspace
    return r.startswith("= ") and r.endswith(" =")


def _is_real_heading(lines, i):
    if _heading_level(lines[i]) is None:
        return False
    prev = _rust_trim_end(lines[i - 1]) if i > 0 else ""
    prev_ends_sentence = (
        prev == ""
        or _heading_level(prev) is not None
        or prev.endswith((".", "!", "?", '"', ":", ";", ")", "\u201d"))
    )
    nxt = _rust_trim_start(lines[i + 1]) if i + 1 < len(lines) else ""
    next_continues = bool(nxt) and (nxt[0] in "0123456789" or nxt[0].islower())
    return (not next_continues) or prev_ends_sentence


def wikitext_reconstruct_raw(stripped):
    body = stripped[:-1] if stripped.endswith("\n") else stripped
    lines = [l[:-1] if l.endswith("\r") else l for l in body.split("\n")]
    out = []
    for i, line in enumerate(lines):
        if _is_real_heading(lines, i):
            out.append(" ")
            if _heading_level(line) == 1 and i > 0:
                out.append(" ")
            out.append(line)
            out.append(" ")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def wikitext_split_pages(raw):
    pages, ret = [], []
    for line in raw.split("\n"):
        if _starts_page(line):
            page = "\n".join(ret)
            if page.strip():
                pages.append(page)
            ret = []
        ret.append(line)
    pages.append("\n".join(ret))
    return pages


def wikitext(src: Path, out: Out):
    """wiki.test.raw (HF rows without the empty ones, CRLF) -> one row per page, page = the raw
    page the Rust loader (wikitext.rs) builds and detokenizes for scoring: blank lines put back by
    its rule, CRLF -> LF, split at level-1 headings. Checked: the pages account for the whole
    file. Fixture: the first 3 pages (2 if those exceed 150 kB)."""
    path = src / "wikitext2" / "wiki.test.raw"
    stripped = path.read_bytes().decode("utf-8")
    raw = wikitext_reconstruct_raw(stripped)
    pages = wikitext_split_pages(raw)
    # The pages and the dropped leading blank line are the reconstructed file ...
    if " \n" + "\n".join(pages) != raw:
        fail(path, 0, "pages do not join back into the reconstructed file")
    # ... and that file less its blank lines, in CRLF, is the source byte for byte.
    kept = [l for l in raw[:-1].split("\n") if l != " "]
    if "\r\n".join(kept) + "\r\n" != stripped:
        fail(path, 0, "reconstructed file less blank lines is not the source")
    if out.fixture:
        pages = pages[:WIKITEXT_FIXTURE_PAGES]
        if sum(len(p.encode("utf-8")) for p in pages) > WIKITEXT_FIXTURE_MAX_BYTES:
            pages = pages[:2]
    rows = [{"page": p} for p in pages]
    out.write(
        "EleutherAI/wikitext_document_level", "wikitext-2-raw-v1/test/0000.parquet", WIKITEXT_SCHEMA, rows
    )


# --------------------------------------------------------------------------------------------

DATASETS = [arc, hellaswag, piqa, winogrande, boolq, openbookqa, lambada, mmlu, gsm8k, truthfulqa, wikitext]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rows", type=int, metavar="N", help="fixture mode: first N eval rows + few-shot rows")
    mode.add_argument("--full", action="store_true", help="every row")
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="shared/data folder (default ../shared/data)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (OUT/<org>/<name>/...)")
    args = ap.parse_args()
    if args.rows is not None and args.rows < 1:
        ap.error("--rows must be positive")

    src = args.src.resolve()
    if not src.is_dir():
        sys.exit(f"no source folder {src}")
    out = Out(args.out, None if args.full else args.rows)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for convert in DATASETS:
            convert(src, out)
    except Fail as e:
        sys.exit(f"error: {e}")
    (args.out / "hub.json").write_text(json.dumps({"script_repos": SCRIPT_REPOS}, indent=2) + "\n")

    mmlu_files = [s for s in out.summary if s[0].startswith("cais/mmlu/")]
    other = [s for s in out.summary if not s[0].startswith("cais/mmlu/")]
    width = max(len(s[0]) for s in other + [("cais/mmlu/<57 subjects>/dev-00000-of-00001.parquet",)])
    print(f"{'file':<{width}}  {'rows':>6}  codec   {'bytes':>9}")
    for name, rows, codec, size in other:
        print(f"{name:<{width}}  {rows:>6}  {codec:<6}  {size:>9}")
    for split in ("test", "dev"):
        fs = [s for s in mmlu_files if s[0].endswith(f"/{split}-00000-of-00001.parquet")]
        name = f"cais/mmlu/<{len(fs)} subjects>/{split}-00000-of-00001.parquet"
        print(f"{name:<{width}}  {sum(s[1] for s in fs):>6}  zstd    {sum(s[3] for s in fs):>9}")
    print(f"{len(out.summary)} parquet files, {sum(s[3] for s in out.summary)} bytes, in {args.out}")


if __name__ == "__main__":
    main()
