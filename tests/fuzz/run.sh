#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) straight
# from the few sources each needs, and runs each for a bounded time on a copy of its
# in-tree seed corpus (tests/fuzz/corpus/<target>/; new inputs go to a temporary
# directory, so the tree is left as it was). A crash, a leak, a timeout (> 30 s on one
# input: no input takes more than milliseconds, but CI runs this at idle priority beside
# other work) or an input that needs more than 2 GB fails the run; the input is kept in
# build-fuzz/ to reproduce with `build-fuzz/<target> FILE`.
#
# Up to PF_FUZZ_JOBS targets (default: the number of CPUs) are built and run at once; each
# still runs for the whole time, so the stage takes about SECONDS x ceil(targets / jobs).
# Each target's output goes to its own log, shown (the last 25 lines) when all have ended.
#
#   tests/fuzz/run.sh [SECONDS]       (default 60 s per target; PF_FUZZ_OUT: the output
#                                      directory, default build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
par=${PF_FUZZ_JOBS:-$(nproc)}
out=${PF_FUZZ_OUT:-build-fuzz}
corpora=$PWD/tests/fuzz/corpus
mkdir -p "$out"
cxx=${CXX_FUZZ:-clang++}
# shellcheck disable=SC2054 # the commas are in one option
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude)

# target -> the sources it needs besides itself, and the libraries (-l) it links besides
# zlib: what its parser needs and nothing else (the parsers are kept apart from the code
# that talks to the kernel, the network or the database for this).
declare -A sources=(
    [report_fuzz]="user/fleet/wire.cpp user/common/error.cpp"
    [nfacctd_csv_fuzz]="user/export/nfacctd_csv.cpp user/common/error.cpp"
    [customer_answer_fuzz]="user/push/customer_answer.cpp user/common/error.cpp"
    [export_state_fuzz]="user/export/export_state.cpp user/kernel/map_keys.cpp user/common/error.cpp"
    [sink_answer_fuzz]="user/push/sink_answer.cpp user/common/error.cpp"
    [config_fuzz]="user/app/config.cpp user/common/error.cpp user/common/redact.cpp user/common/secret_file.cpp
        user/accounting/accounting_config.cpp user/accounting/calendar.cpp user/export/export_config.cpp
        user/fleet/uplink_config.cpp user/push/push_config.cpp user/push/reports_config.cpp
        user/watch/host_watch_config.cpp user/kernel/map_keys.cpp user/kernel/xdp_mode.cpp user/daemon/listen_addr.cpp"
)
declare -A libs=(
    [export_state_fuzz]="-lspdlog -lfmt"
    [config_fuzz]="-lyaml-cpp -lfmt -ldate-tz"
)
mapfile -t targets < <(printf '%s\n' "${!sources[@]}" | sort)

work=$(mktemp -d)
bg=()
cleanup() {
    local pid
    for pid in "${bg[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Returns once fewer than $par of this script's background jobs are running.
throttle() {
    while (($(jobs -rp | wc -l) >= par)); do wait -n || true; done
}

build_one() { # TARGET
    local t=$1 rc=0
    # shellcheck disable=SC2086 # the source and library lists are split on purpose
    "$cxx" "${flags[@]}" -o "$out/$t" "tests/fuzz/$t.cpp" ${sources[$t]} ${libs[$t]:-} -lz >"$work/$t.build.log" 2>&1 || rc=$?
    echo "$rc" >"$work/$t.build.rc"
}

run_one() { # TARGET
    local t=$1 rc=0
    mkdir "$work/$t.corpus"
    (cd "$out" && exec ./"$t" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -max_len=262144 \
        -print_final_stats=1 "$work/$t.corpus" "$corpora/${t%_fuzz}") >"$work/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$work/$t.rc"
}

for t in "${targets[@]}"; do
    throttle
    echo "== fuzz: build $t"
    build_one "$t" &
    bg+=($!)
done
wait
bg=()
failed=0
for t in "${targets[@]}"; do
    if [[ $(cat "$work/$t.build.rc") != 0 ]]; then
        echo "== fuzz: building $t failed:"
        cat "$work/$t.build.log"
        failed=1
    fi
done
((failed == 0)) || exit 1

for t in "${targets[@]}"; do
    throttle
    echo "== fuzz: run $t for ${secs}s"
    run_one "$t" &
    bg+=($!)
done
wait
bg=()
for t in "${targets[@]}"; do
    rc=$(cat "$work/$t.rc")
    echo "== fuzz: $t (exit $rc)"
    if [[ $rc == 0 ]]; then
        tail -n 25 "$work/$t.log"
    else
        tail -n 100 "$work/$t.log"
        failed=1
    fi
done
((failed == 0)) || { echo "== fuzz: FINDINGS (inputs kept in $out/)"; exit 1; }
echo "== fuzz: no findings"
