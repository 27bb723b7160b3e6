//! Rules and variants: where a link sends one visitor when it does not send everyone to its `long_url`. Rules
//! come first (the first whose every condition holds wins), then variants (one per visitor by weight, sticky),
//! then the link's own `long_url`. Pure logic: the shortener parses and stores a [`Routing`], the cache carries
//! its [`Routing::to_stored`] form, and the redirect calls [`Routing::choose`] on each visit, which allocates
//! nothing.
//!
//! # Layout
//! - [`parse`]: the API's `rules` and `variants` checked into a [`Routing`], each refusal an [`Invalid`].
//! - [`json`]: back to the API's JSON, and the stored form (PostgreSQL and Redis).
//! - [`visitor`]: the [`Visitor`] `choose` takes, device classes, the country header.
//! - [`os`]: the operating system a `User-Agent` names.
//! - [`language`]: the primary language of `Accept-Language`.
//! - [`query`]: `query` conditions against a raw query string.
//! - [`pick`]: the variant a visitor gets, and the visitor key.

pub mod json;
pub mod language;
pub mod os;
pub mod parse;
pub mod pick;
pub mod query;
pub mod visitor;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

pub use language::{primary_language, Lang};
pub use os::Os;
pub use parse::{parse_rules, parse_variants, Invalid};
pub use pick::visitor_key;
pub use visitor::{country_code, DeviceClass, Visitor};

/// A link's rules and variants; either may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// Tried in order; the first that holds wins.
    pub rules: Vec<Rule>,
    /// None, or [`parse::VARIANT_COUNT`] of them, each with a weight.
    pub variants: Vec<Variant>,
}

/// A target for the visitors that meet every condition given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The conditions (at least one).
    pub when: When,
    /// Where the rule sends a visitor (normalised).
    pub long_url: String,
}

/// A rule's conditions: each one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct When {
    /// The device class (never [`DeviceClass::Bot`]).
    pub device: Option<DeviceClass>,
    /// The operating system (never [`Os::Other`]).
    pub os: Option<Os>,
    /// The primary language the visitor prefers.
    pub language: Option<Lang>,
    /// The visitor's country, two uppercase letters.
    pub country: Option<[u8; 2]>,
    /// Holds from this time on.
    pub after: Option<DateTime<Utc>>,
    /// Holds until this time (not at it).
    pub before: Option<DateTime<Utc>>,
    /// `name=value` pairs the query string must all have (decoded).
    pub query: Vec<(String, String)>,
}

/// One of the targets visitors are split between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Where the variant sends a visitor (normalised).
    pub long_url: String,
    /// Its share, against the sum of all weights.
    pub weight: u16,
}

/// Where a visit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The rule at this index.
    Rule(usize),
    /// The variant at this index.
    Variant(usize),
    /// The link's own `long_url`.
    Default,
}

/// Which visitor attributes a link's rules look at, so the redirect reads only those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Some rule has `device`.
    pub device: bool,
    /// Some rule has `os`.
    pub os: bool,
    /// Some rule has `language`.
    pub language: bool,
    /// Some rule has `country`.
    pub country: bool,
    /// Some rule has `query`.
    pub query: bool,
    /// There are variants: the visitor key is needed.
    pub key: bool,
}

impl Routing {
    /// Whether there is nothing to evaluate (every visit goes to `long_url`).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.variants.is_empty()
    }

    /// Where `visitor` goes on link `link_id`: the first rule that holds, else a variant by weight, else the
    /// link's `long_url`.
    pub fn choose(&self, link_id: i64, visitor: &Visitor<'_>) -> Choice {
        if let Some(index) = self.rules.iter().position(|rule| rule.when.holds(visitor)) {
            return Choice::Rule(index);
        }
        pick::variant_of(&self.variants, link_id, visitor.key)
            .map_or(Choice::Default, Choice::Variant)
    }

    /// The URL a choice names; `default` (the link's `long_url`) for [`Choice::Default`] and for an index this
    /// routing does not have.
    pub fn target<'a>(&'a self, choice: Choice, default: &'a str) -> &'a str {
        let chosen = match choice {
            Choice::Rule(index) => self.rules.get(index).map(|rule| rule.long_url.as_str()),
            Choice::Variant(index) => self
                .variants
                .get(index)
                .map(|variant| variant.long_url.as_str()),
            Choice::Default => None,
        };
        chosen.unwrap_or(default)
    }

    /// The visitor attributes the rules look at (and whether variants need the visitor key).
    pub fn needs(&self) -> Needs {
        let mut needs = Needs {
            key: !self.variants.is_empty(),
            ..Needs::default()
        };
        for When {
            device,
            os,
            language,
            country,
            query,
            ..
        } in self.rules.iter().map(|rule| &rule.when)
        {
            needs.device |= device.is_some();
            needs.os |= os.is_some();
            needs.language |= language.is_some();
            needs.country |= country.is_some();
            needs.query |= !query.is_empty();
        }
        needs
    }

    /// An estimate of the heap this routing holds (its strings and vectors), not counting the `Routing` itself.
    pub fn heap_bytes(&self) -> usize {
        let rules = self.rules.capacity() * size_of::<Rule>()
            + self.rules.iter().map(Rule::heap_bytes).sum::<usize>();
        let variants = self.variants.capacity() * size_of::<Variant>()
            + self
                .variants
                .iter()
                .map(|variant| variant.long_url.capacity())
                .sum::<usize>();
        rules + variants
    }
}

impl Rule {
    fn heap_bytes(&self) -> usize {
        let query = self.when.query.capacity() * size_of::<(String, String)>()
            + self
                .when
                .query
                .iter()
                .map(|(name, value)| name.capacity() + value.capacity())
                .sum::<usize>();
        self.long_url.capacity() + query
    }
}

impl When {
    /// Whether every condition given holds for `visitor`. A bot meets no `device` condition, since a rule never
    /// names [`DeviceClass::Bot`]; likewise [`Os::Other`].
    pub fn holds(&self, visitor: &Visitor<'_>) -> bool {
        self.device
            .is_none_or(|device| device == visitor.device && device != DeviceClass::Bot)
            && self.os.is_none_or(|os| os == visitor.os && os != Os::Other)
            && self
                .language
                .is_none_or(|language| visitor.language == Some(language))
            && self.country.is_none_or(|country| {
                visitor
                    .country
                    .is_some_and(|seen| seen.eq_ignore_ascii_case(&country))
            })
            && self.after.is_none_or(|after| visitor.now >= after)
            && self.before.is_none_or(|before| visitor.now < before)
            && self
                .query
                .iter()
                .all(|(name, value)| query::has_pair(visitor.query, name, value))
    }
}
