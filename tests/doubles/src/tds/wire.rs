//! TDS wire encoding: response packets (`Out`), login exchange, tokens (COLMETADATA, ROW/NBCROW,
//! DONE*, ERROR, ENVCHANGE), type info and value encoding per SQL Server type, and decoding of
//! the client's LOGIN7 and RPC parameters. Kept apart from the SQL handling so that every byte
//! layout the cross-check clients verify lives in one place.

use super::{Col, DAYS_1900, SqlType, Value};
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Latin1_General_CI_AS: LCID 0x0409 (code page 1252), ignore case/kana/width, sort id 0.
pub(crate) const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x00];
/// PLP chunk size for (max) values.
const PLP_CHUNK: usize = 8000;
/// Bytes gathered before a socket write (several small packets per syscall).
const WRITE_BATCH: usize = 64 * 1024;

/// Response writer: fills packets of `packet` bytes (header included), tokens straddle packet
/// boundaries, and writes them out in batches. Checks for Attention between packets.
pub(crate) struct Out {
    sock: TcpStream,
    buf: Vec<u8>,
    /// Start of the current (unfinished) packet in `buf`.
    pkt_start: usize,
    packet: usize,
    pkt_id: u8,
    attn: Arc<AtomicU32>,
    /// Scratch for UTF-16 / code-page encoding of one value.
    pub(crate) scratch: Vec<u8>,
}

impl Out {
    pub(crate) fn new(sock: TcpStream, packet: usize, attn: Arc<AtomicU32>) -> Out {
        let mut o = Out {
            sock,
            buf: Vec::with_capacity(WRITE_BATCH + 32768),
            pkt_start: 0,
            packet,
            pkt_id: 1,
            attn,
            scratch: Vec::new(),
        };
        o.buf.extend_from_slice(&[0u8; 8]);
        o
    }

    /// True once the client has sent an Attention that is not yet acknowledged.
    pub(crate) fn attention(&self) -> bool {
        self.attn.load(Ordering::Relaxed) > 0
    }

    /// Acknowledges the pending Attention(s): the caller sends DONE with status 0x20.
    pub(crate) fn take_attention(&self) {
        self.attn.store(0, Ordering::SeqCst);
    }

    fn close_packet(&mut self, eom: bool) -> io::Result<()> {
        let len = self.buf.len() - self.pkt_start;
        let h = &mut self.buf[self.pkt_start..self.pkt_start + 8];
        h[0] = 0x04;
        h[1] = eom as u8;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        h[4] = 0;
        h[5] = 0;
        h[6] = self.pkt_id;
        h[7] = 0;
        self.pkt_id = self.pkt_id.wrapping_add(1);
        if eom || self.buf.len() >= WRITE_BATCH {
            self.sock.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.pkt_start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; 8]);
        Ok(())
    }

    /// Appends bytes, starting new packets as they fill.
    #[inline]
    pub(crate) fn put(&mut self, mut b: &[u8]) -> io::Result<()> {
        loop {
            let room = self.packet - (self.buf.len() - self.pkt_start);
            if b.len() <= room {
                self.buf.extend_from_slice(b);
                return Ok(());
            }
            if room > 0 {
                self.buf.extend_from_slice(&b[..room]);
                b = &b[room..];
            }
            self.close_packet(false)?;
        }
    }

    pub(crate) fn u8(&mut self, v: u8) -> io::Result<()> {
        self.put(&[v])
    }
    pub(crate) fn u16(&mut self, v: u16) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn u32(&mut self, v: u32) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    /// Ends the message: last packet with end-of-message, everything written.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.close_packet(true)?;
        self.pkt_id = 1;
        self.sock.flush()
    }

    /// Writes what is buffered (the current packet without end-of-message) and closes the socket
    /// abruptly: the DropAfterRows fault.
    pub(crate) fn drop_connection(&mut self) -> io::Result<()> {
        self.close_packet(false)?;
        let _ = self.sock.write_all(&self.buf[..self.pkt_start]);
        self.buf.clear();
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        Ok(())
    }

    /// DONE-family token: `token` 0xFD DONE, 0xFF DONEINPROC, 0xFE DONEPROC.
    pub(crate) fn done(
        &mut self,
        token: u8,
        status: u16,
        curcmd: u16,
        rows: u64,
    ) -> io::Result<()> {
        let mut t = [0u8; 13];
        t[0] = token;
        t[1..3].copy_from_slice(&status.to_le_bytes());
        t[3..5].copy_from_slice(&curcmd.to_le_bytes());
        t[5..13].copy_from_slice(&rows.to_le_bytes());
        self.put(&t)
    }

    /// ERROR token 0xAA (server name `dagtds`, no procedure, line 1).
    pub(crate) fn error(&mut self, number: u32, class: u8, state: u8, msg: &str) -> io::Result<()> {
        let mut t = Vec::new();
        t.extend_from_slice(&number.to_le_bytes());
        t.push(state);
        t.push(class);
        us_varchar(&mut t, msg);
        b_varchar(&mut t, "dagtds");
        b_varchar(&mut t, "");
        t.extend_from_slice(&1u32.to_le_bytes());
        self.u8(0xAA)?;
        self.u16(t.len() as u16)?;
        self.put(&t)
    }
}

/// Appends the UTF-16LE bytes of `s`.
pub(crate) fn utf16_into(v: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        v.reserve(s.len() * 2);
        for b in s.bytes() {
            v.push(b);
            v.push(0);
        }
    } else {
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
    }
}

/// B_VARCHAR: u8 length in UTF-16 units, then UTF-16LE.
pub(crate) fn b_varchar(v: &mut Vec<u8>, s: &str) {
    v.push(s.encode_utf16().count() as u8);
    utf16_into(v, s);
}

/// US_VARCHAR: u16 length in UTF-16 units, then UTF-16LE.
pub(crate) fn us_varchar(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(&(s.encode_utf16().count() as u16).to_le_bytes());
    utf16_into(v, s);
}

const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];

/// Code page 1252 bytes of `s` (unmappable characters become `?`, as SQL Server stores them).
pub(crate) fn cp1252_into(v: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        v.extend_from_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        let u = c as u32;
        if u < 0x80 || (0xA0..=0xFF).contains(&u) {
            v.push(u as u8);
        } else if let Some(p) = CP1252_HIGH.iter().position(|&h| h == c) {
            v.push(0x80 + p as u8);
        } else {
            v.push(b'?');
        }
    }
}

/// Answers PRELOGIN: VERSION, ENCRYPTION = 0x02 (not supported), INSTOPT, THREADID, MARS off.
pub(crate) fn send_prelogin(sock: &mut TcpStream) -> io::Result<()> {
    // option table: 5 options * 5 bytes + terminator = 26 bytes
    let data: [&[u8]; 5] = [
        &[16, 0, 0x10, 0x7C, 0, 0], // 16.0.4220 -> major, minor, build (BE u16), sub build
        &[0x02],
        &[0x00],
        &[0, 0, 0, 0],
        &[0x00],
    ];
    let ids = [0x00u8, 0x01, 0x02, 0x03, 0x04];
    let mut p = Vec::new();
    let mut off = 5 * 5 + 1;
    for (id, d) in ids.iter().zip(data.iter()) {
        p.push(*id);
        p.extend_from_slice(&(off as u16).to_be_bytes());
        p.extend_from_slice(&(d.len() as u16).to_be_bytes());
        off += d.len();
    }
    p.push(0xFF);
    for d in data {
        p.extend_from_slice(d);
    }
    let mut pkt = vec![0x04, 0x01];
    pkt.extend_from_slice(&((p.len() + 8) as u16).to_be_bytes());
    pkt.extend_from_slice(&[0, 0, 1, 0]);
    pkt.extend_from_slice(&p);
    sock.write_all(&pkt)
}

/// What the server needs from LOGIN7.
pub(crate) struct Login {
    pub tds_version: u32,
    pub packet_size: u32,
    pub user: String,
    pub password: String,
}

fn utf16_at(b: &[u8], off: usize, chars: usize) -> Option<String> {
    let bytes = b.get(off..off + chars * 2)?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units))
}

/// Parses LOGIN7: offset/length pairs from byte 36; the password is de-obfuscated (each byte XOR
/// 0xA5, then nibbles swapped).
pub(crate) fn parse_login7(b: &[u8]) -> Option<Login> {
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?) as usize);
    let tds_version = u32_at(4)?;
    let packet_size = u32_at(8)?;
    let field =
        |i: usize| -> Option<(usize, usize)> { Some((u16_at(36 + 4 * i)?, u16_at(38 + 4 * i)?)) };
    let (uo, ul) = field(1)?;
    let (po, pl) = field(2)?;
    let user = utf16_at(b, uo, ul)?;
    let raw = b.get(po..po + pl * 2)?;
    let plain: Vec<u8> = raw
        .iter()
        .map(|x| {
            let y = x ^ 0xA5;
            y.rotate_left(4)
        })
        .collect();
    let units: Vec<u16> = plain
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let password = String::from_utf16_lossy(&units);
    Some(Login {
        tds_version,
        packet_size,
        user,
        password,
    })
}

fn envchange(out: &mut Out, ty: u8, new: &[u8], old: &[u8]) -> io::Result<()> {
    let len = 1 + new.len() + old.len();
    out.u8(0xE3)?;
    out.u16(len as u16)?;
    out.u8(ty)?;
    out.put(new)?;
    out.put(old)
}

/// Login reply: LOGINACK, ENVCHANGE database, collation, packet size, DONE.
pub(crate) fn send_login_ack(
    out: &mut Out,
    db: &str,
    packet: usize,
    version: u32,
) -> io::Result<()> {
    let mut t = vec![0x01];
    t.extend_from_slice(&version.to_be_bytes());
    b_varchar(&mut t, "Microsoft SQL Server");
    t.extend_from_slice(&[16, 0, 0x10, 0x7C]);
    out.u8(0xAD)?;
    out.u16(t.len() as u16)?;
    out.put(&t)?;
    let mut new = Vec::new();
    b_varchar(&mut new, db);
    let mut old = Vec::new();
    b_varchar(&mut old, "master");
    envchange(out, 1, &new, &old)?;
    let mut coll = vec![5];
    coll.extend_from_slice(&COLLATION);
    envchange(out, 7, &coll, &[0])?;
    let mut new = Vec::new();
    b_varchar(&mut new, &packet.to_string());
    let mut old = Vec::new();
    b_varchar(&mut old, "4096");
    envchange(out, 4, &new, &old)?;
    out.done(0xFD, 0, 0, 0)?;
    out.finish()
}

/// Transaction manager request (0x0E): BEGIN gets ENVCHANGE 8 with a transaction descriptor,
/// COMMIT/ROLLBACK ENVCHANGE 9/10; then DONE. Nothing is transactional here.
pub(crate) fn transaction_manager(out: &mut Out, payload: &[u8]) -> io::Result<()> {
    let skip = payload
        .get(0..4)
        .map_or(0, |h| u32::from_le_bytes(h.try_into().unwrap()) as usize);
    let req = payload
        .get(skip..skip + 2)
        .map_or(0, |r| u16::from_le_bytes([r[0], r[1]]));
    let desc = [8u8, 1, 0, 0, 0, 0, 0, 0, 0];
    match req {
        5 => envchange(out, 8, &desc, &[0])?,
        7 => envchange(out, 9, &[0], &desc)?,
        8 => envchange(out, 10, &[0], &desc)?,
        _ => {}
    }
    out.done(0xFD, 0, 0, 0)?;
    out.finish()
}

/// Bytes of a decimal/numeric value of precision p: 5/9/13/17 (sign byte included).
pub(crate) fn dec_len(p: u8) -> u8 {
    match p {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

fn time_len(scale: u8) -> u8 {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

const UDT_ASSEMBLY: &str =
    "Microsoft.SqlServer.Types, Version=11.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91";

/// TYPE_INFO of a served type (legacy text/ntext/image carry the table name).
pub(crate) fn type_info(t: &mut Vec<u8>, ty: &SqlType, db: &str, table: (&str, &str)) {
    let le16 = |t: &mut Vec<u8>, v: u16| t.extend_from_slice(&v.to_le_bytes());
    let le32 = |t: &mut Vec<u8>, v: u32| t.extend_from_slice(&v.to_le_bytes());
    let tname = |t: &mut Vec<u8>| {
        t.push(2);
        us_varchar(t, table.0);
        us_varchar(t, table.1);
    };
    match *ty {
        SqlType::Bit => t.extend_from_slice(&[0x68, 1]),
        SqlType::TinyInt => t.extend_from_slice(&[0x26, 1]),
        SqlType::SmallInt => t.extend_from_slice(&[0x26, 2]),
        SqlType::Int => t.extend_from_slice(&[0x26, 4]),
        SqlType::BigInt => t.extend_from_slice(&[0x26, 8]),
        SqlType::Real => t.extend_from_slice(&[0x6D, 4]),
        SqlType::Float => t.extend_from_slice(&[0x6D, 8]),
        SqlType::Decimal(p, s) => t.extend_from_slice(&[0x6A, dec_len(p), p, s]),
        SqlType::Numeric(p, s) => t.extend_from_slice(&[0x6C, dec_len(p), p, s]),
        SqlType::Money => t.extend_from_slice(&[0x6E, 8]),
        SqlType::SmallMoney => t.extend_from_slice(&[0x6E, 4]),
        SqlType::Date => t.push(0x28),
        SqlType::Time(s) => t.extend_from_slice(&[0x29, s]),
        SqlType::DateTime2(s) => t.extend_from_slice(&[0x2A, s]),
        SqlType::DateTimeOffset(s) => t.extend_from_slice(&[0x2B, s]),
        SqlType::DateTime => t.extend_from_slice(&[0x6F, 8]),
        SqlType::SmallDateTime => t.extend_from_slice(&[0x6F, 4]),
        SqlType::Char(n) => {
            t.push(0xAF);
            le16(t, n);
            t.extend_from_slice(&COLLATION);
        }
        SqlType::VarChar(n) => {
            t.push(0xA7);
            le16(t, n.unwrap_or(0xFFFF));
            t.extend_from_slice(&COLLATION);
        }
        SqlType::NChar(n) => {
            t.push(0xEF);
            le16(t, n * 2);
            t.extend_from_slice(&COLLATION);
        }
        SqlType::NVarChar(n) => {
            t.push(0xE7);
            le16(t, n.map_or(0xFFFF, |n| n * 2));
            t.extend_from_slice(&COLLATION);
        }
        SqlType::Text => {
            t.push(0x23);
            le32(t, 0x7FFF_FFFF);
            t.extend_from_slice(&COLLATION);
            tname(t);
        }
        SqlType::NText => {
            t.push(0x63);
            le32(t, 0x7FFF_FFFE);
            t.extend_from_slice(&COLLATION);
            tname(t);
        }
        SqlType::Image => {
            t.push(0x22);
            le32(t, 0x7FFF_FFFF);
            tname(t);
        }
        SqlType::Binary(n) => {
            t.push(0xAD);
            le16(t, n);
        }
        SqlType::RowVersion => {
            t.push(0xAD);
            le16(t, 8);
        }
        SqlType::VarBinary(n) => {
            t.push(0xA5);
            le16(t, n.unwrap_or(0xFFFF));
        }
        SqlType::UniqueIdentifier => t.extend_from_slice(&[0x24, 16]),
        SqlType::Xml => t.extend_from_slice(&[0xF1, 0]),
        SqlType::HierarchyId | SqlType::Geography | SqlType::Geometry => {
            let (max, name, class) = match ty {
                SqlType::HierarchyId => (892u16, "hierarchyid", "SqlHierarchyId"),
                SqlType::Geography => (0xFFFF, "geography", "SqlGeography"),
                _ => (0xFFFF, "geometry", "SqlGeometry"),
            };
            t.push(0xF0);
            le16(t, max);
            b_varchar(t, db);
            b_varchar(t, "sys");
            b_varchar(t, name);
            us_varchar(
                t,
                &format!("Microsoft.SqlServer.Types.{class}, {UDT_ASSEMBLY}"),
            );
        }
        SqlType::SqlVariant => {
            t.push(0x62);
            le32(t, 8016);
        }
    }
}

/// COLMETADATA token for the served columns.
pub(crate) fn colmetadata(
    out: &mut Out,
    cols: &[Col],
    db: &str,
    table: (&str, &str),
) -> io::Result<()> {
    let mut t = vec![0x81];
    t.extend_from_slice(&(cols.len() as u16).to_le_bytes());
    for c in cols {
        let user_type: u32 = if c.ty == SqlType::RowVersion { 80 } else { 0 };
        t.extend_from_slice(&user_type.to_le_bytes());
        let mut flags: u16 = 0x08; // updateable: unknown
        if c.nullable {
            flags |= 0x01;
        }
        if c.identity {
            flags |= 0x10;
        }
        if c.computed {
            flags |= 0x20;
        }
        t.extend_from_slice(&flags.to_le_bytes());
        type_info(&mut t, &c.ty, db, table);
        b_varchar(&mut t, &c.name);
    }
    out.put(&t)
}

/// One row: NBCROW (null bitmap, NULLs omitted) when any value is NULL, ROW otherwise.
pub(crate) fn row<'a>(
    out: &mut Out,
    cols: &[Col],
    get: impl Fn(usize) -> &'a Value,
) -> io::Result<()> {
    let n = cols.len();
    let any_null = (0..n).any(|i| matches!(get(i), Value::Null));
    if any_null {
        out.u8(0xD2)?;
        let mut bm = [0u8; 128];
        let nb = n.div_ceil(8);
        for i in 0..n {
            if matches!(get(i), Value::Null) {
                bm[i / 8] |= 1 << (i % 8);
            }
        }
        out.put(&bm[..nb])?;
    } else {
        out.u8(0xD1)?;
    }
    for (i, c) in cols.iter().enumerate() {
        let v = get(i);
        if any_null && matches!(v, Value::Null) {
            continue;
        }
        value(out, &c.ty, v)?;
    }
    Ok(())
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Bool(b) => *b as i64,
        Value::Money(m) => *m,
        Value::Dec(d) => *d as i64,
        Value::F64(f) => *f as i64,
        Value::F32(f) => *f as i64,
        _ => 0,
    }
}

fn plp(out: &mut Out, data: &[u8]) -> io::Result<()> {
    out.u64(data.len() as u64)?;
    for c in data.chunks(PLP_CHUNK) {
        out.u32(c.len() as u32)?;
        out.put(c)?;
    }
    out.u32(0)
}

fn text_bytes(out: &mut Out, ty: &SqlType, v: &Value) -> Vec<u8> {
    let mut sc = std::mem::take(&mut out.scratch);
    sc.clear();
    match (ty, v) {
        (SqlType::Char(_) | SqlType::VarChar(_) | SqlType::Text, Value::Str(s)) => {
            cp1252_into(&mut sc, s)
        }
        (_, Value::Str(s)) => utf16_into(&mut sc, s),
        (_, Value::Bytes(b)) => sc.extend_from_slice(b),
        (_, other) => {
            let s = super::canonical(other, ty).unwrap_or_default();
            utf16_into(&mut sc, &s)
        }
    }
    sc
}

/// Encodes one non-NULL-bitmap value (a NULL is encoded in the type's own NULL form).
pub(crate) fn value(out: &mut Out, ty: &SqlType, v: &Value) -> io::Result<()> {
    let null = matches!(v, Value::Null);
    match *ty {
        SqlType::Bit | SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
            let len = match ty {
                SqlType::Bit | SqlType::TinyInt => 1,
                SqlType::SmallInt => 2,
                SqlType::Int => 4,
                _ => 8,
            };
            if null {
                return out.u8(0);
            }
            let mut b = [0u8; 9];
            b[0] = len as u8;
            b[1..9].copy_from_slice(&int_of(v).to_le_bytes());
            out.put(&b[..1 + len])
        }
        SqlType::Real => match v {
            Value::Null => out.u8(0),
            Value::F32(f) => out.put(&[&[4u8][..], &f.to_le_bytes()].concat()),
            Value::F64(f) => out.put(&[&[4u8][..], &(*f as f32).to_le_bytes()].concat()),
            other => out.put(&[&[4u8][..], &(int_of(other) as f32).to_le_bytes()].concat()),
        },
        SqlType::Float => {
            let f = match v {
                Value::Null => return out.u8(0),
                Value::F32(f) => *f as f64,
                Value::F64(f) => *f,
                other => int_of(other) as f64,
            };
            let mut b = [8u8; 9];
            b[1..].copy_from_slice(&f.to_le_bytes());
            out.put(&b)
        }
        SqlType::Decimal(p, _) | SqlType::Numeric(p, _) => {
            let u = match v {
                Value::Null => return out.u8(0),
                Value::Dec(d) => *d,
                other => int_of(other) as i128,
            };
            let len = dec_len(p) as usize;
            let mut b = [0u8; 18];
            b[0] = len as u8;
            b[1] = (u >= 0) as u8;
            b[2..18].copy_from_slice(&u.unsigned_abs().to_le_bytes());
            out.put(&b[..1 + len])
        }
        SqlType::Money | SqlType::SmallMoney => {
            if null {
                return out.u8(0);
            }
            let m = match v {
                Value::Dec(d) => *d as i64,
                other => int_of(other),
            };
            if *ty == SqlType::Money {
                let mut b = [8u8; 9];
                b[1..5].copy_from_slice(&((m >> 32) as i32).to_le_bytes());
                b[5..9].copy_from_slice(&(m as u32).to_le_bytes());
                out.put(&b)
            } else {
                let mut b = [4u8; 5];
                b[1..5].copy_from_slice(&(m as i32).to_le_bytes());
                out.put(&b)
            }
        }
        SqlType::Date => match v {
            Value::Date(d) => out.put(&[3, *d as u8, (*d >> 8) as u8, (*d >> 16) as u8]),
            Value::DateTime2 { days, .. } => {
                out.put(&[3, *days as u8, (*days >> 8) as u8, (*days >> 16) as u8])
            }
            _ => out.u8(0),
        },
        SqlType::Time(s) | SqlType::DateTime2(s) | SqlType::DateTimeOffset(s) => {
            let (days, ticks, off) = match *v {
                Value::Null => return out.u8(0),
                Value::Time(t) => (0, t, 0),
                Value::DateTime2 { days, ticks } => (days, ticks, 0),
                Value::DateTimeOffset {
                    days,
                    ticks,
                    offset_min,
                } => (days, ticks, offset_min),
                Value::Date(d) => (d, 0, 0),
                Value::DateTime { days, ticks300 } => (
                    (DAYS_1900 + days as i64) as u32,
                    (ticks300 as u64 * 10_000_000).div_ceil(300),
                    0,
                ),
                _ => return out.u8(0),
            };
            let tl = time_len(s) as usize;
            let units = ticks / 10u64.pow(7 - s as u32);
            let mut b = [0u8; 11];
            b[1..9].copy_from_slice(&units.to_le_bytes());
            let mut len = tl;
            if !matches!(ty, SqlType::Time(_)) {
                b[1 + tl] = days as u8;
                b[2 + tl] = (days >> 8) as u8;
                b[3 + tl] = (days >> 16) as u8;
                len += 3;
            }
            if matches!(ty, SqlType::DateTimeOffset(_)) {
                b[1 + len..3 + len].copy_from_slice(&off.to_le_bytes());
                len += 2;
            }
            b[0] = len as u8;
            out.put(&b[..1 + len])
        }
        SqlType::DateTime => match *v {
            Value::DateTime { days, ticks300 } => {
                let mut b = [8u8; 9];
                b[1..5].copy_from_slice(&days.to_le_bytes());
                b[5..9].copy_from_slice(&ticks300.to_le_bytes());
                out.put(&b)
            }
            _ => out.u8(0),
        },
        SqlType::SmallDateTime => match *v {
            Value::SmallDateTime { days, minutes } => {
                let mut b = [4u8; 5];
                b[1..3].copy_from_slice(&days.to_le_bytes());
                b[3..5].copy_from_slice(&minutes.to_le_bytes());
                out.put(&b)
            }
            _ => out.u8(0),
        },
        SqlType::Char(_)
        | SqlType::VarChar(Some(_))
        | SqlType::NChar(_)
        | SqlType::NVarChar(Some(_))
        | SqlType::Binary(_)
        | SqlType::VarBinary(Some(_))
        | SqlType::RowVersion => {
            if null {
                return out.u16(0xFFFF);
            }
            let sc = text_bytes(out, ty, v);
            let r = out.u16(sc.len() as u16).and_then(|_| out.put(&sc));
            out.scratch = sc;
            r
        }
        SqlType::VarChar(None)
        | SqlType::NVarChar(None)
        | SqlType::VarBinary(None)
        | SqlType::Xml => {
            if null {
                return out.u64(u64::MAX);
            }
            let sc = text_bytes(out, ty, v);
            let r = plp(out, &sc);
            out.scratch = sc;
            r
        }
        SqlType::Text | SqlType::NText | SqlType::Image => {
            if null {
                return out.u8(0);
            }
            let sc = text_bytes(out, ty, v);
            let mut h = [0u8; 1 + 16 + 8 + 4];
            h[0] = 16;
            h[1..17].fill(0xAB); // text pointer: any 16 bytes
            h[17..25].copy_from_slice(&1u64.to_le_bytes()); // timestamp
            h[25..29].copy_from_slice(&(sc.len() as u32).to_le_bytes());
            let r = out.put(&h).and_then(|_| out.put(&sc));
            out.scratch = sc;
            r
        }
        SqlType::UniqueIdentifier => match v {
            Value::Guid(g) => {
                let mut b = [16u8; 17];
                b[1..17].copy_from_slice(&guid_wire(g));
                out.put(&b)
            }
            _ => out.u8(0),
        },
        SqlType::HierarchyId | SqlType::Geography | SqlType::Geometry => match v {
            Value::Str(s) => plp(out, &clr_bytes(ty, s)),
            _ => out.u64(u64::MAX),
        },
        SqlType::SqlVariant => {
            if null {
                return out.u32(0);
            }
            let sc = text_bytes(out, &SqlType::NVarChar(Some(4000)), v);
            let mut h = vec![0xE7, 7];
            h.extend_from_slice(&COLLATION);
            h.extend_from_slice(&8000u16.to_le_bytes());
            let r = out
                .u32((h.len() + sc.len()) as u32)
                .and_then(|_| out.put(&h))
                .and_then(|_| out.put(&sc));
            out.scratch = sc;
            r
        }
    }
}

/// A GUID's wire bytes: first three groups little-endian.
pub(crate) fn guid_wire(g: &[u8; 16]) -> [u8; 16] {
    let mut b = *g;
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// SQL Server's CLR serialization of a hierarchyid / geography / geometry text, as a plain
/// `SELECT` of such a column sends it. Supported: hierarchyid levels with labels 0..=3
/// (`/1/3/`), and `POINT (x y)` (SRID 4326 for geography, 0 for geometry). Anything else is sent
/// as its UTF-8 text, which is NOT what SQL Server would send (the connector reads these types
/// through CAST/STAsText, which are exact).
pub fn clr_bytes(ty: &SqlType, s: &str) -> Vec<u8> {
    match ty {
        SqlType::HierarchyId => {
            let mut bits: Vec<bool> = Vec::new();
            for part in s.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
                match part.parse::<u8>() {
                    Ok(l @ 0..=3) => {
                        bits.extend([false, true, l & 2 != 0, l & 1 != 0, true]);
                    }
                    _ => return s.as_bytes().to_vec(),
                }
            }
            let mut out = vec![0u8; bits.len().div_ceil(8)];
            for (i, b) in bits.iter().enumerate() {
                if *b {
                    out[i / 8] |= 0x80 >> (i % 8);
                }
            }
            out
        }
        SqlType::Geography | SqlType::Geometry => {
            let t = s.trim();
            let inner = t
                .strip_prefix("POINT")
                .map(|r| r.trim().trim_start_matches('(').trim_end_matches(')'));
            let nums: Option<Vec<f64>> = inner.and_then(|i| {
                i.split_whitespace()
                    .map(|x| x.parse().ok())
                    .collect::<Option<_>>()
            });
            match nums.as_deref() {
                Some([x, y]) => {
                    let srid: u32 = if *ty == SqlType::Geography { 4326 } else { 0 };
                    let mut out = srid.to_le_bytes().to_vec();
                    out.extend_from_slice(&[1, 0x0C]);
                    // geography stores latitude (WKT y) first; geometry x first.
                    let (a, b) = if *ty == SqlType::Geography {
                        (y, x)
                    } else {
                        (x, y)
                    };
                    out.extend_from_slice(&a.to_le_bytes());
                    out.extend_from_slice(&b.to_le_bytes());
                    out
                }
                _ => s.as_bytes().to_vec(),
            }
        }
        _ => s.as_bytes().to_vec(),
    }
}

/// An RPC parameter as decoded: its value and, for decimals, the scale it was sent at.
#[derive(Clone, Debug)]
pub(crate) struct Param {
    pub name: String,
    pub value: Value,
    pub scale: u8,
}

/// A decoded RPC request.
pub(crate) struct Rpc {
    /// Procedure id (10 = sp_executesql) or name.
    pub proc_id: Option<u16>,
    pub proc_name: String,
    pub params: Vec<Param>,
}

struct Rd<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p + n)?;
        self.p += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn plp(&mut self) -> Option<Option<Vec<u8>>> {
        let total = self.u64()?;
        if total == u64::MAX {
            return Some(None);
        }
        let mut v = Vec::new();
        loop {
            let n = self.u32()? as usize;
            if n == 0 {
                return Some(Some(v));
            }
            v.extend_from_slice(self.take(n)?);
        }
    }
}

fn utf16_str(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn le_uint(b: &[u8]) -> u64 {
    let mut x = [0u8; 8];
    x[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(x)
}

/// Decodes an RPC request (ALL_HEADERS, proc id or name, option flags, parameters).
pub(crate) fn parse_rpc(b: &[u8]) -> Option<Rpc> {
    let mut r = Rd { b, p: 0 };
    let hl = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    r.p = hl;
    let nl = r.u16()?;
    let (proc_id, proc_name) = if nl == 0xFFFF {
        (Some(r.u16()?), String::new())
    } else {
        (None, utf16_str(r.take(nl as usize * 2)?))
    };
    let _flags = r.u16()?;
    let mut params = Vec::new();
    while r.p < b.len() {
        let nl = r.u8()? as usize;
        let name = utf16_str(r.take(nl * 2)?);
        let _status = r.u8()?;
        let t = r.u8()?;
        let (value, scale) = match t {
            // fixed-length: INT1, BIT, INT2, INT4, FLT4, MONEY, DATETIME, FLT8, MONEY4, INT8
            0x30 => (Value::Int(r.u8()? as i64), 0),
            0x32 => (Value::Bool(r.u8()? != 0), 0),
            0x34 => (Value::Int(r.u16()? as i16 as i64), 0),
            0x38 => (Value::Int(r.u32()? as i32 as i64), 0),
            0x7F => (Value::Int(r.u64()? as i64), 0),
            0x3B => (Value::F32(f32::from_bits(r.u32()?)), 0),
            0x3E => (Value::F64(f64::from_bits(r.u64()?)), 0),
            0x26 => {
                let _l = r.u8()?;
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                let val = match n {
                    0 => Value::Null,
                    1 => Value::Int(v[0] as i64),
                    2 => Value::Int(i16::from_le_bytes([v[0], v[1]]) as i64),
                    4 => Value::Int(i32::from_le_bytes(v.try_into().ok()?) as i64),
                    _ => Value::Int(i64::from_le_bytes(v.try_into().ok()?)),
                };
                (val, 0)
            }
            0x68 => {
                let _l = r.u8()?;
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                (
                    if n == 0 {
                        Value::Null
                    } else {
                        Value::Bool(v[0] != 0)
                    },
                    0,
                )
            }
            0x6D => {
                let _l = r.u8()?;
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                let val = match n {
                    0 => Value::Null,
                    4 => Value::F32(f32::from_le_bytes(v.try_into().ok()?)),
                    _ => Value::F64(f64::from_le_bytes(v.try_into().ok()?)),
                };
                (val, 0)
            }
            0x6A | 0x6C => {
                let _l = r.u8()?;
                let _precision = r.u8()?;
                let s = r.u8()?;
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                let val = if n == 0 {
                    Value::Null
                } else {
                    let mut m = [0u8; 16];
                    m[..n - 1].copy_from_slice(&v[1..]);
                    let mag = i128::from_le_bytes(m);
                    Value::Dec(if v[0] == 1 { mag } else { -mag })
                };
                (val, s)
            }
            0x6E => {
                let _l = r.u8()?;
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                let val = match n {
                    0 => Value::Null,
                    4 => Value::Money(i32::from_le_bytes(v.try_into().ok()?) as i64),
                    _ => {
                        let hi = i32::from_le_bytes(v[0..4].try_into().ok()?) as i64;
                        let lo = u32::from_le_bytes(v[4..8].try_into().ok()?) as i64;
                        Value::Money((hi << 32) | lo)
                    }
                };
                (val, 4)
            }
            0x6F => {
                let _l = r.u8()?;
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                let val = match n {
                    0 => Value::Null,
                    4 => Value::SmallDateTime {
                        days: u16::from_le_bytes([v[0], v[1]]),
                        minutes: u16::from_le_bytes([v[2], v[3]]),
                    },
                    _ => Value::DateTime {
                        days: i32::from_le_bytes(v[0..4].try_into().ok()?),
                        ticks300: u32::from_le_bytes(v[4..8].try_into().ok()?),
                    },
                };
                (val, 0)
            }
            0x28 => {
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                (
                    if n == 0 {
                        Value::Null
                    } else {
                        Value::Date(le_uint(v) as u32)
                    },
                    0,
                )
            }
            0x29..=0x2B => {
                let s = r.u8()?;
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                let tl = time_len(s) as usize;
                let val = if n == 0 {
                    Value::Null
                } else {
                    let ticks = le_uint(&v[..tl]) * 10u64.pow(7 - s as u32);
                    match t {
                        0x29 => Value::Time(ticks),
                        0x2A => Value::DateTime2 {
                            days: le_uint(&v[tl..tl + 3]) as u32,
                            ticks,
                        },
                        _ => Value::DateTimeOffset {
                            days: le_uint(&v[tl..tl + 3]) as u32,
                            ticks,
                            offset_min: i16::from_le_bytes([v[tl + 3], v[tl + 4]]),
                        },
                    }
                };
                (val, 0)
            }
            0x24 => {
                let _l = r.u8()?;
                let n = r.u8()? as usize;
                let v = r.take(n)?;
                let val = if n == 0 {
                    Value::Null
                } else {
                    let w: [u8; 16] = v.try_into().ok()?;
                    Value::Guid(guid_wire(&w))
                };
                (val, 0)
            }
            0xE7 | 0xEF | 0xA7 | 0xAF => {
                let max = r.u16()?;
                let _coll = r.take(5)?;
                let data = if max == 0xFFFF {
                    r.plp()?
                } else {
                    let n = r.u16()?;
                    if n == 0xFFFF {
                        None
                    } else {
                        Some(r.take(n as usize)?.to_vec())
                    }
                };
                let wide = t == 0xE7 || t == 0xEF;
                let val = match data {
                    None => Value::Null,
                    Some(d) if wide => Value::Str(utf16_str(&d)),
                    Some(d) => Value::Str(d.iter().map(|&c| c as char).collect()),
                };
                (val, 0)
            }
            0xA5 | 0xAD => {
                let max = r.u16()?;
                let data = if max == 0xFFFF {
                    r.plp()?
                } else {
                    let n = r.u16()?;
                    if n == 0xFFFF {
                        None
                    } else {
                        Some(r.take(n as usize)?.to_vec())
                    }
                };
                (data.map_or(Value::Null, Value::Bytes), 0)
            }
            0x63 | 0x23 | 0x22 => {
                // NTEXT / TEXT / IMAGE parameters: u32 max, collation (text types), u32 len.
                let _max = r.u32()?;
                if t != 0x22 {
                    r.take(5)?;
                }
                let n = r.u32()?;
                let val = if n == 0xFFFF_FFFF {
                    Value::Null
                } else {
                    let d = r.take(n as usize)?;
                    match t {
                        0x63 => Value::Str(utf16_str(d)),
                        0x23 => Value::Str(d.iter().map(|&c| c as char).collect()),
                        _ => Value::Bytes(d.to_vec()),
                    }
                };
                (val, 0)
            }
            _ => return None,
        };
        params.push(Param { name, value, scale });
    }
    Some(Rpc {
        proc_id,
        proc_name,
        params,
    })
}
