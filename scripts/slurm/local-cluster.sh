#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (munged + slurmctld + slurmd, no systemd, no cgroups),
# for trying scripts/slurm/eval-array.sbatch and for k2's Slurm test. Needs root and Debian's
# slurm-wlm and munge (apt-get install -y slurm-wlm munge). Everything lives under DIR.
#
#   scripts/slurm/local-cluster.sh start DIR   # then: export SLURM_CONF=DIR/slurm.conf
#   scripts/slurm/local-cluster.sh stop DIR
set -euo pipefail
cmd=${1:?usage: local-cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: local-cluster.sh start|stop DIR}")

stop() {
  # By the pids in the pid files, never by name: other clusters may run on this machine.
  for f in slurmd.pid slurmctld.pid munge/munged.pid; do
    if [ -s "$dir/$f" ]; then kill "$(cat "$dir/$f")" 2>/dev/null || true; fi
  done
}

case $cmd in
start)
  for tool in munged slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found; apt-get install -y slurm-wlm munge" >&2; exit 2; }
  done
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  chmod 700 "$dir/munge"
  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" 2>>"$dir/log/munged.err"
  host=$(hostname -s)
  port=$((20000 + RANDOM % 20000))
  cat >"$dir/slurm.conf" <<CONF
ClusterName=k2local
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld
  slurmd
  for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
      echo "export SLURM_CONF=$SLURM_CONF"
      exit 0
    fi
    sleep 0.5
  done
  echo "error: the node did not become idle in 30 s; logs in $dir/log" >&2
  sinfo >&2 || true
  tail -n 20 "$dir"/log/*.log >&2 || true
  stop
  exit 1
  ;;
stop) stop ;;
*) echo "usage: local-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
