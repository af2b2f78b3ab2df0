//! What a router remembers about interactions of one server between pulls: when the strategy
//! first got each one (so an interaction coming back resumes its steps, overflow and priority
//! clock instead of starting over) and which agents rejected it or let the offer time out (so
//! they are never offered it again). Bounded: the oldest entries are forgotten first.

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

/// Most interactions remembered per server.
const CAPACITY: usize = 100_000;

#[derive(Clone, Debug)]
pub struct Remembered {
    pub started: Instant,
    pub excluded: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Memory {
    entries: HashMap<String, Remembered>,
    /// Insertion order, for eviction; may hold ids already forgotten.
    order: VecDeque<String>,
}

impl Memory {
    /// The entry of `id`, created with `now` as its start when new.
    pub fn entry(&mut self, id: &str, now: Instant) -> &Remembered {
        if !self.entries.contains_key(id) {
            while self.entries.len() >= CAPACITY {
                match self.order.pop_front() {
                    Some(old) => {
                        self.entries.remove(&old);
                    }
                    None => break,
                }
            }
            self.order.push_back(id.to_owned());
            self.entries.insert(
                id.to_owned(),
                Remembered {
                    started: now,
                    excluded: Vec::new(),
                },
            );
        }
        &self.entries[id]
    }

    pub fn get(&self, id: &str) -> Option<&Remembered> {
        self.entries.get(id)
    }

    /// Never offer `id` to `agent` again.
    pub fn exclude(&mut self, id: &str, agent: &str, now: Instant) {
        self.entry(id, now);
        if let Some(e) = self.entries.get_mut(id)
            && !e.excluded.iter().any(|a| a == agent)
        {
            e.excluded.push(agent.to_owned());
        }
    }

    /// The interaction is done (accepted, stopped): nothing to remember.
    pub fn forget(&mut self, id: &str) {
        self.entries.remove(id);
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|id| entries.contains_key(id));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_start_and_exclusions() {
        let t0 = Instant::now();
        let mut m = Memory::default();
        m.entry("a", t0);
        m.exclude("a", "agent-1", t0);
        m.exclude("a", "agent-1", t0);
        m.exclude("b", "agent-2", t0);
        assert_eq!(
            m.get("a").map(|r| r.excluded.clone()),
            Some(vec!["agent-1".to_owned()])
        );
        assert_eq!(m.len(), 2);
        m.forget("a");
        assert!(m.get("a").is_none());
        assert_eq!(m.len(), 1);
    }
}
