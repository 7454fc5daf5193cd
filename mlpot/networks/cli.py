"""``mlpot communities GRAPH_FILE``: communities by the modularity GNN, as JSON and a picture.

    mlpot communities karate.txt --out runs/communities
    mlpot communities graph.gml --max-communities 2 --seed 1

GRAPH_FILE is an edge list (``u v`` or ``u v weight`` per line) or a ``.gml``/``.graphml`` file
(:mod:`mlpot.networks.io`). Writes ``OUT/STEM.communities.json`` (labels by node name, the
communities, Q, the Q after each stage, the time) and ``OUT/STEM.communities.png`` (the graph in a
spring layout, coloured by community; skipped above ``--plot-max-nodes``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mlpot.files import atomic_write_text, refuse_to_replace_run

__all__ = ["register_cli", "run_communities"]


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``communities`` sub-command."""
    p = subparsers.add_parser(
        "communities",
        help="find communities of a graph (modularity maximisation by a graph neural network)",
        description="Find communities as a ground state of the modularity (Potts) Hamiltonian: a "
        "torch-geometric GNN minimises the relaxed energy, then single-node moves and merges reach a "
        "local optimum of Q (docs/networks.md). Writes JSON and a PNG of the graph coloured by community.",
    )
    p.add_argument("graph_file", help="edge list ('u v [weight]' per line) or .gml/.graphml file")
    p.add_argument("--max-communities", type=int, default=None, help="upper bound on the number of communities")
    p.add_argument("--resolution", type=float, default=1.0, help="modularity resolution γ (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unweighted", action="store_true", help="ignore edge weights")
    p.add_argument("--out", default="runs/communities", help="output directory (default runs/communities)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    p.add_argument("--plot-max-nodes", type=int, default=3000, help="draw the graph only up to this size")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.set_defaults(func=run_communities)


def run_communities(args: argparse.Namespace) -> int:
    """Entry point of ``mlpot communities``."""
    import torch

    from mlpot.networks.gnn import GNNSettings, detect_communities
    from mlpot.networks.graph import as_graph
    from mlpot.networks.io import partition_to_json, read_graph
    from mlpot.networks.modularity import modularity_of_labels

    torch.set_num_threads(args.threads)
    json_path = Path(args.out) / f"{Path(args.graph_file).stem}.communities.json"
    refuse_to_replace_run(args.out, [json_path] if json_path.exists() else [], False, args.overwrite,
                          "an earlier run's results", resumable=False)
    edge_index, weights, num_nodes, names = read_graph(args.graph_file)
    graph = as_graph(edge_index, num_nodes, None if args.unweighted else weights)
    settings = GNNSettings(resolution=args.resolution)
    start = time.perf_counter()
    labels = detect_communities(graph, args.max_communities, args.seed, settings)
    seconds = time.perf_counter() - start
    q = modularity_of_labels(graph, labels, args.resolution)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.graph_file).stem
    atomic_write_text(json_path, partition_to_json(
        labels, names, graph_file=str(args.graph_file), num_nodes=num_nodes, num_edges=int(edge_index.shape[1]),
        weighted=weights is not None and not args.unweighted, resolution=args.resolution, seed=args.seed,
        modularity=q, stages=dict(settings.stages), seconds=seconds))
    print(f"mlpot communities: {num_nodes} nodes, {labels.max() + 1} communities, Q = {q:.4f} ({seconds:.1f} s)")
    figure = None
    if num_nodes <= args.plot_max_nodes:
        figure = out / f"{stem}.communities.png"
        plot_communities(graph, labels, figure, title=f"{stem}: {labels.max() + 1} communities, Q = {q:.4f}",
                         seed=args.seed)
    print(f"wrote {json_path}" + (f" and {figure}" if figure else f" (no plot above {args.plot_max_nodes} nodes)"))
    return 0


def plot_communities(graph, labels, path, title: str = "", seed: int = 0) -> None:
    """Draw ``graph`` (a :class:`~mlpot.networks.graph.Graph`) in a spring layout, coloured by ``labels``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    a = graph.adjacency.tocoo()
    keep = a.row < a.col
    nx_graph = nx.Graph()
    nx_graph.add_nodes_from(range(graph.num_nodes))
    nx_graph.add_edges_from(zip(a.row[keep].tolist(), a.col[keep].tolist()))
    layout = nx.spring_layout(nx_graph, seed=seed)
    fig, ax = plt.subplots(figsize=(7, 7))
    nx.draw_networkx_edges(nx_graph, layout, ax=ax, alpha=0.25, width=0.6)
    size = max(8.0, 300.0 / max(graph.num_nodes, 1) ** 0.5)
    nx.draw_networkx_nodes(nx_graph, layout, ax=ax, node_color=labels, cmap="tab20", node_size=size * 4)
    ax.set_title(title)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
