"""The headline: Llama-3-70B on 8 devices, the searched designs against 8 x A100 (and H100, H200,
B200, MI300X), asked as a static batch and under load, with the fairness ladder, seeds, sensitivity
and model-error intervals. ``plan`` says what is asked, ``runs`` runs the studies, ``pipeline``
computes every figure, ``report`` renders them."""
from ador.headline.report import write_report
from ador.headline.runs import run

__all__ = ["run", "write_report"]
