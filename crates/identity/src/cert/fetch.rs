//! Downloads of revocation data (CRLs, distribution points, OCSP): an HTTP client that
//! follows no redirect and has a connect and a total timeout for every call, and bodies cut
//! off at [`MAX_FETCH_BYTES`], so that no revocation server can hold a login or a refresh or
//! fill the gateway's memory.

/// The most a CRL or OCSP answer may weigh: a responder that streams without end is cut off.
pub const MAX_FETCH_BYTES: usize = 16 * 1024 * 1024;

/// The HTTP client for revocation data: no redirects, a connect timeout and a total timeout
/// for every call.
pub fn revocation_client(
    connect: std::time::Duration,
    total: std::time::Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect)
        .timeout(total)
        .build()
        .map_err(|e| format!("revocation HTTP client: {e}"))
}

/// Reads a response body, at most [`MAX_FETCH_BYTES`] of it.
pub(crate) async fn bounded_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    if resp
        .content_length()
        .is_some_and(|l| l > MAX_FETCH_BYTES as u64)
    {
        return Err(format!("larger than {MAX_FETCH_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_FETCH_BYTES {
            return Err(format!("larger than {MAX_FETCH_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GETs `url` (http or https only) with the client's timeouts and the size limit.
pub(crate) async fn get(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("not an http(s) URL".into());
    }
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    bounded_body(resp).await
}
