// Railway Infrastructure as Code for prefect-cycle: where Railway reads the
// cron service's settings since Config as Code (railway.toml) stopped being
// read on 2026-12-01. The Railway CLI evaluates this file with Node and applies
// the difference to the linked environment:
//
//   railway config plan     # what would change (variable values hidden)
//   railway config apply    # apply it, after a confirmation
//
// The example has three resources: the cycle (a cron service built from this
// repository's Dockerfile), a Prefect server and its PostgreSQL. With Prefect
// Cloud, or a server of your own, delete `server` and `db` below and set
// PREFECT_API_URL to its API and PREFECT_API_KEY (preserve() here) in the
// dashboard.
// README, "Railway", gives the same settings for the dashboard. `apply` deletes
// what this file does not declare (after a confirmation): in a project with
// more services, `railway config pull` first and add these resources to it.
//
// The CLI runs Node >= 22.6 from PATH: `scripts/setup.sh` puts one in
// .railway/node_modules/.bin with the pinned SDK. tests/e2e/test_railway.py
// type-checks this file with the SDK's types (`tsc --noEmit`), evaluates it the
// way the CLI does, checks each setting, and keeps ../railway.toml in agreement.
import { defineRailway, postgres, preserve, project, service, volume } from "railway/iac";

// The schedule, in UTC. Railway's shortest interval is 5 minutes and a start
// can be a few minutes late; PREFECT_WAIT_TIMEOUT_SECONDS below leaves room.
const CRON_SCHEDULE = "*/15 * * * *";

// Seconds between Railway's SIGTERM and its SIGKILL when a deploy replaces or
// stops a running cycle (Railway's default is 0: SIGKILL at once, the runs are
// neither stopped nor reported and the pool stays resumed). The cycle gives its
// flow processes PREFECT_CYCLE_GRACE_SECONDS (20) between their SIGTERM and
// SIGKILL, then reports the stopped runs and pauses the pool (about 10-15 s):
// 40 = 20 + 15 + 5 s of slack. Raise it with the grace.
const DRAINING_SECONDS = 40;

// An optional volume for the install cache (PREFECT_CYCLE_CACHE_DIR defaults to
// a folder under RAILWAY_VOLUME_MOUNT_PATH when Railway mounts one). Railway
// mounts volumes as root and the image runs as uid 10001, so a volume also
// needs RAILWAY_RUN_UID=0 (set below when this is true).
const CACHE_VOLUME = false;
const CACHE_MOUNT_PATH = "/var/lib/prefect-cycle";

export default defineRailway(() => {
  const db = postgres("postgres");

  // Prefect's own image, with the FastAPI its 3.8 server works with (see
  // scripts/setup.sh). The start command replaces the image's ENTRYPOINT.
  const server = service("prefect-server", {
    source: { image: "prefecthq/prefect:3.8.8-python3.12" },
    start:
      '/bin/sh -c "pip install --no-cache-dir fastapi==0.150.0 && exec prefect server start --host :: --port 4200"',
    healthcheck: "/api/health",
    replicas: 1,
    env: {
      PREFECT_SERVER_DATABASE_DRIVER: "postgresql+asyncpg",
      PREFECT_SERVER_DATABASE_HOST: db.env.PGHOST,
      PREFECT_SERVER_DATABASE_PORT: db.env.PGPORT,
      PREFECT_SERVER_DATABASE_USER: db.env.PGUSER,
      PREFECT_SERVER_DATABASE_PASSWORD: db.env.PGPASSWORD,
      PREFECT_SERVER_DATABASE_NAME: db.env.PGDATABASE,
      PREFECT_SERVER_ANALYTICS_ENABLED: "false",
      PORT: "4200",
      // "user:password" for the API and the UI: set it in the dashboard.
      PREFECT_SERVER_API_AUTH_STRING: preserve(),
    },
  });

  const cache = CACHE_VOLUME ? volume("prefect-cycle-cache") : undefined;

  const cycle = service("prefect-cycle", {
    // No source: connect this repository to the service in the dashboard (or
    // add `source: github("you/prefect-cycle")`); Railway builds its Dockerfile.
    build: { builder: "DOCKERFILE", dockerfilePath: "Dockerfile" },
    deploy: {
      cronSchedule: CRON_SCHEDULE,
      // A cycle that exited is done: a restart would be a second cycle.
      restartPolicyType: "NEVER",
      drainingSeconds: DRAINING_SECONDS,
      // Never two cycles at once: the old deployment stops before a new one runs.
      overlapSeconds: 0,
    },
    // One container: a second replica would be a second cycle on the same pool.
    replicas: 1,
    ...(cache ? { volumeMounts: { [CACHE_MOUNT_PATH]: cache } } : {}),
    env: {
      PREFECT_API_URL: "http://${{prefect-server.RAILWAY_PRIVATE_DOMAIN}}:4200/api",
      PREFECT_API_AUTH_STRING: server.env.PREFECT_SERVER_API_AUTH_STRING,
      // Prefect Cloud instead of the server above: set it in the dashboard.
      PREFECT_API_KEY: preserve(),
      PREFECT_WORK_POOL: "etl",
      // */15 is 900 s: leave the cycle's start-up and a late start (a few
      // minutes) before the next run is due.
      PREFECT_WAIT_TIMEOUT_SECONDS: "600",
      // A token for private flow repositories (PREFECT_WORKER_REPOSITORY).
      GITHUB_ACCESS_TOKEN: preserve(),
      ...(cache ? { RAILWAY_RUN_UID: "0" } : {}),
    },
  });

  return project("prefect-cycle", {
    resources: cache ? [db, server, cycle, cache] : [db, server, cycle],
  });
});
