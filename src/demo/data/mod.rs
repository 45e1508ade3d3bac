//! The fixed lists the generators draw from: nothing but data. Changing an entry changes the
//! generated content (bump `DEMO_VERSION`).

mod countries;
mod places;
mod words;

pub(super) use countries::COUNTRY_LIST;
pub(super) use places::{Name, PLACES, Place};
pub(super) use words::{
    ADDRESS_LINE2, BIO_SENTENCES, CURRENCIES, EMAIL_DOMAINS, MIDDLE_NAMES, NICKNAMES, NOTES,
    RATE_SOURCES, ROLES, SKILLS, SOURCE_SYSTEMS, STATUSES, STREETS, TXN_CURRENCIES, TXN_NOTES,
    TXN_STATUSES,
};
