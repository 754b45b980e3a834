//! What the gateway does itself on a portal's host, before (or instead of) forwarding.

pub mod keep_form;
