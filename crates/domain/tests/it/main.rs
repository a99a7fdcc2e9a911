//! Property tests of the domain's fingerprints and parsers.

use chrono::NaiveDate;
use proptest::prelude::*;
use skybook_domain::*;

fn key(seed: &str) -> SecretKey {
    SecretKey::parse(&format!("{seed:0>40}")).unwrap()
}

/// Appends the Luhn check digit to `body`.
fn with_check_digit(body: &str) -> String {
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|n| card::luhn_valid(n))
        .unwrap()
}

fn passenger(given: &str, family: &str) -> Passenger {
    Passenger {
        given_name: PersonName::parse(given).unwrap(),
        family_name: PersonName::parse(family).unwrap(),
    }
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ' -]{0,20}[A-Za-z]"
}

proptest! {
    #[test]
    fn every_luhn_valid_number_parses_and_one_changed_digit_does_not(body in "[0-9]{11,18}", pos in 0usize..18, bump in 1u8..10) {
        let number = with_check_digit(&body);
        let parsed = CardNumber::parse(&number).unwrap();
        prop_assert_eq!(parsed.last4(), &number[number.len() - 4..]);
        let printed = format!("{parsed:?}");
        prop_assert!(!printed.contains(&number));
        let pos = pos % number.len();
        let mut bytes = number.into_bytes();
        bytes[pos] = b'0' + (bytes[pos] - b'0' + bump) % 10;
        prop_assert!(CardNumber::parse(std::str::from_utf8(&bytes).unwrap()).is_err());
    }

    #[test]
    fn entity_fingerprint_ignores_passenger_order_case_and_spacing(names in prop::collection::vec((name(), name()), 1..5)) {
        let k = key("a");
        let (tenant, flight) = (TenantId::new(), FlightId::new());
        let card = CardFingerprint::compute(&k, &CardNumber::parse("4242424242424242").unwrap());
        let given: Vec<Passenger> = names.iter().map(|(g, f)| passenger(g, f)).collect();
        let mut shuffled: Vec<Passenger> = names.iter().rev().map(|(g, f)| passenger(&format!("  {}  ", g.to_uppercase()), &f.to_lowercase())).collect();
        let n = shuffled.len();
        shuffled.rotate_left(1 % n);
        prop_assert_eq!(
            EntityFingerprint::compute(&k, tenant, flight, &given, &card),
            EntityFingerprint::compute(&k, tenant, flight, &shuffled, &card)
        );
    }

    #[test]
    fn entity_fingerprint_changes_with_every_component(g in name(), f in name()) {
        let k = key("a");
        let (tenant, flight) = (TenantId::new(), FlightId::new());
        let card = CardFingerprint::compute(&k, &CardNumber::parse("4242424242424242").unwrap());
        let other_card = CardFingerprint::compute(&k, &CardNumber::parse("5555555555554444").unwrap());
        let p = vec![passenger(&g, &f)];
        let base = EntityFingerprint::compute(&k, tenant, flight, &p, &card);
        prop_assert_ne!(&base, &EntityFingerprint::compute(&k, TenantId::new(), flight, &p, &card));
        prop_assert_ne!(&base, &EntityFingerprint::compute(&k, tenant, FlightId::new(), &p, &card));
        prop_assert_ne!(&base, &EntityFingerprint::compute(&k, tenant, flight, &p, &other_card));
        prop_assert_ne!(&base, &EntityFingerprint::compute(&k, tenant, flight, &[p[0].clone(), p[0].clone()], &card));
        prop_assert_ne!(&base, &EntityFingerprint::compute(&key("b"), tenant, flight, &p, &card));
    }

    #[test]
    fn card_fingerprint_is_keyed_and_stable(body in "[0-9]{15}") {
        let number = CardNumber::parse(&with_check_digit(&body)).unwrap();
        let a = CardFingerprint::compute(&key("a"), &number);
        prop_assert_eq!(&a, &CardFingerprint::compute(&key("a"), &number));
        prop_assert_ne!(&a, &CardFingerprint::compute(&key("b"), &number));
        prop_assert!(CardFingerprint::parse(a.as_str()).is_ok());
    }

    #[test]
    fn references_round_trip(seed in any::<u64>()) {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let r = BookingReference::generate(&mut rng);
        prop_assert_eq!(BookingReference::parse(&r.as_str().to_lowercase()).unwrap(), r);
    }
}

#[test]
fn request_fingerprint_sees_every_value() {
    let k = key("a");
    let tenant = TenantId::new();
    let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let base = NewBooking {
        flight_id: FlightId::new(),
        contact_email: Email::parse("a@example.com").unwrap(),
        passengers: vec![passenger("Ann", "Lee")],
        card: Card {
            number: CardNumber::parse("4242424242424242").unwrap(),
            expiry: Expiry::parse(12, 2030, today).unwrap(),
            cvc: Cvc::parse("123").unwrap(),
        },
    };
    let fp = RequestFingerprint::compute(&k, tenant, &base);
    assert_eq!(fp, RequestFingerprint::compute(&k, tenant, &base));
    let mut other = base.clone();
    other.contact_email = Email::parse("b@example.com").unwrap();
    assert_ne!(fp, RequestFingerprint::compute(&k, tenant, &other));
    let mut other = base.clone();
    other.card.cvc = Cvc::parse("124").unwrap();
    assert_ne!(fp, RequestFingerprint::compute(&k, tenant, &other));
    assert_ne!(fp, RequestFingerprint::compute(&k, TenantId::new(), &base));
}

#[test]
fn secret_keys_must_be_long_and_never_print() {
    assert!(SecretKey::parse("short").is_err());
    let k = key("x");
    assert_eq!(format!("{k:?}"), "SecretKey(..)");
    assert_ne!(
        k.derive("cookie-signing/v1"),
        k.derive("card-fingerprint/v1")
    );
    assert_eq!(SecretKey::generate_hex().len(), 64);
}
