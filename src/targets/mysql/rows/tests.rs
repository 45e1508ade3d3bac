use super::*;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use std::sync::Arc;

fn lit(a: ArrayRef) -> Vec<std::result::Result<String, String>> {
    let cells = Cells::new(&a).unwrap();
    (0..a.len())
        .map(|r| {
            let mut s = String::new();
            sql_literal(&cells, r, &mut s).map(|_| s)
        })
        .collect()
}

fn ok(v: Vec<std::result::Result<String, String>>) -> Vec<String> {
    v.into_iter().map(|r| r.unwrap()).collect()
}

#[test]
fn literals_of_every_type() {
    assert_eq!(
        ok(lit(Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            None
        ])))),
        ["1", "0", "NULL"]
    );
    assert_eq!(
        ok(lit(Arc::new(Int32Array::from(vec![i32::MIN, 0, i32::MAX])))),
        ["-2147483648", "0", "2147483647"]
    );
    assert_eq!(
        ok(lit(Arc::new(Int64Array::from(vec![i64::MIN])))),
        ["-9223372036854775808"]
    );
    let d = Decimal128Array::from(vec![
        Some(-99_999_999_999_999_999_999_999_999_999_999_999_999i128),
        Some(5),
        None,
    ])
    .with_precision_and_scale(38, 10)
    .unwrap();
    assert_eq!(
        ok(lit(Arc::new(d))),
        [
            "-9999999999999999999999999999.9999999999",
            "0.0000000005",
            "NULL"
        ]
    );
    assert_eq!(
        ok(lit(Arc::new(Float64Array::from(vec![
            0.1,
            -0.0,
            5e-324,
            f64::MAX,
            1e20
        ])))),
        ["1e-1", "-0e0", "5e-324", "1.7976931348623157e308", "1e20"]
    );
    // float32: the exact f64 widening, never above f32::MAX as a double.
    let f = ok(lit(Arc::new(Float32Array::from(vec![
        0.1f32,
        f32::MAX,
        f32::from_bits(1),
        -0.0,
    ]))));
    assert_eq!(f[0], "1.0000000149011612e-1");
    assert_eq!(f[1], "3.4028234663852886e38");
    assert_eq!(f[2].parse::<f64>().unwrap() as f32, f32::from_bits(1));
    assert_eq!(f[3], "-0e0");
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = lit(Arc::new(Float64Array::from(vec![bad])))
            .remove(0)
            .unwrap_err();
        assert!(e.contains("NaN or infinite"), "{e}");
    }
    assert_eq!(
        ok(lit(Arc::new(Date32Array::from(vec![
            -719_162, 0, 2_932_896
        ])))),
        ["'0001-01-01'", "'1970-01-01'", "'9999-12-31'"]
    );
    assert!(lit(Arc::new(Date32Array::from(vec![-719_163])))[0].is_err());
    assert!(lit(Arc::new(Date32Array::from(vec![2_932_897])))[0].is_err());
    assert_eq!(
        ok(lit(Arc::new(TimestampMicrosecondArray::from(vec![
            -62_135_596_800_000_000,
            1,
            253_402_300_799_999_999
        ])))),
        [
            "'0001-01-01 00:00:00.000000'",
            "'1970-01-01 00:00:00.000001'",
            "'9999-12-31 23:59:59.999999'"
        ]
    );
    assert!(lit(Arc::new(TimestampMicrosecondArray::from(vec![i64::MIN])))[0].is_err());
    assert_eq!(
        ok(lit(Arc::new(StringArray::from(vec![
            Some(""),
            None,
            Some("it's"),
            Some("''"),
            Some("a\\b"),
            Some("nul\0"),
            Some("line\nbreak 😀"),
        ])))),
        [
            "''",
            "NULL",
            "'it''s'",
            "''''''",
            "_utf8mb4 X'615C62'",
            "_utf8mb4 X'6E756C00'",
            "'line\nbreak 😀'"
        ]
    );
    assert_eq!(
        ok(lit(Arc::new(BinaryArray::from(vec![
            Some(&[0u8, 0xFF][..]),
            Some(&[][..]),
            None
        ])))),
        ["X'00FF'", "X''", "NULL"]
    );
}

fn read(ty: ColType, vals: Vec<Value>) -> Result<ArrayRef> {
    let mut b = ColBuilder::new(ty, vals.len());
    for v in vals {
        append_value(&mut b, ty, v, "T", "C")?;
    }
    Ok(b.finish())
}

fn bytes(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

#[test]
fn reads_text_and_binary_forms_of_every_type() {
    let a = read(
        ColType::Bool,
        vec![bytes("1"), bytes("false"), Value::Int(1), Value::NULL],
    )
    .unwrap();
    assert_eq!(
        a.as_ref(),
        &BooleanArray::from(vec![Some(true), Some(false), Some(true), None])
            as &dyn arrow_array::Array
    );
    let a = read(
        ColType::Int32,
        vec![bytes("-2147483648"), Value::UInt(255), Value::Int(-7)],
    )
    .unwrap();
    assert_eq!(
        a.as_ref(),
        &Int32Array::from(vec![i32::MIN, 255, -7]) as &dyn arrow_array::Array
    );
    assert!(read(ColType::Int32, vec![bytes("2147483648")]).is_err());
    assert!(read(ColType::Int64, vec![Value::UInt(u64::MAX)]).is_err());
    let a = read(ColType::Int64, vec![bytes("9223372036854775807")]).unwrap();
    assert_eq!(
        a.as_ref(),
        &Int64Array::from(vec![i64::MAX]) as &dyn arrow_array::Array
    );

    let a = read(
        ColType::Float32,
        vec![
            Value::Float(f32::MAX),
            bytes("1e+20"),
            bytes("-0"),
            Value::Double(0.5),
            bytes("inf"),
        ],
    )
    .unwrap();
    let f = a.as_any().downcast_ref::<Float32Array>().unwrap();
    assert_eq!(f.value(0), f32::MAX);
    assert_eq!(f.value(1), 1e20f32);
    assert_eq!(f.value(2).to_bits(), (-0.0f32).to_bits());
    assert_eq!(f.value(3), 0.5);
    assert_eq!(f.value(4), f32::INFINITY);
    assert!(read(ColType::Float32, vec![Value::Double(0.1)]).is_err());
    let a = read(
        ColType::Float64,
        vec![
            bytes("5e-324"),
            bytes("NaN"),
            Value::Float(0.1),
            Value::Double(-0.0),
        ],
    )
    .unwrap();
    let f = a.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(f.value(0).to_bits(), 1);
    assert!(f.value(1).is_nan());
    assert_eq!(f.value(2), f64::from(0.1f32));
    assert_eq!(f.value(3).to_bits(), (-0.0f64).to_bits());

    let dec = ColType::Decimal {
        precision: 38,
        scale: 4,
    };
    let a = read(
        dec,
        vec![
            bytes("1.23"),
            bytes("-0.0005"),
            bytes("12"),
            bytes("-9999999999999999999999999999999999.9999"),
            Value::Int(-3),
        ],
    )
    .unwrap();
    let d = a.as_any().downcast_ref::<Decimal128Array>().unwrap();
    assert_eq!(
        d.values().to_vec(),
        vec![
            12_300,
            -5,
            120_000,
            -99_999_999_999_999_999_999_999_999_999_999_999_999,
            -30_000
        ]
    );
    assert_eq!(d.precision(), 38);
    let e = read(dec, vec![bytes("1.23456")]).unwrap_err();
    assert!(e.message.contains("more than the scale"), "{e}");
    assert!(
        e.message.contains("column C") && e.message.contains("table T"),
        "{e}"
    );
    assert!(read(dec, vec![bytes("abc")]).is_err());
    assert!(
        read(
            ColType::Decimal {
                precision: 5,
                scale: 2
            },
            vec![bytes("1000.00")]
        )
        .is_err()
    );

    let a = read(
        ColType::Date,
        vec![
            bytes("0001-01-01"),
            bytes("9999-12-31"),
            Value::Date(1970, 1, 2, 0, 0, 0, 0),
        ],
    )
    .unwrap();
    assert_eq!(
        a.as_ref(),
        &Date32Array::from(vec![-719_162, 2_932_896, 1]) as &dyn arrow_array::Array
    );
    assert!(read(ColType::Date, vec![bytes("0000-00-00")]).is_err());
    assert!(read(ColType::Date, vec![bytes("2024-02-30")]).is_err());

    for ty in [ColType::Timestamp, ColType::TimestampTz] {
        let a = read(
            ty,
            vec![
                bytes("1970-01-01 00:00:00.000001"),
                bytes("1970-01-01 00:00:01.5"),
                bytes("0001-01-01 00:00:00"),
                Value::Date(9999, 12, 31, 23, 59, 59, 999_999),
            ],
        )
        .unwrap();
        assert_eq!(a.data_type(), &ty.arrow());
        let t = a
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(
            t.values().to_vec(),
            vec![
                1,
                1_500_000,
                -62_135_596_800_000_000,
                253_402_300_799_999_999
            ]
        );
        assert!(read(ty, vec![bytes("1970-01-01 00:00:00.1234567")]).is_err());
        assert!(read(ty, vec![bytes("1970-01-01 24:00:00")]).is_err());
    }

    let a = read(
        ColType::String,
        vec![
            bytes(""),
            Value::NULL,
            bytes("é😀"),
            Value::Time(false, 1, 2, 3, 4, 5),
        ],
    )
    .unwrap();
    assert_eq!(
        a.as_ref(),
        &StringArray::from(vec![Some(""), None, Some("é😀"), Some("26:03:04.000005")])
            as &dyn arrow_array::Array
    );
    let e = read(ColType::String, vec![Value::Bytes(vec![0xFF, 0xFE])]).unwrap_err();
    assert!(e.message.contains("UTF-8"), "{e}");
    let a = read(ColType::Binary, vec![Value::Bytes(vec![0, 0xFF])]).unwrap();
    assert_eq!(
        a.as_any()
            .downcast_ref::<arrow_array::LargeBinaryArray>()
            .unwrap()
            .value(0),
        &[0, 0xFF]
    );
    // A builder of another type is a programming error, reported, not a panic.
    let mut b = ColBuilder::new(ColType::Int32, 1);
    assert!(append_value(&mut b, ColType::String, bytes("x"), "T", "C").is_err());
}

#[test]
fn errors_are_classified() {
    let server = |code| {
        map_error(mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "m".into(),
            state: "HY000".into(),
        }))
    };
    assert!(server(1213).retryable);
    assert!(server(1205).retryable);
    assert_eq!(server(1406).kind, crate::error::ErrorKind::Data);
    assert!(!server(1406).retryable);
    assert_eq!(server(1045).kind, crate::error::ErrorKind::Config);
    assert_eq!(server(1064).kind, crate::error::ErrorKind::Internal);
    let io = map_error(mysql_async::Error::Io(mysql_async::IoError::Io(
        std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
    )));
    assert!(io.retryable);
}
