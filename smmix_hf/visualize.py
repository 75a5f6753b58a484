"""A PNG grid that shows what a mixing method did to each sample (SMMix's Fig. 1 / Fig. 4, per sample).

One row per mixed sample: the source image and its attention map with the source window (the window
of largest score sum, Eq. 7), the target image and its attention map with the target window (the
smallest sum, Eq. 8), the mixed image with both windows outlined, and the labels it is trained with:
the mixed label λ·y_src + (1-λ)·y_tgt (Eq. 9), the region labels of the pasted window and the rest
(Eq. 10-13) and the consistency target, the λ-mix of the clean predictions (Eq. 14). Rendering uses
Pillow only, and its default font, so the text is plain ASCII.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["WINDOW_LEGEND", "MixRow", "heatmap", "render_mix_grid"]

WINDOW_LEGEND = "red: source window (cut from the source)   blue: target window (replaced by it)"
SOURCE_COLOR = (230, 40, 40)
TARGET_COLOR = (40, 110, 255)
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_COLUMNS = ("source", "source attention", "target", "target attention", "mixed", "labels")
# Anchors of the "inferno" colour map (dark = little attention, bright = much).
_INFERNO = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


@dataclass
class MixRow:
    """Everything one row of the grid shows. Boxes are ``(top, left, height, width)`` in pixels."""

    method: str
    source: np.ndarray
    target: np.ndarray
    mixed: np.ndarray
    source_box: tuple[int, int, int, int]
    target_box: tuple[int, int, int, int]
    source_label: str
    target_label: str
    source_fraction: float
    source_scores: np.ndarray | None = None
    target_scores: np.ndarray | None = None
    region_labels: bool = False
    consistency_top: list[tuple[str, float]] = field(default_factory=list)
    loss_weights: dict[str, float] = field(default_factory=dict)

    def label_lines(self) -> list[tuple[str, tuple[int, int, int]]]:
        """The text of the labels panel, one ``(line, colour)`` per line."""
        lam = self.source_fraction
        weight = self.loss_weights
        lines = [
            (f"{self.method}: lambda = {lam:.2f} (source share)", _TEXT),
            (f"L_cls{_weight(weight, 'cls')}: mixed label (Eq. 9)", _TEXT),
            (f"  {self.source_label} x {lam:.2f}  (source)", SOURCE_COLOR),
            (f"  {self.target_label} x {1 - lam:.2f}  (target)", TARGET_COLOR),
        ]
        if self.region_labels:
            lines += [
                (f"L_fine{_weight(weight, 'fine')}: region labels (Eq. 10-13)", _TEXT),
                (f"  pasted window -> {self.source_label} x 1.00", SOURCE_COLOR),
                (f"  rest of image -> {self.target_label} x 1.00", TARGET_COLOR),
            ]
        if self.consistency_top:
            lines.append((f"L_con{_weight(weight, 'con')}: mixed clean prediction (Eq. 14)", _TEXT))
            lines += [(f"  {name}: {prob:.2f}", _TEXT) for name, prob in self.consistency_top]
        return lines


def _weight(weights: dict[str, float], name: str) -> str:
    return f" (w={weights[name]:g})" if name in weights else ""


def heatmap(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[gh, gw]`` scores as an ``inferno`` RGB image of ``size`` (height, width), one block per token."""
    scores = np.asarray(scores, dtype=np.float64)
    low, high = scores.min(), scores.max()
    unit = (scores - low) / (high - low) if high > low else np.zeros_like(scores)
    position = unit * (len(_INFERNO) - 1)
    lower = np.floor(position).astype(int).clip(0, len(_INFERNO) - 2)
    fraction = (position - lower)[..., None]
    colours = _INFERNO[lower] * (1 - fraction) + _INFERNO[lower + 1] * fraction
    image = Image.fromarray(colours.round().astype(np.uint8))
    return np.asarray(image.resize((size[1], size[0]), Image.Resampling.NEAREST))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def _outline(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    origin: tuple[int, int],
    scale: float,
    colour: tuple[int, int, int],
    width: int,
) -> None:
    top, left, height, width_px = box
    x0, y0 = origin[0] + left * scale, origin[1] + top * scale
    x1, y1 = x0 + width_px * scale - 1, y0 + height * scale - 1
    draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)


def render_mix_grid(rows: list[MixRow], panel: int = 128, title: str | None = None) -> Image.Image:
    """The grid as an RGB ``PIL.Image``: one row per :class:`MixRow`, ``panel`` pixels per image."""
    if not rows:
        raise ValueError("render_mix_grid needs at least one row; pass N >= 1 examples.")
    gap, text_width, header = 6, 340, 22 + (22 if title else 0)
    line_height = 17
    text_lines = max(len(row.label_lines()) for row in rows)
    row_height = max(panel, text_lines * line_height + 8)
    width = 5 * (panel + gap) + text_width + gap
    height = header + len(rows) * (row_height + gap) + gap
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font, small = _font(14), _font(12)
    if title:
        draw.text((gap, 4), title, fill=_TEXT, font=font)
    for column, name in enumerate(_COLUMNS):
        draw.text((gap + column * (panel + gap), header - 20), name, fill=_TEXT, font=font)
    line_width = max(2, panel // 48)
    for index, row in enumerate(rows):
        y = header + index * (row_height + gap)
        scale = panel / row.source.shape[0]
        panels = [
            (row.source, [(row.source_box, SOURCE_COLOR)]),
            (row.source_scores, [(row.source_box, SOURCE_COLOR)]),
            (row.target, [(row.target_box, TARGET_COLOR)]),
            (row.target_scores, [(row.target_box, TARGET_COLOR)]),
            (row.mixed, [(row.source_box, SOURCE_COLOR), (row.target_box, TARGET_COLOR)]),
        ]
        for column, (content, boxes) in enumerate(panels):
            x = gap + column * (panel + gap)
            if content is None:
                draw.rectangle((x, y, x + panel - 1, y + panel - 1), outline=(180, 180, 180))
                draw.text((x + 8, y + panel // 2 - 8), "no attention", fill=(120, 120, 120), font=small)
                continue
            if content.ndim == 2:
                pixels = heatmap(content, (panel, panel))
            else:
                pixels = np.asarray(Image.fromarray(content).resize((panel, panel), Image.Resampling.NEAREST))
            canvas.paste(Image.fromarray(pixels), (x, y))
            for box, colour in boxes:
                _outline(draw, box, (x, y), scale, colour, line_width)
        x = gap + 5 * (panel + gap)
        for line_index, (line, colour) in enumerate(row.label_lines()):
            draw.text((x, y + 4 + line_index * line_height), line, fill=colour, font=small)
    return canvas
