"""Upstream lm-eval helpers, imported (not copied) so the parity tasks run lm-eval's own code."""
from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401  (ctx_a + " " + ctx_b.capitalize(), preprocess)
from lm_eval.tasks.winogrande.preprocess_winogrande import (  # noqa: F401
    doc_to_choice,
    doc_to_target,
    doc_to_text,
)
from lm_eval.tasks.truthfulqa.utils import process_results_mc2  # noqa: F401  (normalized p(true) mass)
from lm_eval.tasks.wikitext.preprocess_wikitext import process_results as wikitext_process_results  # noqa: F401
from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer  # noqa: F401
