#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of every decoder that takes outside input:
# register blocks, RTU frames, procedure profiles, simulator scenarios and the API's
# request bodies (Fuzz/, harnesses in Sources/FuzzTargets).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Starts from the seed corpus in Fuzz/corpus/TARGET; what the fuzzer finds new goes to
# test-output/fuzz/corpus/TARGET (copy the interesting ones into Fuzz/corpus to keep
# them); crashes and timeouts go to test-output/fuzz/artifacts/. Prints inputs tried,
# crashes and hangs per target, and exits non-zero if any target crashed or hung.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(registerBlocks rtuFrames profile scenario apiBody)

echo "== build the fuzzers (-sanitize=fuzzer, linked with lld)"
(cd Fuzz && swift build -c release --scratch-path ../.build-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld 2>&1 | tail -3)
driver=.build-fuzz/release/FuzzDriver

out=test-output/fuzz
# A Swift trap must reach libFuzzer (which writes the input out), not the Swift backtracer.
export SWIFT_BACKTRACE=enable=no
mkdir -p "$out/artifacts"
status=0
printf "%-16s %12s %10s %8s %6s\n" target inputs exec/s crashes hangs
for target in "${targets[@]}"; do
    mkdir -p "$out/corpus/$target" "$out/artifacts/earlier"
    # Count only what this run finds: earlier runs' crashes and hangs move aside.
    find "$out/artifacts" -maxdepth 1 -name "$target-*" -exec mv -t "$out/artifacts/earlier" {} +
    log="$out/$target.log"
    set +e
    "$driver" "$target" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$target-" "$out/corpus/$target" "Fuzz/corpus/$target" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo 0)
    speed=$(grep -oE "stat::average_exec_per_sec: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo 0)
    crashes=$(find "$out/artifacts" -maxdepth 1 \( -name "$target-crash-*" -o -name "$target-oom-*" \) | wc -l)
    hangs=$(find "$out/artifacts" -maxdepth 1 -name "$target-timeout-*" | wc -l)
    printf "%-16s %12s %10s %8s %6s\n" "$target" "$runs" "$speed" "$crashes" "$hangs"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ] || [ "$hangs" -ne 0 ]; then
        status=1
        echo "   $target: libFuzzer exited $rc; see $log" >&2
    fi
done
exit $status
