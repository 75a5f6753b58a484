"""The one compiled part: an optional libjpeg-turbo region decoder (``smmix_hf/data/_jpeg_region.c``).

Everything else is declared in ``pyproject.toml``. Without a C compiler or libjpeg's headers (Debian:
``libjpeg62-turbo-dev``) the build skips this extension with a warning, and the package decodes JPEGs with Pillow.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "smmix_hf.data._jpeg_region",
            sources=["smmix_hf/data/_jpeg_region.c"],
            libraries=["jpeg"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
