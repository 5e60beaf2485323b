#!/bin/sh
# Entry point of every worker image: run the command (default `python -m $WORKER_MODULE`)
# as the service user, uid/gid 10001.
#
# Started as any uid but root (the image's USER 10001, or your uid under `make up
# PROJECT_DIR=...`) it only execs. Started as root with WORKER_UID=0 (Compose sets it for a
# project folder root owns: the workers run as the folder's owner, or they could not write
# it) it only execs too, as root. Started as root otherwise (the devops service sets
# `user: "0:0"`), it looks at the Docker socket the
# container was given (DOCKER_HOST=unix://..., default /var/run/docker.sock), adds that
# socket's group to the service user's groups, and drops to uid 10001 with no capabilities
# left. The group so comes from the socket itself, whatever started the container
# (`make up`, `docker compose up --scale ...`, `docker stack deploy`), with no variable to
# get right. Why not root throughout or `group_add`: docs/docker.md, "The Docker socket".
set -eu

[ "$#" -gt 0 ] || set -- python -m "${WORKER_MODULE:?WORKER_MODULE is unset: the image was built without WORKER}"

if [ "$(id -u)" != 0 ]; then
  exec "$@"
fi
if [ "${WORKER_UID:-10001}" = 0 ]; then
  echo "worker-entrypoint: running as root (WORKER_UID=0: the project folder is root's)" >&2
  exec "$@"
fi

groups=10001
case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
  unix://*)
    socket=${DOCKER_HOST:-unix:///var/run/docker.sock}
    socket=${socket#unix://}
    if [ -S "$socket" ]; then
      socket_gid=$(stat -c %g "$socket")
      groups="10001,$socket_gid"
      echo "worker-entrypoint: running as uid 10001 with the group of $socket (gid $socket_gid)" >&2
    else
      echo "worker-entrypoint: no Docker socket at $socket; running as uid 10001 without it" >&2
    fi
    ;;
esac
export HOME=/home/pm  # root's HOME is not the service user's
exec setpriv --reuid=10001 --regid=10001 --groups="$groups" --inh-caps=-all --bounding-set=-all -- "$@"
