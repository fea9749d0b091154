"""The CPU a Python benchmark ran on, for its first line (the C++ benches print the same through
src/util/cpu_info.h): a figure compares only with one taken on the same CPU model and instruction
set, and machines of one kind differ from session to session (Zen 3 with AVX2, Zen 4 with AVX-512).

The engram module is built with -march=native by default (ENGRAM_NATIVE), so on the machine that
built it the instruction set it was compiled for is the one the CPU supports.
"""


def cpu_info(path="/proc/cpuinfo"):
    """(model name, widest of AVX-512 / AVX2 / SSE2 that the CPU flags list) of the first CPU."""
    model, flags = "unknown CPU", set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        isa = "AVX-512"
    elif {"avx2", "fma"} <= flags:
        isa = "AVX2"
    elif "sse2" in flags:
        isa = "SSE2"
    else:
        isa = "unknown"
    return model, isa


def cpu_info_line():
    model, isa = cpu_info()
    return f"cpu: {model}; isa: cpu supports {isa}"
