"""The `mlpot` command: --help and --version, every verb registered, one-line errors for bad input."""

import pytest

import mlpot
from mlpot.cli import main


def test_help_lists_every_verb(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    for verb in ("train", "eval", "md", "heat-capacity", "hnn", "lammps"):
        assert verb in text


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and mlpot.__version__ in capsys.readouterr().out


def test_user_error_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code = main(["md", str(tmp_path / "missing.pt"), str(tmp_path / "missing.xyz"), "--steps", "1",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mlpot md: ") and "missing" in err and "Traceback" not in err
    monkeypatch.setenv("MLPOT_DEBUG", "1")
    with pytest.raises((FileNotFoundError, ValueError)):
        main(["md", str(tmp_path / "missing.pt"), str(tmp_path / "missing.xyz"), "--steps", "1",
              "--out", str(tmp_path)])


def _bad_structures(tmp_path):
    import ase.io
    from ase.build import bulk

    ase.io.write(tmp_path / "good.extxyz", [bulk("Cu", cubic=True)] * 2, format="extxyz")
    text = (tmp_path / "good.extxyz").read_text()
    (tmp_path / "empty.extxyz").write_text("")
    (tmp_path / "truncated.extxyz").write_text(text[: len(text) * 3 // 4])
    return {"empty": tmp_path / "empty.extxyz", "truncated": tmp_path / "truncated.extxyz"}


@pytest.mark.parametrize("kind", ["empty", "truncated"])
def test_every_verb_reads_a_broken_structure_file_as_one_line(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    from mlpot.models import DescriptorModel

    model = mlpot.save_model(DescriptorModel(["Cu"], cutoff=3.0, n_radial=4, n_channels=4, l_max=1, hidden=[8]),
                             tmp_path / "model.pt")
    path = str(_bad_structures(tmp_path)[kind])
    commands = {
        "md": ["md", "ase:EMT", path, "--steps", "1", "--out", str(tmp_path / "md")],
        "heat-capacity": ["heat-capacity", path, "--reference", "emt", "--temperatures", "300",
                          "--out", str(tmp_path / "c")],
        "eval": ["eval", str(model), path],
    }
    for verb, argv in commands.items():
        assert main(argv) == 2, verb
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"mlpot {verb}: error: ") and kind in err, err
        assert "Traceback" not in err
    monkeypatch.setenv("MLPOT_DEBUG", "1")
    with pytest.raises(ValueError, match=kind):
        main(commands["md"])


def test_a_full_disk_is_one_line_naming_the_folder(tmp_path, capsys, monkeypatch):
    import errno

    import ase.io
    import torch
    from ase.build import bulk

    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    ase.io.write(tmp_path / "cu.xyz", bulk("Cu", cubic=True))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "run"
    code = main(["md", "ase:EMT", str(tmp_path / "cu.xyz"), "--steps", "2", "--checkpoint-every", "1", "--no-progress",
                 "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len([line for line in err if "error" in line]) == 1
    assert f"checkpoint.pt in {out.resolve()}: the disk is full" in err[-1]
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_sigterm_outside_a_checkpointing_loop_is_an_interrupt(monkeypatch, capsys):
    import argparse
    import signal

    import mlpot.cli

    def terminated(args):
        signal.raise_signal(signal.SIGTERM)
        return 0

    parser = mlpot.cli.build_parser()
    monkeypatch.setattr(parser, "parse_args", lambda argv: argparse.Namespace(command="x", func=terminated))
    monkeypatch.setattr(mlpot.cli, "build_parser", lambda: parser)
    previous = signal.getsignal(signal.SIGTERM)
    assert main(["x"]) == 130 and "mlpot x: interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is previous
