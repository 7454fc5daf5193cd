"""The `mlpot` command: --help and --version, every verb registered, one-line errors for bad input."""

import pytest

import mlpot
from mlpot.cli import main


def test_help_lists_every_verb(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    for verb in ("train", "eval", "md", "heat-capacity", "hnn"):
        assert verb in text


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and mlpot.__version__ in capsys.readouterr().out


def test_user_error_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code = main(["md", str(tmp_path / "missing.pt"), str(tmp_path / "missing.xyz"), "--steps", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mlpot md: ") and "missing" in err and "Traceback" not in err
    monkeypatch.setenv("MLPOT_DEBUG", "1")
    with pytest.raises((FileNotFoundError, ValueError)):
        main(["md", str(tmp_path / "missing.pt"), str(tmp_path / "missing.xyz"), "--steps", "1", "--out", str(tmp_path)])
