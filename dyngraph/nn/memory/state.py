"""Per-node memory state and the dense raw-message store.

Both are thin holders of buffers (so they travel with ``state_dict`` and checkpoints); the
math lives in the message/aggregator/updater modules.

The store keeps, for every node, a ring buffer of its ``size`` most recent raw messages as
dense ``[N, size]`` tensors: the counterpart id, the event time, the node's role in the event,
the event features and the two sides' memories at event time. Pushing a batch of messages and
reading the block of a set of nodes are a handful of vectorised tensor ops, never a Python loop
over nodes (PyG's ``TGNMemory`` keeps one dict entry per node and concatenates them in Python
on every batch).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dyngraph.errors import ConfigError, ShapeError

__all__ = ["MemoryState", "MessageStore", "MessageBlock", "ROLE_SRC", "ROLE_DST", "ROLE_NBR"]

#: role of the receiving node in the event that produced a message
ROLE_SRC, ROLE_DST, ROLE_NBR = 0, 1, 2


class MemoryState(nn.Module):
    """Memory ``s_i`` of every node and the time ``last_update_i`` it was last updated.

    Args:
        num_nodes: number of nodes ``N`` (grows on demand with :meth:`grow`).
        dim: memory dimension ``D``.

    Buffers: ``memory`` ``[N, D]`` float32 (zeros at start, as in TGN), ``last_update``
    ``[N]`` float64 (timestamps keep full precision; unix seconds do not fit float32).
    """

    def __init__(self, num_nodes: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("memory", torch.zeros(num_nodes, dim))
        self.register_buffer("last_update", torch.zeros(num_nodes, dtype=torch.float64))

    @property
    def num_nodes(self) -> int:
        """Number of node slots, rows of ``memory`` ``[N, D]``."""
        return self.memory.size(0)

    def reset(self) -> None:
        """Zero every node's memory and last-update time (start of an epoch)."""
        self.memory.zero_()
        self.last_update.zero_()

    def detach(self) -> None:
        """Cut the autograd history of the memory (after each training batch)."""
        self.memory = self.memory.detach()

    def grow(self, num_nodes: int) -> None:
        """Add zero-initialised rows for unseen node ids (TGN: new nodes start at 0)."""
        extra = num_nodes - self.num_nodes
        if extra <= 0:
            return
        self.memory = torch.cat([self.memory, self.memory.new_zeros(extra, self.dim)])
        self.last_update = torch.cat([self.last_update, self.last_update.new_zeros(extra)])

    def write(self, n_id: Tensor, memory: Tensor, last_update: Tensor) -> None:
        """Persist new memory (detached) for nodes ``n_id``."""
        self.memory.index_copy_(0, n_id, memory.detach().to(self.memory.dtype))
        self.last_update.index_copy_(0, n_id, last_update.to(self.last_update.dtype))

    def extra_repr(self) -> str:
        return f"num_nodes={self.num_nodes}, dim={self.dim}"


class MessageBlock(NamedTuple):
    """Raw messages of ``n`` nodes as dense ``[n, size]`` blocks.

    ``other``: counterpart node id; ``t``: event time (float64); ``role``: receiver's role
    (``ROLE_SRC``/``ROLE_DST``/``ROLE_NBR``); ``feat``: ``[n, size, F]`` event features;
    ``mem_a``/``mem_b``: ``[n, size, D]`` memory snapshots taken when the event happened;
    ``valid``: slot holds a message; ``pending``: message not yet applied to memory;
    ``newest``: ``[n]`` slot index of the most recent message.
    """

    other: Tensor
    t: Tensor
    role: Tensor
    feat: Tensor
    mem_a: Tensor
    mem_b: Tensor
    valid: Tensor
    pending: Tensor
    newest: Tensor


class NodeBuffers(nn.Module):
    """Per-node state tensors (first dimension = node), named in ``_BUFFERS``, that are
    zeroed together and grow together when unseen node ids arrive at inference."""

    _BUFFERS: tuple[str, ...] = ()

    @property
    def num_nodes(self) -> int:
        return getattr(self, self._BUFFERS[0]).size(0)

    def reset(self) -> None:
        for name in self._BUFFERS:
            getattr(self, name).zero_()

    def grow(self, num_nodes: int) -> None:
        extra = num_nodes - self.num_nodes
        if extra <= 0:
            return
        for name in self._BUFFERS:
            buf = getattr(self, name)
            setattr(self, name, torch.cat([buf, buf.new_zeros((extra,) + buf.shape[1:])]))


class MessageStore(NodeBuffers):
    """Dense ring buffer of each node's ``size`` most recent raw messages.

    Args:
        num_nodes: number of nodes ``N``.
        size: slots per node ``M``. ``1`` is enough for the *last* aggregator (TGN, JODIE,
            DyRep); the *mean* aggregator averages the up-to-``M`` most recent pending messages;
            APAN keeps a mailbox of the ``M`` most recent mails.
        feat_dim: event feature dimension ``F`` (0 for structure-only data).
    """

    def __init__(
        self, num_nodes: int, size: int = 1, feat_dim: int = 0, memory_dim: int = 0
    ) -> None:
        super().__init__()
        if size < 1:
            raise ConfigError(f"MessageStore size must be >= 1, got {size}")
        self.size = size
        self.feat_dim = feat_dim
        self.memory_dim = memory_dim
        n, m = num_nodes, size
        self.register_buffer("other", torch.zeros(n, m, dtype=torch.long))
        self.register_buffer("t", torch.zeros(n, m, dtype=torch.float64))
        self.register_buffer("role", torch.zeros(n, m, dtype=torch.long))
        self.register_buffer("feat", torch.zeros(n, m, feat_dim))
        # memories of the event's two sides when it happened (self side first for the
        # endpoints, event order for mails delivered to neighbours): the paper's s_i(t^-), s_j(t^-)
        self.register_buffer("mem_a", torch.zeros(n, m, memory_dim))
        self.register_buffer("mem_b", torch.zeros(n, m, memory_dim))
        self.register_buffer("head", torch.zeros(n, dtype=torch.long))  # next slot to write
        self.register_buffer("count", torch.zeros(n, dtype=torch.long))  # valid slots
        self.register_buffer("num_pending", torch.zeros(n, dtype=torch.long))

    _BUFFERS = ("other", "t", "role", "feat", "mem_a", "mem_b", "head", "count", "num_pending")

    @property
    def num_nodes(self) -> int:
        """Number of node slots of the store."""
        return self.head.size(0)

    def has_pending(self, n_id: Tensor) -> Tensor:
        """``[n]`` bool: which of ``n_id`` have messages not yet applied to their memory."""
        return self.num_pending[n_id] > 0

    def push(
        self,
        node: Tensor,
        other: Tensor,
        t: Tensor,
        role: Tensor,
        feat: Tensor | None = None,
        mem_a: Tensor | None = None,
        mem_b: Tensor | None = None,
        memory: Tensor | None = None,
    ) -> None:
        """Append messages (given in chronological order) to the receivers' buffers.

        ``node``, ``other``, ``role``: ``[E]``; ``t``: ``[E]``; ``feat``: ``[E, F]``;
        ``mem_a``/``mem_b``: ``[E, D]`` memory snapshots (stored detached). Instead of them,
        ``memory`` ``[N, D]`` (the memory table now) means ``mem_a = memory[node]`` and
        ``mem_b = memory[other]``, read only for the messages that are kept.
        When a node receives more than ``size`` messages at once only its ``size`` latest
        are kept, so every write position is unique (no scatter races).
        """
        e = node.numel()
        if e == 0:
            return
        if feat is not None and feat.shape != (e, self.feat_dim):
            raise ShapeError(
                f"message features must have shape [{e}, {self.feat_dim}], got "
                f"{tuple(feat.shape)}; build the model with the stream's msg_dim"
            )
        m = self.size
        if m == 1:
            self._push_last(node, other, t, role, feat, mem_a, mem_b, memory)
            return
        if memory is not None:
            mem_a, mem_b = memory.index_select(0, node), memory.index_select(0, other)
        node_s, perm = torch.sort(node, stable=True)
        uniq, counts = torch.unique_consecutive(node_s, return_counts=True)
        ends = torch.cumsum(counts, 0)
        rank = torch.arange(e, device=node.device) - torch.repeat_interleave(ends - counts, counts)
        keep = rank >= torch.repeat_interleave(counts, counts) - m
        sel = perm[keep]
        dst_node = node_s[keep]
        slot = (self.head[dst_node] + rank[keep]) % m
        self.other[dst_node, slot] = other[sel]
        self.t[dst_node, slot] = t[sel].to(self.t.dtype)
        self.role[dst_node, slot] = role[sel]
        if self.feat_dim and feat is not None:
            self.feat[dst_node, slot] = feat[sel].to(self.feat.dtype)
        if self.memory_dim and mem_a is not None:
            self.mem_a[dst_node, slot] = mem_a[sel].detach()
        if self.memory_dim and mem_b is not None:
            self.mem_b[dst_node, slot] = mem_b[sel].detach()
        self.head[uniq] = (self.head[uniq] + counts) % m
        self.count[uniq] = torch.clamp(self.count[uniq] + counts, max=m)
        self.num_pending[uniq] = torch.clamp(self.num_pending[uniq] + counts, max=m)

    def _push_last(self, node: Tensor, other: Tensor, t: Tensor, role: Tensor,
                   feat: Tensor | None, mem_a: Tensor | None, mem_b: Tensor | None,
                   memory: Tensor | None) -> None:
        # one slot per node: only each receiver's last message of the batch is written (found
        # with one scatter-max of positions instead of a sort); head stays 0
        e = node.numel()
        pos = torch.arange(e, device=node.device)
        last = torch.full((self.num_nodes,), -1, dtype=torch.long, device=node.device)
        last.scatter_reduce_(0, node, pos, reduce="amax")
        sel = (last.index_select(0, node) == pos).nonzero().view(-1)
        dst = node.index_select(0, sel)  # distinct receivers

        def write(buf: Tensor, val: Tensor) -> None:
            buf.view(buf.size(0), -1).index_copy_(
                0, dst, val.index_select(0, sel).detach().to(buf.dtype).view(dst.numel(), -1))

        write(self.other, other)
        write(self.t, t)
        write(self.role, role)
        if self.feat_dim and feat is not None:
            write(self.feat, feat)
        if self.memory_dim and memory is not None:
            for buf, ids in ((self.mem_a, dst), (self.mem_b, other.index_select(0, sel))):
                buf.view(buf.size(0), -1).index_copy_(
                    0, dst, memory.index_select(0, ids).detach().to(buf.dtype))
        if self.memory_dim and mem_a is not None:
            write(self.mem_a, mem_a)
        if self.memory_dim and mem_b is not None:
            write(self.mem_b, mem_b)
        self.count.index_fill_(0, dst, 1)
        self.num_pending.index_fill_(0, dst, 1)

    def read(self, n_id: Tensor) -> MessageBlock:
        """Messages of nodes ``n_id`` as dense ``[n, size]`` blocks."""
        m = self.size
        if m == 1:
            def take(buf: Tensor) -> Tensor:
                return buf.index_select(0, n_id)

            return MessageBlock(
                other=take(self.other), t=take(self.t), role=take(self.role),
                feat=take(self.feat), mem_a=take(self.mem_a), mem_b=take(self.mem_b),
                valid=(take(self.count) > 0).unsqueeze(1),
                pending=(take(self.num_pending) > 0).unsqueeze(1),
                newest=n_id.new_zeros(n_id.shape),
            )
        head = self.head[n_id]
        slots = torch.arange(m, device=n_id.device)
        age = (head.unsqueeze(1) - 1 - slots) % m  # 0 = newest
        valid = age < self.count[n_id].unsqueeze(1)
        pending = age < self.num_pending[n_id].unsqueeze(1)
        return MessageBlock(
            other=self.other[n_id],
            t=self.t[n_id],
            role=self.role[n_id],
            feat=self.feat[n_id],
            mem_a=self.mem_a[n_id],
            mem_b=self.mem_b[n_id],
            valid=valid,
            pending=pending,
            newest=(head - 1) % m,
        )

    def consume(self, n_id: Tensor) -> None:
        """Mark the pending messages of ``n_id`` as applied to memory."""
        self.num_pending[n_id] = 0

    def extra_repr(self) -> str:
        return (
            f"num_nodes={self.num_nodes}, size={self.size}, feat_dim={self.feat_dim}, "
            f"memory_dim={self.memory_dim}"
        )
