//! The gateway's log: JSON lines on standard output, filtered by `PREHOD_LOG`, with pingora's
//! "client went away while sending its header" lines counted instead of written.

/// Installs the JSON logger (once; later calls do nothing).
pub(crate) fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PREHOD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(ClientGone)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_writer(std::io::stdout),
        )
        .try_init();
}

/// pingora logs a client that went away while its request header was read ("Fail to proxy:
/// Downstream ConnectionClosed …, downstream session type: h1") at ERROR, with no hook to say
/// otherwise (`ProxyHttp::suppress_error_log` covers the later phases). Such a line is counted
/// in `prehod_client_disconnects_total{kind="header"}` instead of written, so ERROR stays for
/// what someone must act on.
struct ClientGone;

impl ClientGone {
    fn is_client_gone(event: &tracing::Event<'_>) -> bool {
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    let text = format!("{value:?}");
                    self.0 = text.starts_with("Fail to proxy: Downstream ")
                        && text.contains("while reading request headers")
                        && text.contains("downstream session type:");
                }
            }
        }
        if *event.metadata().level() != tracing::Level::ERROR {
            return false;
        }
        let mut m = Message(false);
        event.record(&mut m);
        m.0
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ClientGone {
    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        if Self::is_client_gone(event) {
            // Counted, not written (an event raised here would be dropped: tracing does not
            // re-enter a subscriber from inside it).
            prehod_gateway::metrics::count(
                prehod_gateway::metrics::ProcessCount::ClientDisconnect,
                "header",
            );
            return false;
        }
        true
    }
}
