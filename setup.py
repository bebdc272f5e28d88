"""Build the Cython hot path in ext/ into the abidance package.

Every ext/abidance/**/*.pyx becomes an extension named by its path
(ext/abidance/_core/book.pyx -> abidance._core.book). The .pxd files sit in the
same tree so that `cimport abidance._core.x` resolves with include_path=["ext"].

Compiling the generated C is most of an install's time, so the modules compile two at a
time, and each compiled module is kept in build/ext-cache under the hash of its C source,
its flags and the interpreter: a second install (or the CI's wheel build after the editable
install) copies it instead of compiling it again.
"""

import hashlib
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXT_ROOT = Path("ext")
CACHE = Path(__file__).resolve().parent / "build" / "ext-cache"

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


def c_without_metadata(code: bytes) -> bytes:
    """Cython's C minus its metadata block, which names the build's temporary folders."""
    end = code.find(b"END: Cython Metadata */")
    return code[end:] if end >= 0 else code


class CachedBuildExt(build_ext):
    """build_ext that reuses a module compiled from the same C source with the same flags."""

    def build_extension(self, ext):
        target = Path(self.get_ext_fullpath(ext.name))
        key = hashlib.sha256(repr((ext.extra_compile_args, ext.define_macros, sys.version, numpy.__version__,
                                   sysconfig.get_config_var("EXT_SUFFIX"))).encode())
        for source in ext.sources:
            key.update(c_without_metadata(Path(source).read_bytes()))
        cached = CACHE / f"{ext.name}-{key.hexdigest()[:24]}.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        if cached.exists():
            print(f"abidance: {ext.name} unchanged: reusing its compiled module ({cached.name})", flush=True)
            shutil.copy2(cached, target)
            return
        print(f"abidance: compiling {ext.name} ...", flush=True)
        super().build_extension(ext)
        CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target, cached.with_suffix(".tmp"))
        os.replace(cached.with_suffix(".tmp"), cached)      # never a half-written module in the cache


setup(
    cmdclass={"build_ext": CachedBuildExt},
    options={"build_ext": {"parallel": 2}},
    ext_modules=cythonize(
        extensions(),
        include_path=[str(EXT_ROOT)],
        compiler_directives=COMPILER_DIRECTIVES,
        nthreads=2,
    ),
)
