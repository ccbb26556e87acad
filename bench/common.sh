# Shared by the bench/*.sh scripts (sourced, POSIX sh): the machine header, CPU steal and reading the one-line JSON
# objects that `hone bench` and the PyTorch baselines print. Needs HONE and PYTHON set; sets torch_ver (empty when
# PYTHON cannot import torch).

# "total steal" CPU ticks so far (steal: time the hypervisor gave this VM's CPUs to others)
cpu_ticks() {
    awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9 }' /proc/stat 2>/dev/null
}

# the percentage of CPU time stolen since cpu_ticks printed $1 (two numbers)
steal_since() {
    printf '%s %s\n' "${1:-0 0}" "$(cpu_ticks)" |
        awk '{ d = $3 - $1; printf "%.0f%%", (d > 0 ? 100 * ($4 - $2) / d : 0) }'
}

# value of a flat key in a one-line JSON object (numbers and plain strings only)
json_get() {
    printf '%s\n' "$1" | sed -n "s/.*\"$2\": *\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

# machine, date, load, hone commit and torch version, one per line
bench_header() {
    cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
    [ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ "$commit" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then commit="$commit-dirty"; fi
    torch_ver=$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)
    echo "machine: ${cpu:-unknown CPU}, $(nproc) cores"
    echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (1/5/15 min; other work running skews the figures)"
    echo "hone:    $commit"
    if [ -n "$torch_ver" ]; then
        echo "torch:   $torch_ver ($PYTHON)"
    else
        echo "torch:   not available: $PYTHON cannot import torch; install it with 'apt-get install python3-torch'"
        echo "         (hone's figures are printed alone)"
    fi
}
