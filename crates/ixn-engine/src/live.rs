//! The live set: every interaction that is not stopped, in a slab addressed by small slot
//! numbers (view indexes store slots, not ids, to stay compact), with an id map and a string
//! interner so a million interactions share one copy of each queue, tenant or media name.

use std::collections::{HashMap, HashSet};

use ixn_model::{Interaction, InteractionId, Name};
use smallvec::SmallVec;

pub(crate) type Slot = u32;

/// Where an interaction is counted, so it can be uncounted exactly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Counted {
    /// Waiting in its queue (depth).
    Waiting,
    /// Taken from its queue and held by a router or an agent.
    InProgress,
}

/// One live interaction and the engine's bookkeeping about it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub ix: Interaction,
    /// Views whose index holds it (its key there is recomputed from the interaction). Inline up
    /// to 8 views: one heap allocation per queued interaction is too many for DESIGN P4.
    pub memberships: SmallVec<[u16; 8]>,
    pub counted: Option<Counted>,
    pub in_workbin: bool,
    /// In the scheduled set (scheduled_at in the future).
    pub scheduled: bool,
    /// The view it was pulled through while it is routed or handled (view limits).
    pub in_flight_view: Option<u16>,
    pub in_flight_counted: bool,
    /// The batch holding its last change that answers must wait for (0: already durable).
    /// Taking it into routing and offering it to an agent do not raise it (see
    /// [`crate::Engine::release_after`]).
    pub durable_batch: u64,
}

impl Entry {
    /// Forgets everything derived from a business process (before re-indexing under another).
    pub fn reset_derived(&mut self) {
        self.memberships.clear();
        self.counted = None;
        self.in_workbin = false;
        self.scheduled = false;
        self.in_flight_counted = false;
    }
}

#[derive(Debug, Default)]
pub(crate) struct LiveSet {
    entries: Vec<Option<Entry>>,
    free: Vec<Slot>,
    by_id: HashMap<InteractionId, Slot>,
    names: Interner,
}

impl LiveSet {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Makes room for `additional` more interactions at once (startup knows how many).
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.by_id.reserve(additional);
    }

    /// Re-interns the strings of one entry after a change.
    pub fn intern_slot(&mut self, slot: Slot) {
        if let Some(Some(entry)) = self.entries.get_mut(slot as usize) {
            self.names.intern_all(&mut entry.ix);
        }
    }

    pub fn insert(&mut self, mut ix: Interaction) -> Slot {
        self.names.intern_all(&mut ix);
        let id = ix.id.clone();
        let entry = Entry {
            ix,
            memberships: SmallVec::new(),
            counted: None,
            in_workbin: false,
            scheduled: false,
            in_flight_view: None,
            in_flight_counted: false,
            durable_batch: 0,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.entries[s as usize] = Some(entry);
                s
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as Slot
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    /// Removes an entry (after it was unindexed) and returns its interaction.
    pub fn remove(&mut self, slot: Slot) -> Option<Interaction> {
        let entry = self.entries.get_mut(slot as usize)?.take()?;
        self.by_id.remove(&entry.ix.id);
        self.free.push(slot);
        Some(entry.ix)
    }

    pub fn slot_of(&self, id: &InteractionId) -> Option<Slot> {
        self.by_id.get(id).copied()
    }

    pub fn entry(&self, slot: Slot) -> Option<&Entry> {
        self.entries.get(slot as usize)?.as_ref()
    }

    pub fn entry_mut(&mut self, slot: Slot) -> Option<&mut Entry> {
        self.entries.get_mut(slot as usize)?.as_mut()
    }

    pub fn get(&self, slot: Slot) -> Option<&Interaction> {
        self.entry(slot).map(|e| &e.ix)
    }

    pub fn get_by_id(&self, id: &InteractionId) -> Option<&Interaction> {
        self.slot_of(id).and_then(|s| self.get(s))
    }

    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_some())
            .map(|(i, _)| i as Slot)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Slot, &Interaction)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as Slot, &e.ix)))
    }
}

/// Shares one allocation per distinct name (queue, tenant, media type, application…).
/// The server also runs one on the thread that reads the store at startup, so duplicate names
/// are freed where they were allocated and the engine receives names already shared.
#[derive(Debug, Default)]
pub struct Interner {
    names: HashSet<Name>,
}

impl Interner {
    fn intern(&mut self, name: &Name) -> Name {
        match self.names.get(name.as_str()) {
            Some(n) => n.clone(),
            None => {
                self.names.insert(name.clone());
                name.clone()
            }
        }
    }

    fn intern_opt(&mut self, name: &mut Option<Name>) {
        if let Some(n) = name {
            *n = self.intern(n);
        }
    }

    /// Replaces every repeated string of `ix` by its shared copy.
    pub fn intern_all(&mut self, ix: &mut Interaction) {
        ix.tenant = self.intern(&ix.tenant);
        ix.media_type = self.intern(&ix.media_type);
        ix.submitted_by = self.intern(&ix.submitted_by);
        self.intern_opt(&mut ix.interaction_type);
        self.intern_opt(&mut ix.subtype);
        self.intern_opt(&mut ix.queue);
        self.intern_opt(&mut ix.assigned_to);
        if let Some(w) = &mut ix.workbin {
            w.name = self.intern(&w.name);
            w.owner = self.intern(&w.owner);
        }
    }
}
