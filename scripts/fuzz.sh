#!/usr/bin/env bash
# Fuzzes the .safetensors and CIFAR-10 readers with libFuzzer (+ ASan + UBSan) for N seconds each:
#   scripts/fuzz.sh [seconds, default 600] [target ...]   (targets: safetensors cifar)
# Builds with clang in build-fuzz (only the sources the readers need), seeds each corpus with small
# valid files from fuzz/make_seeds, and keeps the corpora in build-fuzz/corpus between runs.
# A finding stops the script with the crashing input in build-fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(safetensors cifar)

scripts/setup.sh clang libclang-rt-dev  # clang++ and its libFuzzer and sanitizer runtimes
scripts/build.sh build-fuzz -DXGRAD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS=-O1

out=build-fuzz
build-fuzz/fuzz/make_seeds "$out/seeds/safetensors" "$out/seeds/cifar"
mkdir -p "$out/findings"
for t in "${targets[@]}"; do
  case "$t" in
    safetensors) extra=(-dict=fuzz/safetensors.dict -max_len=16384) ;;
    cifar) extra=(-max_len=12300) ;;  # up to four records
    *) echo "fuzz.sh: unknown target '$t' (safetensors, cifar)" >&2; exit 2 ;;
  esac
  mkdir -p "$out/corpus/$t"
  echo "== fuzz_$t for ${secs} s =="
  log="$out/fuzz_$t.log"
  if ! UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build-fuzz/fuzz/fuzz_"$t" -max_total_time="$secs" \
      -timeout=10 -print_final_stats=1 -artifact_prefix="$out/findings/$t-" "${extra[@]}" \
      "$out/corpus/$t" "$out/seeds/$t" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz.sh: fuzz_$t found a problem; the input is in $out/findings/" >&2
    exit 1
  fi
  grep -E "^Done|stat::number_of_executed_units|cov:" "$log" | tail -n 3
done
