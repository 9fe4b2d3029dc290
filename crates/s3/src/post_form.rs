//! Browser form uploads (PostObject): what S3 does with a form that s3s 0.14.1 leaves out.
//!
//! - **`${filename}` in the `key` field** is replaced by the file's name (the `filename` of
//!   the `file` part's Content-Disposition), as S3 does. The form's fields come before the
//!   file part, so the front door buffers the body up to the file part's headers (at most
//!   [`FIELDS_BYTES_MAX`]), rewrites the key there, and streams the rest unchanged.
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

/// Most bytes of form fields (everything before the file part's content) read to find the
/// key and the file's name. AWS bounds the whole form's fields to 20 KB.
const FIELDS_BYTES_MAX: usize = 1024 * 1024;

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
    let fields = loop {
        if let Some(fields) = scan_fields(&prefix, &boundary) {
            break Some(fields);
        }
        if prefix.len() > FIELDS_BYTES_MAX {
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
    if let Some(rewritten) = fields.and_then(|f| rewrite_key(&prefix, &f)) {
        adjust_content_length(&mut parts.headers, prefix.len(), rewritten.len());
        prefix = rewritten;
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

/// Where the key field's value and the file's name are in a form's first bytes.
#[derive(Debug, PartialEq, Eq)]
struct Fields {
    /// Byte range of the `key` field's value.
    key: Option<(usize, usize)>,
    /// The `filename` of the `file` part.
    filename: Option<String>,
}

/// Scans the parts in `prefix` up to the `file` part's headers; `None` until they are all
/// there (or when the form is not one this can read).
fn scan_fields(prefix: &[u8], boundary: &str) -> Option<Fields> {
    let delimiter = format!("--{boundary}");
    let mut pos = find(prefix, delimiter.as_bytes(), 0)?;
    let mut key = None;
    loop {
        // After a delimiter: CRLF, the part's headers, a blank line, the value.
        let headers_start = pos + delimiter.len() + 2;
        let headers_end = find(prefix, b"\r\n\r\n", headers_start)?;
        let headers = std::str::from_utf8(prefix.get(headers_start..headers_end)?).ok()?;
        let (name, filename) = content_disposition(headers)?;
        let value_start = headers_end + 4;
        if name.eq_ignore_ascii_case("file") {
            return Some(Fields { key, filename });
        }
        let next = find(prefix, format!("\r\n{delimiter}").as_bytes(), value_start)?;
        if name.eq_ignore_ascii_case("key") {
            key = Some((value_start, next));
        }
        pos = next + 2;
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
    let adjusted = (length + new).saturating_sub(old);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(adjusted));
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
        let fields = scan_fields(&prefix, "XyZ").unwrap();
        assert_eq!(fields.filename.as_deref(), Some("cat.jpg"));
        let rewritten = rewrite_key(&prefix, &fields).unwrap();
        let text = std::str::from_utf8(&rewritten).unwrap();
        assert_eq!(text, FORM.replace("uploads/${filename}", "uploads/cat.jpg"));
        // Until the file part's headers are in, nothing is decided.
        assert_eq!(scan_fields(&prefix[..FORM.len() - 40], "XyZ"), None);
        // A key without the variable is left alone.
        let plain = Bytes::from(FORM.replace("${filename}", "fixed"));
        assert_eq!(rewrite_key(&plain, &scan_fields(&plain, "XyZ").unwrap()), None);
    }

    #[test]
    fn content_length_follows_the_rewrite() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(1000));
        adjust_content_length(&mut headers, 100, 93);
        assert_eq!(headers[header::CONTENT_LENGTH], "993");
    }
}
