"""The package of a device: interposer area (dies plus HBM stacks) and the shoreline its PHYs need.

Area efficiency per die area flatters designs that buy bandwidth with HBM stacks, which cost
interposer area, packaging and memory beside the die. ``package_area_mm2`` counts them, by one rule
for GPUs and designs alike:

    package_area_mm2 = (die area + HBM sites x stack footprint) x (1 + INTERPOSER_KEEP_OUT)

The shoreline check asks whether the PHYs fit along the die's edges: every HBM PHY on the two long
edges (as on every HBM GPU: the stacks sit beside them), link and host PHYs on what is left of the
perimeter. Dies are taken with the reticle's 26 x 33 mm aspect ratio. Several dies sit in a row,
meeting at their short edges: those edges carry the die-to-die PHYs and nothing else. The same
rule must pass for the GPUs whose dies are known (GA100, GH100, AD102): tests check it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ador.cost import technology as tech
from ador.cost.area import Floorplan, d2d_phy_mm2
from ador.ops import SCALAR

# HBM stack footprint on the interposer (mm x mm). HBM2/HBM2E: the JEDEC JESD235 known-good-stack-die
# outline, 7.75 x 11.87 mm (Samsung Aquabolt and SK hynix HBM2 datasheets); HBM2E kept the HBM2
# interface and outline. HBM3E: 11 x 11 mm (Micron HBM3E product brief); HBM3 taken equal to HBM3E
# (assumption: SK hynix's HBM3 KGSD is of the same class).
HBM_STACK_MM = {"hbm2": (7.75, 11.87), "hbm2e": (7.75, 11.87), "hbm3": (11.0, 11.0), "hbm3e": (11.0, 11.0)}

# Interposer area beyond the silicon it carries (routing channels, keep-outs, seal ring), from the one
# interposer whose contents are published: TSMC/Broadcom's 2x-reticle CoWoS-S interposer of 1,700 mm2
# carrying a reticle-sized die (858 mm2) and six HBM2 stacks (AnandTech, 2020-03-05).
INTERPOSER_KEEP_OUT = 1700.0 / (tech.RETICLE_LIMIT_MM2 + 6 * 7.75 * 11.87) - 1.0

# Depth of a PHY macro from the die edge inward (mm): the PHY areas of technology.py over this depth
# give the edge length each PHY needs. Assumption: 1.5 mm, which puts a 1024-bit HBM2E PHY (10.45 mm2,
# LLMCompass from A100/MI210 die photos) at 7 mm of edge, so three stacks per 33 mm edge as on GA100 and
# GH100; no published PHY outline was found.
PHY_DEPTH_MM = 1.5
RETICLE_ASPECT = 33.0 / 26.0   # long / short edge of the 26 x 33 mm exposure field


@dataclass(frozen=True, slots=True)
class Package:
    """Fields may hold one value per design (a population assessed at once)."""
    die_area_mm2: float
    memory_sites: int                 # HBM stacks on the interposer (GPUs: dummy sites included)
    stack_area_mm2: float             # each
    package_area_mm2: float
    hbm_shoreline_mm: float           # PHY edge the HBM stacks need ...
    hbm_edge_mm: float                # ... and the two long edges that can host them
    io_shoreline_mm: float            # link and host PHYs ...
    io_edge_mm: float                 # ... and the perimeter left for them
    checked: bool = True              # False: no floorplan, the shoreline is not checked
    d2d_shoreline_mm: float = 0.0     # die-to-die PHYs (several dies) ...
    d2d_edge_mm: float = 0.0          # ... and the short edges where the dies meet

    @property
    def shoreline_fits(self) -> bool:
        return bool(self.shoreline_utilisation <= 1.0) and bool(self.hbm_shoreline_mm <= self.hbm_edge_mm)

    @property
    def shoreline_utilisation(self) -> float:
        """Needed over available edge, the tighter of the HBM edges and the whole perimeter (<= 1 fits)."""
        return shoreline_utilisation(self) if self.checked else 0.0

    def shoreline_reason(self) -> str | None:
        if self.shoreline_fits:
            return None
        if self.hbm_shoreline_mm > self.hbm_edge_mm:
            return (f"{self.memory_sites} HBM PHYs need {self.hbm_shoreline_mm:.0f} mm of die edge; the "
                    f"{self.die_area_mm2:.0f} mm2 of dies' long edges offer {self.hbm_edge_mm:.0f} mm")
        if self.d2d_shoreline_mm > self.d2d_edge_mm:
            return (f"die-to-die PHYs need {self.d2d_shoreline_mm:.0f} mm of die edge; the edges where the "
                    f"dies meet offer {self.d2d_edge_mm:.0f} mm")
        return (f"link and host PHYs need {self.io_shoreline_mm:.0f} mm of die edge; "
                f"{self.io_edge_mm:.0f} mm is left beside the HBM PHYs")


def shoreline_utilisation(pkg: Package, X=SCALAR):
    perimeter = pkg.hbm_edge_mm + pkg.io_edge_mm
    d2d = pkg.d2d_shoreline_mm / X.maximum(pkg.d2d_edge_mm, 1e-9)      # 0 / tiny = 0 for one die
    return X.maximum(X.maximum(pkg.hbm_shoreline_mm / pkg.hbm_edge_mm,
                               (pkg.hbm_shoreline_mm + pkg.io_shoreline_mm) / perimeter), d2d)


def die_edges_mm(die_area_mm2, X=SCALAR) -> tuple[float, float]:
    """(long, short) edge of a die of the reticle's aspect ratio."""
    long_edge = (die_area_mm2 * RETICLE_ASPECT) ** 0.5
    return long_edge, die_area_mm2 / long_edge


def stack_area_mm2(memory_kind, X=SCALAR):
    areas = {k: w * h for k, (w, h) in HBM_STACK_MM.items()} | {"gddr6": 0.0}
    return X.lookup(areas, memory_kind)


def package_of(*, die_area_mm2, dies: int, memory_kind, memory_sites, floorplan: Floorplan | None,
               io_phy_mm2, X=SCALAR) -> Package:
    """The package of ``dies`` dies of ``die_area_mm2`` in all, with ``memory_sites`` HBM stacks (0 for
    GDDR parts: their memory sits on the board). ``io_phy_mm2``: link and host PHY area."""
    stack = stack_area_mm2(memory_kind, X)
    sites = X.where(stack > 0, memory_sites, 0)
    area = X.where(sites > 0, (die_area_mm2 + sites * stack) * (1.0 + INTERPOSER_KEEP_OUT), die_area_mm2)
    if floorplan is None:
        return Package(die_area_mm2, sites, stack, area, 0.0, 0.0, 0.0, 0.0, checked=False)
    long_edge, short_edge = die_edges_mm(die_area_mm2 / dies, X)
    hbm_edge = 2 * long_edge * dies
    hbm_needed = sites * tech.HBM_PHY_MM2_PER_STACK / PHY_DEPTH_MM
    io_needed = io_phy_mm2 / PHY_DEPTH_MM
    facing = 2 * (dies - 1) * short_edge                  # each place two dies of the row meet
    io_edge = 2 * (long_edge + short_edge) * dies - facing - X.minimum(hbm_needed, hbm_edge)
    d2d_needed = dies * d2d_phy_mm2(floorplan) / PHY_DEPTH_MM
    return Package(die_area_mm2, sites, stack, area, hbm_needed, hbm_edge, io_needed, io_edge,
                   d2d_shoreline_mm=d2d_needed, d2d_edge_mm=facing)
