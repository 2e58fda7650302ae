//! Tests of `http.rs`.

use super::super::testing::{seeded_bytes, sha256, Server};
use super::super::App;
use super::{content_type, HttpRoot, Status};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Marks the file outside the root: no response may ever contain it.
const SECRET: &str = "SECRET-5f1d0c7e-MUST-NOT-LEAK";

/// A directory under the system temp dir, removed on drop:
/// `secret.txt` outside `root/`, and in `root/` files of several types, `sub/` with an
/// index, `empty/` without one, and (on Unix) symlinks in and out.
struct Site {
    base: PathBuf,
}

impl Site {
    fn new(tag: &str) -> Site {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let base = std::env::temp_dir().join(format!("utcp-apps-http-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        for dir in ["sub", "empty"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(base.join("secret.txt"), SECRET).unwrap();
        std::fs::write(root.join("hello.txt"), "hello, world\n").unwrap();
        std::fs::write(root.join("index.html"), "<h1>top</h1>\n").unwrap();
        std::fs::write(root.join("data.json"), "{\"a\":1}\n").unwrap();
        std::fs::write(root.join("sub/index.html"), "<h1>sub</h1>\n").unwrap();
        std::fs::write(root.join("sub/inner.txt"), "inner\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
            symlink(&base, root.join("up")).unwrap();
            symlink(root.join("hello.txt"), root.join("alias.txt")).unwrap();
            symlink(base.join("secret.txt"), root.join("empty/index.html")).unwrap();
        }
        Site { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn serve(&self) -> Server {
        Server::start(App::Http(HttpRoot::new(self.root()).unwrap()), 8)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// One parsed response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Read one response; its body by Content-Length unless it answers a HEAD.
#[track_caller]
fn read_response(reader: &mut impl BufRead, head_only: bool) -> Response {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end_matches("\r\n");
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(": ").expect("header with ': '");
        headers.push((name.to_string(), value.to_string()));
    }
    let mut response = Response { status, headers, body: Vec::new() };
    let len: usize = response.header("Content-Length").expect("Content-Length").parse().unwrap();
    if !head_only {
        response.body = vec![0; len];
        reader.read_exact(&mut response.body).expect("body");
    }
    response
}

/// Send `request` on a fresh connection, then read everything until the server closes.
fn exchange(server: &Server, request: &[u8]) -> Vec<u8> {
    let mut conn = server.connect();
    conn.write_all(request).unwrap();
    let mut all = Vec::new();
    conn.read_to_end(&mut all).expect("the server closes after this request");
    all
}

/// GET `target` with `Connection: close` on a fresh connection.
fn get(server: &Server, target: &str) -> (Response, Vec<u8>) {
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let raw = exchange(server, request.as_bytes());
    let response = read_response(&mut raw.as_slice(), false);
    (response, raw)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

// --- serving files ---

#[test]
fn get_sends_file_with_length_and_type() {
    let site = Site::new("get");
    let server = site.serve();
    let (response, _) = get(&server, "/hello.txt");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello, world\n");
    assert_eq!(response.header("Content-Length"), Some("13"));
    assert_eq!(response.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let (json, _) = get(&server, "/data.json?ignored=1");
    assert_eq!(json.status, 200);
    assert_eq!(json.header("Content-Type"), Some("application/json"));
}

#[test]
fn head_sends_headers_and_no_body() {
    let site = Site::new("head");
    let server = site.serve();
    let mut conn = BufReader::new(server.connect());
    conn.get_mut().write_all(b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let head = read_response(&mut conn, true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("13"));
    // Had HEAD sent a body, it would be read here as the next status line.
    conn.get_mut().write_all(b"GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let next = read_response(&mut conn, false);
    assert_eq!(next.status, 200);
    assert_eq!(next.body, b"{\"a\":1}\n");
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let site = Site::new("keepalive");
    let server = site.serve();
    let mut conn = BufReader::new(server.connect());
    conn.get_mut().write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let first = read_response(&mut conn, false);
    assert_eq!((first.status, first.body.as_slice()), (200, &b"hello, world\n"[..]));
    assert_eq!(first.header("Connection"), Some("keep-alive"));
    conn.get_mut().write_all(b"GET /sub/inner.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let second = read_response(&mut conn, false);
    assert_eq!((second.status, second.body.as_slice()), (200, &b"inner\n"[..]));
    assert_eq!(second.header("Connection"), Some("close"));
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).expect("closed after Connection: close");
    assert!(rest.is_empty());
}

#[test]
fn http10_closes_unless_keep_alive() {
    let site = Site::new("http10");
    let server = site.serve();
    let raw = exchange(&server, b"GET /hello.txt HTTP/1.0\r\n\r\n");
    assert!(raw.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(raw.ends_with(b"\r\n\r\nhello, world\n"));

    let mut conn = BufReader::new(server.connect());
    conn.get_mut().write_all(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut conn, false).header("Connection"), Some("keep-alive"));
    conn.get_mut().write_all(b"GET /data.json HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut conn, false).body, b"{\"a\":1}\n");
}

#[test]
fn directory_serves_its_index_html() {
    let site = Site::new("index");
    let server = site.serve();
    let (top, _) = get(&server, "/");
    assert_eq!((top.status, top.body.as_slice()), (200, &b"<h1>top</h1>\n"[..]));
    assert_eq!(top.header("Content-Type"), Some("text/html; charset=utf-8"));
    for target in ["/sub", "/sub/", "/sub/./"] {
        let (sub, _) = get(&server, target);
        assert_eq!((sub.status, sub.body.as_slice()), (200, &b"<h1>sub</h1>\n"[..]), "{target}");
    }
}

#[test]
fn large_file_streams_whole() {
    let site = Site::new("large");
    let data = seeded_bytes(10, 10 << 20);
    std::fs::write(site.root().join("big.bin"), &data).unwrap();
    let server = site.serve();
    let (response, _) = get(&server, "/big.bin");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(response.body.len(), data.len());
    assert_eq!(sha256(&response.body), sha256(&data));
}

// --- errors ---

#[test]
fn missing_file_is_404() {
    let site = Site::new("missing");
    let server = site.serve();
    assert_eq!(get(&server, "/nope.txt").0.status, 404);
    assert_eq!(get(&server, "/hello.txt/more").0.status, 404);
}

#[test]
fn directory_without_index_is_404() {
    let site = Site::new("noindex");
    std::fs::create_dir(site.root().join("bare")).unwrap();
    let server = site.serve();
    assert_eq!(get(&server, "/bare/").0.status, 404);
}

#[test]
fn post_gets_405_with_allow_and_its_body_is_discarded() {
    let site = Site::new("post");
    let server = site.serve();
    let mut conn = BufReader::new(server.connect());
    conn.get_mut()
        .write_all(b"POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nGET /x HTTP")
        .unwrap();
    let refused = read_response(&mut conn, false);
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("Allow"), Some("GET, HEAD"));
    // The body was dropped, so the next request parses from its first byte.
    conn.get_mut().write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut conn, false).body, b"hello, world\n");
}

#[test]
fn malformed_requests_get_400_and_close() {
    let site = Site::new("malformed");
    let server = site.serve();
    for request in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /hello.txt\r\n\r\n",
        b"GET  /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n",
    ] {
        // A broken message leaves the connection unusable: the server closes unasked.
        let raw = exchange(&server, request);
        let shown = String::from_utf8_lossy(request);
        assert!(raw.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{shown:?}");
    }
    for target in ["hello.txt", "/%00.txt", "/%zz", "/hello.txt%2", "/%ff%fe"] {
        // A well-framed request with a bad path gets an ordinary 400 response.
        let (response, _) = get(&server, target);
        assert_eq!(response.status, 400, "{target}");
    }
    let raw = exchange(&server, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n");
    assert!(raw.starts_with(b"HTTP/1.1 505 "));
}

#[test]
fn long_uri_is_414_and_big_headers_431() {
    let site = Site::new("limits");
    let server = site.serve();
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    assert!(exchange(&server, long.as_bytes()).starts_with(b"HTTP/1.1 414 "));
    let longer = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(20_000));
    assert!(exchange(&server, longer.as_bytes()).starts_with(b"HTTP/1.1 414 "));
    let big = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "b".repeat(20_000));
    assert!(exchange(&server, big.as_bytes()).starts_with(b"HTTP/1.1 431 "));
    let many: String = (0..2000).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n");
    assert!(exchange(&server, many.as_bytes()).starts_with(b"HTTP/1.1 431 "));
}

// --- never a byte outside the root ---

#[test]
fn traversal_never_leaks_outside_root() {
    let site = Site::new("traversal");
    let server = site.serve();
    let secret = site.base.join("secret.txt");
    let absolute = format!("/{}", secret.display());
    let mut targets = vec![
        "/../secret.txt".to_string(),
        "/%2e%2e/secret.txt".into(),
        "/..%2fsecret.txt".into(),
        "/%2E%2E%2Fsecret.txt".into(),
        "/sub/../../secret.txt".into(),
        "/sub/%2e%2e/%2e%2e/secret.txt".into(),
        "/..\\secret.txt".into(),
        "/%5c..%5csecret.txt".into(),
        "/./../secret.txt".into(),
        absolute.clone(),
        format!("/{}", absolute.replace('/', "%2f")),
    ];
    if cfg!(unix) {
        targets.extend(["/leak.txt".into(), "/up/secret.txt".into(), "/empty/".into()]);
    }
    for target in &targets {
        let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let raw = exchange(&server, request.as_bytes());
        let head = String::from_utf8_lossy(&raw[..raw.len().min(12)]).into_owned();
        assert!(
            head == "HTTP/1.1 403" || head == "HTTP/1.1 404",
            "{target}: {:?}",
            String::from_utf8_lossy(&raw)
        );
        assert!(!contains(&raw, SECRET), "{target} leaked the secret");
    }
}

#[cfg(unix)]
#[test]
fn symlink_inside_root_is_served() {
    let site = Site::new("alias");
    let server = site.serve();
    let (alias, _) = get(&server, "/alias.txt");
    assert_eq!((alias.status, alias.body.as_slice()), (200, &b"hello, world\n"[..]));
}

#[test]
fn resolve_refuses_dot_dot_before_touching_the_file_system() {
    let site = Site::new("resolve");
    let root = HttpRoot::new(site.root()).unwrap();
    for target in ["/..", "/%2e%2e", "/a/%2E%2e/b", "/..%2f", "/x\\y"] {
        assert_eq!(root.resolve(target), Err(Status::Forbidden), "{target}");
    }
    assert_eq!(root.resolve("/hello.txt").unwrap(), root.dir().join("hello.txt"));
    assert_eq!(root.resolve("/hel%6co.txt#frag").unwrap(), root.dir().join("hello.txt"));
}

#[test]
fn root_must_be_an_existing_directory_and_errors_name_it() {
    let site = Site::new("badroot");
    let missing = site.base.join("no-such-dir");
    let error = HttpRoot::new(&missing).unwrap_err();
    assert!(error.to_string().contains("no-such-dir"), "{error}");
    let file = site.root().join("hello.txt");
    let error = HttpRoot::new(&file).unwrap_err();
    assert!(error.to_string().contains("hello.txt"), "{error}");
}

#[test]
fn content_type_follows_extension() {
    for (name, expected) in [
        ("a.html", "text/html; charset=utf-8"),
        ("a.TXT", "text/plain; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.json", "application/json"),
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.svg", "image/svg+xml"),
        ("a.pdf", "application/pdf"),
        ("a.bin", "application/octet-stream"),
        ("Makefile", "application/octet-stream"),
    ] {
        assert_eq!(content_type(Path::new(name)), expected, "{name}");
    }
}
