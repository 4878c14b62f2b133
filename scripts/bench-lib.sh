# Sourced by the benchmark scripts: timing helpers.

# median N CMD...: run CMD N times (output discarded), print the median wall time in seconds.
median() {
  local n=$1 i start end
  shift
  local times=()
  for ((i = 0; i < n; i++)); do
    start=$(date +%s.%N)
    "$@" > /dev/null 2>&1 || true
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# ratio A B: A / B with two decimals.
ratio() {
  echo "scale=2; $1 / $2" | bc -l
}
