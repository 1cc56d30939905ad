#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) straight
# from the few sources each needs, and runs each for a bounded time on a copy of its
# in-tree seed corpus (tests/fuzz/corpus/<target>/; new inputs go to a temporary
# directory, so the tree is left as it was). A crash, a leak, a timeout (> 10 s on one
# input) or an input that needs more than 2 GB fails the run; the input is kept in
# build-fuzz/ to reproduce with `build-fuzz/<target> FILE`.
#
#   tests/fuzz/run.sh [SECONDS]       (default 60 s per target)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p "$out"
cxx=${CXX_FUZZ:-clang++}
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude)

# target -> the sources it needs besides itself
declare -A sources=(
    [report_fuzz]="user/fleet/wire.cpp user/common/error.cpp"
)
for t in "${!sources[@]}"; do
    echo "== fuzz: build $t"
    # shellcheck disable=SC2086 # the source list is split on purpose
    "$cxx" "${flags[@]}" -o "$out/$t" "tests/fuzz/$t.cpp" ${sources[$t]} -lz
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    echo "== fuzz: run $t for ${secs}s"
    (cd "$out" && ./"$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
        -print_final_stats=1 "$work" "../tests/fuzz/corpus/${t%_fuzz}" 2>&1 | tail -n 25)
    rm -rf "$work"
    trap - EXIT
done
echo "== fuzz: no findings"
