#!/usr/bin/env bash
# The fleet as a Swarm stack: deploy it and wait until it is healthy, or take it down in order.
#
#   deploy/swarm/stack.sh up   STACK STACK_FILE   # make stack-up   (renders STACK_FILE first)
#   deploy/swarm/stack.sh down STACK              # make stack-down
#
# up: `docker stack deploy` with the local images (no registry is asked: single-node swarm
# runs what `docker compose build` made), then waits until every long-running service has
# all its replicas running; Swarm counts a task with a health check as running only once it
# is healthy. One-shot services (restart condition `none`, the workspace seed) are not waited for.
#
# down: Swarm has no stop order, and removing a service removes its DNS name at once: a bare
# `docker stack rm` stops the stub while the workers still need it to give back their tasks
# (each such task stays in progress until its lease runs out after the next deploy). So the
# workers go first: every service but the stub is scaled to 0 and waited for (SIGTERM: each
# worker finishes its task within SHUTDOWN_GRACE_SECONDS or releases it), then the stack is
# removed and waited for until none of its containers or networks is left. Volumes are kept.
#
# STACK_WAIT_SECONDS (default 300) bounds each wait.
set -euo pipefail

wait_seconds=${STACK_WAIT_SECONDS:-300}
log() { echo "stack: $*" >&2; }
die() { echo "stack: $*" >&2; exit 1; }

require_manager() {
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null) \
    || die "no Docker engine answers (docker info failed)"
  [ "$state" = "active true" ] || die "this engine is not a swarm manager (swarm: ${state% *}): run \`docker swarm init\` first (one machine: \`docker swarm init --advertise-addr 127.0.0.1\`)"
}

# name desired running one-shot, one line per service of the stack
service_table() {
  local stack=$1 name
  for name in $(docker stack services --format '{{.Name}}' "$stack" 2>/dev/null); do
    docker service inspect --format \
      '{{.Spec.Name}} {{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}} {{.Spec.TaskTemplate.RestartPolicy.Condition}}' "$name"
  done
}

running_tasks() {
  docker service ps --filter desired-state=running --format '{{.CurrentState}}' "$1" 2>/dev/null | grep -c '^Running' || true
}

wait_healthy() {
  local stack=$1 deadline=$((SECONDS + wait_seconds)) pending name desired condition
  while :; do
    pending=""
    while read -r name desired condition; do
      [ -n "$name" ] || continue
      [ "$condition" = none ] && continue  # one-shot: runs once, is not waited for
      if [ "$desired" = global ] || [ "$(running_tasks "$name")" -lt "$desired" ]; then
        pending="$pending $name"
      fi
    done < <(service_table "$stack")
    [ -z "$pending" ] && { log "$stack: every service is running and healthy"; return 0; }
    if [ "$SECONDS" -ge "$deadline" ]; then
      docker stack ps --no-trunc --format '{{.Name}} {{.CurrentState}} {{.Error}}' "$stack" >&2 || true
      die "$stack: not healthy after ${wait_seconds}s:$pending (tasks above; logs: docker service logs <name>)"
    fi
    sleep 1
  done
}

up() {
  local stack=$1 file=$2
  require_manager
  [ -s "$file" ] || die "no stack file $file (make stack-up renders it from docker-compose.yml)"
  # --resolve-image never: the images are this engine's own builds; asking a registry for
  # their digests fails where none answers, and would pin another image where one does.
  docker stack deploy --detach=true --quiet --resolve-image never --prune -c "$file" "$stack"
  log "$stack deployed; waiting until it is healthy (up to ${wait_seconds}s)"
  wait_healthy "$stack"
}

down() {
  local stack=$1 deadline name workers=()
  require_manager
  if [ -z "$(docker stack services --quiet "$stack" 2>/dev/null)" ]; then
    log "no stack named $stack"
  else
    for name in $(docker stack services --format '{{.Name}}' "$stack"); do
      [ "$name" = "${stack}_pm-agent" ] || workers+=("$name=0")
    done
    if [ "${#workers[@]}" -gt 0 ]; then
      log "stopping the workers first (each finishes or releases its task): ${workers[*]}"
      docker service scale --detach=true "${workers[@]}" >/dev/null
      deadline=$((SECONDS + wait_seconds))
      for name in "${workers[@]}"; do
        name=${name%=0}
        while [ -n "$(docker ps -q --filter "label=com.docker.swarm.service.name=$name")" ]; do
          [ "$SECONDS" -lt "$deadline" ] || die "$name: containers still running after ${wait_seconds}s"
          sleep 0.5
        done
      done
    fi
    log "removing the stack"
    docker stack rm "$stack" >/dev/null
  fi
  deadline=$((SECONDS + wait_seconds))
  while [ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] \
     || [ -n "$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "$stack: containers or networks still there after ${wait_seconds}s"
    sleep 0.5
  done
  log "$stack removed (its volumes are kept: docker volume ls --filter label=com.docker.stack.namespace=$stack)"
}

case "${1:-}" in
  up) [ "$#" -eq 3 ] || die "usage: $0 up STACK STACK_FILE"; up "$2" "$3" ;;
  down) [ "$#" -eq 2 ] || die "usage: $0 down STACK"; down "$2" ;;
  *) die "usage: $0 up STACK STACK_FILE | down STACK" ;;
esac
