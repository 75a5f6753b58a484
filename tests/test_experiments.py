"""The research wing: the evidence page is what the report command writes, and the smallest study still runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def experiments(*args: str) -> subprocess.CompletedProcess:
    """``python -m experiments`` in its own process (a run sets torch to one thread)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    command = [sys.executable, "-m", "experiments", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True)


def test_evidence_page_is_what_the_report_writes() -> None:
    from experiments.evidence import page

    written = page()
    assert (ROOT / "docs" / "evidence.md").read_text() == written, (
        "docs/evidence.md is out of date: python -m experiments report all --write docs/evidence.md"
    )
    for image in {line.split("](")[1].rstrip(")") for line in written.splitlines() if line.startswith("![")}:
        assert (ROOT / "docs" / image).exists(), image


def test_smallest_study_trains_and_reports_end_to_end(tmp_path: Path) -> None:
    quick = ["--seeds", "0", "--epochs", "1", "--max-train", "128", "--max-eval", "64", "--results", str(tmp_path)]
    experiments("run", "scratch32", *quick)
    runs = [json.loads(line) for line in (tmp_path / "scratch32.jsonl").read_text().splitlines()]
    assert sorted((run["variant"], run["warmup"]) for run in runs) == [
        ("cutmix", "none"),
        ("smmix", "none"),
        ("smmix", "rand+nocon:10"),
        ("smmix", "rand+nocon:5"),
    ]
    for run in runs:
        assert run["epochs"] == 1 and run["train_images"] == 128
        assert len(run["history"]["clean_top1"]) == 1 and 0.0 <= run["clean_top1"] <= 1.0
        assert set(run["random"]) == {"src_hit", "src_cover", "tgt_avoid", "tgt_occlude"}
    from experiments import runner, store
    from experiments.studies import Options, scratch32

    options = Options(seeds=[0], epochs=[1], limits=runner.Limits(max_train=128), results=tmp_path)
    stored = store.stored_keys("scratch32", tmp_path)
    assert all(runner.spec_key(spec, 128) in stored for spec in scratch32.plan(options))  # a second call trains none
    report = "\n".join(scratch32.report(store.load("scratch32", tmp_path)))
    assert "| CutMix | 1 |" in report and "does self-motivation find the objects" in report
