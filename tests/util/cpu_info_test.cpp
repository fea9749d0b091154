// cpu_info (src/util/cpu_info.h): the model name is /proc/cpuinfo's, the instruction sets are
// named as promised, and the CPU supports at least what this binary was compiled for (it runs).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>

#include "util/cpu_info.h"

namespace engram {
namespace {

int rank(const char* isa) {
  for (int i = 0; const char* name : {"scalar", "SSE2", "AVX2", "AVX-512"}) {
    if (std::strcmp(isa, name) == 0) return i;
    i++;
  }
  return -1;
}

TEST(CpuInfo, ModelNameIsProcCpuinfos) {
  std::ifstream in("/proc/cpuinfo");
  std::string line, want = "unknown CPU";
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      want = line.substr(line.find_first_not_of(" \t", line.find(':') + 1));
      break;
    }
  }
  EXPECT_EQ(cpu_model(), want);
}

TEST(CpuInfo, TheCpuRunsWhatTheBinaryWasCompiledFor) {
  ASSERT_GE(rank(compiled_isa()), 0) << compiled_isa();
  ASSERT_GE(rank(cpu_isa()), 0) << cpu_isa();
  EXPECT_GE(rank(cpu_isa()), rank(compiled_isa()));
#if defined(__x86_64__)
  EXPECT_GE(rank(compiled_isa()), rank("SSE2"));  // x86-64's baseline
#endif
  const std::string line = cpu_info_line();
  EXPECT_NE(line.find(cpu_model()), std::string::npos) << line;
  EXPECT_NE(line.find(std::string("compiled for ") + compiled_isa()), std::string::npos) << line;
  EXPECT_NE(line.find(std::string("cpu supports ") + cpu_isa()), std::string::npos) << line;
}

}  // namespace
}  // namespace engram
