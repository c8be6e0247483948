"""The optional C part of the bytegroup codec; everything else is configured in pyproject.toml.

``optional=True``: where no C compiler is found the install still succeeds and the codec runs
its numpy code (the same bytes, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "modelmanager.core.codecs._bytegroup",
            ["modelmanager/core/codecs/_bytegroup.c"],
            optional=True,
        )
    ]
)
