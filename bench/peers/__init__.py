"""bench/peers: the same no-op job on our stub and on the queues users know, side by side.

SAQ and Celery on Redis, procrastinate on PostgreSQL (both servers from Debian, started by
the bench on free loopback ports in scratch folders), and our stub with real pm_worker
processes on whichever board backends the stub has. Each worker is one process running one
job at a time; every fleet is gated (all workers connected and idle) before jobs are
released; the systems take turns in interleaved rounds; CPU comes from /proc. The table of
issue 26 lands in bench/results (section `peers` of `python -m bench`).

Modules: servers (Redis, PostgreSQL), proc (process-tree CPU), base (what a system offers),
ours / redis_peers / pg_peers (the columns), *_jobs (the peers' worker-side job code),
stamps (job start times), rounds (the measurement), section (the entry), table (markdown).
"""
