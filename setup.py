"""Build the Cython hot path in ext/ into the abidance package.

Every ext/abidance/**/*.pyx becomes an extension named by its path
(ext/abidance/_core/book.pyx -> abidance._core.book). The .pxd files sit in the
same tree so that `cimport abidance._core.x` resolves with include_path=["ext"].
"""

import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

EXT_ROOT = Path("ext")

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "embedsignature": True,
    # Indices are checked by tests; the hot path runs without the checks.
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
}


def extensions() -> list[Extension]:
    # ABIDANCE_EXT=book,fixed limits a development rebuild to those modules.
    only = {m for m in os.environ.get("ABIDANCE_EXT", "").split(",") if m}
    exts = []
    for pyx in sorted(EXT_ROOT.rglob("*.pyx")):
        module = ".".join(pyx.relative_to(EXT_ROOT).with_suffix("").parts)
        if only and module.rsplit(".", 1)[-1] not in only:
            continue
        exts.append(
            Extension(
                module,
                [str(pyx)],
                include_dirs=[numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=["-O3"],
            )
        )
    return exts


setup(
    ext_modules=cythonize(
        extensions(),
        include_path=[str(EXT_ROOT)],
        compiler_directives=COMPILER_DIRECTIVES,
        nthreads=2,
    ),
)
