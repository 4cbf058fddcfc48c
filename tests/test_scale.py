"""Exploration at scale (issue 16): repeated designs, resume points, worker seeds, fast reads, bugs."""
import dataclasses

import optuna
import pytest

from ador.explore.config import load_study


from ador.explore.space import build_space
from ador.explore.stored import Point
from ador.hardware.components import HBM_GENERATIONS


def _refused_sampler_option(workdir, capsys, option: str, value: str) -> None:
    """The smoke study with ``sampler.options.<option>: <value>`` is refused in one line naming both."""
    from ador.cli import main
    bad = workdir / "bad.yaml"
    bad.write_text((workdir / "studies" / "smoke.yaml").read_text().replace(
        "population_size: 20}", f"population_size: 20, {option}: {value}}}"))
    assert main(["study", "launch", str(bad), "--trials", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"sampler.options.{option}" in err and value in err


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


# --- studies ---------------------------------------------------------------------------------

def _smoke(workdir, name="scale", **options):
    from ador.explore.config import SamplerSpec
    from ador.explore.runner import open_study
    study = load_study("studies/smoke.yaml")
    sampler = SamplerSpec(study.spec.sampler.name, {**study.spec.sampler.options, **options})
    study = dataclasses.replace(study, name=name, spec=dataclasses.replace(study.spec, sampler=sampler))
    durable, url = open_study(study, f"sqlite:///{workdir}/{name}.db")
    return study, durable, url


def test_nsga2_crosses_numbers_with_vsbx_unless_told(workdir, capsys):
    """ador's NSGA-II crosses numerical parameters with VSBX (Optuna's default is uniform);
    ``crossover`` names another, and an unknown name is a one-line error naming it."""
    from optuna.samplers.nsgaii import UniformCrossover, VSBXCrossover

    from ador.explore.samplers import build_sampler
    study = load_study("studies/smoke.yaml")
    assert isinstance(build_sampler("nsga2", {}, study.space, 1)._child_generation_strategy._crossover,
                      VSBXCrossover)
    told = build_sampler("nsga2", {"crossover": "uniform"}, study.space, 1)
    assert isinstance(told._child_generation_strategy._crossover, UniformCrossover)
    assert isinstance(build_sampler("nsga3", {}, study.space, 1)._child_generation_strategy._crossover,
                      UniformCrossover)                      # NSGA-III keeps Optuna's default
    _refused_sampler_option(workdir, capsys, "crossover", "halfway")


def test_a_study_keeps_the_operators_it_was_created_with(workdir, monkeypatch):
    """A new NSGA-II study stores the crossover and mutation ador defaulted to, so that a resume after a
    change of ador's defaults breeds with the same operators (a study file that names them keeps its
    own)."""
    from ador.cli import main
    from ador.explore import runner, samplers
    from ador.explore.record import settings
    url = f"sqlite:///{workdir}/s.db"
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "20", "--quiet", "--storage", url]) == 0
    stored = settings(optuna.load_study(study_name="smoke", storage=url))["ador_sampler"]["options"]
    assert stored == {"population_size": 20, "crossover": "vsbx", "mutation": "polynomial"}
    # ador's defaults change; the study resumes with what it was made with
    monkeypatch.setitem(samplers._BUILDERS, "nsga2", samplers._genetic(samplers.FlatNSGAIISampler, "uniform",
                                                                        "uniform"))
    built = []
    real = runner.build_sampler
    monkeypatch.setattr(runner, "build_sampler", lambda name, options, *a: built.append(dict(options))
                        or real(name, options, *a))
    assert main(["study", "resume", "smoke", "--trials", "5", "--quiet", "--storage", url]) == 0
    assert built and built[-1]["crossover"] == "vsbx" and built[-1]["mutation"] == "polynomial"


def test_a_tpe_study_keeps_the_model_of_knobs_it_was_created_with(workdir, monkeypatch):
    """A new TPE study stores whether ador's TPE modelled the knobs jointly (multivariate) and the
    caps of its estimators, so a resume after ador's defaults change samples as the study began."""
    from ador.cli import main
    from ador.explore import runner, samplers
    from ador.explore.record import settings
    url = f"sqlite:///{workdir}/t.db"
    assert main(["study", "launch", "studies/smoke.yaml", "--sampler", "tpe", "--trials", "20", "--quiet",
                 "--storage", url]) == 0
    stored = settings(optuna.load_study(study_name="smoke", storage=url))["ador_sampler"]["options"]
    assert stored == {"multivariate": True, "below_limit": 50, "above_window": 450}
    monkeypatch.setattr(samplers, "TPE_MULTIVARIATE", False)          # ador's defaults change
    monkeypatch.setattr(samplers, "TPE_BELOW_LIMIT", 7)
    built = []
    real = runner.build_sampler
    monkeypatch.setattr(runner, "build_sampler", lambda name, options, *a: built.append(real(name, options, *a))
                        or built[-1])
    assert main(["study", "resume", "smoke", "--trials", "5", "--quiet", "--storage", url]) == 0
    assert built and all(s._multivariate is True and s._below_limit == 50 for s in built)


def test_nsga2_mutates_numbers_polynomially_unless_told(workdir, capsys):
    """ador's NSGA-II mutates numerical parameters with Deb's polynomial mutation (distribution index
    20, the NSGA-II paper's), where Optuna redraws a mutated parameter uniformly; ``mutation:
    uniform`` restores Optuna's, and an unknown name is a one-line error naming it."""
    from optuna.samplers.nsgaii import PolynomialMutation

    from ador.explore.samplers import POLYNOMIAL_ETA, build_sampler
    study = load_study("studies/smoke.yaml")
    mutation = build_sampler("nsga2", {}, study.space, 1)._child_generation_strategy._mutation
    assert isinstance(mutation, PolynomialMutation) and mutation._eta == POLYNOMIAL_ETA == 20
    assert build_sampler("nsga2", {"mutation": "uniform"}, study.space, 1)._child_generation_strategy._mutation is None
    assert build_sampler("nsga3", {}, study.space, 1)._child_generation_strategy._mutation is None  # Optuna's
    # the probability stays Optuna's: 1 / the number of parameters unless the study sets mutation_prob
    assert build_sampler("nsga2", {}, study.space, 1)._child_generation_strategy._mutation_prob is None
    _refused_sampler_option(workdir, capsys, "mutation", "gaussian")


@pytest.mark.parametrize("seed", [1, 2])
def test_nsga2_breeds_new_designs_instead_of_repeats_across_a_resume(workdir, seed):
    """With duplicate elimination (the default) NSGA-II's children are designs the study has not met,
    stored before a resume included, though polynomial mutation alone could not leave the converged
    population's neighbourhood (flat_ga.LOCAL_TRIES); Optuna's own NSGA-II repeats designs on the same space."""
    from ador.explore.runner import run_trials

    def distinct(durable):
        return len({tuple(sorted(t.params.items())) for t in durable.get_trials()})
    study, durable, _ = _smoke(workdir, name=f"dedup{seed}")
    study = dataclasses.replace(study, spec=dataclasses.replace(study.spec, seed=seed))
    first = run_trials(study, durable, 150, progress=False)
    second = run_trials(study, durable, 150, progress=False)          # a resume: the sampler is new
    plain, plain_durable, _ = _smoke(workdir, name=f"plain{seed}", eliminate_duplicates=False, crossover="uniform",
                                    mutation="uniform")
    baseline = run_trials(plain, plain_durable, 300, progress=False)
    assert baseline.repeats > 30 and 300 - distinct(plain_durable) == baseline.repeats
    assert first.repeats + second.repeats <= 3 and distinct(durable) >= 297


@pytest.mark.slow
def test_a_repeated_design_is_answered_from_its_stored_trial(workdir, monkeypatch):
    """NSGA-II on the 1,728-design smoke space samples designs again; each is scored once, and a
    repeat is stored as a trial (samplers see it) with its first trial's answer and number."""
    from ador.explore import scoring
    from ador.explore.history import REPEAT_ATTR
    from ador.explore.runner import run_trials
    from ador.explore import batch
    scored, inside = [], []
    real, real_batch = scoring.Scorer.__call__, batch.BatchScorer.__call__

    def batch_call(self, rows):                  # a batch scored at once (its fallbacks are not counted twice)
        scored.extend(rows)
        inside.append(1)
        try:
            return real_batch(self, rows)
        finally:
            inside.pop()
    monkeypatch.setattr(batch.BatchScorer, "__call__", batch_call)
    monkeypatch.setattr(scoring.Scorer, "__call__",
                        lambda self, values: (None if inside else scored.append(values)) or real(self, values))
    # Optuna's NSGA-II, which repeats
    study, durable, _ = _smoke(workdir, eliminate_duplicates=False, crossover="uniform", mutation="uniform")
    first = run_trials(study, durable, 300, progress=False)
    second = run_trials(study, durable, 100, progress=False)         # a resume: replayed trials count too
    trials = durable.get_trials()
    assert len(trials) == 400 and first.repeats + second.repeats > 50
    designs = {tuple(sorted(t.params.items())) for t in trials}
    assert len(scored) == len(designs) < 400                          # every design scored exactly once
    by_number = {t.number: t for t in trials}
    repeats = [t for t in trials if t.user_attrs.get(REPEAT_ATTR) is not None]
    assert len(repeats) == 400 - len(designs)
    for t in repeats:
        source = by_number[t.user_attrs[REPEAT_ATTR]]
        assert source.number < t.number and source.params == t.params and source.state == t.state
        assert source.values == t.values and source.constraints == t.constraints
    from ador.explore.results import status, study_front
    from ador.report.data import picks
    front = study_front(durable, study.directions)
    assert status(durable)["n_pareto"] == len(front) == len({tuple(sorted(t.params.items())) for t in front})
    assert all(t in front for t in picks(study, trials).values())


def test_a_resume_reads_the_last_generations_and_samples_as_a_full_replay(workdir):
    """After 600 trials (30 generations of 20), a resumed NSGA-II reads a few generations (from
    the stored resume point), and proposes exactly what a sampler given every trial proposes."""
    from ador.explore.flat_ga import FlatNSGAIISampler
    from ador.explore.history import History
    from ador.explore.params import distributions
    from ador.explore.runner import run_trials
    from ador.explore.stored import StoredTrials
    study, durable, _ = _smoke(workdir)
    run_trials(study, durable, 600, progress=False)
    dists = distributions(study.space)

    def proposals(mem):
        out = []
        for _ in range(45):                        # past the next generation boundary
            t = mem.ask(dists)
            out.append(t.params)
            mem.tell(t, [sum(float(v) for v in t.params.values() if not isinstance(v, str)), len(out)])
        return out
    full = optuna.create_study(directions=study.directions, sampler=FlatNSGAIISampler(seed=5, population_size=20))
    full.add_trials(StoredTrials(durable._storage, durable._study_id).load(user_attrs=False))
    window = optuna.create_study(directions=study.directions, sampler=FlatNSGAIISampler(seed=5, population_size=20))
    history = History(durable, window)
    assert history.start() == 600
    assert history.replayed <= 4 * 20
    full.sampler.is_known = history.designs.__contains__      # both breed away from the stored designs
    assert proposals(window) == proposals(full)


def test_workers_started_alone_draw_distinct_recorded_seeds(workdir):
    from ador.explore.record import settings
    from ador.explore.workers import WORKER_KEY, standalone_seed, worker_seed
    study, durable, _ = _smoke(workdir)
    seeds = {standalone_seed(durable, study, None) for _ in range(5)}
    assert len(seeds) == 5 and 1 not in seeds                     # never the study's own seed (1)
    assert standalone_seed(durable, study, 42) == 42
    stored = [v["seed"] for k, v in durable._storage.get_study_system_attrs(durable._study_id).items()
              if k.startswith(WORKER_KEY)]
    assert sorted(stored) == sorted([*seeds, 42])
    assert len({worker_seed(settings(durable)["ador_sampler"]["seed"], i) for i in range(8)}) == 8


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_pulls_read_only_new_trials_and_late_finishers(workdir, kind):
    """A worker's pull returns trials stored since its last pull, including a trial another
    client created before and finished after that pull (a database's query and a journal's read
    alike)."""
    from ador.explore.runner import open_study
    from ador.explore.storage import open_storage
    from ador.explore.stored import StoredTrials
    study, durable, url = _smoke(workdir)
    if kind == "journal":
        url = f"journal:{workdir}/scale.log"
        durable, _ = open_study(study, url)
    other = optuna.load_study(study_name=study.name, storage=open_storage(url))
    reader = StoredTrials(durable._storage, durable._study_id)
    reader.skip_to_now()
    a = other.ask()
    a.suggest_int("x", 0, 3)
    b = other.ask()
    b.suggest_int("x", 0, 3)
    other.tell(b, [1.0, 2.0])
    assert [t.number for t in reader.new_finished()] == [b.number]
    assert reader.new_finished() == []
    other.tell(a, [3.0, 4.0])
    assert [t.number for t in reader.new_finished()] == [a.number]


def test_reading_commands_never_load_every_trial(workdir, monkeypatch, capsys):
    """status, best and export of one trial go through targeted queries: Optuna's
    get_all_trials is never called, and the answers equal those computed from every trial."""
    from ador.cli import main
    from ador.explore.pareto import front_trials
    from ador.explore.runner import run_trials
    study, durable, _ = _smoke(workdir)
    run_trials(study, durable, 120, progress=False)
    trials = durable.get_trials()
    expected = {t.number for t in front_trials(trials, study.directions)}

    def forbidden(*args, **kwargs):
        raise AssertionError("get_all_trials called")
    monkeypatch.setattr(optuna.storages.RDBStorage, "get_all_trials", forbidden)
    monkeypatch.setattr(optuna.storages._CachedStorage, "get_all_trials", forbidden)
    def args(command, *extra):
        return ["study", command, "scale", *extra, "--storage", f"sqlite:///{workdir}/scale.db"]
    assert main(args("status", "--json")) == 0
    import json
    st = json.loads(capsys.readouterr().out)
    assert (st["n_trials"], st["n_pareto"]) == (120, len(expected))
    assert st["n_feasible"] == sum(1 for t in trials if t.state.name == "COMPLETE" and
                                   all(v <= 0 for v in t.constraints.values()))
    assert main(args("best", "--json")) == 0
    assert {r["trial"] for r in json.loads(capsys.readouterr().out)["pareto"]} == expected
    assert main(args("export", "7", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "scale-trial-7"
