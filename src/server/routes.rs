//! The routes the endpoint serves, listed with links on the status page.

/// Every route and what it answers; kept beside [`super::app`]'s list.
pub(super) const ROUTES: &[(&str, &str)] = &[
    ("/", "this page (also at /status); ?refresh=N seconds, 0 to stop reloading"),
    (
        "/api/v1/system/health",
        "health document (JSON; application/health+json on request); 503 unless healthy or degraded",
    ),
    ("/api/v1/system/health/{check}", "one check's part of it"),
    ("/api/v1/system/boots", "the boot history, newest first (JSON); ?limit=N"),
    ("/livez", "ok while the daemon's main loop runs; ?verbose, ?exclude=probe"),
    ("/livez/{probe}", "one liveness probe: ping, heartbeat"),
    ("/readyz", "ok when the boot gate passed and no critical check fails; ?verbose, ?exclude=check"),
    ("/readyz/{probe}", "one readiness probe: gate or a check"),
    ("/metrics", "Prometheus metrics"),
];
