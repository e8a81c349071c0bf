#!/usr/bin/env bash
# Sizing, side by side with blackbox_exporter: how many targets one
# `portprobe serve` takes at Prometheus' usual 15 s interval, and what it
# costs, against Debian's prometheus-blackbox-exporter probing the same
# TCP ports (its tcp_connect module, one target per host:port).
#
#   benches/sizing.sh [TARGETS] [SECONDS]     (as root; defaults 200 and 60)
#
# It builds a lab of network namespaces (client, router, server, named
# pp-<pid>-z-*), gives the server TARGETS addresses from 198.18.16.0/20,
# each listening on five of six TCP ports (PORTS; 88 is closed), and has the
# router drop 3283 and 5900 of every fourth target. In the client namespace
# a real Prometheus scrapes, every INTERVAL (15 s), first portprobe's
# /probe?ports=PORTS for every target for SECONDS, then, with a fresh
# Prometheus, blackbox_exporter for every target's six ports for SECONDS.
# For each it prints the scrapes' durations (median, p99, max, from
# scrape_duration_seconds), the failures (up == 0), the exporter's CPU
# (from /proc/PID/stat) and peak memory (VmHWM), Prometheus' own CPU and
# the scrape interval it kept (prometheus_target_interval_length_seconds),
# and the machine's load. Raw answers are kept in OUT (a temporary
# directory unless set). Packets stay inside the lab's namespaces, which
# are deleted at the end. docs/sizing.md has the figures and the rule.
#
# Environment: PORTPROBE (default target/release/portprobe), INTERVAL (15),
# TIMEOUT (the scrape timeout, 10), PORTS (22,88,443,548,3283,5900), OUT,
# ICMP_RATELIMIT (the router's net.ipv4.icmp_ratelimit in milliseconds per
# ICMP error to one destination; unset, the kernel's 1000: 0 lifts the
# budget that locating spends).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${1:-200}
SECONDS_EACH=${2:-60}
INTERVAL=${INTERVAL:-15}
TIMEOUT=${TIMEOUT:-10}
PORTS=${PORTS:-22,88,443,548,3283,5900}
PORTPROBE=${PORTPROBE:-target/release/portprobe}
OUT=${OUT:-$(mktemp -d /tmp/portprobe-sizing.XXXXXX)}
mkdir -p "$OUT"

die() { echo "sizing.sh: $*" >&2; exit 3; }
[ "$(id -u)" -eq 0 ] || die "run as root: the lab is made of network namespaces"
[[ $TARGETS =~ ^[0-9]+$ ]] && [ "$TARGETS" -ge 1 ] && [ "$TARGETS" -le 4000 ] ||
    die "TARGETS must be 1 to 4000, not '$TARGETS'"
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] && [ "$SECONDS_EACH" -ge 30 ] ||
    die "SECONDS must be a number of seconds, at least 30, not '$SECONDS_EACH'"
for p in ip nft prometheus prometheus-blackbox-exporter python3 curl; do
    command -v "$p" >/dev/null || die "$p is not installed"
done
[ -x "$PORTPROBE" ] || die "no $PORTPROBE: cargo build --release first"

P="pp-$$-z"
CLIENT=$P-client ROUTER=$P-router SERVER=$P-server
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "$CLIENT" "$ROUTER" "$SERVER"; do ip netns delete "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

# The lab.
for ns in "$CLIENT" "$ROUTER" "$SERVER"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip -n "$CLIENT" link add to-router type veth peer name to-client netns "$ROUTER"
ip -n "$SERVER" link add to-router type veth peer name to-server netns "$ROUTER"
ip -n "$CLIENT" link set to-router up
ip -n "$ROUTER" link set to-client up
ip -n "$ROUTER" link set to-server up
ip -n "$SERVER" link set to-router up
ip -n "$CLIENT" addr add 198.18.0.2/24 dev to-router
ip -n "$ROUTER" addr add 198.18.0.1/24 dev to-client
ip -n "$ROUTER" addr add 198.18.1.1/24 dev to-server
ip -n "$SERVER" addr add 198.18.1.2/24 dev to-router
ip -n "$CLIENT" route add default via 198.18.0.1
ip -n "$SERVER" route add default via 198.18.1.1
ip -n "$ROUTER" route add 198.18.16.0/20 via 198.18.1.2
ip netns exec "$ROUTER" sysctl -qw net.ipv4.ip_forward=1
if [ -n "${ICMP_RATELIMIT:-}" ]; then
    ip netns exec "$ROUTER" sysctl -qw net.ipv4.icmp_ratelimit="$ICMP_RATELIMIT"
fi
# Target i (0-based) is 198.18.(16 + (i+1)/256).((i+1)%256).
addr() { local n=$(($1 + 1)); echo "198.18.$((16 + n / 256)).$((n % 256))"; }
: > "$OUT/targets"
for ((i = 0; i < TARGETS; i++)); do
    a=$(addr "$i")
    [ "${a##*.}" = 0 ] || [ "${a##*.}" = 255 ] && { TARGETS=$((TARGETS + 1)); continue; }
    echo "$a" >> "$OUT/targets"
done
sed 's|.*|addr add &/32 dev to-router|' "$OUT/targets" | ip -n "$SERVER" -batch -
dropping=$(awk 'NR % 4 == 1' "$OUT/targets" | paste -sd, -)
ip netns exec "$ROUTER" nft -f - <<EOF
table inet lab {
    set dropping { type ipv4_addr; elements = { $dropping } }
    chain forward {
        type filter hook forward priority 0; policy accept;
        ip daddr @dropping tcp dport { 3283, 5900 } drop
    }
}
EOF
COUNT=$(wc -l < "$OUT/targets")
DROPPING=$(awk 'NR % 4 == 1' "$OUT/targets" | wc -l)

# The server: every address listens on the open ports and closes each
# connection at once.
ip netns exec "$SERVER" sysctl -qw net.core.somaxconn=4096
ip netns exec "$SERVER" python3 - "$PORTS" <<'EOF' &
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in (int(p) for p in sys.argv[1].split(",") if p != "88"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4096)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        try:
            key.fileobj.accept()[0].close()
        except OSError:
            pass
EOF
PIDS+=($!)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
promq() {
    ip netns exec "$CLIENT" curl -sf --noproxy '*' --get "http://127.0.0.1:9090/api/v1/query" \
        --data-urlencode "query=$1"
}

# One phase: exporter $1 (portprobe or blackbox), its PID $2, the scrape
# job's targets as static_configs lines in $3.
phase() {
    local name=$1 pid=$2 dir=$OUT/$1
    mkdir -p "$dir"
    cat > "$dir/prometheus.yml"
    ip netns exec "$CLIENT" prometheus --config.file="$dir/prometheus.yml" \
        --storage.tsdb.path="$dir/data" --web.listen-address=127.0.0.1:9090 \
        >"$dir/prometheus.log" 2>&1 &
    local prom=$!
    PIDS+=("$prom")
    local load0 cpu0 prom0 t0
    load0=$(cut -d' ' -f1-3 /proc/loadavg)
    cpu0=$(cpu_ticks "$pid") prom0=$(cpu_ticks "$prom") t0=$(date +%s.%N)
    sleep "$SECONDS_EACH"
    local cpu1 prom1 t1 load1
    cpu1=$(cpu_ticks "$pid") prom1=$(cpu_ticks "$prom") t1=$(date +%s.%N)
    load1=$(cut -d' ' -f1-3 /proc/loadavg)
    local window="${SECONDS_EACH}s"
    promq "scrape_duration_seconds{job=\"$name\"}[$window]" > "$dir/durations.json"
    promq "up{job=\"$name\"}[$window]" > "$dir/up.json"
    # Prometheus' own metrics: the interval it kept between scrapes.
    ip netns exec "$CLIENT" curl -sf --noproxy '*' http://127.0.0.1:9090/metrics > "$dir/prometheus.metrics"
    if [ "$name" = portprobe ]; then
        promq 'count(portprobe_port_blocked == 1)' > "$dir/found.json"
        promq 'count by (located_how) (portprobe_port_info{located_how!=""})' > "$dir/located.json"
        promq 'max(portprobe_port_located_age_seconds)' > "$dir/located_age.json"
    else
        promq 'count(probe_success == 0)' > "$dir/found.json"
    fi
    kill "$prom"
    wait "$prom" 2>/dev/null || true
    python3 - "$dir" "$name" "$(peak_kib "$pid")" "$((cpu1 - cpu0))" "$((prom1 - prom0))" \
        "$TCK" "$t0" "$t1" "$load0" "$load1" <<'EOF' | tee "$dir/summary.txt"
import json, sys
d, name, peak, cpu, prom_cpu, tck, t0, t1, load0, load1 = sys.argv[1:]
cpu, prom_cpu = int(cpu) / int(tck), int(prom_cpu) / int(tck)
def series(f):
    return json.load(open(f"{d}/{f}"))["data"]["result"]
durs = sorted(float(v) for s in series("durations.json") for _, v in s["values"])
ups = [float(v) for s in series("up.json") for _, v in s["values"]]
q = lambda p: durs[min(len(durs) - 1, int(p * len(durs)))] if durs else float("nan")
found = series("found.json")
kept = {}
for line in open(f"{d}/prometheus.metrics"):
    if line.startswith("prometheus_target_interval_length_seconds{"):
        labels, value = line.rsplit(" ", 1)
        if 'quantile="' in labels:
            kept[labels.split('quantile="')[1].split('"')[0]] = float(value)
wall = float(t1) - float(t0)
print(f"{name}: {len(series('up.json'))} scrape targets, {len(ups)} scrapes in {wall:.0f} s, "
      f"{ups.count(0.0)} failed (up == 0)")
print(f"  scrape duration: median {q(0.5):.3f} s, p99 {q(0.99):.3f} s, max {durs[-1] if durs else 0:.3f} s")
print(f"  exporter CPU {float(cpu):.1f} s ({float(cpu) / wall * 100:.1f} % of one core), peak memory (VmHWM) {int(peak) / 1024:.1f} MiB")
print(f"  Prometheus CPU {float(prom_cpu):.1f} s ({float(prom_cpu) / wall * 100:.1f} % of one core); "
      f"interval kept: p50 {kept.get('0.5', float('nan')):.3f} s, p99 {kept.get('0.99', float('nan')):.3f} s")
print(f"  {'blocked ports' if name == 'portprobe' else 'failed probes'} at the end: {found[0]['value'][1] if found else 0}")
if name == "portprobe":
    how = {s["metric"].get("located_how", "?"): int(s["value"][1]) for s in series("located.json")}
    age = series("located_age.json")
    print(f"  located at the end: {sum(how.values())} ({', '.join(f'{k} {v}' for k, v in sorted(how.items())) or 'none'}), "
          f"oldest kept answer {float(age[0]['value'][1]) if age else 0:.0f} s")
print(f"  load average at start {load0}, at end {load1}")
EOF
}

echo "sizing: $COUNT targets x 6 TCP ports ($PORTS), $DROPPING of them with 3283 and 5900 dropped;" \
    "every ${INTERVAL}s (timeout ${TIMEOUT}s), ${SECONDS_EACH}s per exporter;" \
    "router icmp_ratelimit $(ip netns exec "$ROUTER" sysctl -n net.ipv4.icmp_ratelimit) ms; $(nproc) cores; raw in $OUT"

# portprobe.
ip netns exec "$CLIENT" "$PORTPROBE" serve --listen 127.0.0.1:9199 --allow 198.18.16.0/20 \
    >"$OUT/portprobe.log" 2>&1 &
PP=$!
PIDS+=("$PP")
targets_yaml=$(sed 's|.*|          - "&"|' "$OUT/targets")
phase portprobe "$PP" <<EOF
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: ${TIMEOUT}s
scrape_configs:
  - job_name: portprobe
    metrics_path: /probe
    params:
      ports: ["$PORTS"]
    static_configs:
      - targets:
$targets_yaml
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9199
EOF
kill "$PP"

# blackbox_exporter, the same ports one target each.
cat > "$OUT/blackbox.yml" <<EOF
modules:
  tcp_connect:
    prober: tcp
    timeout: ${TIMEOUT}s
EOF
ip netns exec "$CLIENT" prometheus-blackbox-exporter --config.file="$OUT/blackbox.yml" \
    --web.listen-address=127.0.0.1:9115 >"$OUT/blackbox.log" 2>&1 &
BB=$!
PIDS+=("$BB")
endpoints_yaml=$(while read -r a; do
    for p in ${PORTS//,/ }; do echo "          - \"$a:$p\""; done
done < "$OUT/targets")
phase blackbox "$BB" <<EOF
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: ${TIMEOUT}s
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [tcp_connect]
    static_configs:
      - targets:
$endpoints_yaml
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
EOF
