#!/usr/bin/env bash
# The whole suite: format check, build, unit + bpf + integration tiers, fuzzing (each
# libFuzzer target for a bounded time), packages (deb, rpm, install test in a clean
# Debian 12 root), then the unit and
# bpf tiers again under AddressSanitizer + UndefinedBehaviorSanitizer. Run as root (the bpf
# and integration tiers load programs and make network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== clang-format"
git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

echo "== build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"

echo "== tests: unit, bpf, integration"
# The agent pins its maps in the bpffs; a machine booted without systemd may not have it.
if [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) != bpf_fs ]]; then
  mount -t bpf bpf /sys/fs/bpf
fi
ctest --test-dir build --output-on-failure -L 'unit|bpf|integration'

echo "== fuzzing: the collector's report parser and gzip (libFuzzer, 60 s per target)"
tests/fuzz/run.sh 60

echo "== packages: .deb and .rpm, their contents, init scripts, completion, install test"
(cd build && cpack -G "DEB;RPM")
deb=$(ls build/peakflow-bpf_*.deb)
rpm=$(ls build/peakflow-bpf-*.rpm)
tests/packaging/check_packages.sh "$deb" "$rpm"
tests/packaging/test_unit.sh build/user/peakflow-bpf
tests/packaging/test_completion.sh
tests/packaging/test_initscripts.sh
tests/packaging/test_install.sh "$deb"

echo "== tests under ASan + UBSan: unit, bpf"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPEAKFLOW_SANITIZE=ON
cmake --build build-asan -j"$jobs" --target pf_unit_tests pf_bpf_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -L 'unit|bpf'

echo "== all tests passed"
