"""SMMix (Self-Motivated Image Mixing for Vision Transformers, ICCV 2023) for transformers."""

from smmix_hf.config import SMMixConfig
from smmix_hf.trainer import SMMixTrainer

__all__ = ["SMMixConfig", "SMMixTrainer"]
__version__ = "0.1.0"
