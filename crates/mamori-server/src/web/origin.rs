//! Pure checks of a request's origin and characters, shared by the API's edge
//! (`crate::http::edge`) and the console's layer.

/// The origin (`scheme://host[:port]`, lower case, default port left out) of a URL such as
/// `public_url`; `None` when it is not an http(s) URL.
pub fn public_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    // user:password@ is not part of an origin.
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() {
        return None;
    }
    let host = host.strip_suffix(default_port).unwrap_or(host);
    Some(format!("{scheme}://{host}"))
}

/// The loopback names a browser on the server's own host may use for it.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Whether the `Origin` a browser sent is this server's origin `ours` (as made by
/// [`public_origin`]). On loopback, `localhost`, `127.0.0.1` and `[::1]` with the same scheme
/// and port are one server: the default public URL says `localhost` (security keys need a
/// domain name) while a browser may have been pointed at `127.0.0.1`, and no other site can
/// serve pages from this host and port.
pub fn same_origin(sent: &str, ours: &str) -> bool {
    let sent = sent.trim_end_matches('/');
    if sent.eq_ignore_ascii_case(ours) {
        return true;
    }
    let Some(sent) = public_origin(sent) else {
        return false;
    };
    let split = |o: &str| -> Option<(String, String, String)> {
        let (scheme, authority) = o.split_once("://")?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h.to_string(), p.to_string()),
            _ => (authority.to_string(), String::new()),
        };
        Some((scheme.to_string(), host, port))
    };
    match (split(&sent), split(ours)) {
        (Some((s1, h1, p1)), Some((s2, h2, p2))) => {
            s1 == s2
                && p1 == p2
                && LOOPBACK_HOSTS.contains(&h1.as_str())
                && LOOPBACK_HOSTS.contains(&h2.as_str())
        }
        _ => false,
    }
}

/// Whether a character may not appear in names, ids, filters and other text the API accepts:
/// the C0 controls (NUL included), DEL and the C1 controls.
pub fn is_forbidden_control(c: char) -> bool {
    c.is_control()
}

/// Whether the percent-decoded path or query contains a control character (`+` in a query is
/// a space, so it is harmless either way).
pub fn uri_has_control(path: &str, query: Option<&str>) -> bool {
    let decoded = |s: &str| -> bool {
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
        String::from_utf8_lossy(&bytes)
            .chars()
            .any(is_forbidden_control)
    };
    decoded(path) || query.is_some_and(decoded)
}

/// Whether a JSON text carries a control character other than tab, line feed and carriage
/// return in a string: escaped (`\u0000`, `\b`, `\f`, …) or raw (DEL and the C1 controls may
/// appear unescaped in JSON strings). Tab, LF and CR stay allowed because files (hardware
/// token seed files) travel in JSON strings; names and ids refuse them in the domain. Text
/// that is not UTF-8 is left to the JSON parser to refuse.
pub fn json_has_control(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r');
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // Backslashes appear only inside strings in JSON, always starting an escape.
            match chars.next() {
                Some('b') | Some('f') => return true,
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    if code.is_some_and(|c| is_forbidden_control(c) && !allowed(c)) {
                        return true;
                    }
                }
                _ => {}
            }
        } else if is_forbidden_control(c) && !allowed(c) {
            return true;
        }
    }
    false
}
