"""Operators: one record per kernel-like step, with the shapes, FLOPs and bytes the perf model needs.

The record is flat (every kind uses a subset of the fields) so the hot path reads attributes
without dispatching on classes. All quantities are per instance; ``count`` instances run in a stage
(e.g. once per layer, or per layer and per expert hit, which may be fractional as an expectation).
"""
from __future__ import annotations

from dataclasses import dataclass

# Operator kinds.
GEMM = "gemm"            # dense matmul [m x k] @ [k x n], weights of k x n
ATTENTION = "attention"  # fused attention of `groups` query heads: m queries against n keys each, head dim k
VECTOR = "vector"        # elementwise / reduction work on the vector unit (norms, activations)
MEMORY = "memory"        # pure data movement (embedding gather)
ALLREDUCE = "allreduce"  # tensor-parallel all-reduce of comm_bytes per device
ALLGATHER = "allgather"  # tensor-parallel all-gather of comm_bytes (total gathered) per device
P2P = "p2p"              # pipeline-parallel send of comm_bytes to the next stage
DIE_ALLREDUCE = "die_allreduce"  # the same among the dies of one device (chiplets), over die-to-die links
DIE_ALLGATHER = "die_allgather"
DIE_COLLECTIVES = (DIE_ALLREDUCE, DIE_ALLGATHER)
COLLECTIVES = (ALLREDUCE, ALLGATHER, P2P) + DIE_COLLECTIVES
# what a die-level collective does, in the algorithms of ador.perf.collectives
DEVICE_KIND_OF = {DIE_ALLREDUCE: ALLREDUCE, DIE_ALLGATHER: ALLGATHER}

# Phases an operator serves, so that a heterogeneous chip can place them on different engines.
PREFILL = "prefill"
DECODE = "decode"
MIXED = "mixed"


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    kind: str
    phase: str
    count: float = 1.0
    m: int = 0
    n: int = 0
    k: int = 0
    groups: int = 1             # attention: independent heads x requests in one kernel
    kv_group: int = 1           # attention: query heads that share one KV head (GQA)
    flops: float = 0.0
    weight_bytes: float = 0.0   # weights read
    act_bytes: float = 0.0      # activations read + written
    kv_bytes: float = 0.0       # KV cache read + written
    vector_ops: float = 0.0     # elementwise operations for the vector unit
    sfu_ops: float = 0.0        # special-function evaluations (exp, rsqrt, tanh)
    comm_bytes: float = 0.0     # collective payload per device

    @property
    def bytes_total(self) -> float:
        return self.weight_bytes + self.act_bytes + self.kv_bytes
