#!/usr/bin/env bash
# Brings up a single-node Kubernetes on this machine as plain processes:
# etcd, a containerd of its own (Docker's is untouched), kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kube-router's
# NetworkPolicy firewall, and CoreDNS as the cluster DNS (kube-dns,
# 10.96.0.10). Run test/cluster/build.sh first; up.sh builds nothing.
#
#   test/cluster/up.sh
#   export KUBECONFIG=${AIM_CLUSTER_DIR:-/tmp/aim-cluster}/kubeconfig
#
# All state, logs and PIDs live under $AIM_CLUSTER_DIR (default
# /tmp/aim-cluster); test/cluster/down.sh stops everything and cleans up.
# If a healthy cluster is already up, up.sh says so and exits 0; if a broken
# one is left over, it is taken down first.
#
# Environment:
#   AIM_CLUSTER_DIR     state directory (default /tmp/aim-cluster)
#   AIM_KUBE_CACHE      where build.sh put the parts (default ~/.cache/aim/kube)
#   AIM_UP_TIMEOUT      seconds to wait for each stage (default 120)
#   AIM_KEEP_FAILED     if set, a failed up.sh leaves the cluster running
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TIMEOUT=${AIM_UP_TIMEOUT:-120}
PKI=$CLUSTER_DIR/pki
LOGS=$CLUSTER_DIR/logs
PIDS=$CLUSTER_DIR/pids
CONF=$CLUSTER_DIR/conf
KUBECTL=$(kubectl_bin)
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

[ "$(id -u)" = 0 ] || die "up.sh runs a kubelet and a container runtime and needs root"

for f in "$K8S_BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy} \
  "$KUBE_ROUTER_DIR/kube-router" "$COREDNS_DIR/image.tar" "$PAUSE_DIR/image.tar"; do
  [ -e "$f" ] || die "$f is missing; run test/cluster/build.sh"
done
for c in etcd containerd runc ctr ipset iptables openssl curl ip; do
  command -v "$c" >/dev/null || die "$c is missing; run test/cluster/build.sh (it installs the Debian packages)"
done
[ -x /usr/lib/cni/bridge ] || die "/usr/lib/cni/bridge is missing; run test/cluster/build.sh"

healthy() {
  [ -f "$KUBECONFIG_ADMIN" ] || return 1
  for p in "$PIDS"/*.pid; do
    [ -e "$p" ] || return 1
    kill -0 "$(cat "$p")" 2>/dev/null || return 1
  done
  kc get --raw /readyz >/dev/null 2>&1 || return 1
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

if [ -d "$PIDS" ]; then
  if healthy; then
    log "a healthy cluster is already up (KUBECONFIG=$KUBECONFIG_ADMIN)"
    exit 0
  fi
  log "a cluster is left over in $CLUSTER_DIR but not healthy; taking it down first"
  "$CLUSTER_SRC/down.sh"
fi

start_time=$SECONDS
mkdir -p "$PKI" "$LOGS" "$PIDS" "$CONF" "$CLUSTER_DIR/run"
rm -f "$LOGS"/*.log

# If up.sh fails half way, leave nothing running (unless asked to, to look
# at what failed).
on_exit() {
  local rc=$?
  [ $rc = 0 ] && return
  if [ -n "${AIM_KEEP_FAILED:-}" ]; then
    log "up failed; AIM_KEEP_FAILED is set: left running; logs are in $LOGS"
  else
    log "up failed; logs are in $LOGS; taking the cluster down"
    "$CLUSTER_SRC/down.sh" || true
  fi
}
trap on_exit EXIT

# The advertised address must not be loopback: it becomes the endpoint of
# the kubernetes Service, which pods reach through kube-proxy.
HOST_IP=${AIM_HOST_IP:-$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')}
[ -n "$HOST_IP" ] || HOST_IP=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
[ -n "$HOST_IP" ] || die "no non-loopback IPv4 address found; set AIM_HOST_IP"
log "node $NODE_NAME at $HOST_IP, state in $CLUSTER_DIR"

# --- host settings the cluster changes; down.sh restores them -------------

SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet"
: >"$CLUSTER_DIR/sysctl.saved"
for k in $SYSCTLS; do
  v=$(sysctl -n "$k" 2>/dev/null) && echo "$k=$v" >>"$CLUSTER_DIR/sysctl.saved"
done
# Pod traffic is forwarded and bridged; Docker sets both already, a bare
# machine may not.
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
# Whether /var/lib/kubelet existed before: the kubelet makes its
# device-plugin directory there whatever --root-dir says.
[ -e /var/lib/kubelet ] && touch "$CLUSTER_DIR/var-lib-kubelet.preexisting"

# --- PKI --------------------------------------------------------------------

# cert NAME SUBJECT EXT_KEY_USAGE [SANS]: an ECDSA key and a certificate
# signed by the cluster CA.
cert() {
  local name=$1 subj=$2 eku=$3 sans=${4:-}
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$sans" ] || echo "subjectAltName=$sans"
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -extfile "$PKI/$name.ext" \
    -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=aim-cluster-ca" -days 3650 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkey -out "$PKI/sa.key"
openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
cert apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,IP:$HOST_IP"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=aim-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert kube-router "/CN=aim:kube-router" clientAuth
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth \
  "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$HOST_IP"

kubeconfig() {
  local name=$1 out=$2
  cat >"$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: aim
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$name.crt")
    client-key-data: $(base64 -w0 "$PKI/$name.key")
contexts:
- name: aim
  context: {cluster: aim, user: $name}
current-context: aim
EOF
  chmod 600 "$out"
}
kubeconfig admin "$KUBECONFIG_ADMIN"
for c in controller-manager scheduler kube-proxy kube-router kubelet; do
  kubeconfig "$c" "$CONF/$c.kubeconfig"
done

# --- processes --------------------------------------------------------------

# start NAME CMD...: runs CMD in a session of its own (so a Ctrl-C in the
# shell that ran up.sh does not reach it), logging to $LOGS/NAME.log.
start() {
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

# wait_for WHAT CMD...: retries CMD until it succeeds or TIMEOUT passes.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out after ${TIMEOUT}s waiting for $what"
      for l in "$LOGS"/*.log; do
        printf '\n--- last lines of %s\n' "$l" >&2
        tail -n 8 "$l" >&2
      done
      exit 1
    fi
    for p in "$PIDS"/*.pid; do
      kill -0 "$(cat "$p")" 2>/dev/null && continue
      local n
      n=$(basename "$p" .pid)
      log "$n exited while waiting for $what; last lines of $LOGS/$n.log:"
      tail -n 30 "$LOGS/$n.log" >&2
      exit 1
    done
    sleep 0.3
  done
  log "$what: ready after $((SECONDS - start_time)) s"
}

# etcd: its own ports, so a Debian etcd service (or anyone's) does not clash.
# etcd 3.4 cannot be asked for watch progress (3.5 can), so the apiserver's
# watch cache learns it is current only from periodic progress notices: a
# watch without a resourceVersion otherwise waits up to 3 s and fails with
# "Too large resource version" when its resource has not changed lately.
start etcd etcd --name aim --data-dir "$CLUSTER_DIR/etcd" \
  --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \
  --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
  --initial-cluster aim=http://127.0.0.1:12380 \
  --snapshot-count 10000 --quota-backend-bytes 2147483648 \
  --experimental-watch-progress-notify-interval 1s

# containerd: a separate instance. Its config keeps root, state, socket, CNI
# configuration and runc's state under $CLUSTER_DIR.
mkdir -p "$CLUSTER_DIR/cni/net.d" "$CLUSTER_DIR/cni/ipam"
cat >"$CONF/containerd.toml" <<EOF
version = 2
root = "$CLUSTER_DIR/containerd"
state = "$CLUSTER_DIR/run/containerd"
oom_score = 0
# Plugins the cluster does not use, left out so they do not probe the host.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The sandbox lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj
  # (to -998 for pause), and every pod would fail with "can't get final
  # child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CLUSTER_DIR/run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CONF/certs.d"
EOF
# The chart's in-cluster registry (registry.enabled, a NodePort) serves plain
# HTTP; the node pulls from it at its NodePort on the node's address (node
# ports are on the primary address only, see kube-proxy below). So does the
# private registry test/e2e-kube runs behind a login, at a NodePort of its own.
for port in "$REGISTRY_NODE_PORT" "$PRIVATE_REGISTRY_NODE_PORT"; do
  mkdir -p "$CONF/certs.d/$HOST_IP:$port"
  cat >"$CONF/certs.d/$HOST_IP:$port/hosts.toml" <<EOF
server = "http://$HOST_IP:$port"

[host."http://$HOST_IP:$port"]
  capabilities = ["pull", "resolve"]
EOF
done
# bridge + host-local + portmap + firewall. The firewall plugin adds the
# ACCEPT rules pod traffic needs past Docker's FORWARD policy of DROP.
cat >"$CLUSTER_DIR/cni/net.d/10-aim.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "aim-cluster",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$CLUSTER_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"}
  ]
}
EOF
start containerd containerd --config "$CONF/containerd.toml" --log-level warn

wait_for etcd curl -fsS http://127.0.0.1:12379/health

start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --advertise-address="$HOST_IP" --bind-address=0.0.0.0 --secure-port=6443 \
  --etcd-servers=http://127.0.0.1:12379 \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC --allow-privileged=true \
  --client-ca-file="$PKI/ca.crt" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --profiling=false --v=1

wait_for "containerd" ctr --address "$CONTAINERD_SOCK" version
# The cluster's own images are imported; solutions' images are pulled from
# the chart's registry when a test installs it (see certs.d above).
for t in "$PAUSE_DIR/image.tar" "$COREDNS_DIR/image.tar"; do
  ctr_k8s images import "$t" >/dev/null
done

wait_for kube-apiserver kc get --raw /readyz

start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$CONF/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$CONF/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$CONF/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
  --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --profiling=false --v=1

start kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$CONF/scheduler.kubeconfig" \
  --authentication-kubeconfig="$CONF/scheduler.kubeconfig" \
  --authorization-kubeconfig="$CONF/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1

mkdir -p "$CLUSTER_DIR/kubelet" "$CLUSTER_DIR/pod-logs" "$CLUSTER_DIR/kubelet-plugins"
cat >"$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$PKI/kubelet-serving.crt"
tlsPrivateKeyFile: "$PKI/kubelet-serving.key"
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
cgroupDriver: cgroupfs
# This machine has cgroup v1 (hybrid), in maintenance since 1.31.
failCgroupV1: false
failSwapOn: false
# No CAP_SYS_RESOURCE here (see containerd's restrict_oom_score_adj).
oomScoreAdj: 0
clusterDNS: ["$DNS_IP"]
clusterDomain: cluster.local
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
podLogsDir: "$CLUSTER_DIR/pod-logs"
volumePluginDir: "$CLUSTER_DIR/kubelet-plugins"
# Imported images cannot be pulled again: never collect them. The machine
# is shared, so do not evict pods over what others use of it either.
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
serializeImagePulls: false
EOF
start kubelet "$K8S_BIN/kubelet" \
  --config="$CONF/kubelet.yaml" --kubeconfig="$CONF/kubelet.kubeconfig" \
  --root-dir="$CLUSTER_DIR/kubelet" \
  --hostname-override="$NODE_NAME" --node-ip="$HOST_IP" --v=1

cat >"$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$CONF/kube-proxy.kubeconfig"}
mode: iptables
clusterCIDR: "$CLUSTER_CIDR"
hostnameOverride: "$NODE_NAME"
oomScoreAdj: 0
# Leave the host's conntrack settings alone (0 means: do not set).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
# Node ports on the primary address only: no route_localnet change.
nodePortAddresses: [primary]
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
start kube-proxy "$K8S_BIN/kube-proxy" --config="$CONF/kube-proxy.yaml" --v=1

# RBAC for the components that have no built-in role.
kc apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "aim:kube-router"}
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, endpoints, nodes]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "aim:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "aim:kube-router"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "aim:kube-router"}
EOF

wait_for "node $NODE_NAME registered" kc get node "$NODE_NAME"
start kube-router "$KUBE_ROUTER_DIR/kube-router" \
  --kubeconfig="$CONF/kube-router.kubeconfig" --hostname-override="$NODE_NAME" \
  --run-firewall=true --run-router=false --run-service-proxy=false \
  --enable-ipv4=true --enable-ipv6=false \
  --service-cluster-ip-range="$SERVICE_CIDR" --health-port=20244 --metrics-port=0 --v=1

# CoreDNS: the cluster's DNS, as a Deployment behind the kube-dns Service.
kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  # No "loop" plugin: with no upstream reachable from here, a forward
  # failing is expected and must not stop CoreDNS.
  Corefile: |
    .:53 {
        errors
        health {
            lameduck 5s
        }
        ready
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        forward . /etc/resolv.conf
        cache 30
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: Never
        args: ["-conf", "/etc/coredns/Corefile"]
        resources:
          requests: {cpu: 50m, memory: 50Mi}
          limits: {memory: 170Mi}
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        - {name: metrics, containerPort: 9153, protocol: TCP}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          periodSeconds: 10
          failureThreshold: 5
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap:
          name: coredns
          items: [{key: Corefile, path: Corefile}]
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: $DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
EOF

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_for "node $NODE_NAME Ready" node_ready
# Pods created before the default ServiceAccount exists are refused.
wait_for "the default ServiceAccount" kc -n default get serviceaccount default
wait_for "kube-router's firewall" curl -fsS http://127.0.0.1:20244/healthz

# dns_query NAME: asks the kube-dns Service for NAME's A record, through
# kube-proxy's rules as a pod would, with bash's /dev/udp (no dig needed);
# prints the first address of the answer.
dns_query() {
  local name=$1 q="" label
  for label in ${name//./ }; do
    q+=$(printf '\\x%02x' "${#label}")$label
  done
  # ID 0xa1a1, recursion desired, one question, type A, class IN. Written
  # to a file first: bash's printf writes a string with NULs in several
  # pieces, and each piece would be a datagram of its own.
  printf "\xa1\xa1\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00${q}\x00\x00\x01\x00\x01" >"$CLUSTER_DIR/run/dns-query"
  exec 3<>"/dev/udp/$DNS_IP/53"
  cat "$CLUSTER_DIR/run/dns-query" >&3
  local answer
  answer=$(timeout 2 dd bs=512 count=1 <&3 2>/dev/null | od -An -tu1 -v | tr -s ' \n' ' ')
  exec 3<&-
  # Header: byte 3's low bits are the RCODE, bytes 6-7 the answer count;
  # the last 4 bytes of a one-record A answer are the address.
  set -- $answer
  [ $# -gt 16 ] && [ $(($4 & 15)) = 0 ] && [ $(($7 * 256 + $8)) -ge 1 ] || return 1
  local n=$#
  echo "${@:n-3:1}.${@:n-2:1}.${@:n-1:1}.${@:n:1}"
}
dns_answers() { [ "$(dns_query kubernetes.default.svc.cluster.local)" = "$KUBERNETES_SVC_IP" ]; }
wait_for "CoreDNS (kubernetes.default.svc.cluster.local -> $KUBERNETES_SVC_IP)" dns_answers

trap - EXIT
log "cluster up in $((SECONDS - start_time)) s; export KUBECONFIG=$KUBECONFIG_ADMIN"
