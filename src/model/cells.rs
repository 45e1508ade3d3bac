//! Arrow columns downcast once per batch.
//!
//! Both per-row consumers of Arrow data, the fingerprint and the SQLite target's insert, walk
//! batches cell by cell. Deciding a column's concrete array type belongs per batch, not per cell:
//! [`Cells::new`] does it once, and the per-cell paths only match on this enum.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
    TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, PrimitiveArray};
use arrow_schema::{DataType, TimeUnit};

/// One column of a batch as its concrete Arrow array.
pub enum Cells<'a> {
    Bool(&'a arrow_array::BooleanArray),
    I32(&'a PrimitiveArray<Int32Type>),
    I64(&'a PrimitiveArray<Int64Type>),
    F32(&'a PrimitiveArray<Float32Type>),
    F64(&'a PrimitiveArray<Float64Type>),
    /// With the column's scale.
    Dec(&'a PrimitiveArray<Decimal128Type>, i8),
    Date(&'a PrimitiveArray<Date32Type>),
    Ts(&'a PrimitiveArray<TimestampMicrosecondType>),
    Str(&'a arrow_array::StringArray),
    LStr(&'a arrow_array::LargeStringArray),
    Bin(&'a arrow_array::BinaryArray),
    LBin(&'a arrow_array::LargeBinaryArray),
}

impl<'a> Cells<'a> {
    /// Fails for Arrow types no stage produces (the message names the type).
    pub fn new(a: &'a ArrayRef) -> Result<Self, String> {
        Ok(match a.data_type() {
            DataType::Boolean => Cells::Bool(a.as_boolean()),
            DataType::Int32 => Cells::I32(a.as_primitive()),
            DataType::Int64 => Cells::I64(a.as_primitive()),
            DataType::Float32 => Cells::F32(a.as_primitive()),
            DataType::Float64 => Cells::F64(a.as_primitive()),
            DataType::Decimal128(_, s) => Cells::Dec(a.as_primitive(), *s),
            DataType::Date32 => Cells::Date(a.as_primitive()),
            DataType::Timestamp(TimeUnit::Microsecond, _) => Cells::Ts(a.as_primitive()),
            DataType::Utf8 => Cells::Str(a.as_string()),
            DataType::LargeUtf8 => Cells::LStr(a.as_string()),
            DataType::Binary => Cells::Bin(a.as_binary()),
            DataType::LargeBinary => Cells::LBin(a.as_binary()),
            other => return Err(format!("unsupported Arrow type {other}")),
        })
    }

    pub fn is_null(&self, row: usize) -> bool {
        match self {
            Cells::Bool(a) => a.is_null(row),
            Cells::I32(a) => a.is_null(row),
            Cells::I64(a) => a.is_null(row),
            Cells::F32(a) => a.is_null(row),
            Cells::F64(a) => a.is_null(row),
            Cells::Dec(a, _) => a.is_null(row),
            Cells::Date(a) => a.is_null(row),
            Cells::Ts(a) => a.is_null(row),
            Cells::Str(a) => a.is_null(row),
            Cells::LStr(a) => a.is_null(row),
            Cells::Bin(a) => a.is_null(row),
            Cells::LBin(a) => a.is_null(row),
        }
    }
}
