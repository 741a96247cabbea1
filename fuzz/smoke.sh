#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (default 20): a smoke run for CI.
#
#   fuzz/smoke.sh            # 20 s per target
#   fuzz/smoke.sh 300        # 5 min per target
#   FUZZ_SECONDS=60 fuzz/smoke.sh
#
# Exits non-zero if any target crashes (the input is saved under fuzz/artifacts/<target>/),
# after running the others. Works on a clean machine: installs cargo-fuzz if it is missing,
# and uses the stable toolchain with RUSTC_BOOTSTRAP=1 for the sanitizer flags cargo-fuzz
# passes.
set -euo pipefail

seconds="${1:-${FUZZ_SECONDS:-20}}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build

failed=()
for target in $targets; do
    echo "smoke: $target for ${seconds}s"
    # The committed seeds live in fuzz/corpus/<target>/; new corpus entries land there too
    # (ignored by git unless named seed-*).
    mkdir -p "fuzz/corpus/$target"
    if ! cargo fuzz run "$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "smoke: all targets ran ${seconds}s without a crash"
