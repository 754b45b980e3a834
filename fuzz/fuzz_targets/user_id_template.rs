//! The certificate user-id template (`{organization}/{serial_number}`…) with any template and
//! any attribute values: never a panic, and never one id for two different splits of the
//! values around a separator the template uses.
#![no_main]

use libfuzzer_sys::{arbitrary, fuzz_target};
use prehod_identity::cert::expand_user_id_template as expand;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input<'a> {
    template: &'a str,
    serial_number: &'a str,
    common_name: &'a str,
    email: &'a str,
    organization: &'a str,
}

fuzz_target!(|i: Input<'_>| {
    let id = expand(
        i.template,
        i.serial_number,
        i.common_name,
        i.email,
        i.organization,
    );
    if !i.template.contains('{') {
        assert_eq!(
            id.as_deref(),
            Some(i.template),
            "a template without placeholders"
        );
    }
    // `{organization}/{serial_number}`: O `a/b` + serial `c` and O `a` + serial `b/c` must
    // not give the same id; the fuzzer's values must not meet the separator either.
    let t = "{organization}/{serial_number}";
    if let Some(id) = expand(t, i.serial_number, "", "", i.organization) {
        assert_eq!(id.matches('/').count(), 1, "{id}");
    }
});
