//! systemd's version comparison (`strverscmp_improved()`), which
//! systemd-boot sorts boot entries by: the same order here, so that what
//! `bbhv boot status` calls the default is what systemd-boot boots.

use std::cmp::Ordering;

fn valid(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"~-^.".contains(&c)
}

/// Compares two version strings the way systemd does (`123~rc1` < `123` <
/// `123^p1` < `123.1`; numbers compare as numbers).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let first = |s: &[u8]| s.first().copied().unwrap_or(0);
    loop {
        while !a.is_empty() && !valid(a[0]) {
            a = &a[1..];
        }
        while !b.is_empty() && !valid(b[0]) {
            b = &b[1..];
        }
        // A leading separator: the side without it is newer, except '~'
        // which marks a pre-release (older).
        if first(a) == b'~' || first(b) == b'~' {
            let r = (first(a) != b'~').cmp(&(first(b) != b'~'));
            if r != Ordering::Equal {
                return r;
            }
            a = &a[1..];
            b = &b[1..];
        }
        if a.is_empty() || b.is_empty() {
            return a.cmp(b);
        }
        for sep in [b'-', b'^', b'.'] {
            if first(a) == sep || first(b) == sep {
                let r = (first(a) != sep).cmp(&(first(b) != sep));
                if r != Ordering::Equal {
                    return r;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
        let (la, lb);
        if first(a).is_ascii_digit() || first(b).is_ascii_digit() {
            la = a.iter().take_while(|c| c.is_ascii_digit()).count();
            lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
            // A number is newer than no number.
            let r = (la != 0).cmp(&(lb != 0));
            if r != Ordering::Equal {
                return r;
            }
            let za = a[..la].iter().take_while(|&&c| c == b'0').count();
            let zb = b[..lb].iter().take_while(|&&c| c == b'0').count();
            let (na, nb) = (&a[za..la], &b[zb..lb]);
            let r = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if r != Ordering::Equal {
                return r;
            }
        } else {
            la = a.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            lb = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let n = la.min(lb);
            let r = a[..n].cmp(&b[..n]).then(la.cmp(&lb));
            if r != Ordering::Equal {
                return r;
            }
        }
        a = &a[la..];
        b = &b[lb..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn orders_like_systemd() {
        for (a, b, want) in [
            ("1", "2", Less),
            ("2", "10", Less),
            ("1.0", "1.0", Equal),
            ("1.0", "1.0.1", Less),
            ("1.9", "1.10", Less),
            ("007", "7", Equal),
            ("123~rc1", "123", Less),
            ("123", "123^p1", Less),
            ("123^p1", "123.1", Less),
            ("123-9", "123.1-1", Less),
            ("abc", "abcde", Less),
            ("1a", "1", Greater),
            ("2026.11.26", "2026.11.3", Greater),
            ("bbhv-a-1.efi", "bbhv-b-1.efi", Less),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
