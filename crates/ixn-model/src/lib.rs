//! The domain model of ixn: interactions with their system properties and user data, the
//! interaction state machine, and the condition language used by views, snapshots and find.
//!
//! Architecture invariant: this crate does no I/O, is not async and knows nothing about SQL,
//! the wire protocol or configuration files. Time is always a parameter, never read from a clock,
//! so everything here is deterministic and property-testable.

pub mod client;
pub mod condition;
pub mod ids;
pub mod interaction;
pub mod name;
pub mod skills;
pub mod state;
pub mod time;
pub mod userdata;

pub use client::ClientKind;
pub use ids::{IdGenerator, InteractionId};
pub use interaction::{
    CustomProperty, CustomType, Interaction, Scalar, SysProp, SysPropType, WorkbinOwnerType, WorkbinRef,
};
pub use name::Name;
pub use state::{InteractionState, InvalidTransition, Transition};
pub use time::Timestamp;
pub use userdata::{UserData, UserDataRef, Value, ValueRef};
