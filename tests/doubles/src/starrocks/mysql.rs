//! The server side of the MySQL client/server protocol, as the StarRocks FE speaks it on its
//! query port (9030): HandshakeV10 with `mysql_native_password`, capability negotiation,
//! COM_QUERY with text result sets, COM_PING, COM_QUIT, COM_INIT_DB, COM_RESET_CONNECTION, OK
//! and ERR packets with SQL states. Prepared statements are refused (the loader sends text
//! queries).
//!
//! Exists so that real MySQL clients (mysql_async in the loader, the mariadb CLI in the
//! cross-checks) talk to the double exactly as to a StarRocks FE. What the statements do is in
//! `sql.rs`.
//!
//! Connect-time traffic of the clients we care about (answered by `sql.rs`):
//! - mysql_async 0.37 (conn/mod.rs `Conn::new` -> `read_settings`): right after auth it sends
//!   `SELECT @@max_allowed_packet,@@wait_timeout,@@socket` (`@@socket` only because
//!   `prefer_socket` defaults to true on unix; the double answers NULL so the client does not
//!   try to reconnect over a unix socket); pooled connections are reset with
//!   COM_RESET_CONNECTION when returned to the pool.
//! - mariadb CLI 10.11: `select @@version_comment limit 1`.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use super::sql::{self, ColDef, Outcome, Session};
use super::util;
use super::{Cell, Shared};

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_FOUND_ROWS: u32 = 0x2;
const CLIENT_LONG_FLAG: u32 = 0x4;
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x2_0000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CLIENT_CONNECT_ATTRS: u32 = 0x10_0000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x20_0000;
const CLIENT_DEPRECATE_EOF: u32 = 0x100_0000;

const SERVER_CAPS: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC
    | CLIENT_DEPRECATE_EOF;

const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
const NATIVE: &str = "mysql_native_password";
/// What StarRocks 3.x reports as its MySQL server version.
pub const SERVER_VERSION: &str = "8.0.33";
const MAX_PAYLOAD: usize = 0xff_ffff;

pub(crate) fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut conn_id: u32 = 0;
    for conn in listener.incoming() {
        if shared.stopping() {
            break;
        }
        conn_id = conn_id.wrapping_add(1);
        match conn {
            Ok(stream) => {
                let s = shared.clone();
                let id = conn_id;
                let spawned = std::thread::Builder::new()
                    .name("sr-mysql-conn".into())
                    .spawn(move || {
                        let reg = s.register(&stream);
                        let _ = stream.set_nodelay(true);
                        if let Err(e) = connection(&s, stream, id) {
                            s.io_error("MySQL", &e);
                        }
                        s.unregister(reg);
                    });
                if let Err(e) = spawned {
                    eprintln!("starrocks double: cannot spawn a MySQL connection thread: {e}");
                }
            }
            Err(e) => eprintln!("starrocks double: MySQL accept failed: {e}"),
        }
    }
}

/// Packet framing over one connection.
struct Wire {
    reader: BufReader<TcpStream>,
    out: TcpStream,
    seq: u8,
    buf: Vec<u8>,
}

impl Wire {
    /// Reads one logical packet (joining 16 MiB continuation packets).
    fn read_packet(&mut self) -> io::Result<Vec<u8>> {
        let mut payload = Vec::new();
        loop {
            let mut head = [0u8; 4];
            self.reader.read_exact(&mut head)?;
            let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
            self.seq = head[3].wrapping_add(1);
            let start = payload.len();
            payload.resize(start + len, 0);
            self.reader.read_exact(&mut payload[start..])?;
            if len < MAX_PAYLOAD {
                return Ok(payload);
            }
        }
    }

    /// Queues one logical packet (split at 16 MiB) for [`Wire::flush`].
    fn packet(&mut self, payload: &[u8]) {
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_PAYLOAD);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            self.buf.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < MAX_PAYLOAD {
                break;
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.out.write_all(&self.buf).and_then(|_| self.out.flush());
        self.buf.clear();
        r
    }
}

fn lenenc_int(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v < 1 << 16 {
        out.push(0xfc);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v < 1 << 24 {
        out.push(0xfd);
        out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xfe);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    lenenc_int(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn ok_packet(affected: u64, info: &str) -> Vec<u8> {
    let mut p = vec![0x00];
    lenenc_int(&mut p, affected);
    lenenc_int(&mut p, 0);
    p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    if !info.is_empty() {
        // Servers send the info as a length-encoded string (net_send_ok), whatever the
        // protocol documentation says, and clients parse it so.
        lenenc_str(&mut p, info.as_bytes());
    }
    p
}

fn err_packet(code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    let mut st = state.as_bytes().to_vec();
    st.resize(5, b'0');
    p.extend_from_slice(&st[..5]);
    p.extend_from_slice(msg.as_bytes());
    p
}

/// EOF packet, or with CLIENT_DEPRECATE_EOF the OK packet with a 0xFE header that ends a
/// result set.
fn eof_packet(deprecate_eof: bool) -> Vec<u8> {
    if deprecate_eof {
        let mut p = vec![0xfe];
        lenenc_int(&mut p, 0);
        lenenc_int(&mut p, 0);
        p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        p
    } else {
        let mut p = vec![0xfe];
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        p
    }
}

fn column_def(c: &ColDef) -> Vec<u8> {
    let (ty, len, decimals) = c.ty.mysql_type();
    let mut p = Vec::new();
    lenenc_str(&mut p, b"def");
    lenenc_str(&mut p, c.schema.as_bytes());
    lenenc_str(&mut p, c.table.as_bytes());
    lenenc_str(&mut p, c.table.as_bytes());
    lenenc_str(&mut p, c.name.as_bytes());
    lenenc_str(&mut p, c.org_name.as_bytes());
    p.push(0x0c);
    let charset: u16 = if c.ty.is_text() { 33 } else { 63 };
    p.extend_from_slice(&charset.to_le_bytes());
    // utf8 (3 bytes a character) columns report 3x the character length, like MySQL.
    let len = if charset == 33 {
        len.saturating_mul(3)
    } else {
        len
    };
    p.extend_from_slice(&len.to_le_bytes());
    p.push(ty);
    let mut flags: u16 = 0;
    if !c.nullable {
        flags |= 0x0001;
    }
    if charset == 63 {
        flags |= 0x0080;
    }
    p.extend_from_slice(&flags.to_le_bytes());
    p.push(decimals);
    p.extend_from_slice(&[0, 0]);
    p
}

fn row_packet(row: &[Cell]) -> Vec<u8> {
    let mut p = Vec::new();
    for cell in row {
        match cell {
            None => p.push(0xfb),
            Some(v) => lenenc_str(&mut p, v),
        }
    }
    p
}

/// Reads a NUL-terminated string at `*pos`.
fn cstr(b: &[u8], pos: &mut usize) -> Vec<u8> {
    let start = (*pos).min(b.len());
    let end = b[start..]
        .iter()
        .position(|&c| c == 0)
        .map_or(b.len(), |i| start + i);
    *pos = (end + 1).min(b.len() + 1);
    b[start..end].to_vec()
}

fn read_lenenc(b: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *b.get(*pos)?;
    *pos += 1;
    let n = match first {
        0..=250 => return Some(first as u64),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = b.get(*pos..*pos + n)?;
    *pos += n;
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(bytes);
    Some(u64::from_le_bytes(v))
}

/// `SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))`, what a client must send.
pub fn native_token(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = util::sha1(password.as_bytes());
    let stage2 = util::sha1(&stage1);
    let mut salted = scramble.to_vec();
    salted.extend_from_slice(&stage2);
    let mix = util::sha1(&salted);
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

struct HandshakeResponse {
    caps: u32,
    user: String,
    auth: Vec<u8>,
    db: Option<String>,
    plugin: Option<String>,
}

fn parse_handshake_response(p: &[u8]) -> Option<HandshakeResponse> {
    if p.len() < 32 {
        return None;
    }
    let caps = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
    if caps & CLIENT_PROTOCOL_41 == 0 {
        return None;
    }
    let mut pos = 32;
    let user = String::from_utf8_lossy(&cstr(p, &mut pos)).into_owned();
    let auth = if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        let n = read_lenenc(p, &mut pos)? as usize;
        let a = p.get(pos..pos + n)?.to_vec();
        pos += n;
        a
    } else if caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = *p.get(pos)? as usize;
        pos += 1;
        let a = p.get(pos..pos + n)?.to_vec();
        pos += n;
        a
    } else {
        cstr(p, &mut pos)
    };
    let db = if caps & CLIENT_CONNECT_WITH_DB != 0 && pos < p.len() {
        Some(String::from_utf8_lossy(&cstr(p, &mut pos)).into_owned()).filter(|d| !d.is_empty())
    } else {
        None
    };
    let plugin = if caps & CLIENT_PLUGIN_AUTH != 0 && pos < p.len() {
        Some(String::from_utf8_lossy(&cstr(p, &mut pos)).into_owned())
    } else {
        None
    };
    Some(HandshakeResponse {
        caps,
        user,
        auth,
        db,
        plugin,
    })
}

fn connection(shared: &Shared, stream: TcpStream, conn_id: u32) -> io::Result<()> {
    let out = stream.try_clone()?;
    let mut w = Wire {
        reader: BufReader::new(stream),
        out,
        seq: 0,
        buf: Vec::new(),
    };

    // Scramble: 20 printable bytes (no NUL, which would end the C string).
    let mut scramble = Vec::with_capacity(20);
    while scramble.len() < 20 {
        for b in util::random_u64().to_le_bytes() {
            if scramble.len() < 20 {
                scramble.push(0x21 + b % 0x5e);
            }
        }
    }
    let mut hs = vec![10u8];
    hs.extend_from_slice(SERVER_VERSION.as_bytes());
    hs.push(0);
    hs.extend_from_slice(&conn_id.to_le_bytes());
    hs.extend_from_slice(&scramble[..8]);
    hs.push(0);
    hs.extend_from_slice(&(SERVER_CAPS as u16).to_le_bytes());
    hs.push(33); // utf8_general_ci
    hs.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
    hs.extend_from_slice(&((SERVER_CAPS >> 16) as u16).to_le_bytes());
    hs.push(21);
    hs.extend_from_slice(&[0u8; 10]);
    hs.extend_from_slice(&scramble[8..]);
    hs.push(0);
    hs.extend_from_slice(NATIVE.as_bytes());
    hs.push(0);
    w.seq = 0;
    w.packet(&hs);
    w.flush()?;

    let resp = w.read_packet()?;
    let Some(hr) = parse_handshake_response(&resp) else {
        w.packet(&err_packet(
            1043,
            "08S01",
            "Bad handshake: the client must speak protocol 4.1",
        ));
        w.flush()?;
        return Ok(());
    };
    let caps = hr.caps & SERVER_CAPS;
    let mut auth = hr.auth.clone();
    if hr.plugin.as_deref().is_some_and(|p| p != NATIVE) {
        // AuthSwitchRequest to mysql_native_password with the same scramble.
        let mut sw = vec![0xfe];
        sw.extend_from_slice(NATIVE.as_bytes());
        sw.push(0);
        sw.extend_from_slice(&scramble);
        sw.push(0);
        w.packet(&sw);
        w.flush()?;
        auth = w.read_packet()?;
    }
    let expected = native_token(&shared.cfg.password, &scramble);
    if hr.user != shared.cfg.user || auth != expected {
        let using = if auth.is_empty() { "NO" } else { "YES" };
        w.packet(&err_packet(
            1045,
            "28000",
            &format!(
                "Access denied for user '{}'@'127.0.0.1' (using password: {using})",
                hr.user
            ),
        ));
        w.flush()?;
        shared.trace(&format!("MySQL login refused for {}", hr.user));
        return Ok(());
    }
    let mut session = Session::new(&hr.user, conn_id);
    if let Some(db) = &hr.db {
        if !shared.lock().dbs.contains_key(db) {
            w.packet(&err_packet(
                1049,
                "42000",
                &format!("Unknown database '{db}'"),
            ));
            w.flush()?;
            return Ok(());
        }
        session.db = Some(db.clone());
    }
    w.packet(&ok_packet(0, ""));
    w.flush()?;

    let deprecate_eof = caps & CLIENT_DEPRECATE_EOF != 0;
    loop {
        let p = match w.read_packet() {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some((&cmd, rest)) = p.split_first() else {
            continue;
        };
        match cmd {
            0x01 => return Ok(()), // COM_QUIT
            0x02 => {
                let db = String::from_utf8_lossy(rest).into_owned();
                let exists = shared.lock().dbs.contains_key(&db);
                if exists {
                    session.db = Some(db);
                    w.packet(&ok_packet(0, ""));
                } else {
                    w.packet(&err_packet(
                        1049,
                        "42000",
                        &format!("Unknown database '{db}'"),
                    ));
                }
            }
            0x03 => {
                let text = String::from_utf8_lossy(rest).into_owned();
                shared.trace(&format!("MySQL #{conn_id}: {text}"));
                shared.lock().queries.push(text.clone());
                match sql::execute(shared, &mut session, &text) {
                    Outcome::Ok { affected, info } => w.packet(&ok_packet(affected, &info)),
                    Outcome::Err(e) => w.packet(&err_packet(e.code, e.state, &e.msg)),
                    Outcome::Rows { columns, rows } => {
                        let mut count = Vec::new();
                        lenenc_int(&mut count, columns.len() as u64);
                        w.packet(&count);
                        for c in &columns {
                            w.packet(&column_def(c));
                        }
                        if !deprecate_eof {
                            w.packet(&eof_packet(false));
                        }
                        for r in &rows {
                            w.packet(&row_packet(r));
                            if w.buf.len() > 1 << 20 {
                                w.flush()?;
                            }
                        }
                        w.packet(&eof_packet(deprecate_eof));
                    }
                    Outcome::Drop { .. } => {
                        util::close_abruptly(&w.out);
                        return Ok(());
                    }
                }
            }
            0x0e | 0x1f => w.packet(&ok_packet(0, "")), // COM_PING, COM_RESET_CONNECTION
            0x16 => w.packet(&err_packet(
                1295,
                "HY000",
                "prepared statements (COM_STMT_PREPARE) are not supported by this test server",
            )),
            0x19 => continue, // COM_STMT_CLOSE has no answer
            _ => w.packet(&err_packet(
                1047,
                "08S01",
                &format!("Unknown command 0x{cmd:02x}"),
            )),
        }
        w.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_token_is_reversible_with_the_stored_hash() {
        // The server check in MySQL: SHA1(token XOR SHA1(scramble + stage2)) == stage2.
        let scramble = b"abcdefghijklmnopqrst";
        let token = native_token("secret", scramble);
        let stage2 = util::sha1(&util::sha1(b"secret"));
        let mut salted = scramble.to_vec();
        salted.extend_from_slice(&stage2);
        let mix = util::sha1(&salted);
        let stage1: Vec<u8> = token.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(util::sha1(&stage1), stage2);
        assert!(native_token("", scramble).is_empty());
    }
}
