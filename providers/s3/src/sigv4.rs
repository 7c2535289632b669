//! AWS Signature Version 4 for S3 requests: the canonical request, the string to sign,
//! and the `Authorization` header, with HMAC-SHA256 built on `sha2`.
//!
//! Only what S3 needs: the payload hash is sent in `x-amz-content-sha256`, paths are
//! encoded once (S3 does not double-encode), and the signed headers are the few this
//! provider sends.

use sha2::{Digest, Sha256};

/// Access key, secret and optional session token.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the token never reach a log.
        write!(f, "Credentials({})", self.access_key_id)
    }
}

/// A request to sign: method, encoded path, query pairs (unencoded), and headers that
/// are signed besides the ones added here.
pub struct Unsigned<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub extra_headers: &'a [(&'a str, String)],
    pub payload: &'a [u8],
}

/// The headers to send: `x-amz-date`, `x-amz-content-sha256`, maybe
/// `x-amz-security-token`, the extra headers, and `authorization`.
pub fn sign(
    request: &Unsigned,
    credentials: &Credentials,
    region: &str,
    now: std::time::SystemTime,
) -> Vec<(String, String)> {
    let stamp = timestamp(now);
    let date = &stamp[..8];
    let payload_hash = hex(&Sha256::digest(request.payload));
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), request.host.to_owned()),
        ("x-amz-content-sha256".into(), payload_hash.clone()),
        ("x-amz-date".into(), stamp.clone()),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".into(), token.clone()));
    }
    for (name, value) in request.extra_headers {
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method,
        request.path,
        canonical_query(request.query),
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    headers.retain(|(name, _)| name != "host");
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    headers
}

/// The query string as S3 signs and receives it: pairs sorted, both parts encoded.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode(k, true), encode(v, true)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 percent-encoding of everything but unreserved characters (and `/` in paths).
pub fn encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'.' | b'~')
            || (byte == b'/' && !encode_slash);
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDDTHHMMSSZ`.
fn timestamp(now: std::time::SystemTime) -> String {
    let rfc3339 = humantime::format_rfc3339_seconds(now).to_string();
    rfc3339.replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// The GET Object example of the S3 documentation ("Signature Calculations for the
    /// Authorization Header"), with its published signature.
    #[test]
    fn signs_the_documented_get_object_example() {
        let credentials = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let now = humantime::parse_rfc3339("2013-05-24T00:00:00Z").unwrap();
        let headers = sign(
            &Unsigned {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: &[],
                extra_headers: &[("range", "bytes=0-9".into())],
                payload: b"",
            },
            &credentials,
            "us-east-1",
            now,
        );
        let authorization = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(
            format!("{credentials:?}"),
            "Credentials(AKIAIOSFODNN7EXAMPLE)"
        );
    }

    #[test]
    fn queries_are_sorted_and_encoded() {
        let query = [
            ("prefix".to_owned(), "a b/c".to_owned()),
            ("list-type".to_owned(), "2".to_owned()),
        ];
        assert_eq!(canonical_query(&query), "list-type=2&prefix=a%20b%2Fc");
    }
}
