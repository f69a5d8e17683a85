"""Aggregation primitives every dyngraph layer uses.

- :func:`scatter` (COO index), :func:`segment` (CSR pointers): sum / mean / max / min / mul.
- :func:`scatter_softmax`, :func:`scatter_log_softmax`, :func:`scatter_argmax`,
  :func:`scatter_argmin`.
- :class:`CSR` and the fused :func:`gather_aggregate` (message passing without materialising
  the E x F message tensor; autograd w.r.t. node features and edge weights).
- :func:`time_encode`: the cosine time encoding of TGN / TGAT as one op.

Backends (plain torch, torch-scatter when installed, the native ``kernels/`` extension) are
chosen per op from measurements; see :mod:`dyngraph.ops.backend` and ``DYNGRAPH_OPS_BACKEND``.
Validation policy (the ``check=`` argument): see :mod:`dyngraph.ops._common`.
"""

from dyngraph.ops import backend
from dyngraph.ops.aggregate import gather_aggregate
from dyngraph.ops.csr import CSR
from dyngraph.ops.scatter import scatter, scatter_argmax, scatter_argmin
from dyngraph.ops.segment import segment
from dyngraph.ops.softmax import scatter_log_softmax, scatter_softmax
from dyngraph.ops.time_encoding import time_encode

__all__ = [
    "CSR",
    "backend",
    "gather_aggregate",
    "scatter",
    "scatter_argmax",
    "scatter_argmin",
    "scatter_log_softmax",
    "scatter_softmax",
    "segment",
    "time_encode",
]
