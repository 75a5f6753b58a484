#!/usr/bin/env python
"""Train an image classifier with SMMix: ``accelerate launch run_smmix.py --model deit-small ...``.

See ``python run_smmix.py --help`` and the recipes in ``configs/``.
"""

from smmix_hf.cli.train import main

if __name__ == "__main__":
    main()
