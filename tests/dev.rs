//! `prehod dev`: generates the PKI when missing, starts the demo portals and the gateway, and
//! prints where everything is. Run here on free ports through `--config`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prehod_test_support::*;

#[test]
fn dev_generates_the_pki_and_serves_the_demo_portals() {
    let dir = tempfile::tempdir().expect("tmp");
    let certs = dir.path().join("certs");
    let (https, admin) = (free_port(), free_port());
    let portals: Vec<u16> = PORTALS.iter().map(|_| free_port()).collect();
    let mut yaml = format!(
        "listen:\n  https: 127.0.0.1:{https}\nadmin:\n  listen: 127.0.0.1:{admin}\ntls:\n  certificates:\n    - cert: ${{PREHOD_DEV_CERTS}}/server.crt\n      key: ${{PREHOD_DEV_CERTS}}/server.key\nserver:\n  grace_period: 1s\nportals:\n"
    );
    for (name, port) in PORTALS.iter().zip(&portals) {
        let own = if matches!(*name, "ecmsweb" | "bankomati") {
            "    app_login: own\n"
        } else {
            ""
        };
        yaml.push_str(&format!(
            "  {name}:\n    host: {}\n    title: {name} demo\n{own}    danger_no_authentication: true\n    upstream:\n      urls: [http://127.0.0.1:{port}]\n",
            host(name)
        ));
    }
    let config = dir.path().join("dev.yaml");
    std::fs::write(&config, yaml).expect("write");
    let mut child = Command::new(prehod_bin())
        .arg("dev")
        .arg("--config")
        .arg(&config)
        .arg("--certs")
        .arg(&certs)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start prehod dev");

    let admin_addr = format!("127.0.0.1:{admin}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(admin_addr, "/readyz").map(|r| r.0) != Some(200) {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "prehod dev exited"
        );
        assert!(Instant::now() < deadline, "prehod dev did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(certs.join("ca.crt").exists() && certs.join("clients/valid.crt").exists());

    // A demo portal behind the gateway, over real TLS with the generated CA.
    let sni = host("acq");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", https)).expect("connect");
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).expect("tls");
    b.set_ca_file(certs.join("ca.crt")).expect("ca");
    let mut tls = b
        .build()
        .connect(&sni, tcp)
        .expect("handshake with the dev CA");
    use std::io::Write;
    write!(
        tls,
        "GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut page = String::new();
    let _ = tls.read_to_string(&mut page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("acq demo") && page.contains("Request headers the portal received"));

    let _ = child.kill();
    let _ = child.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(
        out.contains(&format!("https://acq.bankart.localhost:{https}/")),
        "{out}"
    );
    assert!(
        out.contains("then the app's own login: demo / demo123"),
        "{out}"
    );
    assert!(out.contains("generated the dev PKI"), "{out}");
}
