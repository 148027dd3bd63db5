# Shared by the bench scripts (sourced, not run).

# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }

# wait_until_serving PID PORT LOG: until the server answers GET /; if it dies first, its log and exit 1.
wait_until_serving() {
    until curl -sf -o /dev/null "http://127.0.0.1:$2/"; do
        kill -0 "$1" 2>/dev/null || { cat "$3" >&2; exit 1; }
        sleep 0.05
    done
}
