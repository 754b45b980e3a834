//! review-reneg: an attacker's review of `SSL_OP_NO_RENEGOTIATION` (1d6efd1d) — attacks on a
//! connection's client certificate through renegotiation and TLS 1.3 post-handshake messages,
//! against the real gateway: TLS 1.2 `R` on every kind of host, every TLS 1.2 suite, with and
//! without SNI and legacy renegotiation (r1); a connection opened before a reload (r2); TLS 1.3
//! `R`, 300 `k` and 300 `K` key updates with post-handshake authentication offered (r3). Every
//! one held: one ServerHello per connection, the identity of its one handshake. Also tried by
//! hand and not kept here (it needs a C program that encrypts a TLS 1.3 record itself): an
//! unsolicited Certificate message after the handshake, with and without `post_handshake_auth`
//! — the gateway answered `unexpected_message` and closed the connection. Run with
//! `--no-capture` to see the evidence.

use std::time::Duration;

use prehod_test_support::login::*;

enum Step {
    Send(Vec<u8>),
    /// Wait until `what` has been printed at least `n` times (10 s).
    Wait(&'static str, usize),
    Sleep(u64),
}

fn get(host: &str) -> Step {
    Step::Send(format!("GET /api/x HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes())
}

/// Runs s_client with `args` (and `-msg`) through `steps`; returns what it printed, stdout
/// then stderr.
fn session(w: &World, args: &[String], steps: Vec<Step>) -> String {
    let mut client = SClient::start(w, args);
    for step in steps {
        match step {
            Step::Send(b) => {
                if !client.send(&b) {
                    break;
                }
            }
            Step::Wait(what, n) => {
                let _ = client.wait(|c| c.count(what) >= n);
            }
            Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(ms)),
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    client.finish()
}

fn cert_args(w: &World, name: &str) -> Vec<String> {
    vec![
        "-cert".into(),
        w.pki
            .path(&format!("clients/{name}.crt"))
            .display()
            .to_string(),
        "-key".into(),
        w.pki
            .path(&format!("clients/{name}.key"))
            .display()
            .to_string(),
    ]
}

fn summary(label: &str, out: &str) -> (usize, usize, usize) {
    let server_hellos = out.lines().filter(|l| l.ends_with(", ServerHello")).count();
    let refusals = out.matches("warning no_renegotiation").count();
    let ok = out.matches("HTTP/1.1 200").count();
    let users: Vec<&str> = out
        .match_indices("<th>x-auth-user</th><td>")
        .map(|(i, m)| {
            let rest = &out[i + m.len()..];
            &rest[..rest.find('<').unwrap_or(0)]
        })
        .collect();
    let status: Vec<&str> = out.lines().filter(|l| l.starts_with("HTTP/1.1 ")).collect();
    println!(
        "[{label}] ServerHello={server_hellos} no_renegotiation={refusals} 200s={ok} \
         RENEGOTIATING={} status={status:?} users={users:?}",
        out.matches("RENEGOTIATING").count()
    );
    (server_hellos, refusals, ok)
}

/// TLS 1.2 `R` on every host kind, every TLS 1.2 suite, with and without SNI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_tls12_renegotiation_everywhere() {
    let w = certificate_only_world().await;
    // Every TLS 1.2 suite the default profile offers.
    let suites = prehod_gateway::tls_profile::INTERMEDIATE.tls12_ciphers;
    let hosts: [(Option<&str>, Option<&str>); 6] = [
        (Some("bws"), Some("valid")),
        (Some("bws"), Some("revoked")),
        (Some("certlogin"), Some("valid")),
        (Some("certlogin"), Some("forged")),
        (Some("bips"), None),
        (None, Some("valid")),
    ];
    let mut handshakes = 0;
    for suite in suites {
        for (portal, cert) in hosts {
            for legacy in [false, true] {
                let host = prehod_test_support::host(portal.unwrap_or("bws"));
                let mut args: Vec<String> = ["-tls1_2", "-alpn", "http/1.1", "-cipher", suite]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                match portal {
                    Some(_) => args.extend(["-servername".into(), host.clone()]),
                    None => args.push("-noservername".into()),
                }
                if legacy {
                    args.push("-legacy_renegotiation".into());
                }
                if let Some(c) = cert {
                    args.extend(cert_args(&w, c));
                }
                let out = session(
                    &w,
                    &args,
                    vec![
                        Step::Wait("Verify return code", 1),
                        get(&host),
                        Step::Wait("HTTP/1.1 ", 1),
                        Step::Send(b"R\n".to_vec()),
                        Step::Wait("Alert", 1),
                        get(&host),
                        Step::Sleep(300),
                    ],
                );
                let label = format!("{suite} {portal:?} {cert:?} legacy={legacy}");
                let (sh, _refused, _) = summary(&label, &out);
                if sh == 0 {
                    continue; // the suite does not fit the server certificate
                }
                handshakes += 1;
                assert_eq!(sh, 1, "{label}: a second ServerHello\n{out}");
                if out.contains("RENEGOTIATING") && !out.contains("warning no_renegotiation") {
                    println!(
                        "   (no no_renegotiation alert) tail: {:?}",
                        out.lines().rev().take(6).collect::<Vec<_>>()
                    );
                }
            }
        }
    }
    assert!(handshakes >= 12, "{handshakes}");
}

/// After a reload (new certificate contexts), on a new connection and on one opened before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_after_a_reload() {
    let w = certificate_only_world().await;
    let host = prehod_test_support::host("bws");
    let mut args: Vec<String> = ["-tls1_2", "-alpn", "http/1.1", "-servername", &host]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(cert_args(&w, "valid"));
    // A connection opened before the reload, renegotiating after it.
    let before = {
        let w2 = &w;
        let args = args.clone();
        let host = host.clone();
        std::thread::scope(|s| {
            let h = s.spawn(move || {
                session(
                    w2,
                    &args,
                    vec![
                        get(&host),
                        Step::Wait("HTTP/1.1 200", 1),
                        Step::Sleep(4000),
                        Step::Send(b"R\n".to_vec()),
                        Step::Wait("Alert", 1),
                    ],
                )
            });
            std::thread::sleep(Duration::from_millis(1500));
            let rt = tokio::runtime::Handle::current();
            tokio::task::block_in_place(|| {
                rt.block_on(w2.gw.reload_with(|y| {
                    y.replacen(
                        "      user_id: serial_number\n",
                        "      user_id: common_name\n",
                        1,
                    )
                }))
            });
            println!("reloaded");
            h.join().unwrap()
        })
    };
    let (sh, refused, _) = summary("opened before reload, R after", &before);
    assert_eq!((sh, refused), (1, 1), "{before}");
    for i in 0..2 {
        let out = session(
            &w,
            &args,
            vec![
                get(&host),
                Step::Wait("HTTP/1.1 200", 1),
                Step::Send(b"R\n".to_vec()),
                Step::Wait("Alert", 1),
            ],
        );
        let (sh, refused, _) = summary(&format!("new connection after reload #{i}"), &out);
        assert_eq!((sh, refused), (1, 1), "{out}");
        w.gw.reload_with(|y| y.replacen("level: 30", "level: 30 ", 1))
            .await;
    }
}

/// TLS 1.3: `R` (s_client: no renegotiation in 1.3), KeyUpdate floods (`k`, `K`),
/// post-handshake auth offered by the client (`-enable_pha`): the identity must stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_tls13_post_handshake() {
    let w = certificate_only_world().await;
    let host = prehod_test_support::host("bws");
    for (label, cmd, count) in [
        ("R", "R\n", 1),
        ("k x300", "k\n", 300),
        ("K x300", "K\n", 300),
    ] {
        let mut args: Vec<String> = [
            "-tls1_3",
            "-enable_pha",
            "-alpn",
            "http/1.1",
            "-servername",
            &host,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(cert_args(&w, "valid"));
        let mut steps = vec![get(&host), Step::Wait("HTTP/1.1 200", 1)];
        for _ in 0..count {
            steps.push(Step::Send(cmd.as_bytes().to_vec()));
            steps.push(Step::Sleep(15));
        }
        steps.push(get(&host));
        steps.push(Step::Wait("HTTP/1.1 200", 2));
        let out = session(&w, &args, steps);
        let (sh, _, ok) = summary(&format!("TLS 1.3 {label}"), &out);
        let key_updates_in = out
            .lines()
            .filter(|l| l.starts_with("<<<") && l.contains("KeyUpdate"))
            .count();
        let key_updates_out = out
            .lines()
            .filter(|l| l.starts_with(">>>") && l.contains("KeyUpdate"))
            .count();
        let cert_requests = out.matches("CertificateRequest").count();
        println!(
            "   KeyUpdate sent={key_updates_out} received={key_updates_in} \
             CertificateRequest={cert_requests} renegotiation-msgs={:?}",
            out.lines()
                .filter(|l| l.to_lowercase().contains("renegotiat") || l.contains("KEYUPDATE"))
                .take(3)
                .collect::<Vec<_>>()
        );
        assert_eq!(sh, 1, "{out}");
        if label != "R" {
            assert_eq!(ok, 2, "the second request answered after {label}:\n{out}");
        }
        assert_eq!(
            cert_requests, 1,
            "only the handshake's CertificateRequest:\n{out}"
        );
    }
    // The gateway is still fine for others.
    let out = session(
        &w,
        &{
            let mut a: Vec<String> = ["-alpn", "http/1.1", "-servername", &host]
                .iter()
                .map(|s| s.to_string())
                .collect();
            a.extend(cert_args(&w, "valid"));
            a
        },
        vec![get(&host), Step::Wait("HTTP/1.1 200", 1)],
    );
    assert!(out.contains("HTTP/1.1 200"), "{out}");
}
