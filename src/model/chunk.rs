//! Chunks: the key ranges a table is split into, so an extract can read, record and resume a
//! table piece by piece. Sources plan and read them, the store records them.

use serde::{Deserialize, Serialize};

/// A half-open key range `[lo, hi)` of the chunk key; `None` bounds are open.
///
/// An integer key uses `lo`/`hi`. A composite or non-integer key uses `lo_key`/`hi_key`: one
/// value per key column, as text the source converts back to the column's type, compared as a
/// row value (`(a, b) >= (lo1, lo2)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRange {
    pub index: u32,
    pub lo: Option<i64>,
    pub hi: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo_key: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hi_key: Option<Vec<String>>,
}

impl ChunkRange {
    /// The whole table as one chunk.
    pub fn whole() -> ChunkRange {
        ChunkRange {
            index: 0,
            lo: None,
            hi: None,
            lo_key: None,
            hi_key: None,
        }
    }

    /// Splits the integer key range `[min, max]` holding `count` rows into ranges of about
    /// `chunk_rows` rows each (assuming an even spread); the first and last are open-ended so
    /// rows outside the planned bounds are never missed.
    pub fn split_int(min: i64, max: i64, count: u64, chunk_rows: u64) -> Vec<ChunkRange> {
        let n = count.div_ceil(chunk_rows.max(1)).max(1);
        let span = (max as i128 - min as i128 + 1) as u128;
        let width = span.div_ceil(n as u128).max(1) as i128;
        let mut out = Vec::new();
        let mut lo = min as i128;
        let mut i = 0u32;
        while lo <= max as i128 {
            let hi = lo + width;
            out.push(ChunkRange {
                index: i,
                lo: (i > 0).then_some(lo as i64),
                hi: (hi <= max as i128).then_some(hi as i64),
                lo_key: None,
                hi_key: None,
            });
            i += 1;
            lo = hi;
        }
        out
    }
}
