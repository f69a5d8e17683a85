"""Auto-GNN neural architecture search: search spaces, the reinforced conservative controller
(RCC), constrained parameter sharing, baselines, trial runners and a resumable ``search``."""

from dyngraph.nas.architecture import Architecture
from dyngraph.nas.controllers import (
    CONTROLLERS,
    Controller,
    Proposal,
    RandomSearch,
    RegularizedEvolution,
    ReinforcedConservativeController,
    make_controller,
)
from dyngraph.nas.log import TrialLog
from dyngraph.nas.model import SearchedGNN
from dyngraph.nas.nasbench import NasBenchGraphObjective, NasBenchGraphSpace
from dyngraph.nas.objective import (
    NodeClassificationObjective,
    TrainConfig,
    TrialResult,
    load_planetoid,
    train_node_classifier,
)
from dyngraph.nas.runners import InProcessRunner, RayRunner
from dyngraph.nas.search import SearchResult, retrain, search, select_final
from dyngraph.nas.sharing import ParameterBank, homogeneous_layers
from dyngraph.nas.space import (
    ACTIVATIONS,
    SPACES,
    AGNNSpace,
    Decision,
    SearchSpace,
    make_space,
    register_activation,
    register_space,
)
from dyngraph.nn.conv import register_attention

__all__ = [
    "Architecture",
    "Decision",
    "SearchSpace",
    "AGNNSpace",
    "NasBenchGraphSpace",
    "ACTIVATIONS",
    "SPACES",
    "register_activation",
    "register_attention",
    "register_space",
    "make_space",
    "SearchedGNN",
    "Controller",
    "Proposal",
    "RandomSearch",
    "RegularizedEvolution",
    "ReinforcedConservativeController",
    "CONTROLLERS",
    "make_controller",
    "ParameterBank",
    "homogeneous_layers",
    "TrialResult",
    "TrainConfig",
    "NodeClassificationObjective",
    "NasBenchGraphObjective",
    "train_node_classifier",
    "load_planetoid",
    "InProcessRunner",
    "RayRunner",
    "TrialLog",
    "search",
    "retrain",
    "select_final",
    "SearchResult",
]
