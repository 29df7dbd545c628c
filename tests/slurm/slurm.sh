#!/usr/bin/env bash
# A real single-node SLURM cluster for the integration test, from Debian's packages.
#
#   tests/slurm/slurm.sh install   apt-get install slurmctld slurmd slurm-client munge (if missing)
#   tests/slurm/slurm.sh start DIR write DIR/slurm.conf, start munged, slurmctld, slurmd; wait until the node is idle
#   tests/slurm/slurm.sh stop DIR  stop the daemons started by 'start' (by the PIDs it recorded)
#
# Clients find the cluster with SLURM_CONF=DIR/slurm.conf. No accounting daemon runs, so
# Snakemake's SLURM executor must poll with squeue (conf/profiles/slurm does).
set -euo pipefail
cmd=${1:?usage: $0 install|start DIR|stop DIR}

case "$cmd" in
install)
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
  fi
  ;;
start)
  dir=$(realpath -m "${2:?usage: $0 start DIR}")
  mkdir -p "$dir"/{ctld,d,log,munge}
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$dir/slurm.conf" <<CONF
ClusterName=spectral-test
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$((20000 + RANDOM % 10000))
SlurmdPort=$((30000 + RANDOM % 10000))
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# keep finished jobs in the controller for a day (default 300 s): the test asks scontrol
# about every job once the whole workflow is done, which takes longer on a loaded machine
MinJobAge=86400
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  # job steps (srun inside a batch job) look for the default path, not SLURM_CONF:
  # link it there unless a cluster is configured on this machine already
  if [ ! -e /etc/slurm/slurm.conf ]; then
    mkdir -p /etc/slurm
    ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
    echo linked > "$dir/conf.linked"
  fi
  # munge: our own socket, key and pid under DIR, so a system munged (if any) is left alone
  [ -s "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  if [ ! -S /run/munge/munge.socket.2 ]; then
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    munged --force --key-file "$dir/munge/munge.key" --pid-file "$dir/munged.pid"
    echo started > "$dir/munged.started"
  fi
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 60); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)
    case "$state" in idle*|mix*) echo "slurm up: node $host $state (SLURM_CONF=$SLURM_CONF)"; exit 0 ;; esac
    sleep 1
  done
  echo "slurm did not come up; logs:" >&2
  tail -n 20 "$dir"/log/*.log >&2 || true
  exit 1
  ;;
stop)
  dir=$(realpath -m "${2:?usage: $0 stop DIR}")
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
    [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  if [ -f "$dir/conf.linked" ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$dir/slurm.conf" ]; then
    rm -f /etc/slurm/slurm.conf "$dir/conf.linked"
  fi
  if [ -f "$dir/munged.started" ] && [ -s "$dir/munged.pid" ]; then
    kill "$(cat "$dir/munged.pid")" 2>/dev/null || true
  fi
  ;;
*)
  echo "usage: $0 install|start DIR|stop DIR" >&2; exit 1 ;;
esac
