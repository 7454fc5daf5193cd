"""A test of mlpot must fail, not skip, when mlpot's own code does not import: ``importorskip``
is only for optional third-party packages."""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_importorskip_of_mlpot_modules():
    pattern = re.compile(r"importorskip\(\s*[\"']mlpot")
    offenders = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in sorted(TESTS.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == [], f"import mlpot's modules plainly, not with importorskip: {offenders}"
