//! The built-in `nginx` image: an HTTP/1.1 server with nginx's default
//! site (welcome page on `/`, nginx's 404 page otherwise), keep-alive, and
//! one access-log line per request on stdout, as the nginx image logs.
//! It runs inside the Pod sandbox and binds 0.0.0.0 on its ports there.

use super::nginx_pages::{
    access_log_line, error_log_time, error_page, etag, http_date, log_time, AccessEntry,
    FIFTY_X_PAGE, PAGES_MTIME, WELCOME_PAGE,
};
use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

struct Settings {
    version: String,
    ports: Vec<u16>,
    optional_ports: Vec<u16>,
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut s = Settings {
        version: "1.27.5".into(),
        ports: Vec::new(),
        optional_ports: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--version" => s.version = value()?,
            "--port" => s
                .ports
                .push(value()?.parse().map_err(|_| "bad --port".to_string())?),
            "--optional-port" => s.optional_ports.push(
                value()?
                    .parse()
                    .map_err(|_| "bad --optional-port".to_string())?,
            ),
            // `nginx -g 'daemon off;'` as the image's CMD: nothing to do.
            "nginx" | "nginx-debug" | "-g" | "daemon off;" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if s.ports.is_empty() && s.optional_ports.is_empty() {
        s.ports.push(80);
    }
    Ok(s)
}

/// Run the server until SIGTERM, SIGINT or SIGQUIT; returns the exit code.
pub(crate) fn main(args: &[String]) -> i32 {
    let settings = match parse_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nginx: [emerg] {e}");
            return 1;
        }
    };
    // A caller inside a runtime cannot block on another one; run ours on a
    // thread of its own then.
    if tokio::runtime::Handle::try_current().is_ok() {
        return std::thread::spawn(move || run(settings))
            .join()
            .unwrap_or(1);
    }
    run(settings)
}

fn run(settings: Settings) -> i32 {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nginx: [emerg] cannot start: {e}");
            return 1;
        }
    };
    rt.block_on(serve(settings))
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn notice(message: &str) {
    let pid = std::process::id();
    eprintln!(
        "{} [notice] {pid}#{pid}: {message}",
        error_log_time(now_seconds())
    );
}

async fn serve(settings: Settings) -> i32 {
    println!("/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration");
    println!("/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/");
    println!("/docker-entrypoint.sh: Configuration complete; ready for start up");
    let mut listeners = Vec::new();
    for (port, required) in settings
        .ports
        .iter()
        .map(|p| (*p, true))
        .chain(settings.optional_ports.iter().map(|p| (*p, false)))
    {
        match listen(port) {
            Ok(l) => listeners.push(l),
            Err(e) if required => {
                let pid = std::process::id();
                eprintln!(
                    "{} [emerg] {pid}#{pid}: bind() to 0.0.0.0:{port} failed ({e})",
                    error_log_time(now_seconds())
                );
                return 1;
            }
            Err(_) => {}
        }
    }
    if listeners.is_empty() {
        eprintln!("nginx: [emerg] no port to listen on");
        return 1;
    }
    notice("using the \"epoll\" event method");
    notice(&format!("nginx/{}", settings.version));
    notice(&format!("OS: Linux {}", kernel_release()));
    notice("start worker processes");

    let site = Arc::new(Site::new(&settings.version));
    let log = spawn_access_log_writer();
    for listener in listeners {
        let site = site.clone();
        let log = log.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let site = site.clone();
                        let log = log.clone();
                        tokio::spawn(async move {
                            let _ = serve_connection(stream, peer, &site, &log).await;
                        });
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        });
    }
    let signal = wait_for_stop_signal().await;
    notice(&format!("signal {signal} received, exiting"));
    // Let the log writer drain what was already queued.
    drop(log);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    notice("exit");
    0
}

fn listen(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([0, 0, 0, 0], port)))?;
    // nginx's default backlog.
    socket.listen(511)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

async fn wait_for_stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) else {
        return "?";
    };
    tokio::select! {
        _ = term.recv() => "15 (SIGTERM)",
        _ = int.recv() => "2 (SIGINT)",
        _ = quit.recv() => "3 (SIGQUIT)",
    }
}

/// Access-log lines go through one writer task, which writes every line
/// queued so far in one write(2): one system call per burst, not per
/// request, under load.
fn spawn_access_log_writer() -> mpsc::UnboundedSender<String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut batch = String::new();
        while let Some(line) = rx.recv().await {
            batch.push_str(&line);
            while let Ok(more) = rx.try_recv() {
                batch.push_str(&more);
                if batch.len() > 64 * 1024 {
                    break;
                }
            }
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(batch.as_bytes());
            let _ = out.flush();
            batch.clear();
        }
    });
    tx
}

/// The default site's responses, rendered once.
struct Site {
    version: String,
    welcome_etag: String,
    fifty_x_etag: String,
    last_modified: String,
}

impl Site {
    fn new(version: &str) -> Site {
        Site {
            version: version.to_string(),
            welcome_etag: etag(PAGES_MTIME, WELCOME_PAGE.len()),
            fifty_x_etag: etag(PAGES_MTIME, FIFTY_X_PAGE.len()),
            last_modified: http_date(PAGES_MTIME),
        }
    }
}

thread_local! {
    /// (second, HTTP date, access-log time): formatted once per second per
    /// worker thread.
    static CLOCK: RefCell<(i64, String, String)> = const { RefCell::new((-1, String::new(), String::new())) };
}

fn clock() -> (String, String) {
    let now = now_seconds();
    CLOCK.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != now {
            *c = (now, http_date(now), log_time(now));
        }
        (c.1.clone(), c.2.clone())
    })
}

/// One parsed request head.
struct Request<'a> {
    line: &'a str,
    method: &'a str,
    path: &'a str,
    keep_alive: bool,
    content_length: usize,
    chunked: bool,
    user_agent: Option<&'a str>,
    referer: Option<&'a str>,
    if_none_match: Option<&'a str>,
}

fn parse_head(head: &str) -> Option<Request<'_>> {
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let line = lines.next()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if method.is_empty()
        || !target.starts_with('/')
        || !version.starts_with("HTTP/1.")
        || parts.next().is_some()
    {
        return None;
    }
    let http10 = version == "HTTP/1.0";
    let mut req = Request {
        line,
        method,
        path: target.split('?').next().unwrap_or(target),
        keep_alive: !http10,
        content_length: 0,
        chunked: false,
        user_agent: None,
        referer: None,
        if_none_match: None,
    };
    for h in lines {
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                req.keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                req.keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            req.content_length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            req.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("user-agent") {
            req.user_agent = Some(value);
        } else if name.eq_ignore_ascii_case("referer") {
            req.referer = Some(value);
        } else if name.eq_ignore_ascii_case("if-none-match") {
            req.if_none_match = Some(value);
        }
    }
    Some(req)
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    site: &Site,
    log: &mpsc::UnboundedSender<String>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let remote = peer.ip().to_string();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    loop {
        // Read until a whole request head is buffered.
        let head_end = loop {
            if let Some(end) = find_head_end(&buf) {
                break end;
            }
            if buf.len() > 32 * 1024 {
                let (date, time) = clock();
                let body_len = respond_error(&mut out, site, "400 Bad Request", &date, false);
                stream.write_all(&out).await?;
                let _ = log.send(access_log_line(&AccessEntry {
                    remote_addr: &remote,
                    time: &time,
                    request: "-",
                    status: 400,
                    body_bytes: body_len,
                    referer: None,
                    user_agent: None,
                }));
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let consumed = head_end.1;
        let (date, time) = clock();
        // Borrowed from `buf` when the head is valid UTF-8 (the usual case).
        let head = String::from_utf8_lossy(&buf[..head_end.0]);
        let Some(req) = parse_head(&head) else {
            let body_len = respond_error(&mut out, site, "400 Bad Request", &date, false);
            let first_line = head.lines().next().unwrap_or("-").to_string();
            drop(head);
            stream.write_all(&out).await?;
            let _ = log.send(access_log_line(&AccessEntry {
                remote_addr: &remote,
                time: &time,
                request: &first_line,
                status: 400,
                body_bytes: body_len,
                referer: None,
                user_agent: None,
            }));
            return Ok(());
        };
        // A request body is read and ignored: the default site serves
        // static files only.
        let mut body_left = req.content_length;
        let already = (buf.len() - consumed).min(body_left);
        body_left -= already;
        let drained = consumed + already;
        let keep_alive = req.keep_alive && !req.chunked;
        let (status, body_bytes) = respond(&mut out, site, &req, &date, keep_alive);
        let _ = log.send(access_log_line(&AccessEntry {
            remote_addr: &remote,
            time: &time,
            request: req.line,
            status,
            body_bytes,
            referer: req.referer,
            user_agent: req.user_agent,
        }));
        // `req` borrows `head`, which borrows `buf`: both end here.
        drop(head);
        buf.drain(..drained);
        while body_left > 0 {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk[..body_left.min(4096)]).await?;
            if n == 0 {
                return Ok(());
            }
            body_left -= n;
        }
        stream.write_all(&out).await?;
        if !keep_alive {
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

/// (end of the head without its blank line, bytes consumed including it)
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    buf.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}

/// Write the response into `out`; returns (status, body bytes sent).
fn respond(
    out: &mut Vec<u8>,
    site: &Site,
    req: &Request,
    date: &str,
    keep_alive: bool,
) -> (u16, usize) {
    let page = match req.path {
        "/" | "/index.html" => Some((WELCOME_PAGE, &site.welcome_etag)),
        "/50x.html" => Some((FIFTY_X_PAGE, &site.fifty_x_etag)),
        _ => None,
    };
    let head_only = req.method == "HEAD";
    match (req.method, page) {
        ("GET" | "HEAD", Some((body, tag))) => {
            if req.if_none_match == Some(tag.as_str()) {
                out.clear();
                write_head(
                    out,
                    "304 Not Modified",
                    &site.version,
                    date,
                    None,
                    keep_alive,
                );
                push_header(out, "Last-Modified", &site.last_modified);
                push_header(out, "ETag", tag);
                out.extend_from_slice(b"\r\n");
                return (304, 0);
            }
            out.clear();
            write_head(
                out,
                "200 OK",
                &site.version,
                date,
                Some(body.len()),
                keep_alive,
            );
            push_header(out, "Last-Modified", &site.last_modified);
            push_header(out, "ETag", tag);
            push_header(out, "Accept-Ranges", "bytes");
            out.extend_from_slice(b"\r\n");
            if head_only {
                return (200, 0);
            }
            out.extend_from_slice(body.as_bytes());
            (200, body.len())
        }
        ("GET" | "HEAD" | "POST", None) => {
            let len =
                respond_error_head_only(out, site, "404 Not Found", date, keep_alive, head_only);
            (404, len)
        }
        _ => {
            let len =
                respond_error_head_only(out, site, "405 Not Allowed", date, keep_alive, head_only);
            (405, len)
        }
    }
}

fn respond_error(
    out: &mut Vec<u8>,
    site: &Site,
    status: &str,
    date: &str,
    keep_alive: bool,
) -> usize {
    respond_error_head_only(out, site, status, date, keep_alive, false)
}

fn respond_error_head_only(
    out: &mut Vec<u8>,
    site: &Site,
    status: &str,
    date: &str,
    keep_alive: bool,
    head_only: bool,
) -> usize {
    let body = error_page(status, &site.version);
    out.clear();
    write_head(
        out,
        status,
        &site.version,
        date,
        Some(body.len()),
        keep_alive,
    );
    out.extend_from_slice(b"\r\n");
    if head_only {
        return 0;
    }
    out.extend_from_slice(body.as_bytes());
    body.len()
}

fn write_head(
    out: &mut Vec<u8>,
    status: &str,
    version: &str,
    date: &str,
    len: Option<usize>,
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\n");
    push_header(out, "Server", &format!("nginx/{version}"));
    push_header(out, "Date", date);
    if let Some(len) = len {
        push_header(out, "Content-Type", "text/html");
        push_header(out, "Content-Length", &len.to_string());
    }
    push_header(
        out,
        "Connection",
        if keep_alive { "keep-alive" } else { "close" },
    );
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str) -> (u16, usize, String) {
        let site = Site::new("1.27.5");
        let req = parse_head(head).expect("head parses");
        let mut out = Vec::new();
        let ka = req.keep_alive;
        let (status, len) = respond(&mut out, &site, &req, "Thu, 26 Nov 2026 10:00:00 GMT", ka);
        (status, len, String::from_utf8(out).unwrap())
    }

    #[test]
    fn root_serves_the_welcome_page_with_nginx_headers() {
        let (status, len, text) = request("GET / HTTP/1.1\r\nHost: web\r\nUser-Agent: curl/8.5.0");
        assert_eq!((status, len), (200, 615));
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nServer: nginx/1.27.5\r\nDate: Thu, 26 Nov 2026 10:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 615\r\n"));
        assert!(text.contains("Connection: keep-alive\r\n"));
        assert!(text.ends_with(WELCOME_PAGE));
    }

    #[test]
    fn other_paths_get_nginx_404_and_http10_closes() {
        let (status, _, text) = request("GET /nope HTTP/1.0");
        assert_eq!(status, 404);
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.contains("<center><h1>404 Not Found</h1></center>"));
    }

    #[test]
    fn head_has_no_body_and_delete_is_not_allowed() {
        let (status, len, text) = request("HEAD / HTTP/1.1");
        assert_eq!((status, len), (200, 0));
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(request("DELETE / HTTP/1.1").0, 405);
    }

    #[test]
    fn etag_match_is_not_modified() {
        let tag = etag(PAGES_MTIME, WELCOME_PAGE.len());
        let (status, len, _) = request(&format!("GET / HTTP/1.1\r\nIf-None-Match: {tag}"));
        assert_eq!((status, len), (304, 0));
    }

    #[test]
    fn malformed_heads_are_rejected() {
        assert!(parse_head("GARBAGE").is_none());
        assert!(parse_head("GET noslash HTTP/1.1").is_none());
        assert!(parse_head("GET / HTTP/2").is_none());
    }
}
