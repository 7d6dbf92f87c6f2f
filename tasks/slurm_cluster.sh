#!/usr/bin/env bash
# Starts a real single-node Slurm cluster (Debian's slurm-wlm + munge) for the distributed-build
# tests and for trying `build_index --distributed=slurm` on one machine. Everything it writes lives
# in one private folder, so the machine's /etc/slurm and /etc/munge are left alone:
#   $AUTOFAISS_SLURM_DIR (default /tmp/autofaiss-slurm)/
#     slurm.conf  munge.key  munge/ (munged's socket, pid, log)  state/  spool/  *.log  *.pid
# Must run as root (slurmctld/slurmd run as root, munged as user munge). Idempotent: when the
# cluster is already up (node idle or mixed/allocated) it prints the SLURM_CONF line and returns at once.
# Prints `export SLURM_CONF=<dir>/slurm.conf` on its last line; clients (sbatch, sinfo, squeue,
# scancel) need that variable.
#   bash tasks/slurm_cluster.sh          start (or check) the cluster
#   bash tasks/slurm_cluster.sh --stop   stop the daemons this folder's pid files name
set -euo pipefail

DIR="${AUTOFAISS_SLURM_DIR:-/tmp/autofaiss-slurm}"
# Ports away from Slurm's defaults (6817/6818), so a machine's own cluster is not disturbed.
CTLD_PORT="${AUTOFAISS_SLURMCTLD_PORT:-16817}"
SLURMD_PORT="${AUTOFAISS_SLURMD_PORT:-16818}"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"

die() { echo "slurm_cluster: $*" >&2; exit 1; }

stop() {
  for name in slurmd slurmctld munge/munged; do
    local pidfile="$DIR/$name.pid"
    if [ -f "$pidfile" ]; then
      local pid
      pid="$(cat "$pidfile")"
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "+ kill $pid ($name)"
        kill "$pid" || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
      rm -f "$pidfile"
    fi
  done
}

if [ "${1:-}" = "--stop" ]; then stop; exit 0; fi

[ "$(id -u)" -eq 0 ] || die "must run as root (slurmctld and slurmd run as root here); current uid $(id -u)"
for bin in munged slurmctld slurmd sinfo sbatch; do
  command -v "$bin" >/dev/null || die "$bin not found: install slurm-wlm and munge (tasks/setup.sh does)"
done
getent passwd munge >/dev/null || die "user munge is missing (the munge package creates it)"

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n 1 | tr -d '*~#' || true; }

ready() {
  case "$(node_state)" in
    idle|mixed|allocated|completing) return 0 ;;
    *) return 1 ;;
  esac
}

if [ -f "$CONF" ] && ready; then
  echo "slurm_cluster: already up ($DIR, node $(node_state))"
  echo "export SLURM_CONF=$CONF"
  exit 0
fi

# Something is half up (a daemon died, or a stale folder from another boot): start clean.
stop
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"
chmod 0755 "$DIR"

# munge: a fresh random key, readable by munge only; munged refuses group/other-accessible keys.
if [ ! -f "$DIR/munge.key" ]; then
  head -c 1024 /dev/urandom > "$DIR/munge.key"
fi
chown munge: "$DIR/munge.key" "$DIR/munge"
chmod 0400 "$DIR/munge.key"
# Clients (slurmctld, slurmd, job steps) reach the socket: the folder must be searchable by all.
chmod 0755 "$DIR/munge"
echo "+ munged (as munge) --socket=$DIR/munge/munge.socket"
runuser -u munge -- munged \
  --key-file="$DIR/munge.key" \
  --socket="$DIR/munge/munge.socket" \
  --pid-file="$DIR/munge/munged.pid" \
  --log-file="$DIR/munge/munged.log" \
  --seed-file="$DIR/munge/munged.seed" \
  || die "munged did not start: $(tail -n 3 "$DIR/munge/munged.log" 2>/dev/null)"

HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB=$(( $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024 ))
# Below the machine's memory (slurmd drains a node that reports less than RealMemory).
REAL_MB=$(( MEM_MB * 8 / 10 ))
# Without a per-CPU default, CR_Core_Memory gives each job the whole node's memory: one job at a time.
DEF_MEM=$(( REAL_MB / CPUS ))

cat > "$CONF" <<EOF
# Written by tasks/slurm_cluster.sh: a one-node test cluster in $DIR.
ClusterName=autofaiss
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol for 5 minutes.
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

echo "+ slurmctld -f $CONF"
slurmctld -f "$CONF" || die "slurmctld did not start: $(tail -n 3 "$DIR/slurmctld.log" 2>/dev/null)"
echo "+ slurmd -f $CONF"
slurmd -f "$CONF" || die "slurmd did not start: $(tail -n 3 "$DIR/slurmd.log" 2>/dev/null)"

for _ in $(seq 150); do
  if ready; then
    echo "slurm_cluster: up ($DIR, node $HOST $(node_state), $CPUS CPUs, ${REAL_MB} MB)"
    echo "export SLURM_CONF=$CONF"
    exit 0
  fi
  sleep 0.2
done
die "node $HOST not idle after 30 s (state: '$(node_state)'); logs: $DIR/slurmctld.log, $DIR/slurmd.log: $(tail -n 3 "$DIR/slurmd.log" 2>/dev/null)"
