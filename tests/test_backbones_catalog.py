"""docs/backbones.md's list of models that work is the list the tests build: the generated block equals
``smmix_hf.backbones.catalog.supported_models_markdown()``, and every model it names is one the generic tests run."""

from __future__ import annotations

from pathlib import Path

from smmix_hf.backbones.catalog import BEGIN, END, supported_models_markdown
from smmix_hf.backbones.tested_models import TRANSFORMERS_TESTED
from smmix_hf.backbones.timm_attention import TIMM_TESTED

PAGE = Path(__file__).resolve().parents[1] / "docs" / "backbones.md"


def test_the_docs_list_of_models_is_generated_from_the_tested_lists():
    text = PAGE.read_text()
    assert BEGIN in text and END in text, (
        f"{PAGE} lost its generated block; paste `python -m smmix_hf.backbones.catalog`"
    )
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == supported_models_markdown(), "regenerate the block with `python -m smmix_hf.backbones.catalog`"
    for label, _, _ in (*TRANSFORMERS_TESTED, *TIMM_TESTED):
        assert f"| {label} |" in block
