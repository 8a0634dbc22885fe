#!/usr/bin/env bash
# Smoke test of a built netstack (`deno task build`): copies it into an empty temporary folder and runs it
# from there, so that anything it still read from the source tree would fail:
#   ./netstack --version
#   ./netstack stack    in a network namespace of its own: ping answered, then SIGTERM, exit 0
#   ./netstack trace    on a veth pair between two namespaces, for a few packets (-c)
# Needs root, iproute2 and ping. Every step is bounded in time; the namespaces, the processes it started
# and the folder are removed on any exit.
#
#   scripts/smoke_build.sh [PATH_TO_NETSTACK]      (default: ./netstack)
set -euo pipefail

binary=$(realpath "${1:-./netstack}")
[ -x "$binary" ] || { echo "smoke: $binary is not an executable: run 'deno task build' first" >&2; exit 1; }

tag="nss$$"
stack_ns="${tag}-stack"
trace_ns="${tag}-trace"
peer_ns="${tag}-peer"
dir=$(mktemp -d /tmp/netstack-smoke.XXXXXX)
pids=()

cleanup() {
  local status=$?
  # Each pid is a timeout(1) that hands TERM on to netstack; its children go too if it lingers.
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    local children
    children=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    # shellcheck disable=SC2086
    kill -KILL "$pid" $children 2>/dev/null || true
  done
  for ns in "$stack_ns" "$trace_ns" "$peer_ns"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$dir"
  if [ "$status" -eq 0 ]; then echo "smoke: ok"; else echo "smoke: FAILED (exit $status)" >&2; fi
  exit "$status"
}
trap cleanup EXIT

fail() {
  echo "smoke: $*" >&2
  for log in "$dir"/*.log; do [ -f "$log" ] && { echo "--- $(basename "$log")" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

# Waits up to $2 seconds for the file $1 to contain the pattern $3.
wait_for() {
  local deadline=$((SECONDS + $2))
  until grep -q -- "$3" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

cp "$binary" "$dir/netstack"
cd "$dir"
echo "smoke: running $(ls) from $dir"

# 1. The version, from nothing but the copied file.
version=$(timeout 30 ./netstack --version)
[[ "$version" =~ ^netstack\ [0-9] ]] || fail "--version printed '$version'"
echo "smoke: $version"

# 2. The stack in a namespace: ready, answers ping, exits 0 on SIGTERM.
ip netns add "$stack_ns"
ip -n "$stack_ns" link set lo up
ip netns exec "$stack_ns" timeout -s KILL 60 ./netstack stack --services none >"$dir/stack.log" 2>&1 &
pids+=($!)
stack_pid=$!
wait_for "$dir/stack.log" 30 "ready iface=" || fail "the stack logged no ready line within 30 s"
ip netns exec "$stack_ns" timeout 20 ping -c 3 -i 0.2 -W 2 10.0.0.2 >"$dir/ping.log" 2>&1 ||
  fail "ping 10.0.0.2 in the stack's namespace was not answered"
echo "smoke: $(grep -m1 "ready iface=" "$dir/stack.log")"
echo "smoke: stack answered $(grep -c 'bytes from 10.0.0.2' "$dir/ping.log") pings"
kill -TERM "$stack_pid" # timeout(1) hands the signal on to netstack and exits with its status
status=0
wait "$stack_pid" || status=$?
[ "$status" -eq 0 ] || fail "the stack exited $status after SIGTERM, expected 0"
ip -n "$stack_ns" link show tun0 >/dev/null 2>&1 && fail "tun0 still exists after the stack exited"
ip netns del "$stack_ns"
echo "smoke: stack stopped by SIGTERM with exit 0, tun0 removed, namespace deleted"

# 3. The tracer on a veth pair: the traced end in one namespace, the pinging end in another.
ip netns add "$trace_ns"
ip netns add "$peer_ns"
ip -n "$trace_ns" link add smoke0 type veth peer name smoke1 netns "$peer_ns"
ip -n "$trace_ns" addr add 10.199.0.1/24 dev smoke0
ip -n "$peer_ns" addr add 10.199.0.2/24 dev smoke1
ip -n "$trace_ns" link set smoke0 up
ip -n "$peer_ns" link set smoke1 up
ip netns exec "$trace_ns" timeout -s KILL 60 ./netstack trace -i smoke0 --direction both --proto icmp -c 4 \
  >"$dir/trace.out" 2>"$dir/trace.log" &
pids+=($!)
trace_pid=$!
wait_for "$dir/trace.log" 30 "tracing smoke0 egress" || fail "the tracer did not attach within 30 s"
ip netns exec "$peer_ns" timeout 20 ping -c 4 -i 0.2 -W 2 10.199.0.1 >"$dir/ping.log" 2>&1 ||
  fail "ping over the veth failed"
status=0
wait "$trace_pid" || status=$?
[ "$status" -eq 0 ] || fail "the tracer exited $status, expected 0 after -c 4"
lines=$(grep -c ICMP "$dir/trace.out" || true)
[ "$lines" -eq 4 ] || fail "the tracer printed $lines ICMP lines, expected 4"
echo "smoke: tracer printed $lines packets:"
sed 's/^/  /' "$dir/trace.out"
