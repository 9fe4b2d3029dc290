//! Wildcard patterns and policy variables.
//!
//! A [`Pattern`] is compiled once when a policy is parsed: its text is split into literal runs,
//! `*` (any run of characters, `/` and `:` included), `?` (exactly one character) and, in
//! `2012-10-17` policies, policy variables (`${aws:username}`, `${s3:prefix, 'default'}`) and the
//! escapes `${*}`, `${?}`, `${$}` (a literal `*`, `?`, `$`). A pattern without variables matches
//! without allocating; one with variables resolves them from the request's [`Context`] first,
//! and what a variable brings in is always literal (a `*` in a user name is not a wildcard).
//!
//! A variable whose key is absent (and has no default) or has several values does not resolve,
//! and the pattern then matches nothing (AWS: the resource or value does not match).

use std::borrow::Cow;

use super::Context;

/// One compiled element of a pattern without variables.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Literal text (lowercased at parse in a case-insensitive pattern).
    Lit(String),
    /// `*`: any run of characters, empty included.
    Star,
    /// `?`: exactly one character.
    One,
}

/// One element of a pattern with variables, before resolution.
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Tok(Tok),
    /// `${key}` or `${key, 'default'}`; the key is lowercased (condition keys are
    /// case-insensitive).
    Var {
        key: String,
        default: Option<String>,
    },
}

/// A compiled pattern: the common shapes keep their literal inline (one pointer away).
#[derive(Clone, Debug, PartialEq)]
enum Matcher {
    /// `*` alone: matches everything.
    Any,
    /// No wildcard, no variable: the text must be equal.
    Exact(String),
    /// `literal*`: a prefix.
    Prefix(String),
    /// Any other pattern without variables.
    Glob(Vec<Tok>),
    /// A pattern with at least one variable.
    Template(Vec<Part>),
}

/// Options for compiling a pattern.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (false for the `...Equals` operators, where they are literal).
    pub wildcards: bool,
    /// `${...}` is a policy variable (only in `2012-10-17` policies).
    pub variables: bool,
    /// Case-insensitive matching (actions, `StringEqualsIgnoreCase`).
    pub fold_case: bool,
}

/// A compiled wildcard pattern, possibly with policy variables.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pattern {
    matcher: Matcher,
    fold_case: bool,
}

impl Pattern {
    /// Compiles `text` under `syntax`.
    pub(crate) fn compile(text: &str, syntax: Syntax) -> Pattern {
        let mut parts: Vec<Part> = Vec::new();
        let mut has_var = false;
        let mut lit = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if syntax.variables
                && rest.starts_with("${")
                && let Some(end) = rest[2..].find('}')
            {
                let inner = &rest[2..2 + end];
                let escaped = match inner {
                    "*" => Some('*'),
                    "?" => Some('?'),
                    "$" => Some('$'),
                    _ => None,
                };
                if let Some(e) = escaped {
                    lit.push(e);
                    rest = &rest[2 + end + 1..];
                    continue;
                }
                if let Some((key, default)) = parse_variable(inner) {
                    flush(&mut lit, &mut parts);
                    let default = default.map(|d| {
                        if syntax.fold_case {
                            d.to_lowercase()
                        } else {
                            d.to_owned()
                        }
                    });
                    parts.push(Part::Var {
                        key: key.to_ascii_lowercase(),
                        default,
                    });
                    has_var = true;
                    rest = &rest[2 + end + 1..];
                    continue;
                }
            }
            if syntax.wildcards && c == '*' {
                flush(&mut lit, &mut parts);
                if parts.last() != Some(&Part::Tok(Tok::Star)) {
                    parts.push(Part::Tok(Tok::Star));
                }
            } else if syntax.wildcards && c == '?' {
                flush(&mut lit, &mut parts);
                parts.push(Part::Tok(Tok::One));
            } else if syntax.fold_case {
                lit.extend(c.to_lowercase());
            } else {
                lit.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
        flush(&mut lit, &mut parts);

        let matcher = if has_var {
            Matcher::Template(parts)
        } else {
            let mut toks: Vec<Tok> = parts
                .into_iter()
                .filter_map(|p| match p {
                    Part::Tok(t) => Some(t),
                    Part::Var { .. } => None,
                })
                .collect();
            match toks.as_mut_slice() {
                [Tok::Star] => Matcher::Any,
                [] => Matcher::Exact(String::new()),
                [Tok::Lit(s)] => Matcher::Exact(std::mem::take(s)),
                [Tok::Lit(s), Tok::Star] => Matcher::Prefix(std::mem::take(s)),
                _ => Matcher::Glob(toks),
            }
        };
        Pattern {
            matcher,
            fold_case: syntax.fold_case,
        }
    }

    /// True when the pattern has at least one policy variable.
    pub(crate) fn has_variables(&self) -> bool {
        matches!(self.matcher, Matcher::Template(_))
    }

    /// The length of the text an exact pattern (no wildcard, no variable) matches.
    pub(crate) fn exact_len(&self) -> Option<usize> {
        match &self.matcher {
            Matcher::Exact(s) => Some(s.len()),
            _ => None,
        }
    }

    /// True when the pattern is `*` alone.
    pub(crate) fn is_any(&self) -> bool {
        matches!(self.matcher, Matcher::Any)
    }

    /// The pattern's text with its wildcards written back as `*` / `?`; None when it has
    /// variables.
    pub(crate) fn literal_text(&self) -> Option<String> {
        match &self.matcher {
            Matcher::Any => Some("*".to_owned()),
            Matcher::Exact(s) => Some(s.clone()),
            Matcher::Prefix(s) => Some(format!("{s}*")),
            Matcher::Glob(toks) => Some(toks_text(toks)),
            Matcher::Template(_) => None,
        }
    }

    /// Whether `input` matches. Variables are resolved from `ctx`; one that does not resolve
    /// makes the pattern match nothing.
    pub(crate) fn matches(&self, input: &str, ctx: &Context) -> bool {
        let fold = self.fold_case && input.is_ascii();
        if self.fold_case && !fold {
            // Case-insensitive against non-ASCII input: lowercase it first.
            return self.matches_lowered(input.to_lowercase().as_bytes(), ctx);
        }
        let input = input.as_bytes();
        match &self.matcher {
            Matcher::Any => true,
            Matcher::Exact(lit) => input.len() == lit.len() && lit_at(input, 0, lit, fold),
            Matcher::Prefix(lit) => lit_at(input, 0, lit, fold),
            Matcher::Glob(toks) => glob(toks, input, fold),
            Matcher::Template(parts) => self.matches_template(parts, input, ctx, fold),
        }
    }

    /// Like [`Pattern::matches`] for an input already lowercased (ASCII lowercase when it is
    /// ASCII, Unicode lowercase otherwise): a case-insensitive pattern, whose literals are
    /// lowercase, then compares bytes directly.
    pub(crate) fn matches_lowered(&self, lowered: &[u8], ctx: &Context) -> bool {
        match &self.matcher {
            Matcher::Any => true,
            Matcher::Exact(lit) => bytes_eq(lowered, lit.as_bytes()),
            Matcher::Prefix(lit) => starts_with(lowered, lit.as_bytes()),
            Matcher::Glob(toks) => glob(toks, lowered, false),
            Matcher::Template(parts) => self.matches_template(parts, lowered, ctx, false),
        }
    }

    fn matches_template(&self, parts: &[Part], input: &[u8], ctx: &Context, fold: bool) -> bool {
        // Reject on the literal head before resolving (and allocating).
        if let Some(Part::Tok(Tok::Lit(head))) = parts.first()
            && !lit_at(input, 0, head, fold)
        {
            return false;
        }
        match resolve_toks(parts, ctx, self.fold_case) {
            Some(toks) => glob(&toks, input, fold),
            None => false,
        }
    }

    /// Resolves the pattern's variables into plain text (for typed condition values, which
    /// have no wildcards). None when a variable does not resolve.
    pub(crate) fn resolve_text<'a>(&'a self, ctx: &'a Context) -> Option<Cow<'a, str>> {
        let Matcher::Template(parts) = &self.matcher else {
            return self.literal_text().map(Cow::Owned);
        };
        let toks = resolve_toks(parts, ctx, self.fold_case)?;
        let mut out = String::new();
        for t in &toks {
            match t {
                RTok::Lit(s) => out.push_str(s),
                RTok::Star => out.push('*'),
                RTok::One => out.push('?'),
            }
        }
        Some(Cow::Owned(out))
    }
}

/// Flushes a pending literal run into `parts`.
fn flush(lit: &mut String, parts: &mut Vec<Part>) {
    if !lit.is_empty() {
        parts.push(Part::Tok(Tok::Lit(std::mem::take(lit))));
    }
}

/// Parses the inside of `${...}`: `key` or `key, 'default'`. None when it is not a variable.
fn parse_variable(inner: &str) -> Option<(&str, Option<&str>)> {
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d.strip_prefix('\'')?.strip_suffix('\'')?;
            (k.trim(), Some(d))
        }
        None => (inner.trim(), None),
    };
    let valid = !key.is_empty() && !key.contains(['$', '{', '\'']);
    valid.then_some((key, default))
}

fn toks_text(toks: &[Tok]) -> String {
    let mut out = String::new();
    for t in toks {
        match t {
            Tok::Lit(s) => out.push_str(s),
            Tok::Star => out.push('*'),
            Tok::One => out.push('?'),
        }
    }
    out
}

/// A resolved element: literal text borrowed from the pattern or the context.
#[derive(Debug)]
enum RTok<'a> {
    Lit(Cow<'a, str>),
    Star,
    One,
}

fn resolve_toks<'a>(parts: &'a [Part], ctx: &'a Context, fold_case: bool) -> Option<Vec<RTok<'a>>> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        out.push(match p {
            Part::Tok(Tok::Lit(s)) => RTok::Lit(Cow::Borrowed(s.as_str())),
            Part::Tok(Tok::Star) => RTok::Star,
            Part::Tok(Tok::One) => RTok::One,
            Part::Var { key, default } => {
                let value: &str = match ctx.lookup(key) {
                    Some([one]) => one.as_str(),
                    Some(_) => return None,
                    None => default.as_deref()?,
                };
                if fold_case {
                    RTok::Lit(Cow::Owned(value.to_lowercase()))
                } else {
                    RTok::Lit(Cow::Borrowed(value))
                }
            }
        });
    }
    Some(out)
}

/// Borrowed view of one pattern element, for the shared matcher.
enum TokRef<'a> {
    Lit(&'a str),
    Star,
    One,
}

trait AsTok {
    fn as_tok(&self) -> TokRef<'_>;
}

impl AsTok for Tok {
    fn as_tok(&self) -> TokRef<'_> {
        match self {
            Tok::Lit(s) => TokRef::Lit(s),
            Tok::Star => TokRef::Star,
            Tok::One => TokRef::One,
        }
    }
}

impl AsTok for RTok<'_> {
    fn as_tok(&self) -> TokRef<'_> {
        match self {
            RTok::Lit(s) => TokRef::Lit(s),
            RTok::Star => TokRef::Star,
            RTok::One => TokRef::One,
        }
    }
}

/// Byte equality for the short strings of policies. Compares the last eight bytes first
/// (patterns and inputs share long prefixes such as `arn:aws:s3:::`, so a mismatch usually
/// shows at the end), then eight bytes at a time; cheaper than a call to `memcmp` at these
/// lengths.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if n < 8 {
        return short_word(a) == short_word(b);
    }
    if word(a, n - 8) != word(b, n - 8) {
        return false;
    }
    let mut at = 0;
    while at + 8 <= n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    true
}

/// Eight bytes of `bytes` at `at` as a number (the caller guarantees they exist).
#[inline]
fn word(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..at + 8).map(<[u8; 8]>::try_from) {
        Some(Ok(w)) => u64::from_le_bytes(w),
        _ => 0,
    }
}

/// Up to seven bytes as a number (for two slices of the same length).
#[inline]
fn short_word(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |w, &b| (w << 8) | u64::from(b))
}

/// Whether `input` starts with `prefix`.
#[inline]
fn starts_with(input: &[u8], prefix: &[u8]) -> bool {
    input
        .get(..prefix.len())
        .is_some_and(|head| bytes_eq(head, prefix))
}

/// Length of the UTF-8 sequence starting with `lead`.
fn char_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Whether `lit` occurs in `input` at byte offset `at` (ASCII case folded when `fold`).
fn lit_at(input: &[u8], at: usize, lit: &str, fold: bool) -> bool {
    let lit = lit.as_bytes();
    match input.get(at..at + lit.len()) {
        Some(window) if fold => window.eq_ignore_ascii_case(lit),
        Some(window) => bytes_eq(window, lit),
        None => false,
    }
}

/// The wildcard matcher: greedy with backtracking to the last `*` (never exponential). After
/// a `*`, a case-sensitive literal is found with a substring search rather than by trying
/// every position.
fn glob<T: AsTok>(toks: &[T], bytes: &[u8], fold: bool) -> bool {
    let mut t = 0;
    let mut i = 0;
    // (token after the last star, input position that star has consumed up to)
    let mut back: Option<(usize, usize)> = None;
    loop {
        if let Some(tok) = toks.get(t) {
            match tok.as_tok() {
                TokRef::Star => {
                    if t + 1 == toks.len() {
                        return true;
                    }
                    // Jump to where the next literal can start.
                    let start = match next_literal(toks, t + 1, bytes, i, fold) {
                        Some(at) => at,
                        None => return false,
                    };
                    back = Some((t + 1, start));
                    t += 1;
                    i = start;
                    continue;
                }
                TokRef::One => {
                    if let Some(&lead) = bytes.get(i) {
                        i += char_len(lead);
                        t += 1;
                        continue;
                    }
                }
                TokRef::Lit(lit) => {
                    if lit_at(bytes, i, lit, fold) {
                        i += lit.len();
                        t += 1;
                        continue;
                    }
                }
            }
        } else if i == bytes.len() {
            return true;
        }
        match back {
            Some((bt, bi)) if bi < bytes.len() => {
                let from = bi + char_len(bytes[bi]);
                let Some(ni) = next_literal(toks, bt, bytes, from, fold) else {
                    return false;
                };
                back = Some((bt, ni));
                t = bt;
                i = ni;
            }
            _ => return false,
        }
    }
}

/// The first position at or after `from` where token `t` can start: for a case-sensitive
/// literal, its next occurrence (None when there is none); otherwise `from` itself.
fn next_literal<T: AsTok>(toks: &[T], t: usize, input: &[u8], from: usize, fold: bool) -> Option<usize> {
    match toks.get(t).map(AsTok::as_tok) {
        Some(TokRef::Lit(lit)) if !fold => find_from(input, from, lit.as_bytes()),
        _ => Some(from),
    }
}

/// The first occurrence of `needle` (not empty) in `hay` at or after `from`. A naive scan
/// on the first byte: needles and inputs are short, and building a two-way searcher costs
/// more than the search. A match always starts on a character boundary (a needle taken from a
/// `str` starts with a lead byte).
fn find_from(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut at = from;
    while at <= last_start {
        let k = hay[at..=last_start].iter().position(|&b| b == first)?;
        at += k;
        if bytes_eq(&hay[at + 1..at + needle.len()], rest) {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLOB: Syntax = Syntax {
        wildcards: true,
        variables: true,
        fold_case: false,
    };
    const FOLD: Syntax = Syntax {
        wildcards: true,
        variables: false,
        fold_case: true,
    };

    fn m(pattern: &str, input: &str) -> bool {
        Pattern::compile(pattern, GLOB).matches(input, &Context::new())
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at:all"));
        assert!(m("a*", "a"));
        assert!(m("a*", "abc/def"));
        assert!(!m("a*", "ba"));
        assert!(m("*c", "abc"));
        assert!(m("a*c", "a/b/c"));
        assert!(!m("a*c", "a/b/cd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a?c", "aéc"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(m("a**b", "ab"));
        assert!(m("??", "éé"));
        assert!(!m("???", "éé"));
        assert!(m("ab", "ab"));
        assert!(!m("ab", "aB"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*.jpg", "photos/x.jpg"));
        assert!(!m("*.jpg", "photos/x.jpgx"));
    }

    #[test]
    fn folding() {
        let p = Pattern::compile("S3:Get*", FOLD);
        assert!(p.matches("s3:GETOBJECT", &Context::new()));
        assert!(p.matches("S3:getobject", &Context::new()));
        assert!(!p.matches("s3:PutObject", &Context::new()));
        let p = Pattern::compile("ÉTÉ", FOLD);
        assert!(p.matches("été", &Context::new()));
        assert!(p.matches("ÉtÉ", &Context::new()));
    }

    #[test]
    fn variables_and_escapes() {
        let mut ctx = Context::new();
        ctx.insert("aws:username", "al*ce");
        ctx.insert("s3:multi", "a");
        ctx.insert("s3:multi", "b");
        let p = Pattern::compile("home/${aws:username}/*", GLOB);
        assert!(p.matches("home/al*ce/x", &ctx));
        // the variable's star is literal
        assert!(!p.matches("home/alice/x", &ctx));
        let p = Pattern::compile("home/${AWS:UserName}", GLOB);
        assert!(p.matches("home/al*ce", &ctx));
        // absent: no match, not even with `*`-like input
        let p = Pattern::compile("home/${aws:userid}/*", GLOB);
        assert!(!p.matches("home//x", &ctx));
        // default
        let p = Pattern::compile("home/${aws:userid, 'nobody'}/*", GLOB);
        assert!(p.matches("home/nobody/x", &ctx));
        // multi-valued: not substituted
        let p = Pattern::compile("${s3:multi}", GLOB);
        assert!(!p.matches("a", &ctx));
        // escapes are literal characters
        let p = Pattern::compile("a${*}b${?}c${$}", GLOB);
        assert!(p.matches("a*b?c$", &ctx));
        assert!(!p.matches("axxb?c$", &ctx));
        // without variables (2008), `${...}` is text and `*` inside it a wildcard
        let p = Pattern::compile(
            "home/${aws:username}",
            Syntax {
                variables: false,
                ..GLOB
            },
        );
        assert!(p.matches("home/${aws:username}", &ctx));
        assert!(!p.matches("home/al*ce", &ctx));
        // unterminated is literal
        assert!(m("a${b", "a${b"));
    }

    /// The obvious recursive matcher, as a reference.
    fn reference(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|k| reference(rest, &s[k..])),
            Some(('?', rest)) => !s.is_empty() && reference(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
        }
    }

    #[test]
    fn glob_agrees_with_the_reference() {
        let alphabet = ['a', 'b', '/', 'é', '*', '?'];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap_or(0)
        };
        let syntax = Syntax {
            wildcards: true,
            variables: false,
            fold_case: false,
        };
        for _ in 0..20_000 {
            let plen = next(7);
            let pattern: String = (0..plen).map(|_| alphabet[next(6)]).collect();
            let ilen = next(9);
            let input: String = (0..ilen).map(|_| alphabet[next(4)]).collect();
            let p: Vec<char> = pattern.chars().collect();
            let s: Vec<char> = input.chars().collect();
            let got = Pattern::compile(&pattern, syntax).matches(&input, &Context::new());
            assert_eq!(got, reference(&p, &s), "{pattern:?} against {input:?}");
            let upper = input.to_uppercase();
            let folded = Pattern::compile(
                &pattern,
                Syntax {
                    fold_case: true,
                    ..syntax
                },
            )
            .matches(&upper, &Context::new());
            assert_eq!(folded, reference(&p, &s), "{pattern:?} against {upper:?}");
        }
    }

    #[test]
    fn literal_mode() {
        let p = Pattern::compile(
            "a*b?",
            Syntax {
                wildcards: false,
                variables: false,
                fold_case: false,
            },
        );
        assert!(p.matches("a*b?", &Context::new()));
        assert!(!p.matches("axxbc", &Context::new()));
        assert_eq!(p.literal_text().as_deref(), Some("a*b?"));
    }
}
