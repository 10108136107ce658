//! Number formatting shared by the TUI and the status table: compact, fixed-width friendly,
//! and unit-bearing so that a figure never needs its column header to be read.

/// Counts with thousands separators: `12,000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Short figures for narrow cells, with fixed decimals per magnitude so a column never
/// flips between `1` and `1.0`: `0.0`, `4.5`, `950`, `12.0k`, `1.5M`.
pub fn short(n: f64) -> String {
    let a = n.abs();
    if a < 1_000.0 {
        if a < 9.95 {
            format!("{n:.1}")
        } else {
            format!("{n:.0}")
        }
    } else if a < 1_000_000.0 {
        format!("{:.1}k", n / 1_000.0)
    } else {
        format!("{:.1}M", n / 1_000_000.0)
    }
}

/// A rate that may be unknown (first sample, node restarted): `–` when unknown.
pub fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_string(), short)
}

/// Bytes in binary units: `512B`, `1.5K`, `32M`, `2.1G`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if b < 1024 {
        return format!("{b}B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// Durations: `42s`, `3m12s`, `5h03m`, `12d4h`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3_599 => format!("{}m{:02}s", secs / 60, secs % 60),
        3_600..=86_399 => format!("{}h{:02}m", secs / 3_600, (secs % 3_600) / 60),
        _ => format!("{}d{}h", secs / 86_400, (secs % 86_400) / 3_600),
    }
}

/// Milliseconds with a unit: `3ms`, `0.4ms`, `1.2s`.
pub fn millis(ms: f64) -> String {
    if ms == 0.0 {
        "0ms".to_string()
    } else if ms < 1.0 {
        format!("{ms:.1}ms")
    } else if ms < 1_000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", ms / 1_000.0)
    }
}

/// A fraction as a whole percentage: `0.314` → `31%`.
pub fn percent(f: f64) -> String {
    format!("{:.0}%", f * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(12_000), "12,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(short(950.0), "950");
        assert_eq!(short(2.5), "2.5");
        assert_eq!(short(12_000.0), "12.0k");
        // Fixed decimals: a rate of 1 and one of 1.5 line up.
        assert_eq!(
            (short(1.0), short(0.0), short(9.96), short(10.0)),
            ("1.0".into(), "0.0".into(), "10".into(), "10".into())
        );
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(33_554_432), "32M");
        assert_eq!(bytes(1_572_864), "1.5M");
        assert_eq!(duration(192), "3m12s");
        assert_eq!(duration(18_180), "5h03m");
        assert_eq!(millis(0.42), "0.4ms");
        assert_eq!(millis(1_250.0), "1.2s");
        assert_eq!(percent(0.314), "31%");
        assert_eq!(rate(None), "–");
    }
}
