"""A design is what the chip is, not the knob values that name it: knobs a design makes irrelevant
(the widths of MAC trees it has none of, the shared buffer of private-buffer trees) are left out of
its identity, so it is scored once and counted once on a front (ador/explore/design_id.py)."""
import dataclasses
import json

import optuna

from hypothesis import HealthCheck, given, settings, strategies as st

from ador.explore.config import SamplerSpec, load_study
from ador.explore.design_id import DESIGN_KEY, design_key
from ador.explore.history import REPEAT_ATTR
from ador.explore.pareto import front_trials
from ador.explore.runner import Scorer, open_study, run_trials
from ador.explore.space import build_space
from tests.conftest import REPO


def _draw(draw, knob):
    if knob.type == "categorical":
        return draw(st.sampled_from(list(knob.choices)))
    if knob.type == "pow2":
        return 2 ** draw(st.integers(int(knob.low).bit_length() - 1, int(knob.high).bit_length() - 1))
    if knob.type == "float":
        steps = round((knob.high - knob.low) / knob.step)
        return knob.low + knob.step * draw(st.integers(0, steps))
    step = int(knob.step or 1)
    return int(knob.low) + step * draw(st.integers(0, (int(knob.high) - int(knob.low)) // step))


HEADLINE = load_study(REPO / "studies" / "llama3-70b-8dev.yaml")     # the default space, all knobs


@st.composite
def design_with_idle_parts(draw):
    """Knob values of the default space with one part idle (no arrays, no trees, or private
    buffers), and the same values with every knob that makes inert drawn again."""
    space = HEADLINE.space
    values = {name: _draw(draw, knob) for name, knob in space.knobs.items()}
    idle = draw(st.sampled_from(["systolic.count", "mactree.count", "mactree.buffer"]))
    values[idle] = "private" if idle == "mactree.buffer" else 0
    if values["systolic.count"] + values["mactree.count"] == 0:
        values["systolic.count" if idle == "mactree.count" else "mactree.count"] = 8
    inert = space.inert_knobs(values)
    other = {**values, **{name: _draw(draw, space.knobs[name]) for name in inert}}
    return values, other, inert


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(design_with_idle_parts())
def test_designs_that_differ_only_in_inert_knobs_score_the_same(pair):
    values, other, inert = pair
    assert inert, values            # every drawn design has an idle part, so something is inert
    scorer = Scorer(HEADLINE)
    a, b = scorer(values), scorer(other)
    assert a.values == b.values and a.constraints == b.constraints
    assert a.user_attrs == b.user_attrs


def test_inert_knobs_are_the_idle_parts_and_what_only_they_feed():
    space = build_space({"base": "ador-example", "knobs": {
        "mactree.count": {"type": "int", "low": 0, "high": 64, "step": 64},
        "mactree.width": {"type": "pow2", "low": 64, "high": 256},
        "mactree.buffer": {"type": "categorical", "choices": ["shared", "private"]},
        "sram.capacity_bytes": {"type": "pow2", "low": 8388608, "high": 16777216}},
        "derived": {"mactree.shared_buffer_bytes": "sram.capacity_bytes / 4"}})
    none = {"mactree.count": 0, "mactree.width": 64, "mactree.buffer": "shared", "sram.capacity_bytes": 8388608}
    assert space.inert_knobs(none) == {"mactree.width", "mactree.buffer"}
    assert space.inert_knobs({**none, "mactree.count": 64}) == set()
    # sram.capacity_bytes feeds the shared buffer, which private trees ignore, and the SRAM itself
    assert space.inert_knobs({**none, "mactree.count": 64, "mactree.buffer": "private"}) == set()
    fed = build_space({"base": "ador-example", "knobs": {
        "mactree.count": {"type": "int", "low": 0, "high": 64, "step": 64},
        "mactree.width": {"type": "pow2", "low": 64, "high": 256}},
        "derived": {"mactree.local_buffer_bytes": "mactree.width * 1024",
                    "vector.lanes": "mactree.local_buffer_bytes / 64"}})
    # the width feeds the vector unit through the trees' buffer: it is never inert
    assert fed.inert_knobs({"mactree.count": 0, "mactree.width": 64}) == set()


def _idle_trees_study(workdir, name):
    """12 designs named by 20 knob vectors: with no MAC trees their width names nothing."""
    space = build_space({"base": "ador-example", "knobs": {
        "mactree.count": {"type": "int", "low": 0, "high": 8, "step": 8},
        "mactree.width": {"type": "pow2", "low": 64, "high": 1024},
        "systolic.count": {"type": "int", "low": 4, "high": 8, "step": 4}}})
    study = load_study("studies/smoke.yaml")
    spec = dataclasses.replace(study.spec, sampler=SamplerSpec("random", {}), seed=3)
    study = dataclasses.replace(study, name=name, space=space, spec=spec)
    durable, _ = open_study(study, f"sqlite:///{workdir}/{name}.db")
    return study, durable


def test_a_study_scores_each_design_once_and_counts_it_once_everywhere(workdir, capsys):
    from ador.cli import main
    from ador.explore.results import status, study_front
    study, durable = _idle_trees_study(workdir, "idle")
    run_trials(study, durable, 80, progress=False)
    trials = durable.get_trials(deepcopy=False)
    scored = [t for t in trials if t.user_attrs.get(REPEAT_ATTR) is None]
    designs = {design_key(t, study.space) for t in trials}
    assert len(designs) <= 12 and len(designs) < len({design_key(t) for t in trials})    # knob vectors: up to 20
    assert len(scored) == len(designs)                                     # each design scored once
    by_design: dict = {}
    for t in trials:                                     # one stored digest per design, whatever its width
        by_design.setdefault(design_key(t, study.space), set()).add(t.system_attrs[DESIGN_KEY])
    assert all(len(digests) == 1 for digests in by_design.values())
    front = study_front(durable, study.directions, space=study.space)
    n = status(durable, space=study.space)["n_pareto"]
    assert n == len(front) == len({design_key(t, study.space) for t in front})
    assert len(front_trials(trials, study.directions, space=study.space)) == n
    assert len(front_trials(trials, study.directions)) == n                # by the stored digests
    from ador.report.table import trials_frame
    assert int(trials_frame(study, durable)["on_front"].sum()) == n
    assert int(trials_frame(study, durable, stored=False)["on_front"].sum()) == n
    url = f"sqlite:///{workdir}/idle.db"                   # and the commands, which read the stored study
    capsys.readouterr()
    assert main(["study", "status", "idle", "--json", "--storage", url]) == 0
    assert json.loads(capsys.readouterr().out)["n_pareto"] == n
    assert main(["study", "best", "idle", "--json", "--storage", url]) == 0
    assert len(json.loads(capsys.readouterr().out)["pareto"]) == n


def test_the_pymoo_engine_scores_each_design_once_and_answers_its_variants_from_it(workdir):
    """pymoo breeds knob vectors; a vector that names a design already scored (in this run or stored
    before it) is written as a repeat of that trial, with its answer, not scored again."""
    study, _ = _idle_trees_study(workdir, "pm")
    durable, _ = open_study(study, f"sqlite:///{workdir}/pm2.db", sampler="pymoo-nsga2")
    first = run_trials(study, durable, 12, progress=False)
    stats = run_trials(study, durable, 40, progress=False)           # resumed: stored designs answer too
    trials = durable.get_trials(deepcopy=False)
    designs = {design_key(t, study.space) for t in trials}
    scored = [t for t in trials if t.user_attrs.get(REPEAT_ATTR) is None]
    assert len(trials) == 20 > len(designs) == len(scored) == 12      # every knob vector, each design once
    assert first.repeats + stats.repeats == 8
    by_number = {t.number: t for t in trials}
    for t in trials:
        if t.user_attrs.get(REPEAT_ATTR) is not None:
            source = by_number[t.user_attrs[REPEAT_ATTR]]
            assert source.user_attrs.get(REPEAT_ATTR) is None and t.values == source.values
            assert design_key(t, study.space) == design_key(source, study.space)


def test_nsga2_takes_a_child_that_differs_only_in_inert_knobs_for_a_known_design(workdir):
    """Duplicate elimination asks the run whether a child is a known design by the same identity."""
    from ador.explore.history import History
    from ador.explore.params import distributions
    from ador.explore.samplers import build_sampler
    study, durable = _idle_trees_study(workdir, "ga")
    mem = optuna.create_study(directions=study.directions, sampler=build_sampler("nsga2", {}, study.space, 1))
    history = History(durable, mem, space=study.space)
    dists = distributions(study.space)
    narrow = {"mactree.count": 0, "mactree.width:log2": 6, "systolic.count": 4}
    assert history.ga.design_of(narrow, dists) == history.ga.design_of({**narrow, "mactree.width:log2": 10}, dists)
    assert history.ga.design_of({**narrow, "mactree.count": 8}, dists) != \
        history.ga.design_of({**narrow, "mactree.count": 8, "mactree.width:log2": 10}, dists)


def test_the_exact_front_lists_each_design_once(workdir):
    from ador.explore.enumerate import enumerate_front
    study, _ = _idle_trees_study(workdir, "exact")
    front = enumerate_front(study)
    keys = [tuple(sorted((k, None if k in study.space.inert_knobs(p) else v) for k, v in p.items()))
            for p in front.params]
    assert len(keys) == len(set(keys)) == len(front.points)
    assert any(p["mactree.count"] == 0 for p in front.params)      # a design whose width is inert is on it


def test_enumerate_counts_designs_not_knob_vectors(workdir):
    """20 knob vectors name 12 designs; the valid and feasible counts of distinct designs are those of the
    design identity over the whole grid (brute force, one scorer call per vector); a derived switch
    leaves them uncounted, and says so."""
    import itertools
    from ador.explore.enumerate import enumerate_front
    from ador.explore.runner import Scorer
    study, _ = _idle_trees_study(workdir, "counts")
    front = enumerate_front(study, chunk=7)          # designs split over chunks
    names = list(study.space.knobs)
    scorer = Scorer(study)
    valid: set = set()
    feasible: set = set()
    keys: set = set()
    for combo in itertools.product(*(study.space.knobs[n].grid(n) for n in names)):
        values = dict(zip(names, combo))
        key = study.space.design_values(values)
        keys.add(key)
        out = scorer(values)
        if out.values is not None:
            valid.add(key)
            if out.user_attrs["feasible"]:
                feasible.add(key)
    assert (front.designs, front.distinct_designs) == (20, len(keys)) == (20, 12)
    assert (front.distinct_valid, front.distinct_feasible) == (len(valid), len(feasible))
    assert front.counts().startswith("12 distinct designs")
    derived = dataclasses.replace(study, space=build_space({"base": "ador-example", "knobs": {
        "systolic.count": {"type": "int", "low": 0, "high": 8, "step": 8},
        "mactree.width": {"type": "pow2", "low": 64, "high": 256}},
        "derived": {"mactree.count": "64 - systolic.count * 8"}}))
    uncounted = enumerate_front(derived)
    assert uncounted.distinct_designs is None and "distinct designs not counted" in uncounted.counts()


def test_the_default_spaces_idle_parts_make_exactly_their_own_fields_inert():
    space = HEADLINE.space
    values = {name: _draw_first(knob) for name, knob in space.knobs.items()}
    assert space.inert_knobs({**values, "systolic.count": 0, "mactree.count": 8, "mactree.buffer": "shared"}) == \
        {"systolic.rows", "systolic.cols", "systolic.dataflow", "systolic.local_sram_bytes"}
    assert space.inert_knobs({**values, "systolic.count": 4, "mactree.count": 0}) == \
        {"mactree.width", "mactree.local_buffer_bytes", "mactree.buffer", "mactree.shared_buffer_bytes"}
    assert space.inert_knobs({**values, "systolic.count": 4, "mactree.count": 8, "mactree.buffer": "private"}) == \
        {"mactree.shared_buffer_bytes"}


def _draw_first(knob):
    return knob.choices[0] if knob.type == "categorical" else knob.low


def test_a_derived_count_and_a_constraint_on_an_idle_knob_are_honoured():
    derived = build_space({"base": "ador-example", "knobs": {
        "systolic.count": {"type": "int", "low": 0, "high": 8, "step": 8},
        "mactree.width": {"type": "pow2", "low": 64, "high": 256}},
        "derived": {"mactree.count": "64 - systolic.count * 8"}})
    assert derived.inert_knobs({"systolic.count": 8, "mactree.width": 64}) == {"mactree.width"}    # 0 trees
    assert derived.inert_knobs({"systolic.count": 0, "mactree.width": 64}) == set()
    # a constraint reads the width: whether the design is valid hangs on it, so it is never inert
    judged = build_space({"base": "ador-example", "knobs": {
        "mactree.count": {"type": "int", "low": 0, "high": 8, "step": 8},
        "mactree.width": {"type": "pow2", "low": 64, "high": 1024}},
        "constraints": ["mactree.width <= 256"]})
    assert judged.inert_knobs({"mactree.count": 0, "mactree.width": 1024}) == set()


def test_the_plots_and_status_without_a_space_count_the_same_front(workdir):
    from ador.explore.results import status
    from ador.report.data import pareto_front_data
    study, durable = _idle_trees_study(workdir, "plots")
    run_trials(study, durable, 60, progress=False)
    n = status(durable, space=study.space)["n_pareto"]
    assert status(durable)["n_pareto"] == n                        # by the stored digests
    names = study.metric_names
    assert len(pareto_front_data(durable, names[0], names[1], study).pareto) == n
