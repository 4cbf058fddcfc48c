"""Serving layer: request-level simulation on top of the performance model."""
from ador.serving.config import POLICIES, SchedulerConfig
from ador.serving.requests import Lengths, Request, RequestArrays, burst, load_trace, poisson
from ador.serving.schedulers import SCHEDULERS, Scheduler
from ador.serving.sglang import SGLangScheduler     # registers the policy
from ador.serving.simulator import (ALL, STEADY, ServingResult, kv_capacity_tokens, max_sustainable_rate,
                                    percentile_capacity, simulate)

__all__ = ["ALL", "STEADY", "Lengths", "Request", "RequestArrays", "burst", "load_trace", "poisson", "POLICIES",
           "SCHEDULERS", "Scheduler", "SGLangScheduler", "SchedulerConfig", "ServingResult", "kv_capacity_tokens",
           "max_sustainable_rate", "percentile_capacity", "simulate"]
