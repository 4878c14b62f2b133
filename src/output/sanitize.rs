//! Untrusted names (archive members, artifact paths, ELF symbols) made safe for a terminal.
//!
//! Control characters, bidi overrides and zero-width characters are written as `\u{…}`
//! escapes, so a hostile member name cannot move the cursor, recolour the screen or make one
//! path read as another.

/// `name` with every character that could mislead a terminal escaped.
pub(crate) fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if is_dangerous(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
/// Raw bytes (a path that may not be UTF-8) made safe: invalid bytes as `\xNN`.
pub(crate) fn sanitize_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(&sanitize(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width space, joiners, LRM/RLM
            | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{feff}' // zero-width no-break space
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_misleads() {
        assert_eq!(sanitize("fw.img"), "fw.img");
        assert_eq!(sanitize("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(sanitize("evil\u{202e}gmi.exe"), "evil\\u{202e}gmi.exe");
        assert_eq!(sanitize("new\nline"), "new\\u{a}line");
        assert_eq!(sanitize_bytes(b"ok\xffok"), "ok\\xffok");
    }
}
