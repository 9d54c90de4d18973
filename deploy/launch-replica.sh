#!/usr/bin/env bash
# Launches one Tessera replica: `mpirun -np N tessera-worker ...` across the
# nodes of a hostfile (or on this machine), one rank per GPU. Rank 0 serves
# gRPC; ranks 1..N-1 follow it. Worker flags go after `--`.
#
# GPUs: each rank picks its GPU from its node-local rank (the worker asks MPI
# for it): local rank k uses visible device k (modulo the visible count).
# This script does not set CUDA_VISIBLE_DEVICES per rank (that would hide the
# other GPUs from the rank's NCCL peer discovery); when CUDA_VISIBLE_DEVICES
# is set here it is exported unchanged to every rank on every node, so each
# node must have those device indices. Give each node exactly as many slots
# in the hostfile as GPUs it lends to the replica.
#
# The command is exec'd: this process becomes mpirun, so a SIGUSR1 sent to it
# drains the replica (mpirun forwards it; rank 0 drains, the others follow),
# while SIGTERM/SIGINT kill the job at once. That makes the script usable as
# a container's entrypoint (PID 1).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch-replica.sh [options] -- [tessera-worker flags]

Launches one tensor-parallel replica (N = --np ranks, one per GPU) with mpirun.

Options:
  --np N               Ranks in the replica (the tensor-parallel size). Default: the
                       sum of slots= in --hostfile, or 1 without one.
  --hostfile FILE      Open MPI hostfile ("node slots=GPUS" lines; see
                       deploy/hostfile.example). Default: this machine only.
  --mpi-interface IF   The network the ranks of a replica across nodes talk over: an
                       interface name or a CIDR (eth0, 10.0.0.0/16; comma-separated
                       for several). Required with a hostfile naming another machine.
  --mpirun-args ARGS   Extra mpirun arguments, one string split on spaces (e.g.
                       "--mca btl_tcp_if_include eth0"). Without --bind-to in them,
                       --bind-to none is added (a rank's CPU threads need more than
                       one core). An MCA parameter set here replaces the script's
                       choice of that parameter (see Transports).
  --worker PATH        tessera-worker binary (the same path on every node).
                       Default: $TESSERA_WORKER_BINARY, else tessera-worker on PATH,
                       else build/worker/tessera-worker of this checkout.
  --mpirun PATH        mpirun to use. Default: $MPIRUN, else mpirun on PATH.
  --dry-run            Print the mpirun command and exit without running it.
  -h, --help           Show this help.

Transports: Open MPI opens only what the replica needs. On one machine (no
hostfile, or one that names only this machine): shared memory between ranks
(--mca btl self,vader) and mpirun's own control channel on loopback
(--mca oob_tcp_if_include lo); no TCP listener on any other interface. Across
machines: shared memory plus TCP, both TCP channels only on --mpi-interface
(--mca btl self,vader,tcp --mca btl_tcp_if_include IF --mca oob_tcp_if_include IF).

Environment exported to every rank (-x): CUDA_VISIBLE_DEVICES when set, every
NCCL_*, OMP_* and TESSERA_* variable, and LD_LIBRARY_PATH. As root, mpirun gets
--allow-run-as-root (prefer running as an ordinary user). Set TESSERA_CLUSTER_TOKEN
(the router's --cluster-token) here for a replica the router reaches over the
network (--host 0.0.0.0): the environment keeps it off the command line.

Drain the replica gracefully: SIGUSR1 to this process (it is mpirun after exec),
or SIGTERM to rank 0, or the Worker.Drain RPC; it exits 0 within the worker's
--shutdown-timeout.

Examples:
  deploy/launch-replica.sh --np 2 -- --dummy tiny --port 50051
  deploy/launch-replica.sh --hostfile deploy/hostfile.example --np 16 --mpi-interface eth0 \
      -- --model /models/Llama-3.1-70B-Instruct --dtype bfloat16 --port 50051
EOF
}

die() {
  echo "launch-replica.sh: $*" >&2
  echo "(launch-replica.sh --help for usage)" >&2
  exit 2
}

np=""
hostfile=""
mpirun_args=""
mpi_interface=""
worker="${TESSERA_WORKER_BINARY:-}"
mpirun="${MPIRUN:-}"
dry_run=0
saw_separator=0

need_value() {  # need_value OPTION REMAINING_ARG_COUNT
  if [ "$2" -lt 2 ]; then die "$1 needs a value"; fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --np) need_value "$1" $#; np="$2"; shift 2 ;;
    --np=*) np="${1#*=}"; shift ;;
    --hostfile) need_value "$1" $#; hostfile="$2"; shift 2 ;;
    --hostfile=*) hostfile="${1#*=}"; shift ;;
    --mpi-interface) need_value "$1" $#; mpi_interface="$2"; shift 2 ;;
    --mpi-interface=*) mpi_interface="${1#*=}"; shift ;;
    --mpirun-args) need_value "$1" $#; mpirun_args="$2"; shift 2 ;;
    --mpirun-args=*) mpirun_args="${1#*=}"; shift ;;
    --worker) need_value "$1" $#; worker="$2"; shift 2 ;;
    --worker=*) worker="${1#*=}"; shift ;;
    --mpirun) need_value "$1" $#; mpirun="$2"; shift 2 ;;
    --mpirun=*) mpirun="${1#*=}"; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) saw_separator=1; shift; break ;;
    *) die "unknown option '$1' (worker flags go after '--')" ;;
  esac
done
if [ "$saw_separator" -eq 0 ]; then
  die "missing '--' before the tessera-worker flags (e.g. -- --dummy tiny --port 50051)"
fi
worker_flags=("$@")

# ---- hostfile: readable, and its slots (when every line gives slots=) -----
hostfile_slots=""
remote_hosts=0  # hosts in the hostfile other than this machine
is_this_machine() {
  case "$1" in
    localhost|localhost.localdomain|127.*|::1|"$(hostname)"|"$(hostname -f 2>/dev/null)") return 0 ;;
  esac
  return 1
}
if [ -n "$hostfile" ]; then
  [ -f "$hostfile" ] || die "--hostfile $hostfile: no such file"
  [ -r "$hostfile" ] || die "--hostfile $hostfile: not readable"
  total=0
  hosts=0
  all_have_slots=1
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"
    read -r -a words <<<"$line" || true
    [ "${#words[@]}" -eq 0 ] && continue
    hosts=$((hosts + 1))
    if ! is_this_machine "${words[0]}"; then remote_hosts=$((remote_hosts + 1)); fi
    slots=""
    for w in "${words[@]:1}"; do
      case "$w" in
        slots=*) slots="${w#slots=}" ;;
      esac
    done
    if [ -z "$slots" ]; then
      all_have_slots=0
    elif ! [[ "$slots" =~ ^[1-9][0-9]*$ ]]; then
      die "--hostfile $hostfile: host ${words[0]}: bad slots=$slots"
    else
      total=$((total + slots))
    fi
  done <"$hostfile"
  [ "$hosts" -gt 0 ] || die "--hostfile $hostfile: no hosts in it"
  if [ "$all_have_slots" -eq 1 ]; then hostfile_slots="$total"; fi
fi

if [ -z "$np" ]; then
  if [ -n "$hostfile" ]; then
    [ -n "$hostfile_slots" ] ||
      die "--np is needed: not every host in $hostfile gives slots="
    np="$hostfile_slots"
  else
    np=1
  fi
fi
[[ "$np" =~ ^[1-9][0-9]*$ ]] || die "--np must be a positive integer, got '$np'"

read -r -a extra_mpirun <<<"$mpirun_args" || true
oversubscribe=0
bind_given=0
user_mca=" "  # the MCA parameters --mpirun-args sets, space-separated
prev=""
for a in "${extra_mpirun[@]}"; do
  case "$a" in
    --oversubscribe|-oversubscribe) oversubscribe=1 ;;
    --bind-to|-bind-to|--bind-to=*) bind_given=1 ;;
  esac
  case "$prev" in
    --mca|-mca|--gmca|-gmca) user_mca+="$a " ;;
  esac
  prev="$a"
done

# ---- transports (see Transports in --help) ---------------------------------
if [ "$remote_hosts" -gt 0 ]; then
  if [ -z "$mpi_interface" ] && [[ "$user_mca" != *" btl_tcp_if_include "* ]]; then
    die "--hostfile $hostfile names other machines: give --mpi-interface IF (the interface" \
        "or CIDR the ranks talk over, e.g. eth0 or 10.0.0.0/16) so Open MPI does not listen" \
        "on every interface"
  fi
  transport=(btl self,vader,tcp btl_tcp_if_include "$mpi_interface" oob_tcp_if_include "$mpi_interface")
else
  [ -z "$mpi_interface" ] || die "--mpi-interface is for replicas across machines (a --hostfile" \
    "naming other hosts); on one machine the ranks use shared memory"
  transport=(btl self,vader oob_tcp_if_include lo)
fi
mca_args=()
for ((i = 0; i < ${#transport[@]}; i += 2)); do
  name="${transport[i]}"
  value="${transport[i + 1]}"
  if [[ "$user_mca" != *" $name "* ]] && [ -n "$value" ]; then
    mca_args+=(--mca "$name" "$value")
  fi
done
if [ -n "$hostfile_slots" ] && [ "$np" -gt "$hostfile_slots" ] && [ "$oversubscribe" -eq 0 ]; then
  die "--np $np is more than the $hostfile_slots slots of $hostfile (one rank per GPU; add" \
      "--mpirun-args --oversubscribe to run more ranks than slots anyway)"
fi

# ---- binaries --------------------------------------------------------------
if [ -z "$mpirun" ]; then
  mpirun="$(command -v mpirun || true)"
  [ -n "$mpirun" ] || die "mpirun not found on PATH (install openmpi-bin, or pass --mpirun)"
elif ! [ -x "$mpirun" ] && ! command -v "$mpirun" >/dev/null; then
  die "--mpirun $mpirun: not an executable"
fi
if [ -z "$worker" ]; then
  worker="$(command -v tessera-worker || true)"
  if [ -z "$worker" ]; then
    worker="$(cd "$(dirname "$0")/.." && pwd)/build/worker/tessera-worker"
  fi
fi
[ -x "$worker" ] || die "tessera-worker binary $worker: not found or not executable" \
  "(build it: cmake --build build --target tessera-worker, or pass --worker PATH)"
case "$worker" in
  /*) ;;
  *) worker="$(cd "$(dirname "$worker")" && pwd)/$(basename "$worker")" ;;  # same path on every node
esac

# ---- the command -----------------------------------------------------------
cmd=("$mpirun" -np "$np")
if [ "$(id -u)" -eq 0 ]; then cmd+=(--allow-run-as-root); fi
if [ -n "$hostfile" ]; then cmd+=(--hostfile "$hostfile"); fi
if [ "$bind_given" -eq 0 ]; then cmd+=(--bind-to none); fi
for var in CUDA_VISIBLE_DEVICES LD_LIBRARY_PATH; do
  if [ -n "${!var+x}" ]; then cmd+=(-x "$var"); fi
done
while IFS= read -r var; do
  cmd+=(-x "$var")
done < <(compgen -e | grep -E '^(NCCL|OMP|TESSERA)_' | sort || true)
cmd+=("${mca_args[@]}" "${extra_mpirun[@]}" "$worker" "${worker_flags[@]}")

if [ "$dry_run" -eq 1 ]; then
  printf '%q ' "${cmd[@]}" | sed 's/ $//'
  echo
  exit 0
fi
printf '+ %s\n' "$(printf '%q ' "${cmd[@]}" | sed 's/ $//')" >&2
exec "${cmd[@]}"
