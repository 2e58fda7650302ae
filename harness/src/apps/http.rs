//! A static-file HTTP/1.1 server for one directory: GET and HEAD, keep-alive, files streamed in
//! 64 KiB chunks, one log line per request.
//!
//! It must never send a byte of a file outside its root, whatever the request path says: see
//! [`HttpRoot`]. It speaks through [`Conn`] and must not depend on the socket type behind it.
//! RFC 9112 (HTTP/1.1 messages) and RFC 9110 (semantics) are the texts to read.

use super::{Conn, Transfer};
use std::fs::File;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

/// The longest request target accepted; longer gets 414.
const MAX_URI: usize = 8 * 1024;
/// The longest request line: the target plus room for the method and the version.
const MAX_REQUEST_LINE: usize = MAX_URI + 256;
/// The most bytes of header fields accepted after the request line; more gets 431.
const MAX_HEADERS: usize = 16 * 1024;
/// Empty lines skipped before a request line (RFC 9112 section 2.2 asks for at least one).
const MAX_LEADING_EMPTY_LINES: usize = 4;
/// Bytes per read from a file and per write of its body.
const CHUNK: usize = 64 * 1024;
/// Bytes read and dropped after an error response, so the close does not become a reset that
/// could destroy the response before the client reads it.
const MAX_DRAIN: u64 = 1 << 20;

/// The directory an HTTP server serves, canonicalized once so every request is checked
/// against the same real path.
#[derive(Clone, Debug)]
pub struct HttpRoot {
    dir: PathBuf,
}

impl HttpRoot {
    /// Canonicalize `dir`, which must be a directory; the error names it.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<HttpRoot> {
        let dir = dir.as_ref();
        let named = |e: io::Error| io::Error::new(e.kind(), format!("http root {}: {e}", dir.display()));
        let canonical = dir.canonicalize().map_err(named)?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                format!("http root {}: not a directory", dir.display()),
            ));
        }
        Ok(HttpRoot { dir: canonical })
    }

    /// The canonical directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The regular file inside the root that a request target names, or the status that
    /// refuses it.
    ///
    /// The checks, in order: the query and fragment are cut; the path must start with `/`;
    /// percent-decoding must be valid and yield no NUL and valid UTF-8 (else 400); a decoded
    /// backslash or `..` segment is refused with 403 before the file system is asked; the
    /// joined path is canonicalized and must lie under the canonical root (else 404, so a
    /// symlink pointing out is as good as absent). A directory stands for its `index.html`,
    /// checked the same way.
    fn resolve(&self, target: &str) -> Result<PathBuf, Status> {
        let path = target.split(['?', '#']).next().unwrap_or_default();
        if !path.starts_with('/') {
            return Err(Status::BadRequest);
        }
        let decoded = percent_decode(path).ok_or(Status::BadRequest)?;
        if decoded.contains(&0) {
            return Err(Status::BadRequest);
        }
        let decoded = String::from_utf8(decoded).map_err(|_| Status::BadRequest)?;
        if decoded.contains('\\') {
            return Err(Status::Forbidden);
        }
        let mut joined = self.dir.clone();
        for segment in decoded.split('/') {
            match segment {
                "" | "." => {}
                ".." => return Err(Status::Forbidden),
                // No segment holds a '/', so pushing one can never replace the root.
                name => joined.push(name),
            }
        }
        let found = self.inside(&joined)?;
        let file = if found.is_dir() { self.inside(&found.join("index.html"))? } else { found };
        if !file.is_file() {
            // Directories without an index, FIFOs, devices: nothing to send.
            return Err(Status::NotFound);
        }
        Ok(file)
    }

    /// The canonical form of `path` if it exists and lies under the root.
    fn inside(&self, path: &Path) -> Result<PathBuf, Status> {
        let canonical = path.canonicalize().map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => Status::Forbidden,
            _ => Status::NotFound,
        })?;
        // Path::starts_with compares whole components: "/srv/www2" is not under "/srv/www".
        if canonical.starts_with(&self.dir) {
            Ok(canonical)
        } else {
            Err(Status::NotFound)
        }
    }
}

/// The statuses this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    UriTooLong,
    HeaderFieldsTooLarge,
    NotImplemented,
    VersionNotSupported,
}

impl Status {
    fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::UriTooLong => 414,
            Status::HeaderFieldsTooLarge => 431,
            Status::NotImplemented => 501,
            Status::VersionNotSupported => 505,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::UriTooLong => "URI Too Long",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// `%XX` decoded to bytes, or `None` for a `%` not followed by two hex digits.
fn percent_decode(path: &str) -> Option<Vec<u8>> {
    fn hex(digit: u8) -> Option<u8> {
        (digit as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = bytes.get(i + 1..i + 3)?;
            out.push(hex(pair[0])? << 4 | hex(pair[1])?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The media type for a file, from its extension.
fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    Http10,
    Http11,
}

/// One parsed request head.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    /// Whether the connection stays open after the response (RFC 9112 section 9.3).
    keep_alive: bool,
    content_length: u64,
}

/// Why no request could be read.
#[derive(Debug)]
enum HeadError {
    /// The request is refused with this status, then the connection is closed.
    Refuse(Status),
    /// The peer closed in the middle of a request head.
    Truncated,
    Io(io::Error),
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> HeadError {
        HeadError::Io(e)
    }
}

/// Why a line could not be read.
enum LineError {
    TooLong,
    Head(HeadError),
}

impl From<io::Error> for LineError {
    fn from(e: io::Error) -> LineError {
        LineError::Head(HeadError::Io(e))
    }
}

/// One line without its CR LF (a bare LF also ends it), at most `limit` bytes with the end;
/// `None` at EOF before any byte.
fn read_line<R: BufRead>(reader: &mut R, limit: usize) -> Result<Option<Vec<u8>>, LineError> {
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if buf.is_empty() {
            return if line.is_empty() { Ok(None) } else { Err(LineError::Head(HeadError::Truncated)) };
        }
        let (take, ends) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > limit {
            return Err(LineError::TooLong);
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if ends {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

/// RFC 9110 section 5.6.2: the characters of a token (methods, header names).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The method, target and version of a request line.
fn parse_request_line(line: &[u8]) -> Result<(String, String, Version), Status> {
    let text = std::str::from_utf8(line).map_err(|_| Status::BadRequest)?;
    let mut parts = text.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(Status::BadRequest);
    }
    if target.len() > MAX_URI {
        return Err(Status::UriTooLong);
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Status::BadRequest);
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        // RFC 9112 section 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT
        v if v.len() == 8
            && v.starts_with("HTTP/")
            && v.as_bytes()[5].is_ascii_digit()
            && v.as_bytes()[6] == b'.'
            && v.as_bytes()[7].is_ascii_digit() =>
        {
            return Err(Status::VersionNotSupported)
        }
        _ => return Err(Status::BadRequest),
    };
    Ok((method.to_string(), target.to_string(), version))
}

/// The next request head, or `None` if the peer closed between requests.
fn read_request<R: BufRead>(reader: &mut R) -> Result<Option<Request>, HeadError> {
    let mut empty_lines = 0;
    let line = loop {
        match read_line(reader, MAX_REQUEST_LINE) {
            Ok(None) => return Ok(None),
            Ok(Some(line)) if line.is_empty() && empty_lines < MAX_LEADING_EMPTY_LINES => {
                empty_lines += 1;
            }
            Ok(Some(line)) => break line,
            Err(LineError::TooLong) => return Err(HeadError::Refuse(Status::UriTooLong)),
            Err(LineError::Head(e)) => return Err(e),
        }
    };
    let (method, target, version) = parse_request_line(&line).map_err(HeadError::Refuse)?;

    let mut header_bytes = 0;
    let mut content_length = None;
    let mut hosts = 0;
    let (mut close, mut keep_alive) = (false, false);
    loop {
        let line = match read_line(reader, MAX_HEADERS - header_bytes) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(HeadError::Truncated),
            Err(LineError::TooLong) => {
                return Err(HeadError::Refuse(Status::HeaderFieldsTooLarge));
            }
            Err(LineError::Head(e)) => return Err(e),
        };
        if line.is_empty() {
            break;
        }
        header_bytes += line.len() + 2;
        let (name, value) = parse_field(&line).map_err(HeadError::Refuse)?;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(value).ok_or(HeadError::Refuse(Status::BadRequest))?;
            // RFC 9112 section 6.3: differing lengths make the message invalid.
            if content_length.is_some_and(|m| m != n) {
                return Err(HeadError::Refuse(Status::BadRequest));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // RFC 9112 section 6.1: a server that receives a transfer coding it does not
            // understand SHOULD respond with 501. This server reads no chunked bodies.
            return Err(HeadError::Refuse(Status::NotImplemented));
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                close |= option.eq_ignore_ascii_case("close");
                keep_alive |= option.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    // RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    // HTTP/1.1 request message that lacks a Host header field and to any request message that
    // contains more than one Host header field line".
    if hosts > 1 || (version == Version::Http11 && hosts == 0) {
        return Err(HeadError::Refuse(Status::BadRequest));
    }
    // RFC 9112 section 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive && !close,
    };
    Ok(Some(Request { method, target, keep_alive, content_length: content_length.unwrap_or(0) }))
}

/// A header line's name and value (surrounding whitespace trimmed), or 400.
fn parse_field(line: &[u8]) -> Result<(&str, &str), Status> {
    let text = std::str::from_utf8(line).map_err(|_| Status::BadRequest)?;
    let (name, value) = text.split_once(':').ok_or(Status::BadRequest)?;
    // RFC 9112 section 5.1: no whitespace is allowed between the field name and colon; a line
    // starting with whitespace is obsolete line folding, refused here (section 5.2).
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(Status::BadRequest);
    }
    // RFC 9112 section 2.2: a bare CR must be treated as invalid (or replaced).
    if value.bytes().any(|b| b == b'\r' || b == 0) {
        return Err(Status::BadRequest);
    }
    Ok((name, value.trim_matches([' ', '\t'])))
}

fn parse_content_length(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// A `Read + Write` over a connection that counts both ways.
struct Counted<'a, C> {
    conn: &'a mut C,
    moved: Transfer,
}

impl<C: Read> Read for Counted<'_, C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.conn.read(buf)?;
        self.moved.read += n as u64;
        Ok(n)
    }
}

impl<C: Write> Write for Counted<'_, C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.write(buf)?;
        self.moved.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

/// Serve requests for files under `root` on one connection until either side closes it.
pub fn serve_http<C: Conn>(conn: &mut C, root: &HttpRoot) -> io::Result<Transfer> {
    let mut wire = BufReader::new(Counted { conn, moved: Transfer::default() });
    loop {
        let request = match read_request(&mut wire) {
            Ok(Some(request)) => request,
            Ok(None) | Err(HeadError::Truncated) => break,
            Err(HeadError::Io(e)) if peer_gone(&e) => break,
            Err(HeadError::Io(e)) => return Err(e),
            Err(HeadError::Refuse(status)) => {
                let sent = send_error(wire.get_mut(), status, false, false)?;
                tracing::info!(method = "-", path = "-", status = status.code(), bytes = sent, "http");
                linger(&mut wire)?;
                break;
            }
        };
        // Bodies are read and dropped so the next request starts where it should.
        let body = io::copy(&mut (&mut wire).take(request.content_length), &mut io::sink())?;
        if body < request.content_length {
            break;
        }
        let (status, bytes) = respond(wire.get_mut(), root, &request)?;
        tracing::info!(
            method = %request.method,
            path = ?request.target,
            status = status.code(),
            bytes,
            "http"
        );
        if !request.keep_alive {
            break;
        }
    }
    Ok(wire.get_ref().moved)
}

/// Whether an error only says the peer went away.
fn peer_gone(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe)
}

/// After an error response: send FIN, then read and drop what the client still sends (up to
/// [`MAX_DRAIN`]) so closing with unread data does not reset the connection under the response.
fn linger<C: Conn>(wire: &mut BufReader<Counted<'_, C>>) -> io::Result<()> {
    wire.get_ref().conn.shutdown_write()?;
    match io::copy(&mut wire.take(MAX_DRAIN), &mut io::sink()) {
        Err(e) if !peer_gone(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Answer one request; the status sent and the body bytes written.
fn respond<W: Write>(out: &mut W, root: &HttpRoot, request: &Request) -> io::Result<(Status, u64)> {
    let head_only = match request.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let sent = send_error(out, Status::MethodNotAllowed, request.keep_alive, false)?;
            return Ok((Status::MethodNotAllowed, sent));
        }
    };
    let opened = root.resolve(&request.target).and_then(|path| {
        let file = File::open(&path).map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => Status::Forbidden,
            _ => Status::NotFound,
        })?;
        Ok((path, file))
    });
    let (path, file) = match opened {
        Ok(opened) => opened,
        Err(status) => {
            let sent = send_error(out, status, request.keep_alive, head_only)?;
            return Ok((status, sent));
        }
    };
    let len = file.metadata()?.len();
    let head = head(Status::Ok, content_type(&path), len, request.keep_alive, "");
    if head_only {
        out.write_all(head.as_bytes())?;
        return Ok((Status::Ok, 0));
    }
    let sent = send_file(out, head.as_bytes(), file, len)?;
    Ok((Status::Ok, sent))
}

/// The status line and header fields, ending with the empty line.
fn head(status: Status, content_type: &str, len: u64, keep_alive: bool, extra: &str) -> String {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "HTTP/1.1 {} {}\r\nServer: utcp\r\nContent-Type: {content_type}\r\n\
         Content-Length: {len}\r\nConnection: {connection}\r\n{extra}\r\n",
        status.code(),
        status.reason()
    )
}

/// An error response with a one-line text body; the body bytes written.
fn send_error<W: Write>(out: &mut W, status: Status, keep_alive: bool, head_only: bool) -> io::Result<u64> {
    let body = format!("{} {}\n", status.code(), status.reason());
    // RFC 9110 section 15.5.6: a 405 response MUST include an Allow header field.
    let extra = if status == Status::MethodNotAllowed { "Allow: GET, HEAD\r\n" } else { "" };
    let mut message = head(status, "text/plain; charset=utf-8", body.len() as u64, keep_alive, extra);
    if !head_only {
        message.push_str(&body);
    }
    out.write_all(message.as_bytes())?;
    out.flush()?;
    Ok(if head_only { 0 } else { body.len() as u64 })
}

/// Send `head` and then exactly `len` bytes of `file` in [`CHUNK`]-sized pieces, the head in
/// the same write as the first piece; the body bytes written.
fn send_file<W: Write>(out: &mut W, head: &[u8], mut file: File, len: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK + head.len()];
    buf[..head.len()].copy_from_slice(head);
    let mut filled = head.len();
    let mut left = len;
    loop {
        let room = (buf.len() - filled).min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = if room == 0 { 0 } else { file.read(&mut buf[filled..filled + room])? };
        if n == 0 && room > 0 {
            // Content-Length is already promised: the connection cannot carry on.
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "file shrank while being sent"));
        }
        filled += n;
        left -= n as u64;
        out.write_all(&buf[..filled])?;
        filled = 0;
        if left == 0 {
            break;
        }
    }
    out.flush()?;
    Ok(len)
}

#[cfg(test)]
mod tests;
