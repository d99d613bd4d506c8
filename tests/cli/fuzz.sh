# The parameter-file parser under libFuzzer with ASan and UBSan: a fixed-seed run of 40 000 inputs
# grown from the shipped parameter files, the same inputs on every machine (make fuzz runs it
# longer, with a random seed). Skipped, visibly, where clang's libFuzzer is
# missing.
source "$(dirname "$0")/lib.bash"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
corpus=$LEMUR_TMP/fuzz-corpus
rm -rf "$corpus"; mkdir -p "$corpus"
if ! command -v clang >/dev/null || ! make --no-print-directory fuzz-build >/dev/null 2>&1; then
    echo "SKIP fuzzing: clang with libFuzzer (Debian: clang, libclang-rt-dev) is not available"
    finish; exit
fi
out=$(build-fuzz/fuzz_config -seed=1 -runs=40000 -max_len=4096 -timeout=10 "$corpus" config 2>&1)
rc=$?
check "40 000 fuzzed parameter files: no crash, leak, UB or echo mismatch" [ $rc -eq 0 ]
[ $rc -eq 0 ] || tail -n 30 <<<"$out"
check "the fuzzer ran" grep -qE "Done [0-9]+ runs" <<<"$out"
finish
