#!/bin/bash
# A one-node SLURM cluster on this machine, for tests: munge + slurmctld + slurmd, run as root,
# all state in one directory. Debian's slurm-wlm (22.05) and munge must be installed
# (`apt-get install -y slurm-wlm munge`; .ci/run does it).
#
#   tests/slurm_cluster.sh start DIR    # writes DIR/slurm.conf, starts the daemons, waits for the node
#   SLURM_CONF=DIR/slurm.conf sbatch ...
#   tests/slurm_cluster.sh stop DIR     # stops what start started (by the pids it recorded)
#
# The node is the machine itself (CPUs and memory from `slurmd -C`, no GPU); processes are
# tracked without cgroups (proctrack/linuxproc), which containers usually lack.
set -euo pipefail

cmd=${1:?usage: slurm_cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: slurm_cluster.sh start|stop DIR}")

stop() {
  for name in slurmd slurmctld munged; do
    if [[ -f $dir/$name.pid ]]; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

if [[ $cmd == stop ]]; then
  stop
  exit 0
fi
[[ $cmd == start ]] || { echo "usage: slurm_cluster.sh start|stop DIR" >&2; exit 2; }
for exe in munged slurmctld slurmd sbatch; do
  command -v "$exe" >/dev/null || { echo "slurm_cluster.sh: $exe not found (apt-get install -y slurm-wlm munge)" >&2; exit 3; }
done
[[ $(id -u) == 0 ]] || { echo "slurm_cluster.sh: the daemons run as root here" >&2; exit 3; }

mkdir -p "$dir"/{state,spool,munge}
chmod 700 "$dir/munge"
node=$(hostname -s)
# CPUs= and RealMemory= as slurmd measures them (a node that claims more is drained)
hardware=$(slurmd -C | head -1 | grep -o 'CPUs=[0-9]* .*RealMemory=[0-9]*')
# ports from the directory's name hash: two clusters on one machine do not collide
base=$((7000 + $(cksum <<<"$dir" | cut -d' ' -f1) % 2000 * 2))

cat >"$dir/slurm.conf" <<EOF
ClusterName=rlmathtest
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
# tests: schedule and requeue at once (the defaults wait minutes between a requeue and the restart)
MinJobAge=5
SchedulerParameters=sched_interval=2
KillWait=10
NodeName=$node $hardware State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

munged --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" \
  --seed-file="$dir/munge/seed" --force
slurmctld -f "$dir/slurm.conf"
slurmd -f "$dir/slurm.conf"

export SLURM_CONF=$dir/slurm.conf
for _ in $(seq 60); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "$dir/slurm.conf"
    exit 0
  fi
  sleep 1
done
echo "slurm_cluster.sh: the node never became idle; see $dir/*.log" >&2
sinfo -N >&2 || true
stop
exit 1
