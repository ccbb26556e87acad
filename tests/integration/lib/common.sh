# Shared helpers for the integration tests (POSIX sh). A test script does
#     set -eu
#     . "$(dirname "$0")/lib/common.sh"
#     setup "$@"
# and then runs $HONE with its files in $W (removed on exit). This folder is not globbed by CMake: only
# tests/integration/*.sh are tests.

# fail MESSAGE...: report and stop the test.
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# check DESCRIPTION: say what the next lines verify.
check() {
    echo "-- $*"
}

# setup HONE_PATH: sets HONE and W (a fresh work folder removed on exit). The tests pass --threads 1 so that
# tests running side by side on a small machine do not oversubscribe it.
setup() {
    [ $# -ge 1 ] || fail "usage: sh $0 path/to/hone"
    HONE=$1
    [ -x "$HONE" ] || fail "$HONE is not an executable"
    W=$(mktemp -d "${TMPDIR:-/tmp}/hone-it.XXXXXX")
    trap 'rm -rf "$W"' EXIT
    trap 'exit 130' INT TERM
    # Each command gets at most 120 s (exit 124) where timeout(1) exists, so that a hang fails fast.
    LIMIT=
    if command -v timeout >/dev/null 2>&1; then LIMIT="timeout 120"; fi
}

# run_ok DESCRIPTION CMD...: runs CMD with stdout to $W/stdout and stderr to $W/stderr; fails unless it exits 0.
run_ok() {
    _desc=$1
    shift
    _rc=0
    $LIMIT "$@" >"$W/stdout" 2>"$W/stderr" || _rc=$?
    if [ "$_rc" -ne 0 ]; then
        echo "command: $*" >&2
        sed 's/^/  stderr: /' "$W/stderr" >&2
        fail "$_desc: exit status $_rc"
    fi
}

# expect_error DESCRIPTION FRAGMENT CMD...: CMD must fail cleanly: exit status 1 or 2 (not 0, not a signal or
# a crash), nothing on stdout, and FRAGMENT (a fixed string) in its stderr.
expect_error() {
    _desc=$1
    _frag=$2
    shift 2
    _rc=0
    $LIMIT "$@" >"$W/stdout" 2>"$W/stderr" || _rc=$?
    check "$_desc"
    if [ "$_rc" -eq 0 ]; then
        fail "$_desc: exit status 0, expected an error containing '$_frag'"
    elif [ -n "$LIMIT" ] && [ "$_rc" -eq 124 ]; then
        fail "$_desc: still running after 120 s"
    elif [ "$_rc" -ge 128 ]; then
        fail "$_desc: killed by signal $((_rc - 128)) (exit $_rc): a crash, not an error message"
    elif [ "$_rc" -ne 1 ] && [ "$_rc" -ne 2 ]; then
        fail "$_desc: exit status $_rc, expected 1 or 2"
    fi
    grep -F -q -e "$_frag" "$W/stderr" ||
        fail "$_desc: stderr does not contain '$_frag'; it was: $(cat "$W/stderr")"
    [ ! -s "$W/stdout" ] || fail "$_desc: an error must leave stdout empty; it was: $(cat "$W/stdout")"
    echo "   ok (exit $_rc): $(grep -F -e "$_frag" "$W/stderr" | head -n 1)"
}

# json_num KEY < LINE: the number after "KEY": in a one-line JSON object (as hone prints them).
json_num() {
    sed -n "s/.*\"$1\": *\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" | head -n 1
}

# num_cmp A OP B: numeric comparison of two decimal strings with awk (OP: < <= > >= ==).
num_cmp() {
    awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
        a += 0; b += 0
        if (op == "<") r = a < b; else if (op == "<=") r = a <= b; else if (op == ">") r = a > b
        else if (op == ">=") r = a >= b; else if (op == "==") r = a == b; else r = 0
        exit !r }'
}

# near A B TOL: |A - B| <= TOL.
near() {
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'
}

# json_valid FILE: the file is valid JSON, strictly: NaN and infinities are not JSON. Checked with python3 when
# installed; else with jq (1.6 reads nan as null, hence the grep for bare nan/inf tokens); else only that it
# starts with '{', ends with '}' and has no bare nan/inf token.
json_valid() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys
def bad(c): raise ValueError(c)
json.load(open(sys.argv[1]), parse_constant=bad)' "$1" 2>/dev/null
        return
    fi
    ! grep -Eiq '(^|[:,[ ])-?(nan|inf|infinity)([],} ]|$)' "$1" || return 1
    if command -v jq >/dev/null 2>&1; then
        jq -e . "$1" >/dev/null 2>&1
    else
        [ "$(tr -d ' \n\t\r' <"$1" | cut -c1)" = "{" ] && tr -d ' \n\t\r' <"$1" | grep -q '}$'
    fi
}

# file_size FILE: its size in bytes.
file_size() {
    wc -c <"$1" | tr -d ' '
}

# le32 N: N as 4 little-endian bytes on stdout.
le32() {
    for _shift in 0 8 16 24; do
        # shellcheck disable=SC2059
        printf "\\$(printf '%03o' $((($1 >> _shift) & 255)))"
    done
}

# write_shard OUT MAGIC VERSION COUNT: writes an llm.c shard header (256 int32: magic, version, count, zeros);
# the caller appends the tokens.
write_shard_header() {
    {
        le32 "$2"
        le32 "$3"
        le32 "$4"
        head -c 1012 /dev/zero
    } >"$1"
}

# safetensors_valid FILE: the file is a well-formed safetensors file as hone writes them: the header length
# fits, the header is valid JSON, every tensor's byte range matches its dtype and shape, and the ranges tile the
# data section in header order (hone's writer: 8-byte aligned, contiguous, no gap, no overlap, nothing after the last tensor).
# Prints the number of tensors. Fails the test with the reason otherwise.
safetensors_valid() {
    _f=$1
    _size=$(file_size "$_f")
    [ "$_size" -ge 8 ] || fail "$_f: $_size bytes, shorter than the 8-byte safetensors header length"
    _hlen=$(od -An -v -tu1 -N8 "$_f" | awk '{ for (i = 1; i <= NF; i++) b[n++] = $i }
        END { v = 0; for (i = 7; i >= 0; i--) v = v * 256 + b[i]; printf "%.0f\n", v }')
    [ "$_hlen" -gt 1 ] && [ "$((_hlen + 8))" -le "$_size" ] ||
        fail "$_f: header length $_hlen does not fit the $_size-byte file"
    [ $((_hlen % 8)) -eq 0 ] || fail "$_f: header length $_hlen: the data section does not start 8-byte aligned"
    tail -c +9 "$_f" | head -c "$_hlen" >"$W/st_header.json"
    json_valid "$W/st_header.json" || fail "$_f: the header is not valid JSON"
    # One tensor entry per line: "name":{"dtype":"F32","shape":[a,b],"data_offsets":[begin,end]}
    tr -d ' \n' <"$W/st_header.json" | awk '{ gsub(/},"/, "}\n\"") } 1' | grep '"data_offsets"' >"$W/st_entries" ||
        fail "$_f: no tensors in the header"
    awk -v data_size="$((_size - 8 - _hlen))" -v f="$_f" '
        function bad(msg) { print f ": " msg > "/dev/stderr"; err = 1; exit 1 }
        {
            if (!match($0, /"dtype":"[A-Z0-9_]+"/)) bad("no dtype in " $0)
            dt = substr($0, RSTART + 9, RLENGTH - 10)
            if (!match($0, /"shape":\[[0-9,]*\]/)) bad("no shape in " $0)
            shp = substr($0, RSTART + 9, RLENGTH - 10)
            if (!match($0, /"data_offsets":\[[0-9]+,[0-9]+\]/)) bad("no data_offsets in " $0)
            off = substr($0, RSTART + 16, RLENGTH - 17)
            split(off, o, ",")
            sz = (dt == "F32" || dt == "I32" || dt == "U32") ? 4 : (dt == "F16" || dt == "BF16" || dt == "I16" || dt == "U16") ? 2 : (dt == "F64" || dt == "I64" || dt == "U64") ? 8 : (dt == "U8" || dt == "I8" || dt == "BOOL") ? 1 : 0
            if (sz == 0) bad("unknown dtype " dt)
            n = 1; k = split(shp, s, ","); for (i = 1; i <= k; i++) n *= s[i]
            if (o[2] - o[1] != n * sz) bad("tensor bytes " o[1] ".." o[2] " do not match " dt " [" shp "]")
            if (o[1] != prev) bad("tensor bytes " o[1] ".." o[2] " do not start where the previous tensor ends (" prev + 0 ")")
            prev = o[2]; count++
        }
        END {
            if (err) exit 1
            if (prev != data_size) bad("the tensors end at offset " prev " of a " data_size "-byte data section")
            print count
        }' "$W/st_entries" || fail "$_f: not a well-formed safetensors file"
}

# tokens_from_shard SHARD FIRST COUNT: COUNT uint16 tokens of a version-1 llm.c shard from token index FIRST,
# one per line.
tokens_from_shard() {
    od -An -v -tu2 -j "$((1024 + 2 * $2))" -N "$((2 * $3))" "$1" | tr -s ' ' '\n' | sed '/^$/d'
}

# slice_shard SHARD FIRST COUNT OUT: a new version-1 shard holding COUNT tokens of SHARD from index FIRST.
slice_shard() {
    write_shard_header "$4" 20240520 1 "$3"
    tail -c +"$((1024 + 2 * $2 + 1))" "$1" | head -c "$((2 * $3))" >>"$4"
}
