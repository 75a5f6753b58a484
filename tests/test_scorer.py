"""The window-scorer seam: a ``WindowScorer`` given to ``SMMixTask`` places the windows and gives L_con's clean logits;
a scorer that returns the wrong thing, or one for a method without windows, is refused in one line."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_vit

from smmix_hf import MixSettings, SMMixTask, WindowScorer

SETTINGS = MixSettings(mixup_switch_prob=1.0, motivation_warmup_ratio=0.0)


class HotToken(WindowScorer):
    """Scores 1 on one token per image (a different one for each image), 0 elsewhere; fixed clean logits."""

    def __init__(self, classes: int = 10) -> None:
        self.classes = classes
        self.hot: list[tuple[int, int]] = []

    def __call__(self, images: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.zeros(images.shape[0], *grid)
        self.hot = [(index % grid[0], (2 * index + 1) % grid[1]) for index in range(images.shape[0])]
        for index, (row, col) in enumerate(self.hot):
            scores[index, row, col] = 1.0
        logits = torch.arange(images.shape[0] * self.classes, dtype=torch.float32).reshape(-1, self.classes)
        return logits / 10, scores


def test_a_scorer_places_the_windows_and_gives_the_clean_logits():
    torch.manual_seed(0)
    scorer = HotToken()
    task = SMMixTask(tiny_vit(), SETTINGS, scorer=scorer)
    assert task.scorer is scorer
    task.keep_mix_examples = True
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    task(images, labels)
    example = task.last_mix_example
    height, width = example.region
    for sample, source in enumerate(example.source_index.tolist()):
        top, left = example.source_corner[sample].tolist()
        row, col = scorer.hot[source]
        assert top <= row < top + height and left <= col < left + width, "the source window holds the hot token"
        top, left = example.target_corner[sample].tolist()
        row, col = scorer.hot[sample]
        assert not (top <= row < top + height and left <= col < left + width), "the target window avoids it"
    torch.testing.assert_close(example.clean_logits, scorer(images, (4, 4))[0])


class WrongGrid(WindowScorer):
    def __call__(self, images: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(images.shape[0], 10), torch.zeros(images.shape[0], grid[0] + 1, grid[1])


def test_bad_scorers_are_refused_in_one_line():
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    with pytest.raises(ValueError, match=r"^the window scorer WrongGrid gave scores of shape \(8, 5, 4\); expected "):
        SMMixTask(tiny_vit(), SETTINGS, scorer=WrongGrid())(images, labels)
    with pytest.raises(TypeError, match=r"^a scorer is a smmix_hf.WindowScorer, .*; got function"):
        SMMixTask(tiny_vit(), SETTINGS, scorer=lambda images, grid: None)
    with pytest.raises(ValueError, match=r"^a window scorer drives SMMix only; got mix_method='cutmix'"):
        SMMixTask(tiny_vit(), MixSettings(mix_method="cutmix"), scorer=HotToken())
    with pytest.raises(ValueError, match=r"^give SMMixTask a motivator or a scorer, not both"):
        SMMixTask(tiny_vit(), SETTINGS, motivator=tiny_vit(), scorer=HotToken())
