//! `application/x-www-form-urlencoded` pairs, as query strings and STS form bodies carry them:
//! `+` is a space, `%XX` a byte; invalid UTF-8 is replaced rather than refused.

use percent_encoding::percent_decode_str;

fn decode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Every value of `name` in `form`, decoded, in order.
pub(crate) fn form_values<'a>(form: &'a str, name: &'a str) -> impl Iterator<Item = String> + 'a {
    form.split('&').filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

/// The first value of `name` in `form`, decoded.
pub(crate) fn form_value(form: &str, name: &str) -> Option<String> {
    form_values(form, name).next()
}

/// The first value of query parameter `name` of `uri`, decoded.
pub(crate) fn query_value(uri: &http::Uri, name: &str) -> Option<String> {
    form_value(uri.query()?, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_decode() {
        let form = "Action=AssumeRole&Policy=%7B%22a%22%3A1%7D&RoleSessionName=a+b&user=x&user=y&flag";
        assert_eq!(form_value(form, "Action").as_deref(), Some("AssumeRole"));
        assert_eq!(form_value(form, "Policy").as_deref(), Some("{\"a\":1}"));
        assert_eq!(form_value(form, "RoleSessionName").as_deref(), Some("a b"));
        assert_eq!(form_values(form, "user").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(form_value(form, "flag").as_deref(), Some(""));
        assert_eq!(form_value(form, "Missing"), None);
        let uri: http::Uri = "/b?prefix=home%2Fa%2F".parse().unwrap_or_default();
        assert_eq!(query_value(&uri, "prefix").as_deref(), Some("home/a/"));
    }
}
