//! Minimal scanning of the few S3 XML answers the client reads: ListObjectsV2 pages,
//! InitiateMultipartUpload, CompleteMultipartUpload and `<Error>` bodies.
//!
//! Invariant: this is a tag scan, not a parser: it finds `<Name>text</Name>` elements whose
//! text contains no markup, which is what S3 sends for these answers, and unescapes the five
//! predefined XML entities and numeric character references. Anything it cannot read is
//! reported as [`ClientError::MalformedXml`], never guessed.

use crate::ClientError;

/// One ListObjectsV2 page, reduced to what a client walking a bucket needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Keys of the page, in the order returned.
    pub keys: Vec<String>,
    /// `KeyCount`: keys plus common prefixes in this page.
    pub key_count: u64,
    /// `IsTruncated`: whether another page follows.
    pub is_truncated: bool,
    /// `NextContinuationToken`, present when truncated.
    pub next_continuation_token: Option<String>,
}

/// Text of every `<tag>…</tag>` element, in document order (raw, still escaped).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after_open = &rest[start + open.len()..];
        let Some(end) = after_open.find(&close) else {
            break;
        };
        found.push(&after_open[..end]);
        rest = &after_open[end + close.len()..];
    }
    found
}

/// Text of the first `<tag>…</tag>` element, unescaped.
pub fn first_element(xml: &str, tag: &str) -> Result<Option<String>, ClientError> {
    elements(xml, tag).first().map(|raw| unescape(raw)).transpose()
}

/// Unescapes `&amp; &lt; &gt; &quot; &apos;` and `&#N;` / `&#xH;`.
pub fn unescape(raw: &str) -> Result<String, ClientError> {
    if !raw.contains('&') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or(ClientError::MalformedXml {
            what: "unterminated entity",
        })?;
        let entity = &after[..semi];
        let decoded = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32).ok_or(ClientError::MalformedXml {
                    what: "unknown entity",
                })?
            }
        };
        out.push(decoded);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a ListObjectsV2 result.
pub fn parse_list_page(xml: &str) -> Result<ListPage, ClientError> {
    if !xml.contains("<ListBucketResult") {
        return Err(ClientError::MalformedXml {
            what: "no ListBucketResult element",
        });
    }
    let mut keys = Vec::new();
    for contents in elements(xml, "Contents") {
        let key = first_element(contents, "Key")?.ok_or(ClientError::MalformedXml {
            what: "Contents without Key",
        })?;
        keys.push(key);
    }
    let is_truncated = match first_element(xml, "IsTruncated")?.as_deref() {
        Some("true") => true,
        Some("false") | None => false,
        Some(_) => {
            return Err(ClientError::MalformedXml {
                what: "IsTruncated is not a boolean",
            });
        }
    };
    let key_count = match first_element(xml, "KeyCount")? {
        Some(count) => count
            .trim()
            .parse::<u64>()
            .map_err(|_| ClientError::MalformedXml {
                what: "KeyCount is not a number",
            })?,
        None => keys.len() as u64,
    };
    let next_continuation_token = first_element(xml, "NextContinuationToken")?.filter(|t| !t.is_empty());
    if is_truncated && next_continuation_token.is_none() {
        return Err(ClientError::MalformedXml {
            what: "truncated page without NextContinuationToken",
        });
    }
    Ok(ListPage {
        keys,
        key_count,
        is_truncated,
        next_continuation_token,
    })
}

/// The S3 error `Code` and `Message` of an `<Error>` body, if it is one.
pub fn parse_error(xml: &str) -> Option<(String, String)> {
    let body = elements(xml, "Error").into_iter().next()?;
    let code = first_element(body, "Code").ok().flatten()?;
    let message = first_element(body, "Message").ok().flatten().unwrap_or_default();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_page_truncated_with_escaped_keys() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/a&amp;b</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag><Size>3</Size></Contents>
<Contents><Key>p/&lt;c&gt;&#233;&#x41;</Key><Size>4</Size></Contents>
<NextContinuationToken>tok/en=</NextContinuationToken></ListBucketResult>"#;
        let page = parse_list_page(xml).unwrap();
        assert_eq!(page.keys, vec!["p/a&b".to_string(), "p/<c>éA".to_string()]);
        assert_eq!(page.key_count, 2);
        assert!(page.is_truncated);
        assert_eq!(page.next_continuation_token.as_deref(), Some("tok/en="));
    }

    #[test]
    fn list_page_last_and_empty() {
        let last = "<ListBucketResult><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>\
                    <Contents><Key>k</Key></Contents></ListBucketResult>";
        let page = parse_list_page(last).unwrap();
        assert_eq!(page.keys, vec!["k".to_string()]);
        assert!(!page.is_truncated);
        assert_eq!(page.next_continuation_token, None);

        let empty =
            "<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(parse_list_page(empty).unwrap(), ListPage::default());
    }

    #[test]
    fn malformed_list_pages_are_errors() {
        for xml in [
            "<Error><Code>NoSuchBucket</Code></Error>",
            "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
            "<ListBucketResult><KeyCount>x</KeyCount></ListBucketResult>",
            "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&bogus;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        ] {
            assert!(parse_list_page(xml).is_err(), "{xml}");
        }
    }

    #[test]
    fn error_bodies_and_single_elements() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &apos;k&apos; \
                   does not exist</Message><RequestId>1</RequestId></Error>";
        assert_eq!(
            parse_error(xml),
            Some(("NoSuchKey".to_string(), "The key 'k' does not exist".to_string()))
        );
        assert_eq!(parse_error("<CompleteMultipartUploadResult/>"), None);
        let init = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>\
                    <UploadId>abc-123</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(
            first_element(init, "UploadId").unwrap().as_deref(),
            Some("abc-123")
        );
        assert_eq!(first_element(init, "Missing").unwrap(), None);
    }
}
