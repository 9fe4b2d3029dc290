//! Browser form uploads (PostObject): what S3 does with a form that s3s 0.14.1 leaves out.
//!
//! - **`${filename}` in the `key` field** is replaced by the file's name (the `filename` of
//!   the `file` part's Content-Disposition), as S3 does. The form's fields come before the
//!   file part, so the front door buffers the body up to the file part's headers (at most
//!   [`FIELDS_BYTES_MAX`]), rewrites the key there, and streams the rest unchanged.
//! - **The `tagging` field** (a `<Tagging>` document), which s3s drops, is handed to the
//!   PutObject handler in the request's extensions ([`FormTagging`]).
//! - **A field that breaks a policy condition** is `403 AccessDenied` ("Invalid according to
//!   Policy: Policy Condition failed"), as S3 answers; s3s answers `400 InvalidPolicyDocument`.
//!
//! Invariants: nothing but the `key` field's value changes, and only when it contains
//! `${filename}` and the file part names a file; a form that cannot be read this way (no
//! boundary, fields larger than the bound, a malformed part) goes to s3s untouched, which then
//! refuses it as it would have.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use s3s::stream::{ByteStream, DynByteStream, RemainingLength};
use s3s::{Body, HttpRequest, HttpResponse, StdError};

/// Bytes of a form read to find the key and the file's name (everything before the file
/// part's content; AWS bounds a form's fields to 20 KB). A form whose fields are longer goes to
/// s3s unchanged.
const FIELDS_BYTES_MAX: usize = 64 * 1024;

/// The placeholder S3 replaces with the uploaded file's name.
const FILENAME_VARIABLE: &str = "${filename}";

/// Whether `req` is a browser form upload to a bucket (`POST /bucket` with a
/// `multipart/form-data` body); returns its boundary.
fn form_boundary(req: &HttpRequest) -> Option<String> {
    if req.method() != Method::POST {
        return None;
    }
    let mime: mime::Mime = req
        .headers()
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    if mime.type_() != mime::MULTIPART || mime.subtype() != mime::FORM_DATA {
        return None;
    }
    mime.get_param(mime::BOUNDARY).map(|b| b.as_str().to_owned())
}

/// Prepares a request for s3s: a form upload's `${filename}` key is resolved. Returns the
/// request (changed or not) and whether it is a form upload (whose answer then goes through
/// [`finish`]).
pub(crate) async fn prepare(req: HttpRequest) -> (HttpRequest, bool) {
    let Some(boundary) = form_boundary(&req) else {
        return (req, false);
    };
    let (mut parts, mut body) = req.into_parts();
    let mut prefix = BytesMut::new();
    let mut read_error: Option<StdError> = None;
    let mut scanner = Scanner::new(&boundary);
    let fields = loop {
        if let Some(fields) = scanner.advance(&prefix) {
            break Some(fields);
        }
        if prefix.len() >= FIELDS_BYTES_MAX {
            break None;
        }
        match body.next().await {
            Some(Ok(chunk)) => prefix.extend_from_slice(&chunk),
            Some(Err(err)) => {
                read_error = Some(err);
                break None;
            }
            None => break None,
        }
    };
    let mut prefix = prefix.freeze();
    if let Some(fields) = &fields {
        if let Some(xml) = fields
            .tagging
            .and_then(|(start, end)| std::str::from_utf8(prefix.get(start..end)?).ok())
        {
            parts.extensions.insert(FormTagging(xml.to_owned()));
        }
        if let Some(rewritten) = rewrite_key(&prefix, fields) {
            adjust_content_length(&mut parts.headers, prefix.len(), rewritten.len());
            prefix = rewritten;
        }
    }
    let stream = Prefixed {
        prefix: (!prefix.is_empty()).then_some(prefix),
        error: read_error,
        rest: body,
    };
    let body = Body::from(Box::pin(stream) as DynByteStream);
    (HttpRequest::from_parts(parts, body), true)
}

/// Finishes a form upload's answer: a policy condition failure becomes S3's 403.
pub(crate) fn finish(resp: HttpResponse) -> HttpResponse {
    if resp.status() != StatusCode::BAD_REQUEST {
        return resp;
    }
    let Some(bytes) = resp.body().bytes() else {
        return resp;
    };
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("<Code>InvalidPolicyDocument</Code>") || !text.contains("<Message>Policy condition") {
        return resp;
    }
    let detail = text
        .split_once("<Message>")
        .and_then(|(_, rest)| rest.split_once("</Message>"))
        .map_or("", |(message, _)| message);
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy Condition failed: {detail}</Message></Error>"
    );
    let (mut parts, _) = resp.into_parts();
    parts.status = StatusCode::FORBIDDEN;
    parts.headers.remove(header::CONTENT_LENGTH);
    HttpResponse::from_parts(parts, Body::from(xml))
}

/// A browser form's `tagging` field (a `<Tagging>` XML document), which s3s does not read:
/// put in the request's extensions for the PutObject handler.
#[derive(Clone, Debug)]
pub(crate) struct FormTagging(pub(crate) String);

/// Where the key field's value and the file's name are in a form's first bytes.
#[derive(Debug, PartialEq, Eq)]
struct Fields {
    /// Byte range of the `key` field's value.
    key: Option<(usize, usize)>,
    /// Byte range of the `tagging` field's value.
    tagging: Option<(usize, usize)>,
    /// The `filename` of the `file` part.
    filename: Option<String>,
}

/// Finds the form's fields in its first bytes as they arrive, resuming where it left off, so
/// that a form trickled in byte by byte costs linear work.
struct Scanner {
    /// `--boundary`.
    delimiter: Vec<u8>,
    /// `\r\n--boundary`.
    separator: Vec<u8>,
    state: ScanState,
    /// Where the search for the current state's marker resumes.
    search_from: usize,
    key: Option<(usize, usize)>,
    tagging: Option<(usize, usize)>,
}

/// The fields the scanner keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Key,
    Tagging,
    Other,
}

#[derive(Clone, Copy)]
enum ScanState {
    /// Looking for the first delimiter.
    Start,
    /// Looking for the end of the headers of the part starting at this offset.
    Headers { start: usize },
    /// Looking for the end of this field's value.
    Value { start: usize, field: Field },
}

impl Scanner {
    fn new(boundary: &str) -> Scanner {
        Scanner {
            delimiter: format!("--{boundary}").into_bytes(),
            separator: format!("\r\n--{boundary}").into_bytes(),
            state: ScanState::Start,
            search_from: 0,
            key: None,
            tagging: None,
        }
    }

    /// Advances over `prefix` (the same bytes as before, with more appended): the fields once
    /// the `file` part's headers are in, `None` until then. A form this cannot read stays
    /// `None` (and goes to s3s as it came).
    fn advance(&mut self, prefix: &[u8]) -> Option<Fields> {
        loop {
            match self.state {
                ScanState::Start => {
                    let at = self.find(prefix, &self.delimiter.clone())?;
                    self.enter(ScanState::Headers {
                        start: at + self.delimiter.len() + 2,
                    });
                }
                ScanState::Headers { start } => {
                    let end = self.find(prefix, b"\r\n\r\n")?;
                    let headers = std::str::from_utf8(prefix.get(start..end)?).ok()?;
                    let (name, filename) = content_disposition(headers)?;
                    if name.eq_ignore_ascii_case("file") {
                        return Some(Fields {
                            key: self.key,
                            tagging: self.tagging,
                            filename,
                        });
                    }
                    let field = if name.eq_ignore_ascii_case("key") {
                        Field::Key
                    } else if name.eq_ignore_ascii_case("tagging") {
                        Field::Tagging
                    } else {
                        Field::Other
                    };
                    self.enter(ScanState::Value {
                        start: end + 4,
                        field,
                    });
                }
                ScanState::Value { start, field } => {
                    let end = self.find(prefix, &self.separator.clone())?;
                    match field {
                        Field::Key => self.key = Some((start, end)),
                        Field::Tagging => self.tagging = Some((start, end)),
                        Field::Other => {}
                    }
                    self.enter(ScanState::Headers {
                        start: end + self.separator.len() + 2,
                    });
                }
            }
        }
    }

    fn enter(&mut self, state: ScanState) {
        self.search_from = match state {
            ScanState::Start => 0,
            ScanState::Headers { start } | ScanState::Value { start, .. } => start,
        };
        self.state = state;
    }

    /// The next `needle` at or after the resume point; when absent, the resume point moves to
    /// where a later match could still begin.
    fn find(&mut self, haystack: &[u8], needle: &[u8]) -> Option<usize> {
        let found = find(haystack, needle, self.search_from);
        if found.is_none() {
            self.search_from = self
                .search_from
                .max(haystack.len().saturating_sub(needle.len().saturating_sub(1)));
        }
        found
    }
}

/// The `name` and `filename` of a part's Content-Disposition header.
fn content_disposition(headers: &str) -> Option<(String, Option<String>)> {
    let line = headers
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let mut name = None;
    let mut filename = None;
    for param in line.split(';').skip(1) {
        let (k, v) = param.trim().split_once('=')?;
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "filename" => filename = Some(v),
            _ => {}
        }
    }
    Some((name?, filename))
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// `prefix` with `${filename}` in the key's value replaced by the file's name, when both are
/// there.
fn rewrite_key(prefix: &Bytes, fields: &Fields) -> Option<Bytes> {
    let (start, end) = fields.key?;
    let filename = fields.filename.as_deref().filter(|f| !f.is_empty())?;
    let key = std::str::from_utf8(prefix.get(start..end)?).ok()?;
    if !key.contains(FILENAME_VARIABLE) {
        return None;
    }
    // Browsers may send a path; S3 uses the name as sent, the key is what the form says.
    let new_key = key.replace(FILENAME_VARIABLE, filename);
    let mut out = BytesMut::with_capacity(prefix.len() + new_key.len());
    out.extend_from_slice(&prefix[..start]);
    out.extend_from_slice(new_key.as_bytes());
    out.extend_from_slice(&prefix[end..]);
    Some(out.freeze())
}

fn adjust_content_length(headers: &mut HeaderMap, old: usize, new: usize) {
    let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    if let Some(adjusted) = length.checked_add(new).and_then(|n| n.checked_sub(old)) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(adjusted));
    }
}

/// The body with its first bytes (read by [`prepare`]) put back in front.
struct Prefixed {
    prefix: Option<Bytes>,
    /// A read error met while reading the prefix, given after it.
    error: Option<StdError>,
    rest: Body,
}

impl Stream for Prefixed {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(prefix)));
        }
        if let Some(err) = self.error.take() {
            return Poll::Ready(Some(Err(err)));
        }
        Pin::new(&mut self.rest).poll_next(cx)
    }
}

impl ByteStream for Prefixed {
    fn remaining_length(&self) -> RemainingLength {
        let prefix = self.prefix.as_ref().map_or(0, Bytes::len);
        match self.rest.remaining_length().exact() {
            Some(rest) => RemainingLength::new_exact(prefix + rest),
            None => RemainingLength::new(prefix, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/${filename}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\neyJ9\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cat.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nDATA";

    #[test]
    fn filename_replaces_the_variable_in_the_key_only() {
        let prefix = Bytes::from_static(FORM.as_bytes());
        let fields = Scanner::new("XyZ").advance(&prefix).unwrap();
        assert_eq!(fields.filename.as_deref(), Some("cat.jpg"));
        let rewritten = rewrite_key(&prefix, &fields).unwrap();
        let text = std::str::from_utf8(&rewritten).unwrap();
        assert_eq!(text, FORM.replace("uploads/${filename}", "uploads/cat.jpg"));
        // Until the file part's headers are in, nothing is decided.
        assert_eq!(Scanner::new("XyZ").advance(&prefix[..FORM.len() - 40]), None);
        // Fed byte by byte, the scanner resumes and finds the same fields.
        let mut scanner = Scanner::new("XyZ");
        let found = (1..=FORM.len()).find_map(|n| scanner.advance(&prefix[..n]));
        assert_eq!(found, Some(fields));
        // A key without the variable is left alone.
        let plain = Bytes::from(FORM.replace("${filename}", "fixed"));
        assert_eq!(
            rewrite_key(&plain, &Scanner::new("XyZ").advance(&plain).unwrap()),
            None
        );
    }

    #[test]
    fn content_length_follows_the_rewrite() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(1000));
        adjust_content_length(&mut headers, 100, 93);
        assert_eq!(headers[header::CONTENT_LENGTH], "993");
    }
}
