//! The access log: one JSON line per request (target `prehod::access`), through `tracing`.
//! It never carries cookies, tokens or query secrets.

/// Everything one access-log line says.
pub struct AccessEntry<'a> {
    pub request_id: &'a str,
    pub portal: &'a str,
    pub method: &'a str,
    /// Path and query with secret values redacted.
    pub path: &'a str,
    pub host: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub duration_ms: f64,
    pub upstream: Option<String>,
    pub upstream_error: Option<&'a str>,
    pub auth: &'a str,
    pub client: Option<String>,
}

pub fn write(e: &AccessEntry<'_>) {
    tracing::info!(
        target: "prehod::access",
        request_id = e.request_id,
        portal = e.portal,
        method = e.method,
        path = e.path,
        host = e.host,
        status = e.status,
        bytes = e.bytes,
        duration_ms = e.duration_ms,
        upstream = e.upstream.as_deref().unwrap_or("-"),
        upstream_error = e.upstream_error.unwrap_or("-"),
        auth = e.auth,
        client = e.client.as_deref().unwrap_or("-"),
        "access"
    );
}
