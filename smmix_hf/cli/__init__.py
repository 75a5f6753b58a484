"""The ``run_smmix.py`` command line: arguments, YAML recipes and the training entry point."""
