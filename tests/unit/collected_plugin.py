"""A pytest plugin for tests that run pytest in a subprocess: writes every collected test id,
selected or deselected (by -k), one a line, to the file named by ABIDANCE_COLLECTED."""

import os

_ids: list[str] = []


def pytest_deselected(items):
    _ids.extend(item.nodeid for item in items)


def pytest_collection_finish(session):
    _ids.extend(item.nodeid for item in session.items)
    with open(os.environ["ABIDANCE_COLLECTED"], "w") as f:
        f.write("\n".join(_ids) + "\n")
