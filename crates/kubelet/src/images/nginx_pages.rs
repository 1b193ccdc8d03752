//! What the built-in nginx says: the pages of the nginx image, its
//! response heads, and its access-log and error-log lines. Pure text.

/// nginx's `/usr/share/nginx/html/index.html` (615 bytes).
pub(crate) const WELCOME_PAGE: &str = "<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href=\"http://nginx.org/\">nginx.org</a>.<br/>
Commercial support is available at
<a href=\"http://nginx.com/\">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
";

/// nginx's `/usr/share/nginx/html/50x.html`.
pub(crate) const FIFTY_X_PAGE: &str = "<!DOCTYPE html>
<html>
<head>
<title>Error</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
<p>If you are the system administrator of this resource then you should check
the error log for details.</p>
<p><em>Faithfully yours, nginx.</em></p>
</body>
</html>
";

/// The modification time the image's files carry (nginx 1.27.5's build),
/// used for Last-Modified and ETag.
pub(crate) const PAGES_MTIME: i64 = 1_744_804_871; // Wed, 16 Apr 2025 12:01:11 GMT

/// The nginx version an image tag stands for: a full `x.y.z` tag is taken
/// as is, anything else is the 1.27 line.
pub(crate) fn nginx_version_for_tag(tag: &str) -> String {
    let numeric: String = tag
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Vec<&str> = numeric.split('.').filter(|p| !p.is_empty()).collect();
    match parts.len() {
        3.. => parts[..3].join("."),
        2 if parts[0] == "1" && parts[1] == "27" => "1.27.5".to_string(),
        2 => format!("{}.{}.0", parts[0], parts[1]),
        _ => "1.27.5".to_string(),
    }
}

/// nginx's built-in error page for `status` (`404 Not Found`), with CRLF
/// line ends as nginx sends it.
pub(crate) fn error_page(status_line: &str, version: &str) -> String {
    format!(
        "<html>\r\n<head><title>{status_line}</title></head>\r\n<body>\r\n<center><h1>{status_line}</h1></center>\r\n<hr><center>nginx/{version}</center>\r\n</body>\r\n</html>\r\n"
    )
}

/// `"67ffa8c7-267"`: nginx's ETag is the mtime and the size in hex.
pub(crate) fn etag(mtime: i64, size: usize) -> String {
    format!("\"{mtime:x}-{size:x}\"")
}

/// HTTP date: `Wed, 16 Apr 2025 12:01:11 GMT`.
pub(crate) fn http_date(unix_seconds: i64) -> String {
    match jiff::Timestamp::from_second(unix_seconds) {
        Ok(t) => t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        Err(_) => String::new(),
    }
}

/// The access log's time: `26/Nov/2026:10:00:00 +0000` (containers run
/// in UTC).
pub(crate) fn log_time(unix_seconds: i64) -> String {
    match jiff::Timestamp::from_second(unix_seconds) {
        Ok(t) => t.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        Err(_) => String::new(),
    }
}

/// The error log's time: `2026/11/26 10:00:00`.
pub(crate) fn error_log_time(unix_seconds: i64) -> String {
    match jiff::Timestamp::from_second(unix_seconds) {
        Ok(t) => t.strftime("%Y/%m/%d %H:%M:%S").to_string(),
        Err(_) => String::new(),
    }
}

/// One request, as the access log's `combined` format needs it.
pub(crate) struct AccessEntry<'a> {
    pub remote_addr: &'a str,
    /// Already formatted with `log_time`.
    pub time: &'a str,
    /// The request line as received (`GET / HTTP/1.1`).
    pub request: &'a str,
    pub status: u16,
    pub body_bytes: usize,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// `10.244.0.7 - - [26/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 615 "-" "curl/8.5.0"`
/// (nginx escapes `"`, `\` and bytes outside printable ASCII as `\xHH`).
pub(crate) fn access_log_line(e: &AccessEntry) -> String {
    format!(
        "{} - - [{}] \"{}\" {} {} \"{}\" \"{}\"\n",
        e.remote_addr,
        e.time,
        escape(e.request),
        e.status,
        e.body_bytes,
        escape(e.referer.unwrap_or("-")),
        escape(e.user_agent.unwrap_or("-")),
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_page_is_the_images_615_bytes() {
        assert_eq!(WELCOME_PAGE.len(), 615);
        assert!(WELCOME_PAGE.starts_with("<!DOCTYPE html>\n"));
        assert!(WELCOME_PAGE.contains("<title>Welcome to nginx!</title>"));
    }

    #[test]
    fn access_log_is_combined_format() {
        let line = access_log_line(&AccessEntry {
            remote_addr: "10.244.0.7",
            time: &log_time(1_795_687_200),
            request: "GET / HTTP/1.1",
            status: 200,
            body_bytes: 615,
            referer: None,
            user_agent: Some("curl/8.5.0"),
        });
        assert_eq!(
            line,
            "10.244.0.7 - - [26/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 615 \"-\" \"curl/8.5.0\"\n"
        );
    }

    #[test]
    fn access_log_escapes_quotes_and_control_bytes() {
        let line = access_log_line(&AccessEntry {
            remote_addr: "10.244.0.7",
            time: "t",
            request: "GET /\"x\" HTTP/1.1",
            status: 404,
            body_bytes: 153,
            referer: Some("a\tb"),
            user_agent: None,
        });
        assert!(
            line.contains("\"GET /\\x22x\\x22 HTTP/1.1\" 404 153 \"a\\x09b\" \"-\""),
            "{line}"
        );
    }

    #[test]
    fn error_pages_and_headers_look_like_nginx() {
        let p = error_page("404 Not Found", "1.27.5");
        assert!(p.contains(
            "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.27.5</center>"
        ));
        assert_eq!(etag(PAGES_MTIME, 615), "\"67ff9c07-267\"");
        assert_eq!(http_date(PAGES_MTIME), "Wed, 16 Apr 2025 12:01:11 GMT");
        assert_eq!(error_log_time(1_795_687_200), "2026/11/26 10:00:00");
    }

    #[test]
    fn versions_follow_the_tag() {
        assert_eq!(nginx_version_for_tag("latest"), "1.27.5");
        assert_eq!(nginx_version_for_tag("1.27"), "1.27.5");
        assert_eq!(nginx_version_for_tag("1.27.3-alpine"), "1.27.3");
        assert_eq!(nginx_version_for_tag("1.25"), "1.25.0");
        assert_eq!(nginx_version_for_tag("alpine"), "1.27.5");
    }
}
