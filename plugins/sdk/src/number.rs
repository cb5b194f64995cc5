//! Number parsing shared by plugins that turn text into numbers in their hot loop.

/// `[+-]digits[<point>digits]` with at most 15 significant digits and 22 fraction digits, in
/// one pass: the digits as an integer (exact in an f64) divided by a power of ten (exact too),
/// which IEEE division rounds correctly. That is the value `str::parse::<f64>` gives (the sign
/// of zero included), without its general machinery, which is slow in WebAssembly. `None` for
/// anything else: the caller then takes its general path.
pub fn exact_decimal(bytes: &[u8], point: u8) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (negative, rest) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut mantissa: u64 = 0;
    let (mut digits, mut fraction, mut in_fraction, mut any_digit) = (0usize, 0usize, false, false);
    for &b in rest {
        if b.is_ascii_digit() {
            any_digit = true;
            // Leading zeros are not significant; past 15 digits the fast path is not exact.
            if mantissa != 0 || b != b'0' {
                digits += 1;
                if digits > 15 {
                    return None;
                }
            }
            mantissa = mantissa * 10 + u64::from(b - b'0');
            fraction += usize::from(in_fraction);
        } else if b == point && !in_fraction {
            in_fraction = true;
        } else {
            return None;
        }
    }
    if !any_digit || fraction >= POW10.len() {
        return None;
    }
    let v = mantissa as f64 / POW10[fraction];
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::exact_decimal;

    #[test]
    fn the_fast_path_agrees_with_the_standard_library() {
        for s in [
            "1234.56",
            "-1234.56",
            "+3.25",
            "007.50",
            ".5",
            "-.5",
            "5.",
            "-0.00",
            "0",
            "-0",
            "0.1",
            "0.30000000000000004",
            "123456789012345",
            "1234567890123456",
            "9007199254740993",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "99999999999999.9",
            "4.35",
            "2.675",
            "1.005",
            "-999999.99",
            "1e3",
            "inf",
            "NaN",
            ".",
            "-",
            "",
            "1.2.3",
            "1,5",
        ] {
            let fast = exact_decimal(s.as_bytes(), b'.').map(f64::to_bits);
            let parsed = s.parse::<f64>().ok().map(f64::to_bits);
            assert!(
                fast.is_none() || fast == parsed,
                "{s:?}: {fast:?} vs {parsed:?}"
            );
        }
        assert_eq!(exact_decimal(b"-1234.56", b'.'), Some(-1234.56));
    }

    #[test]
    fn another_decimal_point() {
        assert_eq!(exact_decimal(b"-1234,56", b','), Some(-1234.56));
        assert_eq!(exact_decimal(b"1234.56", b','), None);
    }
}
