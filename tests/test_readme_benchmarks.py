"""The README's benchmark tables are exactly what scripts/update_readme_benchmarks.py renders
from benchmarks/results/*.json, so no figure in the README lacks a script and a JSON behind it."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_tables_match_the_benchmark_json():
    spec = importlib.util.spec_from_file_location("update_readme_benchmarks",
                                                  ROOT / "scripts" / "update_readme_benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.updated_readme() == (ROOT / "README.md").read_text(), (
        "README benchmark tables are stale: run python scripts/update_readme_benchmarks.py"
    )
