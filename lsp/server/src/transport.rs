//! JSON-RPC messages over stdio, framed by `Content-Length` headers: a thread reads frames
//! from stdin and a thread serializes and writes them to stdout, so the main loop never
//! blocks on either, nor spends its time making the JSON of a large answer.
//!
//! A frame whose body is not JSON is answered with a parse error (-32700) and one that is
//! JSON but no message with an invalid-request error (-32600); the reader goes on with the
//! next frame, so no single message can end the server (docs/architecture/003). Only the
//! end of stdin ends it. Knows nothing of LSP methods.

use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Larger bodies are skipped unread and answered with a parse error, so that a confused
/// client cannot make the server allocate without bound.
const LARGEST_BODY: usize = 256 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

#[derive(Debug)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

#[derive(Debug)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Value,
}

#[derive(Debug)]
pub struct Notification {
    pub method: String,
    pub params: Value,
}

/// The client's answer to one of our requests.
#[derive(Debug)]
pub struct Response {
    pub id: Option<RequestId>,
    pub result: Option<Value>,
    pub error: Option<ResponseError>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResponseError {
    pub code: i32,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// JSON-RPC and LSP error codes.
pub mod code {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    pub const SERVER_NOT_INITIALIZED: i32 = -32002;
    pub const REQUEST_CANCELLED: i32 = -32800;
    pub const CONTENT_MODIFIED: i32 = -32801;
}

impl ResponseError {
    pub fn new(code: i32, message: impl Into<String>) -> ResponseError {
        ResponseError {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// What the reader makes of one frame.
pub enum Incoming {
    Message(Message),
    /// Not a message: to be answered with this error, under this id if it had one.
    Malformed(Option<RequestId>, ResponseError),
}

impl Message {
    /// Reads one message from a frame's body.
    pub fn parse(body: &[u8]) -> Incoming {
        let value: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => {
                let error = ResponseError::new(code::PARSE_ERROR, format!("not JSON: {e}"));
                return Incoming::Malformed(None, error);
            }
        };
        let invalid =
            |id, why: &str| Incoming::Malformed(id, ResponseError::new(code::INVALID_REQUEST, why));
        let Value::Object(mut object) = value else {
            return invalid(None, "a message is a JSON object");
        };
        let id = match object.remove("id") {
            None => None,
            Some(id) => match serde_json::from_value::<RequestId>(id) {
                Ok(id) => Some(id),
                Err(_) => return invalid(None, "`id` is an integer or a string"),
            },
        };
        let params = object.remove("params").unwrap_or(Value::Null);
        match (object.remove("method"), id) {
            (Some(Value::String(method)), Some(id)) => {
                Incoming::Message(Message::Request(Request { id, method, params }))
            }
            (Some(Value::String(method)), None) => {
                Incoming::Message(Message::Notification(Notification { method, params }))
            }
            (Some(_), id) => invalid(id, "`method` is a string"),
            (None, Some(id)) => response(id, object).map_or_else(
                |id| invalid(Some(id), "a response has a `result` or an `error`"),
                |response| Incoming::Message(Message::Response(response)),
            ),
            (None, None) => invalid(None, "a message has a `method` or an `id`"),
        }
    }
}

/// The bodies of frames to the client, serialized from their typed parts straight to text:
/// a message to the client never exists as a `Value` tree, which for a large answer (the
/// outline of 10,000 resources) took several times the memory of its text, twice over.
pub mod body {
    use serde::Serialize;

    use super::{RequestId, ResponseError};

    pub fn request(
        id: &RequestId,
        method: &str,
        params: &impl Serialize,
    ) -> serde_json::Result<String> {
        #[derive(Serialize)]
        struct Frame<'a, P> {
            jsonrpc: &'static str,
            id: &'a RequestId,
            method: &'a str,
            params: &'a P,
        }
        serde_json::to_string(&Frame {
            jsonrpc: "2.0",
            id,
            method,
            params,
        })
    }

    pub fn notification(method: &str, params: &impl Serialize) -> serde_json::Result<String> {
        #[derive(Serialize)]
        struct Frame<'a, P> {
            jsonrpc: &'static str,
            method: &'a str,
            params: &'a P,
        }
        serde_json::to_string(&Frame {
            jsonrpc: "2.0",
            method,
            params,
        })
    }

    /// An answer; `id` is `None` (JSON `null`) only for an error about a message whose id
    /// is unknown.
    pub fn response<T: Serialize>(
        id: Option<&RequestId>,
        result: Result<&T, &ResponseError>,
    ) -> serde_json::Result<String> {
        #[derive(Serialize)]
        struct Frame<'a, T> {
            jsonrpc: &'static str,
            id: Option<&'a RequestId>,
            #[serde(skip_serializing_if = "Option::is_none")]
            result: Option<&'a T>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<&'a ResponseError>,
        }
        serde_json::to_string(&Frame {
            jsonrpc: "2.0",
            id,
            result: result.ok(),
            error: result.err(),
        })
    }
}

fn response(id: RequestId, mut object: Map<String, Value>) -> Result<Response, RequestId> {
    let error = match object.remove("error") {
        None | Some(Value::Null) => None,
        Some(error) => serde_json::from_value(error).ok(),
    };
    let result = object.remove("result");
    if result.is_none() && error.is_none() {
        return Err(id);
    }
    Ok(Response {
        id: Some(id),
        result,
        error,
    })
}

/// What a frame turned out to be, before its body is parsed.
enum Frame {
    Body(Vec<u8>),
    /// Headers without a usable `Content-Length`, or a body too large: answered, skipped.
    Unusable(String),
    End,
}

/// Reads the next frame. Header lines that are not `Name: value` are reported once the
/// header block ends; reading then goes on at the next block.
fn read_frame(input: &mut impl BufRead) -> std::io::Result<Frame> {
    let mut length: Option<Result<usize, String>> = None;
    let mut line = Vec::new();
    let mut saw_header = false;
    let mut bad = None;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(Frame::End);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if saw_header {
                break;
            }
            // Blank lines between frames are tolerated.
            continue;
        }
        saw_header = true;
        // Found anywhere in the line, so that the rest of a body sent with a wrong length
        // does not hide the next frame's header.
        let lower = text.to_ascii_lowercase();
        if let Some(at) = lower.rfind("content-length:") {
            let value = text[at + "content-length:".len()..].trim();
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}")),
            );
        } else if !text.contains(':') && length.is_none() {
            bad = Some(format!("bad header line {text:?}"));
        }
    }
    if let (None, Some(bad)) = (&length, bad) {
        return Ok(Frame::Unusable(bad));
    }
    match length {
        None => Ok(Frame::Unusable("no Content-Length header".into())),
        Some(Err(why)) => Ok(Frame::Unusable(why)),
        Some(Ok(n)) if n > LARGEST_BODY => {
            std::io::copy(&mut input.take(n as u64), &mut std::io::sink())?;
            Ok(Frame::Unusable(format!("a body of {n} bytes is too large")))
        }
        Some(Ok(n)) => {
            let mut body = vec![0; n];
            input.read_exact(&mut body)?;
            Ok(Frame::Body(body))
        }
    }
}

/// Reads messages from stdin on a thread of its own, until stdin ends.
pub fn read_stdin() -> tokio::sync::mpsc::UnboundedReceiver<Incoming> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("lsp-reader".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            loop {
                let incoming = match read_frame(&mut input) {
                    Ok(Frame::Body(body)) => Message::parse(&body),
                    Ok(Frame::Unusable(why)) => Incoming::Malformed(
                        None,
                        ResponseError::new(code::PARSE_ERROR, format!("unreadable frame: {why}")),
                    ),
                    Ok(Frame::End) | Err(_) => return,
                };
                if sender.send(incoming).is_err() {
                    return;
                }
            }
        })
        .expect("start the reader thread");
    receiver
}

/// What the writer thread is given.
pub enum Outgoing {
    /// Makes a frame's body (see [`body`]), on the writer's thread; `None`: nothing to send.
    Message(Box<dyn FnOnce() -> Option<String> + Send>),
    /// Tells once every message given before is written.
    Flushed(std::sync::mpsc::Sender<()>),
}

/// Serializes and writes messages to stdout on a thread of its own, in the order they are
/// given.
pub fn write_stdout() -> std::sync::mpsc::Sender<Outgoing> {
    let (sender, receiver) = std::sync::mpsc::channel::<Outgoing>();
    std::thread::Builder::new()
        .name("lsp-writer".into())
        .spawn(move || {
            let stdout = std::io::stdout();
            for outgoing in receiver {
                let body = match outgoing {
                    Outgoing::Message(frame) => match frame() {
                        Some(body) => body,
                        None => continue,
                    },
                    Outgoing::Flushed(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                let mut out = stdout.lock();
                let written = write!(out, "Content-Length: {}\r\n\r\n{body}", body.len())
                    .and_then(|()| out.flush());
                if written.is_err() {
                    return;
                }
            }
        })
        .expect("start the writer thread");
    sender
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &str) -> Result<Message, (Option<RequestId>, i32)> {
        match Message::parse(body.as_bytes()) {
            Incoming::Message(message) => Ok(message),
            Incoming::Malformed(id, error) => Err((id, error.code)),
        }
    }

    #[test]
    fn classifies_messages_and_refuses_the_rest() {
        assert!(matches!(
            parsed(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{}}"#),
            Ok(Message::Request(Request {
                id: RequestId::Number(1),
                ..
            }))
        ));
        assert!(matches!(
            parsed(r#"{"jsonrpc":"2.0","method":"m"}"#),
            Ok(Message::Notification(_))
        ));
        assert!(matches!(
            parsed(r#"{"jsonrpc":"2.0","id":"a","result":null}"#),
            Ok(Message::Response(_))
        ));
        assert_eq!(parsed("{nope").err(), Some((None, code::PARSE_ERROR)));
        assert_eq!(parsed("\u{0}").err(), Some((None, code::PARSE_ERROR)));
        assert_eq!(parsed("[1]").err(), Some((None, code::INVALID_REQUEST)));
        assert_eq!(parsed("{}").err(), Some((None, code::INVALID_REQUEST)));
        assert_eq!(
            parsed(r#"{"id":{"x":1},"method":"m"}"#).err(),
            Some((None, code::INVALID_REQUEST))
        );
        assert_eq!(
            parsed(r#"{"id":7,"method":3}"#).err(),
            Some((Some(RequestId::Number(7)), code::INVALID_REQUEST))
        );
        assert_eq!(
            parsed(r#"{"id":7}"#).err(),
            Some((Some(RequestId::Number(7)), code::INVALID_REQUEST))
        );
    }

    #[test]
    fn frames_resume_after_an_unusable_one() {
        let input = b"Content-Length: 2\r\n\r\n{}garbage line\r\n\r\nContent-Length: x\r\n\r\n\r\nContent-Length: 3\r\n\r\n[1]";
        let mut reader = std::io::BufReader::new(&input[..]);
        let mut seen = Vec::new();
        loop {
            match read_frame(&mut reader).unwrap() {
                Frame::Body(body) => seen.push(String::from_utf8(body).unwrap()),
                Frame::Unusable(why) => seen.push(format!("unusable: {why}")),
                Frame::End => break,
            }
        }
        assert_eq!(
            seen,
            [
                "{}",
                "unusable: bad header line \"garbage line\"",
                "unusable: bad Content-Length \"x\"",
                "[1]"
            ]
        );
    }
}
