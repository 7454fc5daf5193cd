"""``mlpot communities GRAPH_FILE`` end to end: JSON, PNG and one-line errors."""

from __future__ import annotations

import json

import numpy as np

from mlpot.cli import main
from mlpot.networks import modularity
from mlpot.networks.generators import karate_club


def write_karate(path, weighted=False):
    edge_index, _ = karate_club()
    lines = ["# Zachary's karate club, unweighted"]
    for u, v in edge_index.T:
        lines.append(f"n{u} n{v}" + (" 1.0" if weighted else ""))
    path.write_text("\n".join(lines) + "\n")
    return edge_index


def test_mlpot_communities_writes_json_and_plot(tmp_path, capsys):
    graph_file = tmp_path / "karate.txt"
    edge_index = write_karate(graph_file, weighted=True)
    assert main(["communities", str(graph_file), "--out", str(tmp_path / "out"), "--max-communities", "2"]) == 0
    result = json.loads((tmp_path / "out" / "karate.communities.json").read_text())
    assert result["num_communities"] == 2 and result["num_nodes"] == 34 and result["weighted"]
    # Labels come back under the file's node names; Q recomputed from them matches the report.
    labels = np.array([result["labels"][f"n{i}"] for i in range(34)])
    assert abs(modularity(edge_index, labels) - result["modularity"]) < 1e-12
    assert result["modularity"] >= 0.3710
    assert sorted(sum(result["communities"], [])) == sorted(f"n{i}" for i in range(34))
    assert (tmp_path / "out" / "karate.communities.png").stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out
    # an earlier run's results stay unless --overwrite (refused before any computing)
    argv = ["communities", str(graph_file), "--out", str(tmp_path / "out"), "--max-communities", "2", "--seed", "5"]
    assert main(argv) == 2
    assert "holds an earlier run's results" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "karate.communities.json").read_text()) == result
    assert main(argv + ["--overwrite"]) == 0
    assert json.loads((tmp_path / "out" / "karate.communities.json").read_text())["seed"] == 5  # replaced


def test_mlpot_communities_reports_bad_files_in_one_line(tmp_path, capsys):
    assert main(["communities", str(tmp_path / "missing.txt")]) == 2
    assert "no such graph file" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("a b\nb c d e\n")
    assert main(["communities", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlpot communities: error:") and "bad.txt:2" in err
