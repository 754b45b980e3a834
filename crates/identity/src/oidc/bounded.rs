//! Every answer of the provider is read through here, up to [`MAX_ANSWER`] bytes: a hostile
//! (or man-in-the-middled) provider cannot make the gateway hold a body of any size in memory
//! per login. A longer answer is the provider's error, never read on.

use super::OidcError;

/// The largest answer read from the provider (discovery, JWKS, PAR, token, userinfo). Rekono's
/// are a few KiB; the largest, a JWKS of many RSA keys, stays far below.
pub(super) const MAX_ANSWER: usize = 64 * 1024;

/// The body of `resp`, at most `MAX_ANSWER` bytes; `what` names the endpoint in the error.
pub(super) async fn read_body(
    mut resp: reqwest::Response,
    what: &str,
) -> Result<Vec<u8>, OidcError> {
    read_at_most(&mut resp, MAX_ANSWER)
        .await
        .map_err(|e| match e {
            TooLong::Read(e) => OidcError::Unavailable(format!("{what}: {e}")),
            TooLong::Over(limit) => {
                OidcError::Refused(format!("{what}: the answer is longer than {limit} bytes"))
            }
        })
}

/// Why a body was not read.
pub(super) enum TooLong {
    Read(reqwest::Error),
    Over(usize),
}

/// The body of `resp` if it is at most `limit` bytes: a longer `Content-Length` is refused
/// before any of it is read, and a body without one is cut as soon as it passes `limit`.
pub(super) async fn read_at_most(
    resp: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, TooLong> {
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(TooLong::Over(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(TooLong::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(TooLong::Over(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The provider's HTTP client as `openidconnect` calls it (discovery, the token request with
/// a client secret), answers read through [`read_at_most`]; remembers the last answer's
/// status (0 when there was none), which decides what a failed token request means.
pub(super) struct BoundedHttp<'a> {
    pub(super) http: &'a reqwest::Client,
    pub(super) status: std::sync::atomic::AtomicU16,
}

impl<'a> BoundedHttp<'a> {
    pub(super) fn new(http: &'a reqwest::Client) -> Self {
        Self {
            http,
            status: std::sync::atomic::AtomicU16::new(0),
        }
    }

    /// The last answer's status; 0 when there was none.
    pub(super) fn status(&self) -> u16 {
        self.status.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for BoundedHttp<'_> {
    type Error = openidconnect::HttpClientError<reqwest::Error>;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, Self::Error>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let mut response = self.http.execute(request).await.map_err(Box::new)?;
            self.status.store(
                response.status().as_u16(),
                std::sync::atomic::Ordering::Relaxed,
            );
            let mut builder = openidconnect::http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = read_at_most(&mut response, MAX_ANSWER)
                .await
                .map_err(|e| match e {
                    TooLong::Read(e) => openidconnect::HttpClientError::Reqwest(Box::new(e)),
                    TooLong::Over(limit) => openidconnect::HttpClientError::Other(format!(
                        "the answer is longer than {limit} bytes"
                    )),
                })?;
            builder
                .body(body)
                .map_err(openidconnect::HttpClientError::Http)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{read_at_most, TooLong};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one answer of `body_len` bytes, with or without `Content-Length` (then until
    /// the connection closes); returns its URL.
    async fn serve(body_len: usize, content_length: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let head = match content_length {
                true => format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {body_len}\r\nconnection: close\r\n\r\n"
                ),
                false => "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_owned(),
            };
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&vec![b'a'; body_len]).await;
        });
        url
    }

    #[tokio::test]
    async fn an_answer_is_read_up_to_the_limit_and_no_further() {
        for content_length in [true, false] {
            let mut resp = reqwest::get(serve(1000, content_length).await)
                .await
                .unwrap();
            let body = read_at_most(&mut resp, 1000).await.ok().unwrap();
            assert_eq!(body.len(), 1000);
            let mut resp = reqwest::get(serve(1 << 20, content_length).await)
                .await
                .unwrap();
            match read_at_most(&mut resp, 1000).await {
                Err(TooLong::Over(1000)) => {}
                Err(TooLong::Read(e)) => panic!("{e}"),
                Err(TooLong::Over(n)) => panic!("limit {n}"),
                Ok(b) => panic!("read {} bytes (Content-Length: {content_length})", b.len()),
            }
        }
    }
}
