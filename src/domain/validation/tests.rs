//! Tests of the validated input types: boundaries, codes, redaction.

use super::*;
use secrecy::ExposeSecret;
use std::fmt;

fn code<T: fmt::Debug>(r: Result<T, ValidationError>) -> (&'static str, &'static str) {
    let e = r.unwrap_err();
    (e.field, e.code)
}

#[test]
fn username_length_boundaries_count_characters() {
    assert_eq!(code(Username::parse("ab")), ("username", "too_short"));
    assert_eq!(Username::parse("abc").unwrap().as_str(), "abc");
    assert!(Username::parse(&"a".repeat(50)).is_ok());
    assert_eq!(
        code(Username::parse(&"a".repeat(51))),
        ("username", "too_long")
    );
    // Three Cyrillic letters are six bytes but three characters.
    assert_eq!(Username::parse("Зоя").unwrap().as_str(), "Зоя");
    assert_eq!(code(Username::parse("Зо")), ("username", "too_short"));
    assert!(Username::parse(&"ж".repeat(50)).is_ok());
    assert_eq!(
        code(Username::parse(&"ж".repeat(51))),
        ("username", "too_long")
    );
}

#[test]
fn username_is_trimmed_and_rejects_empty_and_odd_characters() {
    assert_eq!(
        Username::parse("  alice_1.x-y \n").unwrap().as_str(),
        "alice_1.x-y"
    );
    assert_eq!(code(Username::parse("")), ("username", "empty"));
    assert_eq!(code(Username::parse("   \t")), ("username", "empty"));
    assert_eq!(code(Username::parse("  ab  ")), ("username", "too_short"));
    for bad in [
        "al ice",
        "bob@x",
        "a/b/c",
        "emoji😀",
        "tab\tname",
        "e\u{301}vil",
        "x\u{200b}yz",
    ] {
        assert_eq!(
            code(Username::parse(bad)),
            ("username", "invalid_chars"),
            "{bad:?}"
        );
    }
}

#[test]
fn username_deserializes_through_parse() {
    let u: Username = serde_json::from_str("\" carol \"").unwrap();
    assert_eq!(u.as_str(), "carol");
    assert_eq!(serde_json::to_string(&u).unwrap(), "\"carol\"");
    let err = serde_json::from_str::<Username>("\"x\"").unwrap_err();
    assert!(
        err.to_string()
            .contains("username: must be at least 3 characters")
    );
}

#[test]
fn email_accepts_ordinary_addresses_and_lowercases_the_domain() {
    assert_eq!(
        Email::parse("Bob.Smith+tg@Example.COM").unwrap().as_str(),
        "Bob.Smith+tg@example.com"
    );
    assert_eq!(Email::parse("  a@b.io ").unwrap().as_str(), "a@b.io");
    assert!(Email::parse("x@mail.sub-domain.example.org").is_ok());
}

#[test]
fn new_usernames_are_written_in_one_script() {
    for ok in [
        "alice",
        "alice_2026",
        "боб",
        "ёжик-7",
        "山田太郎",
        "やまだ",
        "Zoë.d",
    ] {
        assert!(Username::parse_new(ok).is_ok(), "{ok}");
    }
    // A Cyrillic а among Latin letters; a Greek ο among Latin letters.
    for mixed in ["\u{430}lice", "b\u{3bf}b"] {
        assert_eq!(
            Username::parse_new(mixed).unwrap_err().code,
            "mixed_scripts",
            "{mixed}"
        );
        // Existing users with such names can still log in.
        assert!(Username::parse(mixed).is_ok());
    }
}

#[test]
fn emails_refuse_invisible_formatting_characters() {
    for bad in ["a\u{202E}moc.b@x.io", "a\u{200B}b@x.io", "ab@x\u{2066}.io"] {
        assert_eq!(
            Email::parse(bad).unwrap_err().code,
            "invalid_chars",
            "{bad:?}"
        );
    }
}

#[test]
fn email_rejections_have_specific_codes() {
    let cases = [
        ("", "empty"),
        ("   ", "empty"),
        ("no-at-sign.example.com", "invalid_format"),
        ("a@b@example.com", "invalid_format"),
        ("@example.com", "invalid_local_part"),
        ("a b@example.com", "invalid_chars"),
        ("a@exa mple.com", "invalid_chars"),
        ("a@localhost", "invalid_domain"),
        ("a@", "invalid_domain"),
        ("a@.example.com", "invalid_domain"),
        ("a@example..com", "invalid_domain"),
        ("a@example.com.", "invalid_domain"),
        ("a@-example.com", "invalid_domain"),
        ("a@exämple.com", "invalid_domain"),
    ];
    for (input, expected) in cases {
        assert_eq!(code(Email::parse(input)), ("email", expected), "{input:?}");
    }
}

#[test]
fn email_length_limits() {
    let local64 = "l".repeat(64);
    assert!(Email::parse(&format!("{local64}@example.com")).is_ok());
    let local65 = "l".repeat(65);
    assert_eq!(
        code(Email::parse(&format!("{local65}@example.com"))),
        ("email", "invalid_local_part")
    );
    // 254 bytes total: 64 + 1 + 189 (three 61-byte labels, dots, "com").
    let domain = format!("{0}.{0}.{0}.com", "d".repeat(61));
    let at_limit = format!("{local64}@{domain}");
    assert_eq!(at_limit.len(), 254);
    assert!(Email::parse(&at_limit).is_ok());
    assert_eq!(
        code(Email::parse(&format!("x{at_limit}"))),
        ("email", "too_long")
    );
}

#[test]
fn password_length_boundaries_count_characters() {
    assert_eq!(code(Password::parse("")), ("password", "empty"));
    assert_eq!(code(Password::parse("1234567")), ("password", "too_short"));
    assert!(Password::parse("12345678").is_ok());
    assert!(Password::parse(&"p".repeat(128)).is_ok());
    assert_eq!(
        code(Password::parse(&"p".repeat(129))),
        ("password", "too_long")
    );
    // Eight 2-byte characters are long enough; seven 4-byte ones are not.
    assert!(Password::parse("пароль12").is_ok());
    assert_eq!(
        code(Password::parse("😀😀😀😀😀😀😀")),
        ("password", "too_short")
    );
    assert!(Password::parse(&"ж".repeat(128)).is_ok());
    assert_eq!(
        code(Password::parse(&"ж".repeat(129))),
        ("password", "too_long")
    );
}

#[test]
fn password_keeps_whitespace_and_never_shows_itself() {
    let p = Password::parse("  spaced out  ").unwrap();
    assert_eq!(p.expose_secret(), "  spaced out  ");
    assert_eq!(format!("{p:?}"), "Password([REDACTED])");
    let p: Password = serde_json::from_str("\"hunter2hunter2\"").unwrap();
    assert!(!format!("{p:?}").contains("hunter2"));
    assert_eq!(p.into_secret().expose_secret(), "hunter2hunter2");
    let err = serde_json::from_str::<Password>("\"hunter2\"").unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn phone_accepts_formatting_and_strips_it() {
    let p = PhoneNumber::parse("+1 (555) 123-4567").unwrap();
    assert_eq!(p.as_e164(), "+15551234567");
    assert_eq!(
        PhoneNumber::parse("+9996612345").unwrap().as_e164(),
        "+9996612345"
    );
}

#[test]
fn phone_digit_count_boundaries() {
    assert_eq!(code(PhoneNumber::parse("+123456")), ("phone", "too_short"));
    assert!(PhoneNumber::parse("+1234567").is_ok());
    assert!(PhoneNumber::parse("+123456789012345").is_ok());
    assert_eq!(
        code(PhoneNumber::parse("+1234567890123456")),
        ("phone", "too_long")
    );
}

#[test]
fn phone_rejections_have_specific_codes() {
    let cases = [
        ("", "empty"),
        ("  ", "empty"),
        ("15551234567", "missing_plus"),
        ("0015551234567", "missing_plus"),
        ("+1555abc4567", "invalid_chars"),
        ("+1.555.123.4567", "invalid_chars"),
        ("+1555+1234567", "invalid_chars"),
        ("+１５５５１２３４５６７", "invalid_chars"),
        ("+05551234567", "invalid_country_code"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            code(PhoneNumber::parse(input)),
            ("phone", expected),
            "{input:?}"
        );
    }
}

#[test]
fn phone_debug_and_display_mask_all_but_two_digits() {
    let p = PhoneNumber::parse("+12345678934").unwrap();
    assert_eq!(p.to_string(), "+*********34");
    assert_eq!(format!("{p:?}"), "PhoneNumber(+*********34)");
    assert!(!format!("{p:?}").contains("123"));
    let p: PhoneNumber = serde_json::from_str("\"+44 20 7946 0958\"").unwrap();
    assert_eq!(p.as_e164(), "+442079460958");
    assert_eq!(p.to_string(), "+**********58");
    let err = PhoneNumber::parse("5551234567").unwrap_err();
    assert!(!err.to_string().contains("555"));
}

#[test]
fn chat_ref_parses_each_form() {
    assert_eq!(ChatRef::parse("me").unwrap(), ChatRef::Me);
    assert_eq!(ChatRef::parse(" SELF ").unwrap(), ChatRef::Me);
    assert_eq!(
        ChatRef::parse("@durov").unwrap(),
        ChatRef::Username("durov".into())
    );
    assert_eq!(
        ChatRef::parse("@Tg_Bot_2").unwrap(),
        ChatRef::Username("tg_bot_2".into()),
        "usernames are case-insensitive: one spelling"
    );
    assert_eq!(ChatRef::parse("12345").unwrap(), ChatRef::Id(12345));
    assert_eq!(
        ChatRef::parse("-1001234567890").unwrap(),
        ChatRef::Id(-1001234567890)
    );
    assert_eq!(
        ChatRef::parse(&i64::MIN.to_string()).unwrap(),
        ChatRef::Id(i64::MIN)
    );
}

#[test]
fn chat_username_boundaries_follow_telegram() {
    assert_eq!(code(ChatRef::parse("@abc")), ("chat", "invalid_username"));
    assert!(
        ChatRef::parse("@abcd").is_ok(),
        "collectible 4-character names"
    );
    assert!(ChatRef::parse("@abcde").is_ok());
    assert!(ChatRef::parse(&format!("@{}", "a".repeat(32))).is_ok());
    let long = format!("@{}", "a".repeat(33));
    assert_eq!(code(ChatRef::parse(&long)), ("chat", "invalid_username"));
    for bad in [
        "@",
        "@1abcde",
        "@_abcde",
        "@abc-de",
        "@abc de",
        "@@abcde",
        "@дуров_",
    ] {
        assert_eq!(
            code(ChatRef::parse(bad)),
            ("chat", "invalid_username"),
            "{bad:?}"
        );
    }
}

#[test]
fn chat_ref_rejects_other_input() {
    assert_eq!(code(ChatRef::parse("")), ("chat", "empty"));
    assert_eq!(code(ChatRef::parse("   ")), ("chat", "empty"));
    assert_eq!(code(ChatRef::parse("0")), ("chat", "invalid_id"));
    assert_eq!(code(ChatRef::parse("-0")), ("chat", "invalid_id"));
    assert_eq!(
        code(ChatRef::parse("99999999999999999999")),
        ("chat", "invalid_id")
    );
    for bad in ["durov", "+123", "-", "12a", "1 2", "mee"] {
        assert_eq!(
            code(ChatRef::parse(bad)),
            ("chat", "invalid_format"),
            "{bad:?}"
        );
    }
}

#[test]
fn chat_ref_display_round_trips() {
    for input in ["me", "self", "@durov", "@Tg_Bot_2", "42", "-1001234567890"] {
        let parsed = ChatRef::parse(input).unwrap();
        assert_eq!(
            ChatRef::parse(&parsed.to_string()).unwrap(),
            parsed,
            "{input}"
        );
    }
    assert_eq!(ChatRef::parse("self").unwrap().to_string(), "me");
    assert_eq!(ChatRef::Username("durov".into()).to_string(), "@durov");
}

#[test]
fn chat_ref_serde_accepts_strings_and_integers() {
    let refs: Vec<ChatRef> = serde_json::from_str(r#"["me", "@durov", "-100", -100, 7]"#).unwrap();
    assert_eq!(
        refs,
        [
            ChatRef::Me,
            ChatRef::Username("durov".into()),
            ChatRef::Id(-100),
            ChatRef::Id(-100),
            ChatRef::Id(7)
        ]
    );
    assert_eq!(
        serde_json::to_string(&refs).unwrap(),
        r#"["me","@durov","-100","-100","7"]"#
    );
    assert!(serde_json::from_str::<ChatRef>("0").is_err());
    assert!(serde_json::from_str::<ChatRef>("\"bad name\"").is_err());
    assert!(serde_json::from_str::<ChatRef>("1.5").is_err());
}

#[test]
fn errors_display_field_and_message_only() {
    let e =
        Username::parse("secret-but-way-too-long-username-secret-but-way-too-long").unwrap_err();
    assert_eq!(e.to_string(), "username: must be at most 50 characters");
}
