"""The README's notebook snippet runs as written (with a shorter schedule and a temporary output dir)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def notebook_snippet() -> str:
    section = README.read_text().split("## From a notebook", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_notebook_snippet_trains_and_evaluates(tmp_path, capsys):
    code = notebook_snippet()
    assert "from smmix_hf import SMMixConfig, SMMixTrainer" in code
    shortened = code.replace("num_train_epochs=40", "max_steps=2, disable_tqdm=True, report_to='none'")
    shortened = shortened.replace('output_dir="smmix-digits"', f"output_dir={str(tmp_path)!r}")
    assert shortened != code
    namespace: dict = {}
    exec(compile(shortened, str(README), "exec"), namespace)
    assert namespace["trainer"].state.global_step == 2
    assert "eval_top1" in capsys.readouterr().out
