// The CPU a benchmark ran on, for the first line of its output: a figure is only comparable with
// another taken on the same CPU model and instruction set (machines of one kind differ from
// session to session: Zen 3 with AVX2 only, Zen 4 with AVX-512).
#pragma once

#include <string>

namespace engram {

// "model name" of /proc/cpuinfo's first processor; "unknown CPU" where there is none.
std::string cpu_model();
// The widest of AVX-512 (F, BW, VL), AVX2 (+FMA), SSE2 this binary was compiled for (the
// compiler's -march macros): the kernels it can run.
const char* compiled_isa();
// The widest of the same the CPU supports (__builtin_cpu_supports).
const char* cpu_isa();
// "cpu: <model>; isa: compiled for <compiled_isa>, cpu supports <cpu_isa>"
std::string cpu_info_line();

}  // namespace engram
