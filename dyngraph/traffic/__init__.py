"""Road networks and static user-equilibrium traffic assignment."""

from dyngraph.traffic.assignment import (
    METHODS,
    BatchResult,
    ConvergenceReport,
    UEResult,
    solve_ue,
    solve_ue_batch,
)
from dyngraph.traffic.batch import (
    ScenarioSampler,
    load_scenarios,
    network_fingerprint,
    run_scenarios,
)
from dyngraph.traffic.costs import BPR, beckmann, bpr_derivative, bpr_time, total_travel_time
from dyngraph.traffic.network import (
    SIOUX_FALLS_BEST_BECKMANN,
    SIOUX_FALLS_BEST_TSTT,
    TrafficNetwork,
    datasets_root,
    load_network,
    sioux_falls,
    sioux_falls_best_flows,
)
from dyngraph.traffic.paths import RoutingGraph, all_or_nothing, aon_backend, shortest_path_costs
from dyngraph.traffic.plot import plot_network
from dyngraph.traffic.tntp import KNOWN_NETWORKS, TNTP_BASE_URL, download_tntp, tntp_url

__all__ = [
    "TrafficNetwork",
    "sioux_falls",
    "sioux_falls_best_flows",
    "load_network",
    "datasets_root",
    "SIOUX_FALLS_BEST_TSTT",
    "SIOUX_FALLS_BEST_BECKMANN",
    "BPR",
    "bpr_time",
    "bpr_derivative",
    "beckmann",
    "total_travel_time",
    "RoutingGraph",
    "all_or_nothing",
    "shortest_path_costs",
    "aon_backend",
    "solve_ue",
    "solve_ue_batch",
    "UEResult",
    "BatchResult",
    "ConvergenceReport",
    "METHODS",
    "ScenarioSampler",
    "run_scenarios",
    "load_scenarios",
    "network_fingerprint",
    "plot_network",
    "TNTP_BASE_URL",
    "KNOWN_NETWORKS",
    "tntp_url",
    "download_tntp",
]
