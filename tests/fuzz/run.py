"""Run one fuzz target with atheris (libFuzzer) over its seed corpus.

    python -m tests.fuzz.run wire -max_total_time=3600            # an hour, corpus grows in a temp dir
    python -m tests.fuzz.run store_http -max_total_time=600 -jobs=2 NEW_CORPUS_DIR

Arguments after the target name are libFuzzer's (`-runs=N`, `-max_total_time=S`, `-max_len=N`,
`-rss_limit_mb=MB`, corpus directories). The seed corpus in tests/fuzz/corpus/TARGET is always
read; new inputs go to the first directory given (else a temporary one). A crash or a failed
assertion leaves a `crash-*` file with the input: add it to the corpus with the fix.
"""

from __future__ import annotations

import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["abidance", "tests.fuzz", "tests.twins"]):
    from tests.fuzz.targets import CORPUS, TARGETS


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.run {{{','.join(sorted(TARGETS))}}} [libFuzzer args]")
    name, rest = argv[1], argv[2:]
    dirs = [a for a in rest if not a.startswith("-")]
    flags = [a for a in rest if a.startswith("-")]
    work = dirs[0] if dirs else tempfile.mkdtemp(prefix=f"abidance-fuzz-{name}-")
    target = TARGETS[name]
    if name == "store_http":
        from tests.fuzz.targets import _Store

        _Store.get()                 # start the store before the clock of the first input runs
    atheris.Setup([argv[0], *flags, work, str(CORPUS / name)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
