//! Every route the endpoint serves, in one table: [`super::app`] builds the router from
//! it, and the status page lists it. A route added here is served and listed, or the
//! build fails (every [`Handler`] must be wired in `app`).

/// The method a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Which handler answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Page,
    Health,
    Component,
    Run,
    Events,
    Boots,
    Service,
    Livez,
    LivezOne,
    Readyz,
    ReadyzOne,
    Metrics,
}

/// One route: how it is asked for, what answers it, and what it answers, for the page.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: Handler,
    pub about: &'static str,
}

const fn route(method: Method, path: &'static str, handler: Handler, about: &'static str) -> Route {
    Route { method, path, handler, about }
}

/// Every route, in the order the page lists them.
pub static ROUTES: &[Route] = &[
    route(Method::Get, "/", Handler::Page, "this page; ?refresh=N seconds, 0 to stop reloading"),
    route(Method::Get, "/status", Handler::Page, "this page, under a second name"),
    route(
        Method::Get,
        "/api/v1/system/health",
        Handler::Health,
        "health document (JSON; application/health+json on request); 503 unless healthy or degraded",
    ),
    route(Method::Get, "/api/v1/system/health/{check}", Handler::Component, "one check's part of it"),
    route(
        Method::Post,
        "/api/v1/system/health/{check}/run",
        Handler::Run,
        "runs that check now (only with server.allow_run)",
    ),
    route(Method::Get, "/api/v1/system/events", Handler::Events, "status changes as Server-Sent Events"),
    route(Method::Get, "/api/v1/system/boots", Handler::Boots, "the boot history, newest first (JSON); ?limit=N"),
    route(
        Method::Get,
        "/api/v1/system/services/{name}",
        Handler::Service,
        "one systemd unit's state, as patch managers poll for it (JSON)",
    ),
    route(Method::Get, "/livez", Handler::Livez, "ok while the daemon's main loop runs; ?verbose, ?exclude=probe"),
    route(Method::Get, "/livez/{probe}", Handler::LivezOne, "one liveness probe: ping, heartbeat"),
    route(
        Method::Get,
        "/readyz",
        Handler::Readyz,
        "ok when the boot gate passed and no critical check fails; ?verbose, ?exclude=check",
    ),
    route(Method::Get, "/readyz/{probe}", Handler::ReadyzOne, "one readiness probe: gate or a check"),
    route(Method::Get, "/metrics", Handler::Metrics, "Prometheus metrics"),
];
