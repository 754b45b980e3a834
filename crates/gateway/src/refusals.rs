//! Why the gateway refused to take a connection or to hold a request body in memory: the
//! `reason` labels of their metrics. Below both the refusers (`crate::connections::admission`,
//! `crate::budget`) and `crate::metrics`, which declares every label at start.

/// Why a connection was closed at once (the `reason` of `prehod_connections_refused_total`),
/// or a request refused (`Total`, `PerAddress`: of `prehod_requests_refused_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionRefused {
    Total,
    PerAddress,
    Pending,
    PendingPerAddress,
}

impl ConnectionRefused {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionRefused::Total => "total",
            ConnectionRefused::PerAddress => "per_address",
            ConnectionRefused::Pending => "pending",
            ConnectionRefused::PendingPerAddress => "pending_per_address",
        }
    }
}

/// Why a body got no memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyRefused {
    /// Every byte of the budget is reserved.
    Memory,
    /// The client address holds its share (a quarter of the budget).
    PerAddress,
    /// The connection holds `body_buffers_per_connection` bodies already.
    PerConnection,
}

impl BodyRefused {
    pub fn label(self) -> &'static str {
        match self {
            BodyRefused::Memory => "memory",
            BodyRefused::PerAddress => "per_address",
            BodyRefused::PerConnection => "per_connection",
        }
    }
}
