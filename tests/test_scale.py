"""Exploration at scale (issue 16): repeated designs, resume points, worker seeds, fast reads, bugs."""


from ador.explore.space import build_space
from ador.explore.stored import Point
from ador.hardware.components import HBM_GENERATIONS


def test_an_hbm_generation_knob_brings_its_own_bandwidth_and_capacity():
    """A space whose only HBM knob is the generation: a design of another generation gets that
    generation's per-stack bandwidth and capacity (they used to stay the base's)."""
    space = build_space({"base": "ador-example", "knobs": {"hbm.generation": {
        "type": "categorical", "choices": ["hbm2e", "hbm3", "hbm3e"]}}})
    base = space.base.hbm
    for gen in ("hbm2e", "hbm3", "hbm3e"):
        hbm = space.design({"hbm.generation": gen}).hbm
        # the base's own generation keeps the base's figures (ador-example's 408 GB/s stacks)
        bw, cap = (base.bw_bytes_per_s_per_stack, base.capacity_bytes_per_stack) if gen == base.generation \
            else HBM_GENERATIONS[gen]
        assert (hbm.generation, hbm.bw_bytes_per_s_per_stack, hbm.capacity_bytes_per_stack) == (gen, bw, cap)


def test_pymoo_resume_seeds_with_the_front_in_the_studys_directions():
    """Seeds are ranked by non-dominated sorting with the directions: (1, 5) dominates (1, 0)
    when the second objective is maximised, though (1, 0) sorts first lexicographically."""
    from ador.explore.pymoo_engine import seed_population
    pts = [Point(10, 0, (1.0, 0.0), True), Point(11, 1, (1.0, 5.0), True), Point(12, 2, (0.5, 9.0), False),
           Point(13, 3, (3.0, 6.0), True), Point(14, 4, (2.0, 1.0), True)]
    assert seed_population(pts, ["minimize", "maximize"], 2) == [11, 13]     # the front, infeasible left out
    assert seed_population(pts, ["minimize", "maximize"], 3) == [11, 13, 10]  # then the next rank, by number
    assert seed_population(pts, ["minimize", "minimize"], 1) == [10]
