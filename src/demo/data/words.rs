//! Word lists: the text columns of `AGENTSVES`, the currencies and rate sources of
//! `CURRENCY_RATES`, the currencies, statuses and notes of `TRANSACTIONS`.

// AGENTSVES

pub(in crate::demo) const MIDDLE_NAMES: &[&str] =
    &["Marie", "José", "de la", "Ümit", "J.", "Anne-Sophie", ""];
pub(in crate::demo) const STREETS: &[&str] = &[
    "Rue de l'Église",
    "Calle Mayor",
    "Hauptstraße",
    "Avenida Paulista",
    "Main Street",
    "中央通り",
    "Nowy Świat",
    "Bahnhofstrasse",
    "İstiklal Caddesi",
    "Đường Lê Lợi",
    "MG Road",
    "Baker Street",
    "Strøget",
    "Rua Augusta",
];
pub(in crate::demo) const ADDRESS_LINE2: &[&str] = &[
    "Apt 4B",
    "Piso 3º, puerta B",
    "2. OG",
    "Suite 1200",
    "Bâtiment C",
    "c/o Müller",
    "Room 1203, 12F",
    "",
];
pub(in crate::demo) const EMAIL_DOMAINS: &[&str] = &[
    "worldzone.example",
    "agents.worldzone.example",
    "mail.example.org",
    "correo.example.mx",
];
pub(in crate::demo) const STATUSES: &[&str] = &[
    "ACTIVE",
    "ACTIVE",
    "ACTIVE",
    "ACTIVE",
    "ACTIVE",
    "SUSPENDED",
    "ONBOARDING",
    "ON_LEAVE",
    "TERMINATED",
];
pub(in crate::demo) const ROLES: &[&str] = &[
    "Field Agent",
    "Senior Agent",
    "Team Lead",
    "Cashier",
    "Compliance Officer",
    "Regional Manager",
    "Trainee",
];
pub(in crate::demo) const SKILLS: &[&str] = &[
    "cash-in",
    "cash-out",
    "KYC",
    "FX",
    "bill-pay",
    "remittance",
    "microcredit",
    "insurance",
    "customer support",
    "agent training",
];
pub(in crate::demo) const NOTES: &[&str] = &[
    "Called back; customer said \"no thanks\" and hung up.",
    r"KYC scans stored under C:\agents\{code}\kyc\",
    "Line one\nLine two\nLine three",
    "Tab\tseparated\tvalues\t",
    "Windows line ending\r\nsecond line",
    "  leading and trailing spaces  ",
    "It's the agent's 'own' float; verify before 5 o'clock.",
    r"Regex used: ^\d{3}-\d{4}$ (written as \\d in JSON)",
    "Launch went well 🚀 — thanks, 👩‍💻 team ✅",
    "Reunión con el Sr. Núñez en São Paulo; über-wichtig!",
    "東京支店から北京支店へ移管 (moved from the Tokyo to the Beijing branch)",
    "SQL-looking text: DROP TABLE \"AGENTSVES\"; -- harmless",
    "Ends with a backslash \\",
    "{\"json\": \"inside a note\", \"agent\": \"{code}\"}",
    "Mixed: naïve café, Zürich, Øresund, Łódź, İstanbul",
];
pub(in crate::demo) const BIO_SENTENCES: &[&str] = &[
    "Joined WorldZone after a decade in retail banking.",
    "Speaks Spanish, Portuguese and a little Japanese (日本語を少し話します).",
    "Runs the Saturday cash-in desk at the São Paulo branch.",
    "Trained more than forty new agents on anti-money-laundering procedures.",
    "Known for the fastest float reconciliation in the region 🚀.",
    "Previously a teacher in Zürich; still corrects everyone's grammar.",
    "Volunteers at the community microcredit circle every month.",
    "她在北京和上海都工作过，擅长客户服务。",
    "Prefers \"old school\" paper receipts, scanned daily.",
    "Coordinates the rural outreach programme around Ìbàdàn.",
    "Certified in FX operations; handles EUR, MXN and JPY remittances.",
    "Está convencida de que la atención al cliente es lo más importante.",
    "Er betreut die Filialen in München, Köln und Düsseldorf.",
    "Il a ouvert la première agence mobile à Besançon.",
    "Loves hiking 🥾, coffee ☕ and spreadsheets 📊.",
    "Mentor in the women-in-fintech network 👩‍💻.",
    "Led the 2020 migration off the legacy CRM without losing a single record.",
    "서울 지점에서 5년 동안 근무했습니다.",
    "Backslashes in paths like D:\\exports\\2024 still confuse the old tools.",
    "Sends tab-separated\texports every Friday.",
];
pub(in crate::demo) const NICKNAMES: &[&str] = &[
    "Rocket 🚀",
    "El Niño",
    "Zé",
    "小王",
    "Käpt'n",
    "Ñoño",
    "Coder 👩‍💻",
    "Big \"D\"",
    r"Back\slash",
];
pub(in crate::demo) const SOURCE_SYSTEMS: &[&str] =
    &["LEGACY_CRM", "WZ_PORTAL", "IMPORT_2019", "MOBILE_APP"];

// CURRENCY_RATES

/// Currencies and their starting rate per US dollar.
pub(in crate::demo) const CURRENCIES: &[(&str, f64)] = &[
    ("USD", 1.0),
    ("EUR", 0.92),
    ("JPY", 151.2),
    ("GBP", 0.79),
    ("CHF", 0.88),
    ("CNY", 7.2),
    ("MXN", 17.1),
    ("BRL", 5.0),
    ("INR", 83.3),
    ("KRW", 1350.0),
    ("NGN", 1450.0),
    ("VND", 25_000.0),
    ("PLN", 4.0),
    ("SEK", 10.5),
    ("TRY", 32.0),
    ("EGP", 47.5),
    ("CAD", 1.36),
    ("AUD", 1.52),
    ("ZAR", 18.6),
    ("CLP", 940.0),
];
pub(in crate::demo) const RATE_SOURCES: &[&str] = &[
    "ECB",
    "Federal Reserve H.10",
    "Banco de México",
    "日本銀行",
    "Banco Central do Brasil",
    "manual \"override\"",
];

// TRANSACTIONS

pub(in crate::demo) const TXN_CURRENCIES: &[&str] = &[
    "USD", "USD", "USD", "EUR", "EUR", "MXN", "BRL", "JPY", "CNY", "GBP", "INR", "NGN",
];
/// Weighted: most transactions settle.
pub(in crate::demo) const TXN_STATUSES: &[&str] = &[
    "SETTLED", "SETTLED", "SETTLED", "SETTLED", "SETTLED", "SETTLED", "SETTLED", "SETTLED",
    "BOOKED", "PENDING", "REVERSED", "FAILED",
];
pub(in crate::demo) const TXN_NOTES: &[&str] = &[
    "Cash-in at branch",
    "Reversal requested by customer",
    "Cliente pagó en efectivo",
    "手数料込み",
    "Überweisung ins Ausland",
    "Ref: \"INV-2024\\001\"",
    "Split payment\t2/3",
    "Bill pay 💡 electricity",
];
