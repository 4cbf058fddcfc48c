"""Performance layer: joins workload and hardware into operator, stage and end-to-end latencies."""
from ador.perf.evaluate import Evaluation, evaluate
from ador.perf.stage import OpTiming, StageResult, stage_time

__all__ = ["Evaluation", "evaluate", "OpTiming", "StageResult", "stage_time"]
