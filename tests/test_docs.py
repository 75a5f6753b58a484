"""The README and the pages under ``docs/`` say what runs.

- Every relative link of the README resolves: the file exists and its ``#anchor`` is a heading of the target page,
  by GitHub's slug rules (the README is read on GitHub; the docs pages are checked by ``mkdocs build --strict``).
- Every fenced code block a user would paste is run here, or is tested elsewhere, or says why it is not run:
  - a ``python`` block is executed in a temporary directory (with the shortenings of ``SHORTEN``);
  - a block preceded by ``<!-- run -->`` is a shell block whose commands are run here;
  - a block preceded by ``<!-- excerpt: <file> -->`` must appear, as written, in that file (an example that
    ``tests/test_loops.py`` runs);
  - a block of ``--8<-- "<file>:<section>"`` lines includes sections of such an example when the site is built;
  - the README's notebook block is the one ``tests/test_readme.py`` runs;
  - a block preceded by ``<!-- not run: <reason> -->`` is not run, for the reason given;
  - ``text`` blocks are output, not code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_readme import notebook_snippet

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
# Generated pages hold the commands that made their tables (hours of training); tests/test_experiments.py checks that
# the page is what the stored results give.
GENERATED = {"docs/evidence.md"}
EXAMPLES_RUN_BY = ROOT / "tests" / "test_loops.py"

# Text replaced in a block before it runs here, so that it runs in seconds; each entry must apply to some block.
SHORTEN = {
    'DataLoader(digits_tensors("train"),': 'DataLoader(torch.utils.data.Subset(digits_tensors("train"), range(64)),',
}
# What a block must print (a text the block contains -> what its output must contain).
EXPECTED_OUTPUT = {
    "task(torch.randn(5, 3, 32, 32)": "a training batch must be even and >= 2; got 5",
}
SNIPPET = re.compile(r'^--8<-- "(?P<path>[^":]+)(?::(?P<section>[\w-]+))?"$')


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    marker: str  # the HTML comment right before the fence, or ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def code_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        before = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = before if before.startswith("<!--") and before.endswith("-->") else ""
        blocks.append(Block(page, index + 1, fence.group(1), "\n".join(lines[index + 1 : end]) + "\n", marker))
        index = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in code_blocks(page)]


def kind_of(block: Block) -> str:
    """How a block is covered: run / shell / excerpt / snippet / notebook / not run / output / generated."""
    if block.page.relative_to(ROOT).as_posix() in GENERATED:
        return "generated"
    if block.marker.startswith("<!-- not run:"):
        return "not run"
    if block.marker == "<!-- run -->":
        return "shell"
    if block.marker.startswith("<!-- excerpt:"):
        return "excerpt"
    if block.language == "text":
        return "output"
    lines = [line for line in block.code.splitlines() if line.strip()]
    if lines and all(SNIPPET.match(line) for line in lines):
        return "snippet"
    if block.page == README and block.code == notebook_snippet():
        return "notebook"
    if block.language == "python":
        return "run"
    return "uncovered"


def test_every_code_block_is_run_or_says_why_not():
    uncovered = []
    for block in all_blocks():
        kind = kind_of(block)
        if not block.language:
            uncovered.append(f"{block.where}: a fence without a language (use text for output)")
        elif kind == "uncovered":
            uncovered.append(f"{block.where}: a {block.language} block that is neither run nor marked")
        elif kind == "not run" and not re.match(r"<!-- not run: \S.* -->$", block.marker):
            uncovered.append(f"{block.where}: '<!-- not run: ... -->' without a reason")
        elif kind == "shell" and block.language != "bash":
            uncovered.append(f"{block.where}: '<!-- run -->' marks bash blocks only")
    assert not uncovered, "\n".join(uncovered)


def test_the_readme_notebook_block_is_the_one_test_readme_runs():
    assert [block for block in code_blocks(README) if kind_of(block) == "notebook"]


RUN_BLOCKS = [block for block in all_blocks() if kind_of(block) == "run"]


def shortened(code: str) -> str:
    for original, replacement in SHORTEN.items():
        code = code.replace(original, replacement)
    return code


def test_every_shortening_applies_to_a_block():
    codes = [block.code for block in RUN_BLOCKS]
    assert all(any(original in code for code in codes) for original in SHORTEN), "a SHORTEN entry applies nowhere"


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[block.where for block in RUN_BLOCKS])
def test_python_block_runs(block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    exec(compile(shortened(block.code), block.where, "exec"), namespace)
    output = capsys.readouterr().out
    for needle, expected in EXPECTED_OUTPUT.items():
        if needle in block.code:
            assert expected in output, output


SHELL_BLOCKS = [block for block in all_blocks() if kind_of(block) == "shell"]


def shell_commands(block: Block) -> list[str]:
    """The block's commands: one per line, comments dropped, backslash continuations joined."""
    text = block.code.replace("\\\n", " ")
    commands = [re.sub(r"\s+#.*$", "", line).strip() for line in text.splitlines()]
    return [command for command in commands if command and not command.startswith("#")]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[block.where for block in SHELL_BLOCKS])
def test_shell_block_runs(block):
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    for command in shell_commands(block):
        result = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{block.where}: {command}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        assert result.stdout.strip(), f"{block.where}: {command} printed nothing"


def test_excerpts_are_the_tested_code():
    for block in all_blocks():
        if kind_of(block) != "excerpt":
            continue
        source = ROOT / re.match(r"<!-- excerpt: (\S+) -->", block.marker).group(1)
        assert source.name in EXAMPLES_RUN_BY.read_text(), f"{block.where}: {source} is not run by {EXAMPLES_RUN_BY}"
        assert block.code in source.read_text(), f"{block.where}: the block is not, as written, in {source}"


def test_snippet_includes_name_sections_of_tested_examples():
    included = 0
    for block in all_blocks():
        if kind_of(block) != "snippet":
            continue
        assert block.page != README, "GitHub does not expand --8<-- includes; the README shows code as written"
        for line in block.code.splitlines():
            match = SNIPPET.match(line)
            source = ROOT / match.group("path")
            assert source.is_file(), f"{block.where}: {source} does not exist"
            assert source.name in EXAMPLES_RUN_BY.read_text(), f"{block.where}: no test runs {source}"
            section = match.group("section")
            if section:
                text = source.read_text()
                assert f"[start:{section}]" in text and f"[end:{section}]" in text, f"{block.where}: {line}"
            included += 1
    assert included


# ---- links ----

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation dropped, spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, outside code blocks, with GitHub's -1, -2 … for repeated headings."""
    found: dict[str, int] = {}
    slugs = set()
    in_fence = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and not in_fence:
            slug = github_slug(heading.group(1))
            count = found.get(slug, 0)
            slugs.add(slug if count == 0 else f"{slug}-{count}")
            found[slug] = count + 1
    return slugs


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return [link for link in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", link)]


def test_readme_relative_links_and_anchors_resolve():
    links = relative_links(README)
    assert links, "the README links to its docs"
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (README.parent / path).resolve() if path else README
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and anchor not in anchors(target):
            broken.append(f"{link}: no heading with that anchor in {target.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_github_slugs():
    assert github_slug("canvas32 from scratch: does self-motivation find the objects?") == (
        "canvas32-from-scratch-does-self-motivation-find-the-objects"
    )
    assert (
        github_slug("The paper's ablations at convergence (200 epochs)")
        == "the-papers-ablations-at-convergence-200-epochs"
    )
    assert github_slug("`SMMixConfig` settings") == "smmixconfig-settings"
    assert github_slug("Wrappers: wrap and prepare_distributed") == "wrappers-wrap-and-prepare_distributed"
