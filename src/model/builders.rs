//! One Arrow builder per column of a batch being read.
//!
//! Every source turns its own cell values into the same Arrow arrays for a [`ColType`]; the
//! builders, their creation and their finishing are the same whatever the source, so they live
//! here and each source only matches its cells onto them.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int32Builder, Int64Builder, LargeBinaryBuilder, StringBuilder, TimestampMicrosecondBuilder,
};

use crate::model::ColType;

pub enum ColBuilder {
    Bool(BooleanBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    /// With the column's precision and scale.
    Dec(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    /// Timestamps with or without zone (a zoned one is built with the UTC zone).
    Ts(TimestampMicrosecondBuilder),
    Str(StringBuilder),
    Bin(LargeBinaryBuilder),
}

impl ColBuilder {
    pub fn new(t: ColType, cap: usize) -> ColBuilder {
        match t {
            ColType::Bool => ColBuilder::Bool(BooleanBuilder::with_capacity(cap)),
            ColType::Int32 => ColBuilder::I32(Int32Builder::with_capacity(cap)),
            ColType::Int64 => ColBuilder::I64(Int64Builder::with_capacity(cap)),
            ColType::Float32 => ColBuilder::F32(Float32Builder::with_capacity(cap)),
            ColType::Float64 => ColBuilder::F64(Float64Builder::with_capacity(cap)),
            ColType::Decimal { precision, scale } => {
                ColBuilder::Dec(Decimal128Builder::with_capacity(cap), precision, scale)
            }
            ColType::Date => ColBuilder::Date(Date32Builder::with_capacity(cap)),
            ColType::Timestamp => ColBuilder::Ts(TimestampMicrosecondBuilder::with_capacity(cap)),
            ColType::TimestampTz => ColBuilder::Ts(
                TimestampMicrosecondBuilder::with_capacity(cap).with_timezone(crate::model::UTC),
            ),
            ColType::String => ColBuilder::Str(StringBuilder::with_capacity(cap, cap * 16)),
            ColType::Binary => ColBuilder::Bin(LargeBinaryBuilder::with_capacity(cap, cap * 16)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        match self {
            ColBuilder::Bool(b) => b.len(),
            ColBuilder::I32(b) => b.len(),
            ColBuilder::I64(b) => b.len(),
            ColBuilder::F32(b) => b.len(),
            ColBuilder::F64(b) => b.len(),
            ColBuilder::Dec(b, ..) => b.len(),
            ColBuilder::Date(b) => b.len(),
            ColBuilder::Ts(b) => b.len(),
            ColBuilder::Str(b) => b.len(),
            ColBuilder::Bin(b) => b.len(),
        }
    }

    pub fn append_null(&mut self) {
        match self {
            ColBuilder::Bool(b) => b.append_null(),
            ColBuilder::I32(b) => b.append_null(),
            ColBuilder::I64(b) => b.append_null(),
            ColBuilder::F32(b) => b.append_null(),
            ColBuilder::F64(b) => b.append_null(),
            ColBuilder::Dec(b, ..) => b.append_null(),
            ColBuilder::Date(b) => b.append_null(),
            ColBuilder::Ts(b) => b.append_null(),
            ColBuilder::Str(b) => b.append_null(),
            ColBuilder::Bin(b) => b.append_null(),
        }
    }

    /// The array of the values appended so far; the builder starts over empty.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColBuilder::Bool(b) => Arc::new(b.finish()),
            ColBuilder::I32(b) => Arc::new(b.finish()),
            ColBuilder::I64(b) => Arc::new(b.finish()),
            ColBuilder::F32(b) => Arc::new(b.finish()),
            ColBuilder::F64(b) => Arc::new(b.finish()),
            ColBuilder::Dec(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were checked when the table was described"),
            ),
            ColBuilder::Date(b) => Arc::new(b.finish()),
            ColBuilder::Ts(b) => Arc::new(b.finish()),
            ColBuilder::Str(b) => Arc::new(b.finish()),
            ColBuilder::Bin(b) => Arc::new(b.finish()),
        }
    }
}
