//! Character classes the validated types share.

/// Format characters that change how text reads without showing:
/// bidirectional overrides (`invoice\u{202E}fdp.exe` shows as
/// `invoiceexe.pdf`), zero-width characters, the byte-order mark.
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}
