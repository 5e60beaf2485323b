#!/bin/sh
# Seeds the shared workspace with the demo project baked into the stub image, once: a
# workspace that holds .seeded is left as the workers left it. Compose runs it as the
# one-shot service `workspace-seed`, Kubernetes as the stub pod's init container.
#
# Started as root with WORKSPACE_OWNER=uid:gid (Compose does, with the workers' PM_UID:PM_GID),
# it then gives the workspace to that user, so workers running as your uid can write the
# demo's files too; only what another user owns is changed. As any other user it only seeds.
set -eu
workspace=${WORKSPACE:-/workspace}
if [ -e "$workspace/.seeded" ]; then
  echo "workspace already seeded"
else
  cp -R /opt/pm-agent/seed/. "$workspace/"
  date -u +%FT%TZ > "$workspace/.seeded"
  echo "workspace seeded with: $(ls /opt/pm-agent/seed | tr '\n' ' ')"
fi
if [ "$(id -u)" = 0 ] && [ -n "${WORKSPACE_OWNER:-}" ]; then
  find "$workspace" -xdev ! -user "${WORKSPACE_OWNER%%:*}" -exec chown "$WORKSPACE_OWNER" {} +
  echo "workspace owned by $WORKSPACE_OWNER (the workers' user)"
fi
