"""Bilevel road network design with a learned user-equilibrium surrogate.

Upper level: :class:`NetworkDesignProblem` (lane addition, lane swap). Lower level: user
equilibrium, solved exactly by :mod:`dyngraph.traffic` or approximated by a
:class:`Surrogate` (edge-weighted GIN). :class:`GeneticAlgorithm` searches designs scoring whole
populations in one batched surrogate call; :class:`SurrogateOptimizer` is the ask/tell API with
budgets, exact re-scoring and surrogate refresh (Madadi & Correia 2024, extended).
"""

from dyngraph.bilevel.data import ScenarioSet, generate_scenarios, topology_fingerprint
from dyngraph.bilevel.ga import GAResult, GeneticAlgorithm
from dyngraph.bilevel.optimizer import (
    Recommendations,
    RefreshConfig,
    SearchBudget,
    SurrogateOptimizer,
)
from dyngraph.bilevel.plot import plot_design, plot_search_history
from dyngraph.bilevel.problem import PROBLEM_KINDS, NetworkDesignProblem, two_way_pairs
from dyngraph.bilevel.surrogate import (
    EdgeWeightedGINConv,
    FlowGNN,
    Surrogate,
    SurrogateConfig,
    route_split,
)
from dyngraph.bilevel.training import (
    FittedSurrogate,
    SurrogateMetrics,
    TrainConfig,
    evaluate_surrogate,
    fit_surrogate,
    train_surrogate,
)

__all__ = [
    "NetworkDesignProblem",
    "PROBLEM_KINDS",
    "two_way_pairs",
    "ScenarioSet",
    "generate_scenarios",
    "topology_fingerprint",
    "EdgeWeightedGINConv",
    "FlowGNN",
    "Surrogate",
    "SurrogateConfig",
    "route_split",
    "TrainConfig",
    "SurrogateMetrics",
    "train_surrogate",
    "evaluate_surrogate",
    "fit_surrogate",
    "FittedSurrogate",
    "GeneticAlgorithm",
    "GAResult",
    "SurrogateOptimizer",
    "SearchBudget",
    "RefreshConfig",
    "Recommendations",
    "plot_design",
    "plot_search_history",
]
