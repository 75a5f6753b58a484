"""notebooks/finetune_smmix.ipynb runs headless from top to bottom and shows what it promises."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "finetune_smmix.ipynb"


def test_notebook_fine_tunes_shows_mixed_samples_and_evaluates(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), "the mixed-sample figure is shown"
    printed = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    top1 = float(re.search(r"top-1 = (\d\.\d+)", printed).group(1))
    assert top1 > 0.25, f"fine-tuning reached only top-1 {top1} (chance is 0.1)"
    assert (tmp_path / "tiny-vit-pretrained" / "config.json").is_file()
