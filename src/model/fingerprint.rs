//! Order-independent content fingerprints over canonical values.
//!
//! Verification must compare what the source returned, what the lake holds and what the target
//! holds, even though each side stores values differently and returns rows in any order. Every
//! side is read into Arrow and hashed here, row by row, from one canonical form:
//!
//! for each column, NULL is the byte `0x00`; any other value is `0x01`, the canonical text's
//! length as u32 little-endian, then the text: bool `1`/`0`; integers in decimal; decimals as the
//! unscaled integer at the column's scale; floats as 16 lowercase hex digits of the IEEE-754 bits
//! of their float64 value (float32 widens exactly); dates as days and timestamps (with or without zone: a zoned one is its UTC
//! instant) as microseconds since 1970-01-01; strings as UTF-8; binaries raw.
//! A row's hash is the first 16 bytes of SHA-256 of that form (u128, little-endian); a table's
//! fingerprint is the wrapping sum of its row hashes, printed as 32 hex digits. Sums make the
//! fingerprint independent of order and of how rows are split into chunks, and (unlike XOR)
//! duplicated rows change it. `tests/readers/check_lake.py` implements the same form in Python,
//! independently, to check our lake with pyiceberg and DuckDB.

use std::fmt::Write as _;

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::cells::Cells;

/// Count and fingerprint of a set of rows; adding two gives the fingerprint of their union.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest128 {
    pub rows: u64,
    #[serde(with = "hex_u128")]
    pub sum: u128,
}

impl Digest128 {
    pub fn add(&mut self, other: Digest128) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// Takes `other`'s rows out (rows that were added before and are gone now).
    pub fn sub(&mut self, other: Digest128) {
        self.rows = self.rows.saturating_sub(other.rows);
        self.sum = self.sum.wrapping_sub(other.sum);
    }

    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }

    /// The digest of `rows` rows whose fingerprint is `hex` (as [`Digest128::hex`] prints it).
    pub fn from_parts(rows: u64, hex: &str) -> Option<Digest128> {
        (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(|sum| Digest128 { rows, sum })
    }

    /// Adds every row of `batch`. Columns are taken in batch order.
    pub fn add_batch(&mut self, batch: &RecordBatch) -> Result<(), String> {
        for_each_row_hash(batch, |_, h| self.sum = self.sum.wrapping_add(h))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
}

/// Calls `f(row, hash)` with each row's hash (the summand of the fingerprint), in batch order.
pub fn for_each_row_hash(
    batch: &RecordBatch,
    mut f: impl FnMut(usize, u128),
) -> Result<(), String> {
    let cols: Vec<Cells<'_>> = batch
        .columns()
        .iter()
        .map(Cells::new)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("no canonical form: {e}"))?;
    let mut buf = Vec::with_capacity(256);
    let mut text = String::with_capacity(64);
    for row in 0..batch.num_rows() {
        buf.clear();
        for col in &cols {
            canonical(col, row, &mut buf, &mut text);
        }
        let h = Sha256::digest(&buf);
        let mut first = [0u8; 16];
        first.copy_from_slice(&h[..16]);
        f(row, u128::from_le_bytes(first));
    }
    Ok(())
}

impl std::fmt::Display for Digest128 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rows, fingerprint {}", self.rows, self.hex())
    }
}

mod hex_u128 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:032x}"))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        u128::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

/// Integers, dates, timestamps and unscaled decimals are all written in decimal.
fn in_decimal(text: &mut String, v: impl std::fmt::Display) -> &[u8] {
    let _ = write!(text, "{v}");
    text.as_bytes()
}

/// Appends the canonical form of one cell (see the module docs).
fn canonical(col: &Cells<'_>, row: usize, out: &mut Vec<u8>, text: &mut String) {
    if col.is_null(row) {
        out.push(0);
        return;
    }
    text.clear();
    let bytes: &[u8] = match col {
        Cells::Bool(a) => {
            if a.value(row) {
                b"1"
            } else {
                b"0"
            }
        }
        Cells::I32(a) => in_decimal(text, a.value(row)),
        Cells::I64(a) => in_decimal(text, a.value(row)),
        Cells::Dec(a, _) => in_decimal(text, a.value(row)),
        Cells::Date(a) => in_decimal(text, a.value(row)),
        Cells::Ts(a) => in_decimal(text, a.value(row)),
        // Widening to f64 is exact, so a float is always its f64 bits whatever its width.
        Cells::F32(a) => {
            let _ = write!(text, "{:016x}", f64::from(a.value(row)).to_bits());
            text.as_bytes()
        }
        Cells::F64(a) => {
            let _ = write!(text, "{:016x}", a.value(row).to_bits());
            text.as_bytes()
        }
        Cells::Str(a) => a.value(row).as_bytes(),
        Cells::LStr(a) => a.value(row).as_bytes(),
        Cells::Bin(a) => a.value(row),
        Cells::LBin(a) => a.value(row),
    };
    out.push(1);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int32Array, StringArray};
    use std::sync::Arc;

    fn batch(ids: Vec<Option<i32>>, names: Vec<Option<&str>>) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int32Array::from(ids)) as ArrayRef),
            ("name", Arc::new(StringArray::from(names)) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn one_int_row_matches_the_documented_form() {
        let b = RecordBatch::try_from_iter(vec![(
            "x",
            Arc::new(Int32Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        let mut d = Digest128::default();
        d.add_batch(&b).unwrap();
        let h = Sha256::digest(b"\x01\x01\x00\x00\x001");
        let expect = u128::from_le_bytes(h[..16].try_into().unwrap());
        assert_eq!(d.sum, expect);
        assert_eq!(d.rows, 1);
    }

    #[test]
    fn order_and_chunking_do_not_matter_but_content_and_duplicates_do() {
        let mut a = Digest128::default();
        a.add_batch(&batch(
            vec![Some(1), Some(2), None],
            vec![Some("é"), None, Some("")],
        ))
        .unwrap();
        let mut b = Digest128::default();
        b.add_batch(&batch(vec![None], vec![Some("")])).unwrap();
        b.add_batch(&batch(vec![Some(2), Some(1)], vec![None, Some("é")]))
            .unwrap();
        assert_eq!(a, b);

        let mut changed = Digest128::default();
        changed
            .add_batch(&batch(
                vec![Some(1), Some(2), None],
                vec![Some("e"), None, Some("")],
            ))
            .unwrap();
        assert_ne!(a.sum, changed.sum);

        // NULL and the empty string differ.
        let mut n = Digest128::default();
        n.add_batch(&batch(vec![Some(1)], vec![None])).unwrap();
        let mut e = Digest128::default();
        e.add_batch(&batch(vec![Some(1)], vec![Some("")])).unwrap();
        assert_ne!(n.sum, e.sum);

        let mut dup = a;
        dup.add_batch(&batch(vec![Some(1)], vec![Some("é")]))
            .unwrap();
        assert_ne!(dup.sum, a.sum);
        assert_eq!(dup.rows, 4);
    }

    #[test]
    fn serde_round_trip_keeps_all_128_bits() {
        let d = Digest128 {
            rows: 7,
            sum: u128::MAX - 3,
        };
        let s = serde_json::to_string(&d).unwrap();
        assert!(s.contains("fffffffffffffffffffffffffffffffc"), "{s}");
        assert_eq!(serde_json::from_str::<Digest128>(&s).unwrap(), d);
    }
}
