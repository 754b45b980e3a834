//! The return-URL check: where the gateway may send a browser back to after a login. Pure (no
//! pingora), so the fuzz targets compile this file on its own.

use std::collections::HashMap;

/// A `return` URL is accepted only if it is https, carries no user or password, names one of
/// `portal_hosts` and the gateway's `public_port`: never an open redirect. Returns it
/// normalised, and its portal's index.
pub fn accepted(
    value: &str,
    portal_hosts: &HashMap<String, usize>,
    public_port: Option<u16>,
) -> Option<(String, usize)> {
    let url = url::Url::parse(value).ok()?;
    if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let portal = *portal_hosts.get(url.host_str()?)?;
    if url.port() != public_port {
        return None;
    }
    Some((url.to_string(), portal))
}
