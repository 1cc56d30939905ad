#!/usr/bin/env bash
# ThreadSanitizer run of the unit tests that exercise threads: the outbox's per-sink
# workers, the services' tickers and the service registry, the collector's HTTP server
# (its handler threads, the offline watch, the store's lock), the uplink and heartbeat
# workers, Guarded<T>. Builds only pf_unit_tests (and the libraries it links) with
# -fsanitize=thread into build-tsan (Debug at -O1, line tables only), then runs the gtest
# filter below (or the one given); warnings (gcc's -Wtsan) do not stop it. A data race or
# a lock-order inversion fails the run (halt_on_error), with both stacks in the output.
#
#   scripts/tsan.sh [GTEST_FILTER]      (CXX: the compiler, default g++; clang++ works too)
#
# Not in CI: its build alone is a second build of every library (see docs/testing.md,
# "ThreadSanitizer"). The BPF tier does not run under TSan: its tests load programs into
# the kernel and read maps the kernel's CPUs write, where TSan sees neither the other side
# nor its ordering, and the map memory mmap()ed from the kernel is outside what it tracks.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
filter=${1:-'Outbox*:CollectorServer*:CollectorSink*:ReportServices*:Uplink*:Heartbeat*:Guarded*:CustomerReport*:PushReports*:Http*:Metrics*'}
t0=$SECONDS
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="${CXX:-g++}" \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1 -fsanitize=thread -fno-omit-frame-pointer -Wno-error" \
    -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build build-tsan -j"$jobs" --target pf_unit_tests
echo "== tsan: build took $((SECONDS - t0)) s"
t1=$SECONDS
# second_deadlock_stack: both stacks of a lock-order inversion.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 ${TSAN_OPTIONS:-}" \
    build-tsan/tests/pf_unit_tests --gtest_filter="$filter"
echo "== tsan: tests took $((SECONDS - t1)) s; no data race reported"
