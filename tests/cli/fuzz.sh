# The parameter-file parser under libFuzzer with ASan and UBSan: a short timed run from the shipped
# parameter files (make fuzz runs it for longer). Skipped, visibly, where clang's libFuzzer is
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
out=$(build-fuzz/fuzz_config -max_total_time=15 -max_len=4096 -timeout=5 "$corpus" config 2>&1)
rc=$?
check "15 s of fuzzing the parameter parser: no crash, leak, UB or echo mismatch" [ $rc -eq 0 ]
[ $rc -eq 0 ] || tail -n 30 <<<"$out"
check "the fuzzer ran" grep -qE "Done [0-9]+ runs" <<<"$out"
finish
