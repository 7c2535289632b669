//! A small S3 client: GET, PUT (optionally with `If-None-Match: *`), DELETE and
//! ListObjectsV2 on one bucket, path-style, signed with SigV4. Every error names the
//! store and the object, so a user knows which storage failed.

use std::time::{Duration, SystemTime};

use nixops4_provider_sdk::{ProviderError, Result};

use crate::sigv4::{self, Credentials, Unsigned};

pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    host: String,
    bucket: String,
    region: String,
    credentials: Credentials,
}

/// How a conditional PUT ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    Written,
    /// The store refused because the object exists (412 or 409).
    AlreadyExists,
}

impl Client {
    pub fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<Client> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .filter(|host| !host.is_empty() && !host.contains('/'))
            .ok_or_else(|| {
                ProviderError::invalid_input(format!(
                    "endpoint `{endpoint}` must be `http://host[:port]` or `https://host[:port]`"
                ))
            })?
            .to_owned();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Client {
            agent,
            endpoint,
            host,
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            credentials,
        })
    }

    /// The store as messages name it: `s3://bucket at http://host:port`.
    pub fn store(&self) -> String {
        format!("S3 store s3://{} at {}", self.bucket, self.endpoint)
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (status, body) = self.send("GET", key, &[], &[], b"")?;
        match status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            _ => Err(self.failed("GET", key, status, &body)),
        }
    }

    /// Writes `body` to `key`; with `if_absent`, asks the store not to overwrite. Stores
    /// that ignore the condition (Garage) overwrite; callers must not depend on it alone.
    pub fn put(&self, key: &str, body: &[u8], if_absent: bool) -> Result<Put> {
        let condition: &[(&str, String)] = if if_absent {
            &[("if-none-match", String::from("*"))]
        } else {
            &[]
        };
        let (status, answer) = self.send("PUT", key, &[], condition, body)?;
        match status {
            200 => Ok(Put::Written),
            412 | 409 if if_absent => Ok(Put::AlreadyExists),
            _ => Err(self.failed("PUT", key, status, &answer)),
        }
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        let (status, body) = self.send("DELETE", key, &[], &[], b"")?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(self.failed("DELETE", key, status, &body)),
        }
    }

    /// Every key under `prefix` after `start_after`, in order.
    pub fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type".to_owned(), "2".to_owned()),
                ("prefix".to_owned(), prefix.to_owned()),
            ];
            if let Some(token) = &token {
                query.push(("continuation-token".to_owned(), token.clone()));
            } else if let Some(after) = start_after {
                query.push(("start-after".to_owned(), after.to_owned()));
            }
            let (status, body) = self.send("GET", "", &query, &[], b"")?;
            if status != 200 {
                return Err(self.failed("LIST", prefix, status, &body));
            }
            let text = String::from_utf8_lossy(&body);
            keys.extend(elements(&text, "Key"));
            let truncated =
                elements(&text, "IsTruncated").first().map(String::as_str) == Some("true");
            token = elements(&text, "NextContinuationToken").into_iter().next();
            if !truncated || token.is_none() {
                return Ok(keys);
            }
        }
    }

    fn send(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        extra_headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        let path = if key.is_empty() {
            format!("/{}", sigv4::encode(&self.bucket, true))
        } else {
            format!(
                "/{}/{}",
                sigv4::encode(&self.bucket, true),
                sigv4::encode(key, false)
            )
        };
        let headers = sigv4::sign(
            &Unsigned {
                method,
                host: &self.host,
                path: &path,
                query,
                extra_headers,
                payload: body,
            },
            &self.credentials,
            &self.region,
            SystemTime::now(),
        );
        let query = sigv4::canonical_query(query);
        let url = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request.body(body.to_vec()).map_err(|e| {
            ProviderError::internal(format!("{}: building {method} {key}: {e}", self.store()))
        })?;
        tracing::debug!("s3 request: {method} {key}");
        let mut response = self.agent.run(request).map_err(|e| {
            ProviderError::transient(format!("{}: {method} {key}: {e}", self.store()))
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| {
                ProviderError::transient(format!(
                    "{}: reading the answer to {method} {key}: {e}",
                    self.store()
                ))
            })?;
        Ok((status, body))
    }

    fn failed(&self, method: &str, key: &str, status: u16, body: &[u8]) -> ProviderError {
        let text = String::from_utf8_lossy(body);
        let code = elements(&text, "Code").into_iter().next();
        let message = elements(&text, "Message").into_iter().next();
        let detail = match (code, message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code,
            _ => format!("HTTP {status}"),
        };
        let error = format!("{}: {method} {key} failed: {detail}", self.store());
        if status >= 500 || status == 429 {
            ProviderError::transient(error)
        } else {
            ProviderError::internal(error)
        }
    }
}

/// The text of every `<name>...</name>` element, unescaped; S3's answers are flat
/// enough that this is all the XML this provider needs.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        found.push(unescape(&rest[..end]));
        rest = &rest[end + close.len()..];
    }
    found
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_list_answers() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/1</Key></Contents><Contents><Key>a/&amp;2</Key></Contents><NextContinuationToken>t</NextContinuationToken></ListBucketResult>";
        assert_eq!(elements(xml, "Key"), vec!["a/1", "a/&2"]);
        assert_eq!(elements(xml, "IsTruncated"), vec!["true"]);
        assert_eq!(elements(xml, "NextContinuationToken"), vec!["t"]);
        assert!(elements(xml, "Missing").is_empty());
    }

    #[test]
    fn refuses_endpoints_that_are_not_urls() {
        let credentials = Credentials {
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
            session_token: None,
        };
        for endpoint in ["garage.example.com", "http://", "http://host/path"] {
            let error = Client::new(endpoint, "b", "garage", credentials.clone())
                .err()
                .unwrap();
            assert!(
                error.to_string().contains("must be `http://host[:port]`"),
                "{error}"
            );
        }
    }
}
