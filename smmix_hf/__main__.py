"""``python -m smmix_hf``: the same command as ``smmix-train``."""

from smmix_hf.cli.train import cli

if __name__ == "__main__":
    cli()
