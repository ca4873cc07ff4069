#!/usr/bin/env bash
# The local observability stack without Docker: our Collector (built with the OpenTelemetry
# Collector Builder from collector-config/builder-config.yaml), Jaeger v2 and Alertmanager (built
# from their Go modules), VictoriaLogs (the store for the event logs, built from its Go module),
# Prometheus (Debian package) and `llm-otel alert-relay` (the default webhook receiver: logs
# every notification), all on 127.0.0.1.
#
#   scripts/stack.sh build    build/install what is missing (binaries cached in ~/.cache/llm-otel)
#   scripts/stack.sh start    build if needed, start them, wait until healthy (idempotent; a
#                             running Prometheus/Alertmanager reloads the re-rendered configs)
#   scripts/stack.sh stop     stop them
#   scripts/stack.sh status   show what runs
#   scripts/stack.sh render [DIR]  write the rendered Prometheus/Alertmanager configs, print the dir
#   scripts/stack.sh restart-collector | stop-collector | restart-jaeger | stop-jaeger |
#                    start-jaeger | stop-prometheus | start-prometheus
#                             one component at a time (the failure drills in tests/e2e)
#
# Ports: Collector OTLP 4317/4318, health 13133, prometheus exporter 8889, own metrics 8888;
# Jaeger UI/API 16686, OTLP 14317/14318, health 14133, metrics 18888; Prometheus 9090;
# Alertmanager UI/API 9093; alert relay 9095; VictoriaLogs UI/API/OTLP 9428.
#
# Settings (environment):
#   LLM_OTEL_ALERT_WEBHOOK_URL  where Alertmanager sends notifications
#                               (default http://127.0.0.1:9095/alerts, the stack's relay)
#   LLM_OTEL_RUNBOOK_BASE       the runbooks' URL in alerts (default file://<checkout>/docs/runbooks.md)
#   LLM_OTEL_ALERT_FOR          replaces every alert's `for:` hold (e.g. 10s), for demos and tests;
#                               unset, the rules hold as written
#   LLM_OTEL_RELAY_ARGS         extra arguments for the relay, e.g. "--to feishu=https://..."
#   LLM_OTEL_LOG_RETENTION      how long VictoriaLogs keeps the event logs (default 7d)
#   LLM_OTEL_REMOTE_WRITE_URL   Prometheus also writes its samples there (a long-term store;
#                               collector-config/prometheus/remote-write.yml), with the external
#                               label cluster=LLM_OTEL_PROMETHEUS_CLUSTER (default: host name)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/_cache.sh
RUN_DIR=${LLM_OTEL_STACK_DIR:-$CACHE_DIR/run}
JAEGER_VERSION=v1.76.0  # the commit tagged v1.76.0 is also Jaeger v2's release of that day
MANIFEST=collector-config/builder-config.yaml
COLLECTOR_BIN=$CACHE_DIR/bin/otelcol-llm-$(sha256sum "$MANIFEST" | cut -c1-12)
JAEGER_BIN=$CACHE_DIR/bin/jaeger-$JAEGER_VERSION
# The last release whose Go module carries the web UI (later ones build it with npm).
ALERTMANAGER_VERSION=v0.28.1
ALERTMANAGER_BIN=$CACHE_DIR/bin/alertmanager-$ALERTMANAGER_VERSION
AMTOOL_BIN=$CACHE_DIR/bin/amtool-$ALERTMANAGER_VERSION
VICTORIALOGS_VERSION=v1.52.1
VICTORIALOGS_BIN=$CACHE_DIR/bin/victoria-logs-$VICTORIALOGS_VERSION
CONFIG_DIR=$RUN_DIR/config
PYTHON_BIN=${LLM_OTEL_PYTHON:-$ROOT/.venv/bin/python}
mkdir -p "$RUN_DIR"

log() { printf '[stack] %s\n' "$*" >&2; }

need_go() {
  command -v go >/dev/null || { log "Go is required to build the Collector and Jaeger"; exit 1; }
}

build_collector() {
  [ -x "$COLLECTOR_BIN" ] && return
  need_go
  if [ ! -x "$CACHE_DIR/bin/builder-$BUILDER_VERSION" ]; then
    log "installing the OpenTelemetry Collector Builder $BUILDER_VERSION"
    GOBIN=$CACHE_DIR/bin go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
    mv "$CACHE_DIR/bin/builder" "$CACHE_DIR/bin/builder-$BUILDER_VERSION"
  fi
  local work=$CACHE_DIR/otelcol-build
  rm -rf "$work" && mkdir -p "$work"
  sed "s|output_path: .*|output_path: $work/out|" "$MANIFEST" > "$work/manifest.yaml"
  log "building the Collector from $MANIFEST (several minutes the first time)"
  "$CACHE_DIR/bin/builder-$BUILDER_VERSION" --config "$work/manifest.yaml" > "$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log" >&2; exit 1; }
  cp "$work/out/otelcol-llm" "$COLLECTOR_BIN"
}

# go_build NAME MODULE@VERSION LDFLAGS OUT=PACKAGE...: builds the packages of a Go module at a
# release in a scratch module of its own (the build log in $CACHE_DIR/NAME-build/build.log).
# Some pinned dependencies of these modules are not in the checksum database this proxy mirrors:
# modules come from the Go module proxy, unverified against sum.golang.org.
go_build() {
  local name=$1 module=$2 ldflags=$3 target; shift 3
  need_go
  local work=$CACHE_DIR/$name-build
  rm -rf "$work" && mkdir -p "$work"
  printf 'module llm-otel/%s-build\n\ngo 1.24\n' "$name" > "$work/go.mod"
  (cd "$work" && GOSUMDB=off go get "$module" &&
     for target in "$@"; do
       GOSUMDB=off go build -trimpath -ldflags "$ldflags" -o "${target%%=*}" "${target#*=}" || exit 1
     done) > "$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
}

build_jaeger() {
  [ -x "$JAEGER_BIN" ] && return
  log "building Jaeger v2 (cmd/jaeger at $JAEGER_VERSION; several minutes the first time)"
  go_build jaeger "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" "" \
    "$JAEGER_BIN=github.com/jaegertracing/jaeger/cmd/jaeger"
}

build_alertmanager() {
  [ -x "$ALERTMANAGER_BIN" ] && [ -x "$AMTOOL_BIN" ] && return
  log "building Alertmanager $ALERTMANAGER_VERSION and amtool (a few minutes the first time)"
  go_build alertmanager "github.com/prometheus/alertmanager@$ALERTMANAGER_VERSION" \
    "-X github.com/prometheus/common/version.Version=${ALERTMANAGER_VERSION#v}" \
    "$ALERTMANAGER_BIN=github.com/prometheus/alertmanager/cmd/alertmanager" \
    "$AMTOOL_BIN=github.com/prometheus/alertmanager/cmd/amtool"
}

build_victorialogs() {
  [ -x "$VICTORIALOGS_BIN" ] && return
  log "building VictoriaLogs $VICTORIALOGS_VERSION (about a minute the first time)"
  go_build victorialogs "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VICTORIALOGS_VERSION" "" \
    "$VICTORIALOGS_BIN=github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
}

# The Prometheus and Alertmanager configs as the stack runs them (the originals stay valid
# as they are: these only fill in the webhook URL, the runbook links and the optional holds).
render() {  # [dir]
  local out=${1:-$CONFIG_DIR}
  mkdir -p "$out"
  local src=$ROOT/collector-config runbooks=${LLM_OTEL_RUNBOOK_BASE:-file://$ROOT/docs/runbooks.md}
  local webhook=${LLM_OTEL_ALERT_WEBHOOK_URL:-http://127.0.0.1:9095/alerts} rules
  cp "$src/prometheus/prometheus.yml" "$out/prometheus.yml"
  if [ -n "${LLM_OTEL_REMOTE_WRITE_URL:-}" ]; then
    local cluster=${LLM_OTEL_PROMETHEUS_CLUSTER:-$(hostname)}
    sed -i "s|^global:|global:\n  external_labels:\n    cluster: \"$cluster\"|" "$out/prometheus.yml"
    sed "s|\${LLM_OTEL_REMOTE_WRITE_URL}|$LLM_OTEL_REMOTE_WRITE_URL|" "$src/prometheus/remote-write.yml" \
      >> "$out/prometheus.yml"
  fi
  for rules in alerts baselines; do
    sed -e "s|runbook_url: docs/runbooks.md#|runbook_url: $runbooks#|" \
        ${LLM_OTEL_ALERT_FOR:+-e "s|^\( *\)for: .*|\1for: $LLM_OTEL_ALERT_FOR|"} \
        "$src/prometheus/$rules.yml" > "$out/$rules.yml"
  done
  sed "s|\${LLM_OTEL_ALERT_WEBHOOK_URL}|$webhook|" "$src/alertmanager/alertmanager.yml" \
    > "$out/alertmanager.yml"
}

install_prometheus() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return
  log "installing Prometheus from Debian"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package may start its own service (on systemd hosts); ours runs with our config.
  $sudo systemctl stop prometheus 2>/dev/null || true
}

running() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

wait_healthy() {  # name url
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
    if ! running "$1"; then log "$1 exited; its log:"; tail -30 "$RUN_DIR/$1.log" >&2; exit 1; fi
    sleep 0.5
  done
  log "$1 not healthy at $2 after 60 s"; tail -30 "$RUN_DIR/$1.log" >&2; exit 1
}

start_one() {  # name health-url command...
  local name=$1 url=$2; shift 2
  if running "$name"; then log "$name already running"; return; fi
  nohup "$@" > "$RUN_DIR/$name.log" 2>&1 &
  echo $! > "$RUN_DIR/$name.pid"
  wait_healthy "$name" "$url"
  log "$name up ($url)"
}

start_jaeger() {
  # Jaeger traces its own query API to localhost:4317 (our Collector) by default: a loop of
  # noise in the very backend it feeds. Its OTel SDK is turned off through the standard variables.
  # Its Badger store lives in the run directory: traces survive a restart.
  LLM_OTEL_JAEGER_DATA=${LLM_OTEL_JAEGER_DATA:-$RUN_DIR/jaeger-data} \
  OTEL_TRACES_EXPORTER=none OTEL_TRACES_SAMPLER=always_off \
    start_one jaeger http://127.0.0.1:14133/status "$JAEGER_BIN" --config "$ROOT/collector-config/jaeger.yaml"
}

start_collector() {
  # Its exporters' sending queues live on disk here: a restart keeps what was not sent yet.
  LLM_OTEL_COLLECTOR_QUEUE_DIR=${LLM_OTEL_COLLECTOR_QUEUE_DIR:-$RUN_DIR/collector-queue} \
    start_one collector http://127.0.0.1:13133/ "$COLLECTOR_BIN" --config "$ROOT/collector-config/otelcol.yaml"
}

start_relay() {
  if ! "$PYTHON_BIN" -c "import llm_otel" 2>/dev/null; then
    log "no Python with llm_otel at $PYTHON_BIN (set LLM_OTEL_PYTHON): the alert relay is not started"
    return
  fi
  # shellcheck disable=SC2086  # LLM_OTEL_RELAY_ARGS is a list of arguments
  start_one relay http://127.0.0.1:9095/healthz "$PYTHON_BIN" -m llm_otel alert-relay \
    --listen 127.0.0.1:9095 --log "$RUN_DIR/alerts.jsonl" ${LLM_OTEL_RELAY_ARGS:-}
}

reload_if_running() {  # name url
  if running "$1"; then
    curl -fsS -X POST "$2" >/dev/null || { log "$1 did not reload its configuration"; exit 1; }
  fi
}

start() {
  build_collector; build_jaeger; build_alertmanager; build_victorialogs; install_prometheus
  render
  reload_if_running prometheus http://127.0.0.1:9090/-/reload
  reload_if_running alertmanager http://127.0.0.1:9093/-/reload
  start_relay
  start_jaeger
  # The event logs (gen_ai.client.inference.operation.details, evaluation results), kept 7 days.
  start_one victorialogs http://127.0.0.1:9428/health "$VICTORIALOGS_BIN" \
    -httpListenAddr=127.0.0.1:9428 -storageDataPath="$RUN_DIR/victorialogs-data" \
    -retentionPeriod="${LLM_OTEL_LOG_RETENTION:-7d}"
  start_collector
  # A fresh start forgets which notifications were sent (its nflog; silences are kept):
  # otherwise an alert that fired before the restart, with the same labels, is not notified
  # again until its repeat_interval (1 h for pages) has passed since then.
  running alertmanager || rm -f "$RUN_DIR/alertmanager-data/nflog"
  start_one alertmanager http://127.0.0.1:9093/-/ready "$ALERTMANAGER_BIN" \
    --config.file="$CONFIG_DIR/alertmanager.yml" --storage.path="$RUN_DIR/alertmanager-data" \
    --web.listen-address=127.0.0.1:9093 --cluster.listen-address=
  start_prometheus
}

start_prometheus() {
  start_one prometheus http://127.0.0.1:9090/-/ready prometheus \
    --config.file="$CONFIG_DIR/prometheus.yml" \
    --storage.tsdb.path="$RUN_DIR/prometheus-data" \
    --web.listen-address=127.0.0.1:9090 --web.enable-lifecycle
}

stop_one() {
  local name=$1
  if running "$name"; then
    kill "$(cat "$RUN_DIR/$name.pid")"
    for _ in $(seq 1 40); do running "$name" || break; sleep 0.25; done
    running "$name" && kill -9 "$(cat "$RUN_DIR/$name.pid")"
    log "$name stopped"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

case "${1:-}" in
  build) build_collector; build_jaeger; build_alertmanager; build_victorialogs; install_prometheus
         log "collector: $COLLECTOR_BIN"; log "jaeger: $JAEGER_BIN"; log "alertmanager: $ALERTMANAGER_BIN"
         log "victorialogs: $VICTORIALOGS_BIN" ;;
  start) start ;;
  stop) stop_one prometheus; stop_one alertmanager; stop_one relay; stop_one collector
        stop_one victorialogs; stop_one jaeger ;;
  restart-collector) stop_one collector; start_collector ;;
  restart-jaeger) stop_one jaeger; start_jaeger ;;
  stop-jaeger) stop_one jaeger ;;
  start-jaeger) start_jaeger ;;
  stop-prometheus) stop_one prometheus ;;
  start-prometheus) start_prometheus ;;
  stop-collector) stop_one collector ;;
  render) render "${2:-}"; echo "${2:-$CONFIG_DIR}" ;;
  status) for n in jaeger victorialogs collector alertmanager relay prometheus; do running "$n" && echo "$n running (pid $(cat "$RUN_DIR/$n.pid"))" || echo "$n stopped"; done ;;
  paths) echo "COLLECTOR_BIN=$COLLECTOR_BIN"; echo "JAEGER_BIN=$JAEGER_BIN"; echo "ALERTMANAGER_BIN=$ALERTMANAGER_BIN"
         echo "AMTOOL_BIN=$AMTOOL_BIN"; echo "VICTORIALOGS_BIN=$VICTORIALOGS_BIN"; echo "RUN_DIR=$RUN_DIR"; echo "CONFIG_DIR=$CONFIG_DIR" ;;
  *) echo "usage: $0 build|start|stop|status|render|paths|restart-collector|stop-collector|{restart,stop,start}-jaeger|{stop,start}-prometheus" >&2; exit 2 ;;
esac
