"""README section: communities as ground states of the modularity Hamiltonian (mlpot GNN vs Louvain)."""

from __future__ import annotations

import json
from pathlib import Path

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "communities.json"
METHODS = (("gnn", "mlpot GNN"), ("louvain", "Louvain (networkx)"), ("spectral", "spectral bisection"))


def _cell(r: dict, key: str = "nmi") -> str:
    return f"{r[key]:.3f}"


def render() -> list[str]:
    if not RESULT.exists():
        return []
    data = json.loads(RESULT.read_text())
    karate = data["karate"]
    two = karate["two_communities"]
    lines = ["### Communities as ground states of the modularity Hamiltonian", "",
             f"`{data['command']}` ({data['torch_threads']} torch thread); {data['note']}", "",
             "| graph | mlpot GNN Q | Louvain Q | spectral Q | communities (GNN / Louvain) |", "|---|---|---|---|---|"]
    free = karate["free"]
    lines.append(f"| karate club (optimum 0.4198) | {free['gnn']['q']:.4f} | {free['louvain']['q']:.4f} | "
                 f"{free['spectral']['q']:.4f} | "
                 f"{free['gnn']['num_communities']} / {free['louvain']['num_communities']} |")
    lines.append(f"| karate club, at most 2 (optimum 0.3718) | {two['q']:.4f} | | | 2, "
                 f"{two['faction_mismatches']} node(s) off the factions |")
    for name, r in data.get("standins", {}).items():
        lines.append(f"| {name}, μ = {r['mu']} | {r['gnn']['q']:.4f} | {r['louvain']['q']:.4f} | "
                     f"{r['spectral']['q']:.4f} | {r['gnn']['num_communities']} / {r['louvain']['num_communities']} |")
    lines += ["", "LFR graphs (τ1 = 3, τ2 = 1.5, mean degree 20, communities of 20–100 nodes): median NMI against the "
              "planted partition over the seeds, and median seconds.", "",
              "| nodes | μ | seeds | " + " | ".join(f"{label} NMI" for _, label in METHODS)
              + " | GNN s | Louvain s |", "|---|---|---|---|---|---|---|---|"]
    for e in data["lfr_summary"]:
        lines.append(f"| {e['num_nodes']:,} | {e['mu']:.1f} | {e['graphs']} | "
                     + " | ".join(f"{e[f'{m}_nmi_median']:.3f}" for m, _ in METHODS)
                     + f" | {e['gnn_seconds_median']:.1f} | {e['louvain_seconds_median']:.1f} |")
    if "scaling" in data:
        s = data["scaling"]
        lines += ["", f"Scaling, {s['num_nodes']:,} nodes and {s['num_edges']:,} edges "
                  f"({s['generator']}, μ = {s['mu']}): "
                  + "; ".join(f"{label} {s[m]['seconds']:.0f} s, Q = {s[m]['q']:.4f}, NMI = {s[m]['nmi']:.3f}"
                              for m, label in METHODS)
                  + f". GNN time / Louvain time = {s['gnn_over_louvain_time']:.2f}."]
    if data.get("figure"):
        lines += ["", f"![NMI against μ](benchmarks/results/{data['figure']})"]
    return lines + [""]
