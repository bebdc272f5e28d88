"""The README's set-up commands stay true: CI runs exactly the README's test command."""

from tests.kit import PROJECT_ROOT


def command_after(marker: str) -> str:
    lines = (PROJECT_ROOT / "README.md").read_text().splitlines()
    i = lines.index(marker)
    assert lines[i + 1].startswith("```"), f"a fenced command must follow {marker}"
    return lines[i + 2].strip()


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert command_after("<!-- test-command -->") in [line.strip() for line in ci]


def test_readme_main_command_runs_the_replay():
    assert command_after("<!-- main-command -->").endswith("abidance replay")
