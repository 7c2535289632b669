//! A small S3 client: GET, PUT (optionally with `If-None-Match: *`), DELETE and
//! ListObjectsV2 on one bucket, path-style, signed with SigV4. Every error names the
//! store and the object, so a user knows which storage failed.
//!
//! A request the store did not answer (the connection was refused or dropped) or
//! answered as busy or failing (429, 5xx) is sent again after a pause, a few times, as
//! the AWS SDKs do: a store restarting, or a proxy closing an idle connection, does not
//! fail an apply. A write is not sent again past the write fence that the state's lease
//! sets (`Client::fence_writes`): a retry must not land after another holder took over.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use nixops4_provider_sdk::{ProviderError, Result};

use crate::sigv4::{self, Credentials, Unsigned};

/// The pauses before each retry of a request; one more try than pauses.
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_millis(600),
    Duration::from_millis(1800),
];

pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    host: String,
    bucket: String,
    region: String,
    credentials: Credentials,
    /// When set, no write (PUT, DELETE) is sent again after this instant.
    write_fence: Mutex<Option<Instant>>,
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
            write_fence: Mutex::new(None),
        })
    }

    /// The store as messages name it: `s3://bucket at http://host:port`.
    pub fn store(&self) -> String {
        format!("S3 store s3://{} at {}", self.bucket, self.endpoint)
    }

    /// Sets (or with `None`, lifts) the instant after which no write is retried.
    pub fn fence_writes(&self, until: Option<Instant>) {
        *self.write_fence.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let answer = self.send(&Call::new("GET", key))?;
        match answer.status {
            200 => Ok(Some(answer.body)),
            404 => Ok(None),
            status => Err(self.failed("GET", key, status, &answer.body)),
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
        let answer = self.send(&Call {
            extra_headers: condition,
            body,
            ..Call::new("PUT", key)
        })?;
        match answer.status {
            200 => Ok(Put::Written),
            // An earlier try may have written the object before its answer was lost:
            // then what the store holds is this body.
            412 | 409 if if_absent && answer.retried => {
                if self.get(key)?.as_deref() == Some(body) {
                    Ok(Put::Written)
                } else {
                    Ok(Put::AlreadyExists)
                }
            }
            412 | 409 if if_absent => Ok(Put::AlreadyExists),
            status => Err(self.failed("PUT", key, status, &answer.body)),
        }
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        let answer = self.send(&Call::new("DELETE", key))?;
        match answer.status {
            200 | 204 | 404 => Ok(()),
            status => Err(self.failed("DELETE", key, status, &answer.body)),
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
            let answer = self.send(&Call {
                query: &query,
                ..Call::new("GET", "")
            })?;
            if answer.status != 200 {
                return Err(self.failed("LIST", prefix, answer.status, &answer.body));
            }
            let text = String::from_utf8_lossy(&answer.body);
            keys.extend(elements(&text, "Key"));
            let truncated =
                elements(&text, "IsTruncated").first().map(String::as_str) == Some("true");
            token = elements(&text, "NextContinuationToken").into_iter().next();
            if !truncated || token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// Sends a request, and sends it again while the store does not answer it or
    /// answers that it is busy or failing, until `RETRY_PAUSES` are used up.
    fn send(&self, call: &Call) -> Result<Answer> {
        let Call {
            method, key, query, ..
        } = *call;
        // What messages name: the object, or for a listing of the bucket, its query.
        let target = if key.is_empty() {
            let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("?{}", query.join("&"))
        } else {
            key.to_owned()
        };
        let mut pauses = RETRY_PAUSES.iter();
        let mut retried = false;
        loop {
            let outcome = self.send_once(call);
            let retry_because = match &outcome {
                Ok((status, _)) if retried_status(*status) => Some(format!("HTTP {status}")),
                Err(Unanswered::Dropped(error)) => Some(error.clone()),
                _ => None,
            };
            let fence = *self.write_fence.lock().unwrap_or_else(|e| e.into_inner());
            match (retry_because, pauses.next()) {
                (Some(why), Some(pause))
                    if may_send_again(method, Instant::now() + *pause, fence) =>
                {
                    tracing::warn!(
                        "{}: {method} {target}: {why}; trying again in {} ms",
                        self.store(),
                        pause.as_millis()
                    );
                    std::thread::sleep(*pause);
                    retried = true;
                }
                (_, _) => {
                    let (status, body) = outcome.map_err(|unanswered| {
                        let error = format!("{}: {method} {target}: {unanswered}", self.store());
                        match unanswered {
                            Unanswered::Dropped(_) => ProviderError::transient(error),
                            Unanswered::Other(_) => ProviderError::internal(error),
                        }
                    })?;
                    return Ok(Answer {
                        status,
                        body,
                        retried,
                    });
                }
            }
        }
    }

    fn send_once(&self, call: &Call) -> std::result::Result<(u16, Vec<u8>), Unanswered> {
        let Call {
            method,
            key,
            query,
            extra_headers,
            body,
        } = *call;
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
        let request = request
            .body(body.to_vec())
            .map_err(|e| Unanswered::Other(format!("building the request: {e}")))?;
        tracing::debug!("s3 request: {method} {key}");
        let mut response = self.agent.run(request).map_err(Unanswered::from)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| match Unanswered::from(e) {
                Unanswered::Dropped(e) => Unanswered::Dropped(format!("reading the answer: {e}")),
                Unanswered::Other(e) => Unanswered::Other(format!("reading the answer: {e}")),
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
        if retried_status(status) {
            ProviderError::transient(error)
        } else {
            ProviderError::internal(error)
        }
    }
}

/// A request to the store, before it is signed.
#[derive(Clone, Copy)]
struct Call<'a> {
    method: &'a str,
    /// The object; empty for a request on the bucket (a listing).
    key: &'a str,
    query: &'a [(String, String)],
    extra_headers: &'a [(&'a str, String)],
    body: &'a [u8],
}

impl<'a> Call<'a> {
    fn new(method: &'a str, key: &'a str) -> Call<'a> {
        Call {
            method,
            key,
            query: &[],
            extra_headers: &[],
            body: b"",
        }
    }
}

/// What the store answered, and whether it took more than one try.
struct Answer {
    status: u16,
    body: Vec<u8>,
    retried: bool,
}

/// Why a request has no answer.
#[derive(Debug)]
enum Unanswered {
    /// The connection was refused, dropped or broken: the store may answer a retry.
    Dropped(String),
    /// Anything a retry would not change (a timeout included: it already waited long).
    Other(String),
}

impl From<ureq::Error> for Unanswered {
    fn from(error: ureq::Error) -> Unanswered {
        match error {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed => {
                Unanswered::Dropped(error.to_string())
            }
            _ => Unanswered::Other(error.to_string()),
        }
    }
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unanswered::Dropped(error) | Unanswered::Other(error) => f.write_str(error),
        }
    }
}

/// Whether a request may be sent again at `resend_at`: a read always, a write only
/// before the fence.
fn may_send_again(method: &str, resend_at: Instant, fence: Option<Instant>) -> bool {
    let reads = method == "GET" || method == "HEAD";
    reads || fence.is_none_or(|fence| resend_at < fence)
}

/// Answers that say the store is busy or failing for now, which a retry may get past.
fn retried_status(status: u16) -> bool {
    status == 429 || status >= 500
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
    fn writes_are_not_sent_again_past_the_fence() {
        let now = Instant::now();
        let fence = Some(now + Duration::from_secs(1));
        let before = now + Duration::from_millis(500);
        let after = now + Duration::from_secs(2);
        assert!(may_send_again("PUT", before, fence));
        assert!(!may_send_again("PUT", after, fence));
        assert!(!may_send_again("DELETE", after, fence));
        assert!(may_send_again("GET", after, fence));
        assert!(may_send_again("PUT", after, None));
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
