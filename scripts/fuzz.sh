#!/usr/bin/env bash
# Fuzz the pure C++ core's text functions (test/fuzz/core_fuzz.cpp) with
# libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer, as root
# on a Debian machine (installs clang if missing).  Not part of .ci/run.
#
#   bash scripts/fuzz.sh                  (FUZZ_SECONDS, default 240)
#
# Seeds: every SQL file of the repository under 8 kB.  The corpus it grows
# and any crashing input stay in build/fuzz/.  Exit status is libFuzzer's:
# non-zero on a finding.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/build/fuzz
SECONDS_TO_RUN=${FUZZ_SECONDS:-240}
[[ "$SECONDS_TO_RUN" =~ ^[1-9][0-9]*$ ]] || { echo "FUZZ_SECONDS must be a positive whole number" >&2; exit 2; }

if ! command -v clang++ >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
fi
mkdir -p "$OUT/corpus"
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$ROOT/src" "$ROOT/test/fuzz/core_fuzz.cpp" \
    "$ROOT/src/core/lexer.cpp" "$ROOT/src/core/script.cpp" "$ROOT/src/core/sha256.cpp" \
    -o "$OUT/core_fuzz"
i=0
while IFS= read -r -d '' f; do
    cp "$f" "$OUT/corpus/seed_$i.sql"
    i=$((i + 1))
done < <(find "$ROOT/sql" "$ROOT/test" "$ROOT/bench" "$ROOT/examples" -name '*.sql' -size -8k -print0 2>/dev/null)
cd "$OUT"
exec ./core_fuzz -max_len=4096 -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 corpus
