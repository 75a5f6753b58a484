#!/usr/bin/env python
"""Train an image classifier with SMMix: ``accelerate launch run_smmix.py --config deit_small_smmix ...``.

The same command as ``smmix-train`` and ``python -m smmix_hf`` (after ``pip install .``); see ``--help`` and the
recipes in ``smmix_hf/recipes/`` (``python -m smmix_hf.recipes`` lists them).
"""

from smmix_hf.cli.train import cli

if __name__ == "__main__":
    cli()
