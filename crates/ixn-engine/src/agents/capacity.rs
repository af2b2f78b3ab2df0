//! Capacity rules compiled for O(1) checks: a rule is a few alternatives, each a maximum per
//! media type; a load fits the rule when it fits at least one alternative.

use ixn_config::{ANY_MEDIA, CapacityRule};
use ixn_model::Name;

/// One media type's count in a load or a maximum in an alternative.
pub(crate) type MediaCount = (Name, u32);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub name: Name,
    alternatives: Vec<Alternative>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Alternative {
    max: Vec<MediaCount>,
    /// Maximum of any media not named (`*`); 0 when absent.
    other: u32,
}

impl Alternative {
    fn cap(&self, media: &str) -> u32 {
        self.max
            .iter()
            .find(|(m, _)| &**m == media)
            .map_or(self.other, |(_, n)| *n)
    }

    /// Whether `load` plus `extra` more of `media` fits.
    fn fits(&self, load: &[MediaCount], media: &str, extra: u32) -> bool {
        let mut seen = false;
        for (m, n) in load {
            let n = if &**m == media {
                seen = true;
                n + extra
            } else {
                *n
            };
            if n > self.cap(m) {
                return false;
            }
        }
        seen || extra <= self.cap(media)
    }
}

impl Rule {
    /// The built-in rule: one interaction of each media type at a time.
    pub fn builtin() -> Rule {
        Rule {
            name: Name::from("built-in"),
            alternatives: vec![Alternative {
                max: Vec::new(),
                other: 1,
            }],
        }
    }

    pub fn compile(rule: &CapacityRule) -> Rule {
        Rule {
            name: Name::from(rule.name.as_str()),
            alternatives: rule
                .alternatives
                .iter()
                .map(|alt| Alternative {
                    max: alt
                        .iter()
                        .filter(|(m, _)| m != ANY_MEDIA)
                        .map(|(m, n)| (Name::from(m.as_str()), *n))
                        .collect(),
                    other: alt.iter().find(|(m, _)| m == ANY_MEDIA).map_or(0, |(_, n)| *n),
                })
                .collect(),
        }
    }

    /// Whether one more interaction of `media` fits with the current `load`.
    pub fn can_take(&self, load: &[MediaCount], media: &str) -> bool {
        self.alternatives.iter().any(|a| a.fits(load, media, 1))
    }

    /// How many more of `media` fit now (the best alternative that the load fits).
    pub fn free(&self, load: &[MediaCount], media: &str) -> u32 {
        let current = load.iter().find(|(m, _)| &**m == media).map_or(0, |(_, n)| *n);
        self.alternatives
            .iter()
            .filter(|a| a.fits(load, media, 0))
            .map(|a| a.cap(media).saturating_sub(current))
            .max()
            .unwrap_or(0)
    }

    /// Whether the load fits the rule at all (an invariant the engine keeps).
    pub fn holds(&self, load: &[MediaCount]) -> bool {
        self.alternatives.iter().any(|a| a.fits(load, "", 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(alts: &[&[(&str, u32)]]) -> Rule {
        Rule::compile(&CapacityRule {
            name: "r".into(),
            tenant: "t".into(),
            alternatives: alts
                .iter()
                .map(|a| a.iter().map(|(m, n)| ((*m).to_owned(), *n)).collect())
                .collect(),
        })
    }

    fn load(items: &[(&str, u32)]) -> Vec<MediaCount> {
        items.iter().map(|(m, n)| (Name::from(*m), *n)).collect()
    }

    #[test]
    fn one_email_or_three_chats() {
        let r = rule(&[&[("email", 1)], &[("chat", 3)]]);
        assert!(r.can_take(&load(&[]), "email"));
        assert!(r.can_take(&load(&[("chat", 2)]), "chat"));
        assert!(!r.can_take(&load(&[("chat", 3)]), "chat"));
        assert!(!r.can_take(&load(&[("chat", 1)]), "email"));
        assert!(!r.can_take(&load(&[("email", 1)]), "chat"));
        assert_eq!(r.free(&load(&[("chat", 1)]), "chat"), 2);
        assert_eq!(r.free(&load(&[("chat", 1)]), "email"), 0);
        assert_eq!(r.free(&load(&[]), "email"), 1);
        assert!(!r.can_take(&load(&[]), "voice"));
    }

    #[test]
    fn voice_blocks_everything() {
        let r = rule(&[&[("voice", 1)], &[("chat", 3), ("email", 1)]]);
        assert!(r.can_take(&load(&[("chat", 2), ("email", 1)]), "chat"));
        assert!(!r.can_take(&load(&[("chat", 1)]), "voice"));
        assert!(!r.can_take(&load(&[("voice", 1)]), "chat"));
        assert!(r.holds(&load(&[("voice", 1)])));
        assert!(!r.holds(&load(&[("voice", 1), ("chat", 1)])));
    }

    #[test]
    fn wildcard_and_builtin() {
        let r = rule(&[&[("chat", 2), ("*", 1)]]);
        assert!(r.can_take(&load(&[("chat", 1), ("sms", 0)]), "sms"));
        assert!(!r.can_take(&load(&[("sms", 1)]), "sms"));
        let b = Rule::builtin();
        assert!(b.can_take(&load(&[("chat", 1)]), "email"));
        assert!(!b.can_take(&load(&[("chat", 1)]), "chat"));
    }
}
