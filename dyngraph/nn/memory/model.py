"""The composable memory model (TGN framework, Rossi et al. 2020, Algorithm 1).

Per temporal batch of events ``(src, dst, t)`` the model

1. collects the nodes it needs (endpoints, negatives and, if the embedding module asks for
   them, their ``k`` most recent neighbours strictly before ``t``);
2. applies each of these nodes' *pending* messages -- stored by previous batches -- to its
   memory (:meth:`MemoryModel.update_memory`, the one swappable memory step; PRES inserts its
   prediction-correction here). This runs once per batch, inside the autograd graph, so the
   message function, aggregator, updater and time encoder receive gradients;
3. embeds the nodes from the updated memory and scores positive and negative pairs;

and only after the batch was scored, :meth:`MemoryModel.observe` persists the updated memory
(detached) and stores the batch's own events as raw messages. An event therefore never
influences its own prediction, nor that of any event of its batch.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor, nn

from dyngraph.errors import ConfigError, DataError, ShapeError
from dyngraph.nn.memory._ids import bitmap_unique
from dyngraph.nn.memory.aggregate import LastAggregator, MeanAggregator
from dyngraph.nn.memory.embedding import LinkDecoder, NeighborContext, StructuralAttention
from dyngraph.nn.memory.message import IdentityMessage
from dyngraph.nn.memory.state import ROLE_DST, ROLE_NBR, ROLE_SRC, MemoryState, MessageStore
from dyngraph.nn.memory.time_encoding import TimeEncoder

__all__ = ["MemoryModel", "MemoryUpdate", "NeighborQuery"]


def _native_memory_ok() -> bool:
    """Whether the native memory bookkeeping ops (``kernels/tgn_memory.cpp``) may be used
    (:func:`dyngraph.ops._native.op_usable`)."""
    from dyngraph.ops import _native

    return _native.op_usable("tgn_memory_gather")


class NeighborQuery(Protocol):
    """What :class:`~dyngraph.data.TemporalNeighborIndex` provides."""

    def query(self, nodes: Tensor, t: Tensor, k: int) -> Any:  # -> NeighborBlock
        """The ``k`` most recent neighbours of ``nodes`` strictly before times ``t``.

        Args:
            nodes: ``[q]`` node ids.
            t: ``[q]`` query times.
            k: neighbours per node.

        Returns:
            a :class:`dyngraph.data.NeighborBlock` (``nbr``, ``eid``, ``t``, ``mask``, each
            ``[q, k]``, most recent first).
        """
        ...


class MemoryUpdate(NamedTuple):
    """Result of the memory step for nodes ``n_id`` ``[n]``: ``memory`` ``[n, D]`` (in the
    autograd graph), ``last_update`` ``[n]`` float64, ``updated`` ``[n]`` bool (pending
    messages were applied). With PRES attached, ``memory`` is the fused memory and ``prev``
    (memory before the step) and ``computed`` (the updater's own result) are kept too."""

    n_id: Tensor
    memory: Tensor
    last_update: Tensor
    updated: Tensor
    prev: Tensor | None = None
    computed: Tensor | None = None


class MemoryModel(nn.Module):
    r"""Memory-based dynamic GNN assembled from swappable parts.

    .. math::
        m_i(t) = \mathrm{msg}(s_i(t^-), s_j(t^-), \phi(t - t_i^{last}), e_{ij}(t)),\quad
        \bar m_i = \mathrm{agg}(\{m_i(t_1), \dots\}),\quad
        s_i = \mathrm{mem}(\bar m_i, s_i),\quad z_i(t) = \mathrm{emb}(i, t)

    Args:
        num_nodes: number of nodes (the model grows when it meets larger ids).
        memory_dim: memory size ``D``.
        time_enc: the :class:`TimeEncoder` shared by messages and embedding.
        message: message function (``IdentityMessage`` / ``MLPMessage``).
        aggregator: ``LastAggregator`` / ``MeanAggregator`` / ``MailboxAttentionAggregator``.
        updater: ``GRUUpdater`` / ``RNNUpdater`` / ``ResidualUpdater``.
        embedding: ``IdentityEmbedding`` / ``TimeProjectionEmbedding`` /
            ``GraphAttentionEmbedding``.
        decoder: link decoder (defaults to :class:`LinkDecoder`).
        feat_dim: event feature dimension ``F`` (0 for structure-only streams).
        num_neighbors: ``k`` neighbours per node for the embedding / counterpart / mail delivery.
        store_size: message slots per node (1 suffices for the last aggregator).
        counterpart: DyRep's :class:`StructuralAttention`; when set, the counterpart's memory in
            a message is replaced by its structural embedding over its neighbours.
        deliver_to_neighbors: APAN: each event's mail also goes to the endpoints' neighbours.
        event_order_mail: mail content is ``(s_src, s_dst)`` for every receiver (APAN) instead
            of ``(s_self, s_other)``.
        dedup_queries: embed each distinct node of a batch once, at its earliest time in the
            batch, instead of once per (event, node) at the event's own time. Never leaks (the
            embedding only sees events strictly before every event it scores) and halves the
            embedding work, but a node's later events in the batch do not see the batch's
            earlier events as neighbours.
    """

    def __init__(
        self,
        num_nodes: int,
        memory_dim: int,
        time_enc: TimeEncoder,
        message: nn.Module,
        aggregator: nn.Module,
        updater: nn.Module,
        embedding: nn.Module,
        decoder: nn.Module | None = None,
        *,
        feat_dim: int = 0,
        num_neighbors: int = 10,
        store_size: int = 1,
        counterpart: StructuralAttention | None = None,
        deliver_to_neighbors: bool = False,
        event_order_mail: bool = False,
        dedup_queries: bool = False,
    ) -> None:
        super().__init__()
        if num_nodes < 0 or memory_dim < 1:
            raise ConfigError(f"need num_nodes >= 0 and memory_dim >= 1, got {num_nodes}, "
                              f"{memory_dim}")
        self.memory_dim = memory_dim
        self.feat_dim = feat_dim
        self.num_neighbors = num_neighbors
        self.deliver_to_neighbors = deliver_to_neighbors
        self.event_order_mail = event_order_mail
        self.dedup_queries = dedup_queries
        self.time_enc = time_enc
        self.message = message
        self.aggregator = aggregator
        self.updater = updater
        self.embedding = embedding
        self.counterpart = counterpart
        self.decoder = decoder if decoder is not None else LinkDecoder(embedding.out_channels)
        self.state = MemoryState(num_nodes, memory_dim)
        self.store = MessageStore(num_nodes, store_size, feat_dim, memory_dim)
        self.register_buffer("_assoc", torch.zeros(num_nodes, dtype=torch.long),
                             persistent=False)
        self._index: NeighborQuery | None = None
        self._edge_feat: Tensor | None = None
        self._ctx: MemoryUpdate | None = None
        self._checked: tuple[Tensor, ...] | None = None
        self.pres: nn.Module | None = None

    # ------------------------------------------------------------------ state handling
    @property
    def num_nodes(self) -> int:
        """Number of node slots currently allocated in the memory."""
        return self.state.num_nodes

    @property
    def needs_neighbors(self) -> bool:
        """Whether a forward pass needs temporal neighbours (graph embedding, counterpart or
        delivery to neighbours).
        """
        return bool(getattr(self.embedding, "needs_neighbors", False)
                    or self.counterpart is not None or self.deliver_to_neighbors)

    def reset_parameters(self) -> None:
        """Re-initialise every learnable part and reset the memory state (zero memory, no pending
        messages).
        """
        for mod in (self.time_enc, self.message, self.aggregator, self.updater,
                    self.embedding, self.decoder, self.counterpart, self.pres):
            if mod is not None and hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
        self.reset_state()

    def reset_state(self) -> None:
        """Zero memory, forget all stored messages (start of every epoch, as TGN)."""
        self.state.reset()
        self.store.reset()
        if self.pres is not None:
            self.pres.reset()
        self._ctx = None
        self._checked = None

    def set_pres(self, pres: nn.Module | None) -> None:
        """Attach (or with ``None`` detach) PRES (:class:`dyngraph.nn.pres.PRES`): its
        prediction-correction runs inside :meth:`update_memory`, its transition model learns
        in :meth:`persist`, and :meth:`auxiliary_loss` returns its coherence loss."""
        if pres is not None:
            pres.grow(self.num_nodes)
        self.pres = pres

    def grow(self, num_nodes: int) -> None:
        """Make room for node ids ``< num_nodes``; new nodes start with zero memory."""
        if num_nodes <= self.num_nodes:
            return
        self.state.grow(num_nodes)
        self.store.grow(num_nodes)
        if self.pres is not None:
            self.pres.grow(num_nodes)
        self._assoc = torch.zeros(num_nodes, dtype=torch.long, device=self._assoc.device)

    def set_graph(self, index: NeighborQuery | None, edge_feat: Tensor | None = None) -> None:
        """Attach the temporal neighbour index (``TemporalNeighborIndex`` of the stream being
        processed) and its event features ``[E, F]`` (indexed by the neighbour blocks' ``eid``)."""
        self._index = index
        self._edge_feat = edge_feat

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False):
        """Load parameters and memory; the memory first grows to the number of nodes stored in
        ``state_dict``.
        """
        key = "state.memory"
        if key in state_dict:
            self.grow(int(state_dict[key].size(0)))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ------------------------------------------------------------------ neighbours
    def _query(self, nodes: Tensor, t: Tensor):
        if self._index is None:
            raise ConfigError(
                f"{self.embedding.__class__.__name__}/{self.__class__.__name__} needs temporal "
                "neighbours: call model.set_graph(TemporalNeighborIndex(stream), stream.msg) first"
            )
        return self._index.query(nodes, t, self.num_neighbors)

    def _edge_features(self, eid: Tensor) -> Tensor:
        if self.feat_dim == 0 or self._edge_feat is None:
            return self.state.memory.new_zeros(*eid.shape, self.feat_dim)
        return self._edge_feat[eid.clamp(min=0)].to(self.state.memory.dtype)

    # ------------------------------------------------------------------ the memory step
    def update_memory(self, n_id: Tensor) -> MemoryUpdate:
        """Apply the pending messages of nodes ``n_id`` (unique) and return their memory.

        Nothing is persisted here; :meth:`observe` (or :meth:`persist`) writes the result.
        """
        if self._native_memory():
            return self._update_memory_native(n_id)
        # index_select, not x[i]: advanced indexing costs ~3x more per call on small blocks
        mem0 = self.state.memory.index_select(0, n_id)
        lu0 = self.state.last_update.index_select(0, n_id)
        has = self.store.num_pending.index_select(0, n_id) > 0
        if n_id.numel() == 0 or not bool(has.any()):
            if self.pres is None:
                return MemoryUpdate(n_id, mem0, lu0, has)
            return MemoryUpdate(n_id, mem0, lu0, has, mem0, mem0)
        idx = has.nonzero().view(-1)
        nodes = n_id.index_select(0, idx)
        blk = self.store.read(nodes)
        s_self = mem0.index_select(0, idx)
        s_b = blk.mem_b
        if self.counterpart is not None:
            n, m = blk.other.shape
            other = blk.other.reshape(-1)
            nb = self._query(other, blk.t.reshape(-1))
            nbr_mem = self.state.memory[torch.where(nb.mask, nb.nbr, other.unsqueeze(1))]
            s_b = self.counterpart(self.state.memory[other], nbr_mem, nb.mask).view(n, m, -1)
        dt = (blk.t - lu0.index_select(0, idx).unsqueeze(1)).to(s_self.dtype)
        msg = self.message(blk.mem_a, s_b, self.time_enc(dt), blk.feat)
        agg, role = self.aggregator(msg, blk, s_self)
        new = self.updater(agg, s_self, role)
        if blk.t.size(1) == 1:
            t_new = blk.t[:, 0]
        else:
            t_new = blk.t[torch.arange(nodes.numel(), device=nodes.device), blk.newest]
        memory = mem0.index_put((idx,), new)
        last_update = lu0.index_put((idx,), t_new)
        if self.pres is None:
            return MemoryUpdate(n_id, memory, last_update, has)
        fused = self.pres(n_id, mem0, memory, has)
        return MemoryUpdate(n_id, fused, last_update, has, mem0, memory)

    def _native_memory(self) -> bool:
        """Whether :meth:`update_memory`, :meth:`persist` and :meth:`observe` may take the
        native one-pass bookkeeping (``kernels/tgn_memory.cpp``): one message slot per node,
        identity messages whose mail is ``(s_self, s_other)``, an aggregator that returns the
        single pending message, an updater that ignores roles, a time encoding that needs no
        gradient, no counterpart / PRES, CPU float tensors and the extension loaded. The
        result is cached per configuration (it does not change between batches)."""
        enc = self.time_enc
        key = (torch.is_grad_enabled() and bool(enc.weight.requires_grad
                                                 or enc.bias.requires_grad),
               self.pres is None, self.state.memory.dtype, self.state.memory.device)
        cached = getattr(self, "_native_key", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        mem = self.state.memory
        ok = (not key[0] and self.pres is None and self.counterpart is None
              and self.store.size == 1 and not self.event_order_mail
              and not self.deliver_to_neighbors
              and type(self.message) is IdentityMessage
              and type(self.aggregator) in (LastAggregator, MeanAggregator)
              and not getattr(self.updater, "per_role", False)
              and mem.device.type == "cpu" and mem.dtype in (torch.float32, torch.float64)
              and enc.weight.dtype == mem.dtype and self.store.feat.dtype == mem.dtype
              and self.store.mem_a.dtype == mem.dtype and _native_memory_ok())
        self._native_key = (key, ok)
        return ok

    def _update_memory_native(self, n_id: Tensor) -> MemoryUpdate:
        # gather, has-pending test, message [s_a | s_b | phi(dt) | e] in one native pass
        st, store, enc = self.state, self.store, self.time_enc
        mem0, lu0, has, idx, msg, t_new = torch.ops.dyngraph.tgn_memory_gather(
            st.memory, st.last_update, store.num_pending, n_id, store.t, store.feat,
            store.mem_a, store.mem_b, enc.weight.detach(),
            enc.bias.detach() if enc.learnable else None, self.message.include_self)
        if idx.numel() == 0:
            return MemoryUpdate(n_id, mem0, lu0, has)
        new = self.updater(msg, mem0.index_select(0, idx), None)
        return MemoryUpdate(n_id, mem0.index_put((idx,), new), lu0.index_put((idx,), t_new), has)

    def persist(self, upd: MemoryUpdate) -> None:
        """Write an update's new memory (detached) and mark its messages as applied."""
        if upd.computed is None and self._native_memory():
            torch.ops.dyngraph.tgn_memory_persist(
                self.state.memory, self.state.last_update, self.store.num_pending, upd.n_id,
                upd.memory.detach(), upd.last_update.to(torch.float64), upd.updated)
            return
        idx = upd.updated.nonzero().view(-1)
        if idx.numel() == 0:
            return
        nodes = upd.n_id.index_select(0, idx)
        if self.pres is not None and upd.computed is not None:
            self.pres.observe(nodes, upd.prev[idx], upd.computed[idx])
        self.state.write(nodes, upd.memory.detach().index_select(0, idx),
                         upd.last_update.index_select(0, idx))
        self.store.consume(nodes)

    def auxiliary_loss(self) -> Tensor:
        """Extra training loss of the last :meth:`forward` (PRES's weighted memory-coherence
        loss; zero without PRES). Add it to the task loss before ``backward``."""
        upd = self._ctx
        if self.pres is None or upd is None or upd.computed is None:
            return self.state.memory.new_zeros(())
        return self.pres.loss(upd.prev, upd.computed, upd.updated)

    @torch.no_grad()
    def flush(self) -> None:
        """Apply every pending message to memory now."""
        nodes = (self.store.num_pending > 0).nonzero().view(-1)
        self.persist(self.update_memory(nodes))

    # ------------------------------------------------------------------ input checks
    def _check(self, src: Tensor, dst: Tensor, t: Tensor,
               neg: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if src.dim() != 1 or dst.shape != src.shape or t.shape != src.shape:
            raise ShapeError(f"src, dst, t must be 1-D of equal length, got {tuple(src.shape)}, "
                             f"{tuple(dst.shape)}, {tuple(t.shape)}")
        b = src.numel()
        if neg is None:
            neg = src.new_zeros(b, 0)
        elif neg.dim() == 1:
            neg = neg.view(b, -1) if b else neg.view(0, 0)
        if neg.dim() != 2 or neg.size(0) != b:
            raise ShapeError(f"neg_dst must be [B] or [B, K] with B={b}, got {tuple(neg.shape)}")
        t = t.to(torch.float64)
        if b == 0:
            return src.long(), dst.long(), t, neg.long()
        # min and max are NaN / infinite exactly when some time is (one op, not isfinite's
        # four element-wise passes and a reduction)
        if not all(math.isfinite(v) for v in torch.aminmax(t)):
            raise DataError(f"event times must be finite; first bad row "
                            f"{int((~torch.isfinite(t)).nonzero()[0])}")
        lo, hi = (int(v) for v in torch.aminmax(torch.cat([src, dst, neg.reshape(-1)])))
        if lo < 0:
            raise DataError(f"node ids must be >= 0, got {lo}")
        self.grow(hi + 1)  # unseen nodes (inductive setting) start at zero memory
        return src.long(), dst.long(), t, neg.long()

    # ------------------------------------------------------------------ scoring
    def embed(self, upd: MemoryUpdate, nodes: Tensor, t: Tensor, blk: Any | None,
              hidden: bool = False, nbr: Tensor | None = None) -> Tensor:
        """Embeddings ``[q, C]`` of ``nodes`` at times ``t`` from the updated memory ``upd``
        (which must cover ``nodes`` and the neighbours in ``blk``); with ``hidden`` the
        embedding module's :meth:`hidden` output (before its ``output_layer``). ``nbr``:
        ``blk.nbr`` with padded slots pointing at their query node (computed when absent)."""
        assoc = self._assoc
        assoc.index_copy_(0, upd.n_id, torch.arange(upd.n_id.numel(), device=upd.n_id.device))
        loc = assoc.index_select(0, nodes)
        mem_q = upd.memory.index_select(0, loc)
        dt_q = t - upd.last_update.index_select(0, loc)
        ctx = None
        if blk is not None:
            nb = torch.where(blk.mask, blk.nbr, nodes.unsqueeze(1)) if nbr is None else nbr
            index = assoc.index_select(0, nb.view(-1)).view(nb.shape)
            feat = None
            if self.feat_dim == 0 or self._edge_feat is None:
                feat = self._edge_features(blk.eid)
            ctx = NeighborContext(
                node_mem=upd.memory,
                index=index,
                query_index=loc,
                feat=feat,
                dt=(t.unsqueeze(1) - blk.t.to(torch.float64)).to(mem_q.dtype),
                mask=blk.mask,
                eid=blk.eid,
                t=t,
                event_t=getattr(self._index, "event_t", None),
                event_feat=self._edge_feat if self.feat_dim else None,
            )
        fn = self.embedding.hidden if hidden else self.embedding
        return fn(mem_q, dt_q, ctx)

    def forward(self, src: Tensor, dst: Tensor, t: Tensor,
                neg_dst: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Score a temporal batch before it is observed.

        Args:
            src, dst: ``[B]`` node ids; t: ``[B]`` times (float64); neg_dst: ``[B]`` or
                ``[B, K]`` negative destinations (scored against ``src`` at time ``t``).

        Returns:
            ``(pos [B], neg [B, K])`` logits. Call :meth:`observe` with the same batch next.
        """
        checked = self._check(src, dst, t, neg_dst)
        self._checked = (src, dst, t) + checked[:3]
        src, dst, t, neg = checked
        b, k = neg.shape
        if b == 0:
            self._ctx = None
            empty = self.state.memory.new_zeros(0)
            return empty, empty.view(0, k)
        qn = torch.cat([src, dst, neg.t().reshape(-1)])
        qt = torch.cat([t] * (2 + k))
        inv = None
        if self.dedup_queries:
            # one embedding per distinct node, at its earliest time in the batch (so it only
            # uses information from strictly before every event it is scored in)
            qn, inv = torch.unique(qn, return_inverse=True)
            first = torch.full(qn.shape, float("inf"), dtype=qt.dtype, device=qt.device)
            qt = first.scatter_reduce(0, inv, qt, reduce="amin")
        blk = self._query(qn, qt) if getattr(self.embedding, "needs_neighbors", False) else None
        nbr = None
        if blk is None:
            upd = self.update_memory(bitmap_unique(self.num_nodes, qn)[0])
        else:  # padded slots point at the query node itself, which is in the set anyway
            nbr = torch.where(blk.mask, blk.nbr, qn.unsqueeze(1))
            upd = self.update_memory(bitmap_unique(self.num_nodes, qn, nbr)[0])
        score = getattr(self.decoder, "score_candidates", None)
        # the decoder's first layer absorbs the embedding's last linear map when both allow it
        pre = getattr(self.embedding, "output_layer", None) if score is not None else None
        z = self.embed(upd, qn, qt, blk, hidden=pre is not None, nbr=nbr)
        if inv is not None:
            z = z[inv]
        stacked = getattr(self.decoder, "score_stacked", None)
        if stacked is not None:
            # destination and negatives in one call (the source projection is shared), the
            # decoder one autograd node
            logits = stacked(z, b, pre)
            pos, neg_out = logits[0], logits[1:].t()
            self._ctx = upd
            return pos, neg_out
        z_src = z[:b]
        if score is not None:
            # destination and negatives in one call: the source projection is shared
            logits = score(z_src, z[b:].view(k + 1, b, -1), pre)
            pos, neg_out = logits[0], logits[1:].t()
        else:
            z_dst, z_neg = z[b:2 * b], z[2 * b:].view(k, b, -1)
            pos = self.decoder(z_src, z_dst)
            neg_out = self.decoder(z_src.unsqueeze(0), z_neg).t() if k else pos.new_zeros(b, 0)
        self._ctx = upd
        return pos, neg_out

    # ------------------------------------------------------------------ observing
    @torch.no_grad()
    def observe(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor | None = None) -> None:
        """Reveal a batch of events *after* it was scored: persist the memory computed by the
        last :meth:`forward` and store the events as raw messages for later batches."""
        seen = self._checked
        if seen is not None and seen[0] is src and seen[1] is dst and seen[2] is t:
            src, dst, t = seen[3:]  # the batch forward() just checked
        else:
            src, dst, t, _ = self._check(src, dst, t, None)
        self._checked = None
        if self._ctx is not None:
            self.persist(self._ctx)
            self._ctx = None
        b = src.numel()
        if b == 0:
            return
        if msg is not None and (msg.dim() != 2 or msg.shape != (b, self.feat_dim)):
            raise ShapeError(f"msg must be [{b}, {self.feat_dim}], got {tuple(msg.shape)}")
        ends = torch.cat([src, dst])
        if bool((self.store.num_pending.index_select(0, ends) > 0).any()):
            # events observed without being scored first (e.g. a warm-up pass)
            self.persist(self.update_memory(torch.unique(ends)))
        mem = self.state.memory
        if self._native_memory():
            store = self.store
            feat = None if msg is None or not self.feat_dim else msg.to(mem.dtype)
            torch.ops.dyngraph.tgn_store_push_last(
                mem, src, dst, t, feat, store.other, store.t, store.role, store.feat,
                store.mem_a, store.mem_b, store.count, store.num_pending)
            return
        node = torch.stack([src, dst], 1).reshape(-1)
        other = torch.stack([dst, src], 1).reshape(-1)
        role = torch.tensor([ROLE_SRC, ROLE_DST], device=src.device).repeat(b)
        tt = t.repeat_interleave(2)
        feat = msg.repeat_interleave(2, 0) if msg is not None else None
        if not (self.event_order_mail or self.deliver_to_neighbors):
            # each endpoint's mail holds (s_self, s_other): the store reads them from the
            # memory table for the messages it keeps, no [2B, D] copies first
            self.store.push(node, other, tt, role, feat, memory=mem)
            return
        s_src, s_dst = mem.index_select(0, src), mem.index_select(0, dst)
        if self.event_order_mail:
            mem_a, mem_b = s_src.repeat_interleave(2, 0), s_dst.repeat_interleave(2, 0)
        else:
            mem_a = torch.stack([s_src, s_dst], 1).reshape(2 * b, -1)
            mem_b = torch.stack([s_dst, s_src], 1).reshape(2 * b, -1)
        if self.deliver_to_neighbors:
            nb = self._query(ends, t.repeat(2))
            ev = torch.arange(b, device=src.device).repeat(2).unsqueeze(1).expand_as(nb.nbr)
            ev = ev[nb.mask]
            recv = nb.nbr[nb.mask]
            order = torch.argsort(torch.cat([torch.arange(b, device=src.device)
                                             .repeat_interleave(2), ev]), stable=True)
            node = torch.cat([node, recv])[order]
            other = torch.cat([other, dst[ev]])[order]
            role = torch.cat([role, torch.full_like(recv, ROLE_NBR)])[order]
            tt = torch.cat([tt, t[ev]])[order]
            if feat is not None:
                feat = torch.cat([feat, msg[ev]])[order]
            mem_a = torch.cat([mem_a, s_src[ev]])[order]
            mem_b = torch.cat([mem_b, s_dst[ev]])[order]
        self.store.push(node, other, tt, role, feat, mem_a, mem_b)

    def extra_repr(self) -> str:
        return (f"num_nodes={self.num_nodes}, memory_dim={self.memory_dim}, "
                f"feat_dim={self.feat_dim}, num_neighbors={self.num_neighbors}"
                f"{', pres' if self.pres is not None else ''}")
