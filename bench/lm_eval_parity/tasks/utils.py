"""Upstream lm-eval helpers, imported (not copied) so the parity tasks run lm-eval's own code."""
from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401  (ctx_a + " " + ctx_b.capitalize(), preprocess)
from lm_eval.tasks.winogrande.preprocess_winogrande import (  # noqa: F401
    doc_to_choice,
    doc_to_target,
    doc_to_text,
)
