"""The README's set-up commands: CI runs the test command as written, with the pinned stack."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text[text.index("## Set up") : text.index("\n## ", text.index("## Set up") + 1)]
    return re.findall(r"```bash\n(.+)\n```", setup)


def test_the_readme_has_two_setup_commands_both_with_the_constraints() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert all("-c constraints.txt" in c for c in commands)
    assert (ROOT / "constraints.txt").exists()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    (test_command,) = [c for c in _readme_commands() if c.endswith("&& pytest")]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
