#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost, for tests and CI (GitHub issue 4).
#
#   bash slurm/local-cluster.sh up [--timeout S]   # start munged, MariaDB, slurmdbd, slurmctld, slurmd
#   bash slurm/local-cluster.sh status             # which daemons run; sinfo and squeue
#   bash slurm/local-cluster.sh down [--purge]     # stop them by PID in reverse order; --purge: rm state
#   bash slurm/local-cluster.sh paths              # state dir, env file, ports, sockets (starts nothing)
#   bash slurm/local-cluster.sh env                # the export lines of the env file (starts nothing)
#
# Everything (configs, keys, database, spool, logs, pid files, sockets) lives under one state
# directory derived from this checkout, so two checkouts on one machine never share daemons or
# state: <checkout>/.slurm-state (git-ignored), or /tmp/kanscale-slurm-<uid>-<hash of the
# checkout path> when the checkout path is too long for unix socket paths (108 bytes). The ports
# are derived from the state dir too. Nothing is written to /etc or /run. Clients find the cluster
# through SLURM_CONF: `up` prints the export line and writes $STATE/env.sh to source.
# Daemons run as the calling user (root in CI). Debian packages needed:
#   apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge slurmdbd mariadb-server
# Knobs (environment): KANSCALE_SLURM_DIR (the state dir), KANSCALE_SLURM_CPUS (CPUs declared for
# the node, default max(nproc, 4)), KANSCALE_SLURM_PORT_BASE (slurmctld=base, slurmd=+1,
# slurmdbd=+2, mariadb=+3; default 20000 + 4 * (hash of the state dir mod 3000), i.e. in
# 20000-31999: off the standard 6817-6819 and below Linux's ephemeral ports).
set -euo pipefail

CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
default_state_dir() {
    local dir=$CHECKOUT/.slurm-state
    # The longest socket path under the state dir is $STATE/munge/munge.socket (+19 bytes).
    if ((${#dir} > 80)); then
        dir=/tmp/kanscale-slurm-$(id -u)-$(printf '%s' "$CHECKOUT" | cksum | cut -d' ' -f1)
    fi
    echo "$dir"
}
STATE=$(realpath -m "${KANSCALE_SLURM_DIR:-$(default_state_dir)}")  # daemons chdir: keep it absolute
MARKER=$STATE/.kanscale-local-cluster  # `up` claims the directory; `down --purge` removes only claimed ones
ETC=$STATE/etc
RUN=$STATE/run
LOG=$STATE/log
ENV_FILE=$STATE/env.sh
export SLURM_CONF=$ETC/slurm.conf
PORT_BASE=${KANSCALE_SLURM_PORT_BASE:-$((20000 + 4 * ($(printf '%s' "$STATE" | cksum | cut -d' ' -f1) % 3000)))}
CTLD_PORT=$PORT_BASE
SLURMD_PORT=$((PORT_BASE + 1))
DBD_PORT=$((PORT_BASE + 2))
DB_PORT=$((PORT_BASE + 3))
MUNGE_SOCKET=$STATE/munge/munge.socket
DB_SOCKET=$RUN/mariadbd.sock
# Start order; `down` walks it backwards.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

say() { printf 'local-cluster: %s\n' "$*"; }
die() { printf 'local-cluster: ERROR: %s\n' "$*" >&2; exit 1; }

# Print the tail of a log after a failure, so CI output shows why.
die_with_log() {
    local log_file=$1; shift
    printf 'local-cluster: ERROR: %s\n--- last lines of %s ---\n' "$*" "$log_file" >&2
    tail -n 25 "$log_file" >&2 2>/dev/null || true
    printf -- '--- all logs: %s/*.log ---\n' "$LOG" >&2
    exit 1
}

pid_of() {  # pid of a daemon we started and that still runs, else nothing
    local name=$1 pid_file=$RUN/$1.pid pid
    [[ -s $pid_file ]] || return 1
    pid=$(tr -dc 0-9 <"$pid_file")
    [[ -n $pid && -r /proc/$pid/comm ]] || return 1
    # A stale pid file may name a recycled pid: the process must be the daemon itself.
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
    echo "$pid"
}
running() { pid_of "$1" >/dev/null; }
UP_START_NS=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - UP_START_NS) / 1000000)); printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }
log_of() { [[ $1 == mariadbd ]] && echo "$LOG/mariadb.log" || echo "$LOG/$1.log"; }

wait_for() {  # wait_for SECONDS COMMAND... : poll COMMAND every 0.2 s until it succeeds
    local seconds=$1; shift
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

write_configs() {
    local cpus real_mem_mb db_pass
    cpus=${KANSCALE_SLURM_CPUS:-$(($(nproc) > 4 ? $(nproc) : 4))}
    # 90% of physical memory: under what slurmd detects, so the node never drains on "Low RealMemory".
    real_mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    [[ -s $ETC/db.pass ]] || (umask 077; od -An -tx1 -N12 /dev/urandom | tr -d ' \n' >"$ETC/db.pass")
    db_pass=$(cat "$ETC/db.pass")

    cat >"$SLURM_CONF" <<EOF
# Written by slurm/local-cluster.sh; regenerated on every \`up\` from a stopped state.
ClusterName=kanscale
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
# CR_CPU: CPUs are the only consumable, so several 1-cpu jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Trust CPUs=$cpus below even if the machine has fewer cores, so array tests do not queue.
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
# Defaults make arrays wait ~9 s to start and a cancelled job hold its CPU ~30 s.
SchedulerParameters=batch_sched_delay=0,sched_interval=1,sched_min_interval=0,bf_interval=1
KillWait=2
InactiveLimit=0
Waittime=0
MinJobAge=10
ReturnToService=2
JobRequeue=1
# Accounting stays on: without slurmdbd, sacct fails and submitit waits forever on a dead job.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# Connections to slurmdbd take their munge socket from here, not from AuthInfo.
AccountingStoragePass=socket=$MUNGE_SOCKET
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

    # slurmdbd reads slurmdbd.conf next to \$SLURM_CONF and refuses it unless mode 600, owned by SlurmUser.
    (umask 077; cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=$(id -un)
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$db_pass
StorageLoc=slurm_acct_db
EOF
    )
    chmod 600 "$ETC/slurmdbd.conf"
}

start_munged() {
    # munged rejects a key or socket directory writable by group/other.
    install -d -m 755 "$STATE/munge"
    [[ -s $STATE/munge/munge.key ]] || mungekey --create --keyfile="$STATE/munge/munge.key"
    chmod 600 "$STATE/munge/munge.key"
    munged --force --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
        --pid-file="$RUN/munged.pid" --log-file="$LOG/munged.log" \
        --seed-file="$STATE/munge/munged.seed" ||
        die_with_log "$LOG/munged.log" "munged did not start"
    wait_for 10 bash -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'" ||
        die_with_log "$LOG/munged.log" "munge credentials do not round-trip"
}

start_mariadbd() {
    if [[ ! -d $STATE/mysql/mysql ]]; then
        mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$STATE/mysql" \
            --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1 ||
            die_with_log "$LOG/mariadb-install.log" "mariadb-install-db failed"
    fi
    # --no-defaults: ignore /etc/mysql. innodb_lock_wait_timeout=900 is what slurmdbd asks for.
    setsid mariadbd --no-defaults --user="$(id -un)" --datadir="$STATE/mysql" \
        --socket="$DB_SOCKET" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --pid-file="$RUN/mariadbd.pid" --log-error="$LOG/mariadb.log" \
        --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
        </dev/null >>"$LOG/mariadb.log" 2>&1 &
    wait_for 60 mariadb-admin --no-defaults --socket="$DB_SOCKET" ping ||
        die_with_log "$LOG/mariadb.log" "MariaDB did not answer on $DB_SOCKET"
    local db_pass; db_pass=$(cat "$ETC/db.pass")
    mariadb --no-defaults --socket="$DB_SOCKET" <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_pass';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$db_pass';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_pass';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$db_pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

start_slurmdbd() {
    slurmdbd || die_with_log "$LOG/slurmdbd.log" "slurmdbd did not start"
    wait_for 60 sacctmgr -n list cluster ||
        die_with_log "$LOG/slurmdbd.log" "slurmdbd does not answer sacctmgr"
    # Registering the cluster also creates the root account and user; no enforcement is configured.
    if [[ -z $(sacctmgr -n -P list cluster kanscale format=cluster) ]]; then
        sacctmgr -i add cluster kanscale >/dev/null
    fi
}

start_slurmctld() {
    slurmctld -i || die_with_log "$LOG/slurmctld.log" "slurmctld did not start"
    wait_for 30 scontrol ping ||
        die_with_log "$LOG/slurmctld.log" "slurmctld does not answer scontrol ping"
}

start_slurmd() {
    slurmd -N localhost || die_with_log "$LOG/slurmd.log" "slurmd did not start"
}

node_idle() { [[ $(sinfo -h -n localhost -o %T 2>/dev/null) =~ ^(idle|mixed|allocated|completing)$ ]]; }

cmd_up() {
    local timeout=60
    [[ ${1:-} == --timeout ]] && timeout=$2
    local name
    local all_up=1
    for name in "${DAEMONS[@]}"; do running "$name" || all_up=0; done
    if ((all_up)) && node_idle; then
        say "already up (state in $STATE)"
    else
        if [[ -d $STATE && ! -e $MARKER && -n $(ls -A "$STATE") ]]; then
            die "$STATE exists, is not empty and was not made by this script; set KANSCALE_SLURM_DIR"
        fi
        mkdir -p "$ETC" "$RUN" "$LOG" "$STATE/ctld" "$STATE/spool"
        touch "$MARKER"
        chmod 755 "$STATE" "$ETC" "$RUN" "$LOG"
        if ! running slurmdbd && ! running slurmctld && ! running slurmd; then
            write_configs
        fi
        for name in "${DAEMONS[@]}"; do
            if running "$name"; then
                say "$name already running (pid $(pid_of "$name"))"
            else
                "start_$name"
                # Forking daemons write their pid file just after the parent returns.
                wait_for 10 running "$name" ||
                    die_with_log "$(log_of "$name")" "$name is not running after start"
                say "$name started (pid $(pid_of "$name"), $(elapsed))"
            fi
        done
        # ReturnToService=2 returns a node left DOWN by an unclean stop as soon as slurmd registers.
        wait_for "$timeout" node_idle || {
            sinfo -R >&2 || true
            die_with_log "$LOG/slurmd.log" "node not idle after ${timeout} s (see also $LOG/slurmctld.log)"
        }
        say "node localhost idle $(elapsed) after up"
    fi
    cmd_env >"$ENV_FILE"
    say "env file: $ENV_FILE   (source it, or:)"
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop_daemon() {
    local name=$1 pid
    pid=$(pid_of "$name") || { say "$name not running"; rm -f "$RUN/$name.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for 30 bash -c "! kill -0 $pid"; then
        say "$name (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_for 5 bash -c "! kill -0 $pid" || die "$name (pid $pid) survived SIGKILL"
    fi
    rm -f "$RUN/$name.pid"
    say "$name stopped (pid $pid, $(elapsed))"
}

cmd_down() {
    local purge=0 name
    [[ ${1:-} == --purge ]] && purge=1
    # Jobs first: their slurmstepd processes outlive slurmd otherwise.
    if running slurmctld; then
        local job_ids
        mapfile -t job_ids < <(squeue -h -o %i 2>/dev/null || true)
        ((${#job_ids[@]} == 0)) || scancel --full "${job_ids[@]}" || true
        # shellcheck disable=SC2016  # expanded by the inner bash, on every poll
        wait_for 15 bash -c '[[ -z $(squeue -h -t R,CG -o %i) ]]' ||
            say "warning: jobs still running: $(squeue -h -o '%i %T' | tr '\n' ' ')"
        say "cancelled ${#job_ids[@]} job(s) ($(elapsed))"
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_daemon "${DAEMONS[i]}"; done
    if ((purge)); then
        if [[ -e $MARKER ]]; then
            rm -rf "$STATE"
            say "removed $STATE"
        elif [[ -e $STATE ]]; then
            die "$STATE was not made by this script (no $MARKER); not removing it"
        fi
    fi
}

cmd_status() {
    local name pid
    say "state dir $STATE"
    for name in "${DAEMONS[@]}"; do
        if pid=$(pid_of "$name"); then say "$name running (pid $pid)"; else say "$name NOT running"; fi
    done
    if running slurmctld; then
        echo "--- sinfo"; sinfo || true
        echo "--- squeue"; squeue || true
    fi
    echo "export SLURM_CONF=$SLURM_CONF"
}

cmd_env() {  # what env.sh holds. Not KANSCALE_SLURM_DIR: another checkout run from a shell that
    # sourced this file would then take this checkout's state dir and ports.
    printf 'export SLURM_CONF=%s\n' "$SLURM_CONF"
}

cmd_paths() {  # KEY=VALUE lines; starts and writes nothing
    printf '%s\n' "CHECKOUT=$CHECKOUT" "STATE_DIR=$STATE" "SLURM_CONF=$SLURM_CONF" "ENV_FILE=$ENV_FILE" \
        "SLURMCTLD_PORT=$CTLD_PORT" "SLURMD_PORT=$SLURMD_PORT" "SLURMDBD_PORT=$DBD_PORT" \
        "MARIADB_PORT=$DB_PORT" "MUNGE_SOCKET=$MUNGE_SOCKET" "MARIADB_SOCKET=$DB_SOCKET"
}

case ${1:-} in
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    status) cmd_status ;;
    paths) cmd_paths ;;
    env) cmd_env ;;
    *) echo "usage: $0 up [--timeout S] | down [--purge] | status | paths | env" >&2; exit 2 ;;
esac
