# Sourced by the build scripts: sets CMAKE_LAUNCHER to the CMake arguments that put ccache in
# front of the compilers when it is installed (repeated CI runs on one machine then rebuild only
# what changed), and to nothing when it is not: the build never depends on it.
CMAKE_LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  CMAKE_LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
