#!/bin/sh
# Build the libFuzzer harnesses with clang (-DSATCHEL_FUZZ=ON) into
# build-fuzz/ and run each for $SATCHEL_FUZZ_SECONDS seconds (default 60),
# one after the other, then print executions per second for each.
#
#   tests/fuzz/run.sh                              every harness, 60 s each
#   SATCHEL_FUZZ_SECONDS=3600 tests/fuzz/run.sh    the long run (6 hours)
#   tests/fuzz/run.sh fuzz_mime fuzz_seqset        only these
#
# Environment: SATCHEL_FUZZ_BUILD_DIR (default <repo>/build-fuzz),
# SATCHEL_FUZZ_JOBS (parallel fuzzing processes per harness, default 1),
# SATCHEL_FUZZ_ARGS (extra libFuzzer flags).
#
# libFuzzer picks a random seed for each run; the summary line prints it
# (seed=N).  To rerun a harness the way a failed run (CI's, say) did, check
# out the same commit, start from the same corpus (CI's fresh clone has no
# build-fuzz/work/<harness>, so move yours aside) and pass that seed:
#   mv build-fuzz/work/fuzz_client_session /tmp/fuzz_client_session.work
#   SATCHEL_FUZZ_ARGS=-seed=N SATCHEL_FUZZ_SECONDS=30 \
#       tests/fuzz/run.sh fuzz_client_session
# The seed fixes libFuzzer's mutations, but not everything else (the order
# of equal-sized seed files, state a harness keeps between inputs), so two
# runs with one seed drift apart after a few thousand inputs and a rerun may
# miss the crash.  The exact replay is the reproducer: on a crash this
# script also prints it in base64 (up to 64 KB), so a CI log is enough:
#   base64 -d > crash.bin    (paste the line)
#   build/tests/fuzz/fuzz_replay_<harness> crash.bin
# (With SATCHEL_FUZZ_JOBS > 1 each forked job draws its own seed.)
#
# New interesting inputs go to build-fuzz/work/<harness>/ (the committed
# seeds in tests/fuzz/corpus/<harness>/ are read, never written).  A crash
# stops that harness, leaves the reproducer as build-fuzz/crashes/<harness>-
# crash-<sha1> and makes this script exit 1; replay it with
#   build-fuzz/.../<harness> build-fuzz/crashes/<file>
# or, without the fuzzer runtime, build/tests/fuzz/fuzz_replay_<harness>.
# Once fixed, copy it to tests/fuzz/corpus/<harness>/crash-<what> so the
# fuzz_replay_<harness> ctest keeps it fixed.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${SATCHEL_FUZZ_BUILD_DIR:-$root/build-fuzz}
secs=${SATCHEL_FUZZ_SECONDS:-60}
jobs=${SATCHEL_FUZZ_JOBS:-1}
extra=${SATCHEL_FUZZ_ARGS:-}
all="fuzz_imap_parser fuzz_bodystructure fuzz_seqset fuzz_mime fuzz_store_record fuzz_client_session fuzz_fetch_map"
harnesses=${*:-$all}

command -v clang >/dev/null || { echo "run.sh: clang not found" >&2; exit 2; }

# The harnesses build from tests/CMakeLists.txt once it has
# add_subdirectory(fuzz); until then, from a small wrapper project.
src=$root
if ! grep -qs 'add_subdirectory(fuzz)' "$root/tests/CMakeLists.txt"; then
    src=$dir/_wrap
    mkdir -p "$src"
    cat > "$src/CMakeLists.txt.new" <<EOF
cmake_minimum_required(VERSION 3.16)
project(satchel_fuzz_wrap C)
set(CMAKE_C_STANDARD 11)
set(CMAKE_C_STANDARD_REQUIRED ON)
set(CMAKE_C_EXTENSIONS OFF)
enable_testing()
add_subdirectory($root satchel)
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
                    -Wmissing-prototypes)
add_subdirectory($root/tests/fuzz fuzz)
EOF
    if ! cmp -s "$src/CMakeLists.txt.new" "$src/CMakeLists.txt"; then
        mv "$src/CMakeLists.txt.new" "$src/CMakeLists.txt"
    else
        rm -f "$src/CMakeLists.txt.new"
    fi
fi

echo "run.sh: building the fuzzers in $dir"
mkdir -p "$dir"
# A cache made from the other source tree (wrapper vs. repository) is stale.
if [ -f "$dir/CMakeCache.txt" ] &&
    ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$dir/CMakeCache.txt"; then
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
fi
CC=clang cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSATCHEL_FUZZ=ON >"$dir/cmake.log" 2>&1 ||
    { cat "$dir/cmake.log"; exit 2; }
targets=""
for h in $harnesses; do targets="$targets --target $h"; done
# shellcheck disable=SC2086
cmake --build "$dir" -j"$(nproc)" $targets >"$dir/build.log" 2>&1 ||
    { tail -40 "$dir/build.log"; exit 2; }

mkdir -p "$dir/work" "$dir/crashes" "$dir/logs"
status=0
summary=""
for h in $harnesses; do
    bin=$(find "$dir" -type f -name "$h" -perm -u+x | head -n 1)
    if [ -z "$bin" ]; then
        echo "run.sh: $h was not built" >&2
        status=1
        continue
    fi
    dict=""
    case $h in
    fuzz_imap_parser | fuzz_bodystructure | fuzz_client_session)
        dict="-dict=$root/tests/fuzz/imap.dict" ;;
    esac
    mkdir -p "$dir/work/$h"
    log=$dir/logs/$h.log
    echo "run.sh: $h for ${secs}s (log: $log)"
    par=""
    if [ "$jobs" -gt 1 ]; then
        par="-fork=$jobs"
    fi
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$dir/crashes/$h-" \
        $par $dict $extra "$dir/work/$h" "$root/tests/fuzz/corpus/$h" \
        >"$log" 2>&1
    rc=$?
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n 1)
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -n 1)
    if [ -z "$rate" ]; then
        # -fork mode prints no final stats: take the last status line.
        rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
        execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
    fi
    corpus=$(find "$dir/work/$h" -type f | wc -l)
    seed=$(awk '/^INFO: Seed: / {print $3; exit}' "$log")
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="CRASH (exit $rc)"
        status=1
        echo "---- $h: last lines of $log"
        grep -E 'FUZZ CHECK FAILED|ERROR: |SUMMARY|Test unit written' "$log" | head -n 20
        echo "rerun: SATCHEL_FUZZ_ARGS=-seed=${seed:-?} (see the header of $0)"
        unit=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
        if [ -n "$unit" ] && [ -f "$unit" ]; then
            echo "reproducer: $unit"
            if [ "$(wc -c <"$unit")" -le 65536 ]; then
                echo "reproducer in base64:"
                base64 -w 0 "$unit"
                echo
            fi
        fi
    fi
    summary="$summary$(printf '%-22s %12s runs %10s exec/s %6s new inputs  seed=%-10s  %s' \
        "$h" "${execs:-?}" "${rate:-?}" "$corpus" "${seed:-?}" "$result")
"
done

echo
echo "run.sh: ${secs}s per harness"
printf '%s' "$summary"
exit $status
