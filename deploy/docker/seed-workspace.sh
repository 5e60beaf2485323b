#!/bin/sh
# Seeds the shared workspace with the demo project baked into the stub image, once: a
# workspace that holds .seeded is left as the workers left it. Compose runs it as the
# one-shot service `workspace-seed`, Kubernetes as the stub pod's init container.
set -eu
workspace=${WORKSPACE:-/workspace}
if [ -e "$workspace/.seeded" ]; then
  echo "workspace already seeded"
else
  cp -R /opt/pm-agent/seed/. "$workspace/"
  date -u +%FT%TZ > "$workspace/.seeded"
  echo "workspace seeded with: $(ls /opt/pm-agent/seed | tr '\n' ' ')"
fi
