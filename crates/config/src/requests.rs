//! What a client's request may be, beyond its syntax: the HTTP methods a portal takes
//! (`portals.NAME.http_methods`) and the memory the request bodies the gateway buffers share
//! (`server.body_buffer_memory`, `server.body_buffers_per_connection`).

/// The HTTP methods a portal takes (`portals.NAME.http_methods`), with the `Allow` header
/// that lists them, built once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpMethods {
    methods: Vec<http::Method>,
    allow: String,
}

impl HttpMethods {
    /// What a portal takes unless it says otherwise: what browsers and single-page
    /// applications send. Not `TRACE` or `CONNECT` (never forwarded), nor WebDAV's.
    pub const DEFAULT: &'static [&'static str] =
        &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

    /// These methods, in this order; `HEAD` goes with `GET` (RFC 9110 §9.3.2) even when it
    /// is not listed.
    pub fn new(methods: Vec<http::Method>) -> Self {
        let mut list: Vec<http::Method> = Vec::with_capacity(methods.len() + 1);
        for m in methods {
            if !list.contains(&m) {
                list.push(m);
            }
            if list.last() == Some(&http::Method::GET) && !list.contains(&http::Method::HEAD) {
                list.push(http::Method::HEAD);
            }
        }
        let allow = list
            .iter()
            .map(http::Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            methods: list,
            allow,
        }
    }

    pub fn allows(&self, method: &http::Method) -> bool {
        self.methods.contains(method)
    }

    /// The value of `Allow` in a 405 answer: `GET, HEAD, POST`.
    pub fn allow(&self) -> &str {
        &self.allow
    }
}

impl Default for HttpMethods {
    fn default() -> Self {
        Self::new(
            Self::DEFAULT
                .iter()
                .filter_map(|m| http::Method::from_bytes(m.as_bytes()).ok())
                .collect(),
        )
    }
}

/// `server.body_buffer_memory` and `server.body_buffers_per_connection`: the memory every
/// request body the gateway holds (rather than streams) shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyBuffers {
    /// Bytes all buffered bodies may take together; a quarter of it is one client address's
    /// share.
    pub memory: u64,
    /// Bodies one connection (its HTTP/2 streams) may have buffered at once.
    pub per_connection: usize,
}

impl Default for BodyBuffers {
    fn default() -> Self {
        Self {
            memory: 16 * 1024 * 1024,
            per_connection: 8,
        }
    }
}
