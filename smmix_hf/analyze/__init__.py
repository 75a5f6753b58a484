"""What a trained model does with mixed images: the paper's Fig. 5a metric and per-sample PNG grids.

``python -m smmix_hf.analyze mixed-accuracy ...`` and ``python -m smmix_hf.analyze show-mix ...``; the
same functions are importable.
"""

from smmix_hf.analyze.mixed_accuracy import MixedAccuracy, mixed_accuracy
from smmix_hf.analyze.mixing import EVAL_MIX_METHODS, BatchMixer
from smmix_hf.analyze.show_mix import show_mix

__all__ = ["EVAL_MIX_METHODS", "BatchMixer", "MixedAccuracy", "mixed_accuracy", "show_mix"]
