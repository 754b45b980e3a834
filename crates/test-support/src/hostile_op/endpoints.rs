//! The provider's endpoints: discovery, JWKS, an authorization endpoint that sends the browser
//! straight back with a code, and a token endpoint whose ID token carries the chosen defect.

use base64::Engine;
use serde_json::{json, Value};

use super::http::{json_response, oauth_error, response, Request};
use super::keys::B64;
use super::{edit, random_hex, unix_now, Grant, Inner, Param, State, SUB};
use crate::login::{CLIENT_ID, CLIENT_SECRET};

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn handle(&self, req: &Request) -> Vec<u8> {
        self.state()
            .requests
            .push(format!("{} {}", req.method, req.path));
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/.well-known/openid-configuration") => json_response(200, &self.discovery()),
            ("GET", "/jwks.json") => {
                let rotated = self.state().rotated;
                json_response(200, &self.keys.jwks(rotated))
            }
            // Where the `jku` header points: a relying party that fetched it would find the
            // attacker's key here. The tests assert nobody ever asks.
            ("GET", "/attacker/jwks.json") => {
                json_response(200, &json!({"keys": [self.keys.attacker.jwk]}))
            }
            ("GET", "/authorize") => match req.query.get("request_uri") {
                // FAPI 2.0: the request pushed before, once.
                Some(uri) => {
                    let Some(query) = self.state().pushed.remove(uri) else {
                        return response(400, &[], "unknown request_uri");
                    };
                    self.authorize(&Request {
                        method: req.method.clone(),
                        path: req.path.clone(),
                        query,
                        headers: req.headers.clone(),
                        body: Vec::new(),
                    })
                }
                None => self.authorize(req),
            },
            ("POST", "/token") => {
                self.seen(req);
                self.token(req)
            }
            ("POST", "/par") => {
                let uri = format!("urn:ietf:params:oauth:request_uri:{}", random_hex(16));
                let form: std::collections::HashMap<String, String> = req
                    .form()
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with("client_assertion"))
                    .collect();
                self.state().pushed.insert(uri.clone(), form);
                json_response(201, &json!({"request_uri": uri, "expires_in": 60}))
            }
            ("GET", "/userinfo") => {
                self.seen(req);
                let mut claims = json!({"sub": SUB});
                edit_value(&mut claims, &self.state().behaviour.userinfo);
                json_response(200, &claims)
            }
            _ => oauth_error(404, "not_found"),
        }
    }

    fn seen(&self, req: &Request) {
        self.state()
            .seen_headers
            .push((req.path.clone(), req.headers.clone()));
    }

    fn discovery(&self) -> Value {
        let i = &self.issuer;
        let mut doc = self.plain_discovery();
        if self.state().behaviour.fapi2 {
            doc["pushed_authorization_request_endpoint"] = json!(format!("{i}/par"));
            doc["userinfo_endpoint"] = json!(format!("{i}/userinfo"));
            doc["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt"]);
            doc["id_token_signing_alg_values_supported"] = json!(["ES256", "PS256"]);
        }
        doc
    }

    fn plain_discovery(&self) -> Value {
        let i = &self.issuer;
        json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks.json"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "acr_values_supported": ["10", "20", "30"],
            "authorization_response_iss_parameter_supported": self.state().behaviour.advertise_iss,
        })
    }

    /// Sends the browser straight back with a code (no login screens: the person is always
    /// "logged in"), with `state` and `iss` as the behaviour says.
    fn authorize(&self, req: &Request) -> Vec<u8> {
        let q = &req.query;
        let get = |k: &str| q.get(k).map(String::as_str);
        if get("client_id") != Some(CLIENT_ID)
            || get("response_type") != Some("code")
            || get("code_challenge_method") != Some("S256")
        {
            return response(400, &[], "bad authorization request");
        }
        let (Some(redirect_uri), Some(challenge)) = (get("redirect_uri"), get("code_challenge"))
        else {
            return response(400, &[], "bad authorization request");
        };
        let code = random_hex(16);
        let mut state = self.state();
        let behaviour = state.behaviour.clone();
        state.grants.insert(
            code.clone(),
            Grant {
                nonce: get("nonce").map(str::to_owned),
                challenge: challenge.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                acr: get("acr_values")
                    .and_then(|a| a.split(' ').next())
                    .map(str::to_owned),
                used: false,
            },
        );
        drop(state);
        let Ok(mut location) = url::Url::parse(redirect_uri) else {
            return response(400, &[], "bad redirect_uri");
        };
        {
            let mut pairs = location.query_pairs_mut();
            pairs.append_pair("code", &code);
            match (behaviour.response_state, get("state")) {
                (Param::Right, Some(s)) => {
                    pairs.append_pair("state", s);
                }
                (Param::Wrong, _) => {
                    pairs.append_pair("state", &format!("forged-state-{}", random_hex(16)));
                }
                _ => {}
            }
            match behaviour.response_iss {
                Param::Right => {
                    pairs.append_pair("iss", &self.issuer);
                }
                Param::Wrong => {
                    pairs.append_pair("iss", "https://evil.example");
                }
                Param::Missing => {}
            }
        }
        response(302, &[("location", location.as_str())], "")
    }

    /// The token endpoint: client_secret_basic, single-use codes bound to their redirect URI
    /// and PKCE challenge, as an honest provider checks them; then an ID token with the
    /// behaviour's defect.
    fn token(&self, req: &Request) -> Vec<u8> {
        if let Some(status) = self.state().behaviour.token_status {
            return response(
                status,
                &[("content-type", "text/html")],
                "<html>down for maintenance</html>",
            );
        }
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        );
        let fapi2 = self.state().behaviour.fapi2;
        let assertion = req.form().contains_key("client_assertion");
        if !(fapi2 && assertion) && req.header("authorization") != Some(expected.as_str()) {
            return oauth_error(401, "invalid_client");
        }
        let form = req.form();
        let get = |k: &str| form.get(k).map(String::as_str);
        if get("grant_type") != Some("authorization_code") {
            return oauth_error(400, "unsupported_grant_type");
        }
        let mut state = self.state();
        let rotated = state.rotated;
        let behaviour = state.behaviour.clone();
        let Some(grant) = get("code").and_then(|c| state.grants.get_mut(c)) else {
            return oauth_error(400, "invalid_grant");
        };
        // A code is good once; a second use (replay) is refused.
        if grant.used {
            return oauth_error(400, "invalid_grant");
        }
        grant.used = true;
        let verifier = get("code_verifier").unwrap_or_default();
        let challenge = {
            use sha2::Digest;
            B64.encode(sha2::Sha256::digest(verifier.as_bytes()))
        };
        if challenge != grant.challenge || get("redirect_uri") != Some(grant.redirect_uri.as_str())
        {
            return oauth_error(400, "invalid_grant");
        }
        let now = unix_now();
        let sid = format!("sid-{}", random_hex(8));
        let mut claims = json!({
            "iss": self.issuer,
            "sub": SUB,
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "acr": grant.acr.clone().unwrap_or_else(|| "20".into()),
            "amr": ["pwd"],
            "sid": sid,
            "name": "Hostile Tester",
            "email": "hostile@rekono.localhost",
        });
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = json!(nonce);
        }
        state.last_sid = Some(sid);
        drop(state);
        edit(&mut claims, &behaviour.claims);
        let id_token = self
            .keys
            .sign(behaviour.signing, &claims, &self.issuer, rotated);
        json_response(
            200,
            &json!({
                "access_token": random_hex(16),
                "token_type": if behaviour.fapi2 { "DPoP" } else { "Bearer" },
                "expires_in": 300,
                "id_token": id_token,
            }),
        )
    }
}

/// Sets every member of `edits` (an object) in `target`; `null` removes.
fn edit_value(target: &mut Value, edits: &Value) {
    let (Some(t), Some(e)) = (target.as_object_mut(), edits.as_object()) else {
        return;
    };
    for (k, v) in e {
        if v.is_null() {
            t.remove(k);
        } else {
            t.insert(k.clone(), v.clone());
        }
    }
}
