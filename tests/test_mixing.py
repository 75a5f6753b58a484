"""Max-min mixing (Eq. 7-8), the image attention score (Eq. 6) and the baselines against plain loops."""

from __future__ import annotations

import itertools

import pytest
import torch

from smmix_hf.mixing import (
    cutmix_images,
    flip_pairing,
    image_attention_score,
    mixup_images,
    paste_windows,
    random_window_corners,
    smmix_images,
)


def reference_window(score: torch.Tensor, h: int, w: int, largest: bool) -> tuple[int, int]:
    """Eq. 7-8 by brute force: scan windows in row-major order, keep the first strict improvement."""
    best, best_corner = None, None
    for row, col in itertools.product(range(score.shape[0] - h + 1), range(score.shape[1] - w + 1)):
        total = sum(score[row + i, col + j].item() for i in range(h) for j in range(w))
        if best is None or (total > best if largest else total < best):
            best, best_corner = total, (row, col)
    return best_corner


def reference_smmix(images, scores, region_size, source_index):
    batch, _, height, width = images.shape
    gh, gw = scores.shape[1:]
    ph, pw = height // gh, width // gw
    h, w = region_size
    mixed = images.clone()
    mask = torch.zeros(batch, gh, gw, dtype=torch.bool)
    for target in range(batch):
        source = int(source_index[target])
        sr, sc = reference_window(scores[source], h, w, largest=True)
        tr, tc = reference_window(scores[target], h, w, largest=False)
        for i in range(h * ph):
            for j in range(w * pw):
                mixed[target, :, tr * ph + i, tc * pw + j] = images[source, :, sr * ph + i, sc * pw + j]
        mask[target, tr : tr + h, tc : tc + w] = True
    return mixed, mask


@pytest.mark.parametrize(
    ("batch", "grid", "patch", "region"),
    [
        (4, (4, 4), (2, 2), (2, 2)),
        (5, (6, 3), (2, 3), (3, 1)),
        (2, (7, 7), (4, 4), (5, 5)),
        (6, (3, 5), (1, 2), (1, 4)),
    ],
)
def test_smmix_images_matches_plain_loop(batch, grid, patch, region):
    generator = torch.Generator().manual_seed(sum(grid) + batch)
    images = torch.randn(batch, 3, grid[0] * patch[0], grid[1] * patch[1], generator=generator)
    scores = torch.rand(batch, *grid, generator=generator)
    original = images.clone()
    permutation = torch.randperm(batch, generator=generator)
    for source_index in (None, permutation):
        result = smmix_images(images, scores, region, source_index=source_index)
        expected_index = flip_pairing(batch) if source_index is None else source_index
        expected_images, expected_mask = reference_smmix(images, scores, region, expected_index)
        assert torch.equal(result.images, expected_images)
        assert torch.equal(result.source_mask, expected_mask)
        assert torch.equal(result.source_index, expected_index)
        assert result.source_fraction == region[0] * region[1] / (grid[0] * grid[1])
    assert torch.equal(images, original), "the input batch must not be modified"


def test_ties_go_to_first_window_in_row_major_order():
    scores = torch.zeros(2, 4, 4)
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    result = smmix_images(images, scores, (2, 2))
    assert result.source_corner.tolist() == [[0, 0], [0, 0]]
    assert result.target_corner.tolist() == [[0, 0], [0, 0]]
    scores[0, 2:, 2:] = 1.0  # sample 0 is the source of sample 1: its best window is at (2, 2)
    scores[1] = 1.0
    scores[1, 0, 3] = 0.0  # sample 1's least attended windows: (0, 2) comes before anything else
    result = smmix_images(images, scores, (2, 2))
    assert result.source_corner[1].tolist() == [2, 2]
    assert result.target_corner[1].tolist() == [0, 2]
    assert torch.equal(result.images[1, 0, 0:2, 2:4], images[0, 0, 2:4, 2:4])


def test_image_attention_score_drops_prefix_rows_and_columns():
    generator = torch.Generator().manual_seed(0)
    attentions = torch.rand(2, 3, 6, 6, generator=generator).softmax(-1)
    scores = image_attention_score(attentions, num_prefix_tokens=2)
    expected = torch.zeros(2, 4)
    for b, key in itertools.product(range(2), range(4)):
        expected[b, key] = sum(attentions[b, h, 2 + q, 2 + key] for h in range(3) for q in range(4)) / 12
    torch.testing.assert_close(scores, expected)
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        image_attention_score(attentions, num_prefix_tokens=6)


def test_paste_windows_with_random_corners_copies_the_right_pixels():
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(4, 2, 8, 12, generator=generator)
    corners = [random_window_corners(4, (4, 6), (2, 3), generator) for _ in range(2)]
    result = paste_windows(images, (4, 6), (2, 3), flip_pairing(4), *corners)
    for target in range(4):
        (sr, sc), (tr, tc) = corners[0][target].tolist(), corners[1][target].tolist()
        window = images[3 - target, :, sr * 2 : sr * 2 + 4, sc * 2 : sc * 2 + 6]
        assert torch.equal(result.images[target, :, tr * 2 : tr * 2 + 4, tc * 2 : tc * 2 + 6], window)
        outside = torch.ones(8, 12, dtype=torch.bool)
        outside[tr * 2 : tr * 2 + 4, tc * 2 : tc * 2 + 6] = False
        assert torch.equal(result.images[target][:, outside], images[target][:, outside])
        assert result.source_mask[target].sum() == 6


def test_region_that_does_not_fit_is_rejected():
    with pytest.raises(ValueError, match="region_size"):
        smmix_images(torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 4), (5, 1))


def test_cutmix_and_mixup():
    images = torch.randn(4, 3, 8, 8)
    cut = cutmix_images(images, (2, 6, 0, 4))
    assert torch.equal(cut.images[0, :, 2:6, 0:4], images[3, :, 2:6, 0:4])
    assert torch.equal(cut.images[0, :, :2], images[0, :, :2])
    assert cut.source_fraction == 16 / 64
    mix = mixup_images(images, 0.25)
    torch.testing.assert_close(mix.images, 0.75 * images + 0.25 * images.flip(0))
