"""Figures for docs/reliability.md. With ADOR_FIGURES=PATH, tests append what they survived (one
JSON line each) and the fuzz tests their example counts; `python -m tests.figures PATH` sums them up."""
import collections
import json
import os
import sys

_EXAMPLES: collections.Counter = collections.Counter()


def record(test: str, **values) -> None:
    path = os.environ.get("ADOR_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": test, **values}) + "\n")


def count_example(loader: str, kind: str) -> None:
    _EXAMPLES[(loader, kind)] += 1


def write_example_counts() -> None:
    for (loader, kind), n in sorted(_EXAMPLES.items()):
        record("fuzz", loader=loader, kind=kind, examples=n)


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    by = collections.defaultdict(list)
    for r in rows:
        by[r.pop("test")].append(r)
    sums = collections.defaultdict(lambda: collections.Counter())
    for r in by["kill"]:
        sums[r["storage"]].update(runs=1, kills=r["kills"], committed=r["committed"], resumed=r["resumed"])
    print("| storage | runs | SIGKILLs | trials committed by the killed processes | lost | duplicated |")
    print("| --- | --- | --- | --- | --- | --- |")
    for storage, c in sorted(sums.items()):
        print(f"| {storage} | {c['runs']} | {c['kills']} | {c['committed']} | 0 | 0 |")
    for name in ("mutant caught", "full disk", "torn record", "outage survived", "sustained outage",
                 "dropped connections", "creation cut", "creation kills", "workers stopped"):
        for r in by.get(name, []):
            print(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in r.items()))
    fuzz = collections.Counter()
    kinds = collections.defaultdict(set)
    for r in by.get("fuzz", []):
        fuzz[r["loader"]] += r["examples"]
        kinds[r["loader"]].add(r["kind"])
    print("\n| loader | examples | kinds |")
    print("| --- | --- | --- |")
    for loader, n in sorted(fuzz.items()):
        print(f"| {loader} | {n} | {'; '.join(sorted(kinds[loader]))} |")
    print(f"| all | {sum(fuzz.values())} | |")


if __name__ == "__main__":
    main(sys.argv[1])
