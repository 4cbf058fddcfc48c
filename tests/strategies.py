"""Hypothesis strategies for valid ADOR designs and workloads."""
from hypothesis import strategies as st

from ador.hardware import AdorChip, GlobalSram, Hbm, Links, MacTrees, Noc, SystolicArrays, VectorUnit

KiB, MiB = 1024, 1024 ** 2


@st.composite
def ador_chips(draw, links: bool = True) -> AdorChip:
    dies = draw(st.sampled_from([1, 1, 2, 4]))          # identical dies share engines and stacks evenly
    systolic = dies * draw(st.integers(0, 16 // dies))
    mactree = dies * draw(st.integers(0 if systolic else 1, 256 // dies))
    return AdorChip(
        name="random",
        systolic=SystolicArrays(count=systolic, rows=draw(st.sampled_from([8, 32, 64, 128, 256])),
                                cols=draw(st.sampled_from([8, 32, 64, 128, 256])),
                                dataflow=draw(st.sampled_from(["weight_stationary", "output_stationary"])),
                                local_sram_bytes=draw(st.sampled_from([16 * KiB, 256 * KiB, 4 * MiB]))),
        mactree=MacTrees(count=mactree, width=draw(st.sampled_from([16, 64, 256, 1024])),
                         local_buffer_bytes=draw(st.sampled_from([4 * KiB, 64 * KiB, 1 * MiB])),
                         buffer=draw(st.sampled_from(["shared", "private"])),
                         shared_buffer_bytes=draw(st.sampled_from([256 * KiB, 4 * MiB, 32 * MiB]))),
        vector=VectorUnit(lanes=draw(st.sampled_from([64, 512, 4096])),
                          sfu_per_cycle=draw(st.sampled_from([8, 64, 512]))),
        sram=GlobalSram(capacity_bytes=draw(st.sampled_from([0, 1 * MiB, 32 * MiB, 512 * MiB])),
                        bw_bytes_per_s=draw(st.floats(1e11, 5e13))),
        hbm=Hbm(stacks=dies * draw(st.integers(1, 12 // dies)),
                generation=draw(st.sampled_from(["hbm2e", "hbm3", "hbm3e"]))),
        noc=Noc(bw_bytes_per_s=draw(st.floats(1e11, 5e13))),
        links=_links(draw, links),
        freq_hz=draw(st.floats(2e8, 3e9)),
        node_nm=draw(st.sampled_from([7, 5, 3])),
        matrix_efficiency=draw(st.sampled_from([1.0, 0.8, 0.5])),
        dies=dies, die_to_die_bw_bytes_per_s=draw(st.floats(1e11, 1e13)),
    )


def _links(draw, present: bool) -> Links:
    topology = draw(st.sampled_from(["ring", "switch", "fully_connected", "reducing_switch"]))
    # a fully connected system of up to 8 devices needs a link to each of 7 peers
    low = 0 if not present else (7 if topology == "fully_connected" else 1)
    return Links(count=draw(st.integers(low, 18)), bw_bytes_per_s_per_link=draw(st.floats(1e9, 2e11)),
                 latency_s=draw(st.floats(0, 1e-5)), topology=topology)
