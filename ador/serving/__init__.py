"""Serving layer: request-level simulation on top of the performance model."""
from ador.serving.requests import Lengths, Request, burst, load_trace, poisson
from ador.serving.simulator import POLICIES, SchedulerConfig, ServingResult, max_sustainable_rate, simulate

__all__ = ["Lengths", "Request", "burst", "load_trace", "poisson", "POLICIES", "SchedulerConfig", "ServingResult",
           "max_sustainable_rate", "simulate"]
