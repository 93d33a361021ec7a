# Sourced by setup.sh and swarm_lab.sh. A pid file outlives its process when a machine is
# snapshotted or rebooted with /run kept; its number may then belong to another process.
# dockerd then refuses to start ("pid file found, ensure docker is not running"), and a
# teardown that kills the number would kill a stranger. So a pid counts only while
# /proc/PID/comm names the program that wrote the file.

# Prints the pid in FILE when that process is PROGRAM and alive; fails otherwise.
live_pid() {  # FILE PROGRAM
  local file=$1 program=$2 pid comm
  [[ -f $file ]] || return 1
  pid=$(tr -dc 0-9 <"$file")
  [[ -n $pid ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ $comm == "$program" ]] || return 1
  # a zombie (killed, its parent gone, and no init here reaps it) still has its /proc entry
  [[ $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) != Z ]] || return 1
  echo "$pid"
}

# Removes FILE unless its process is PROGRAM.
clear_stale_pidfile() {  # FILE PROGRAM
  local file=$1 program=$2
  [[ -f $file ]] || return 0
  live_pid "$file" "$program" >/dev/null && return 0
  echo "removing the stale pid file $file (its pid $(tr -dc 0-9 <"$file") is not a running $program)" >&2
  rm -f "$file"
}
