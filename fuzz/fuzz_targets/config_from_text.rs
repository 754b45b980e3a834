//! The config loader (`Config::from_text`) on any text, as if it were `proxy.yaml` in a
//! directory holding a dev PKI (so that file references can resolve), with `${VAR}`
//! references answered for some names: problems are reported, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        prehod_devpki::generate(&dir, &prehod_devpki::dev_server_names("bankart.localhost"))
            .expect("dev PKI");
        dir
    })
}

fuzz_target!(|text: &str| {
    let path = dir().join("proxy.yaml");
    let _ = prehod_config::Config::from_text(&path, text, |name| {
        (name.len() % 2 == 0).then(|| format!("{name}-value"))
    });
});
