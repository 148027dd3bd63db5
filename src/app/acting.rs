//! Who acts, and the metadata their events carry: what the API hands every
//! application function that writes on someone's behalf.

use crate::domain::{Actor, UserName};
use crate::store::EventMetadata;

/// A user acting (with the roles they hold now), and the metadata of this
/// request's events.
#[derive(Debug, Clone)]
pub struct Acting {
    pub actor: Actor,
    pub metadata: EventMetadata,
}

impl Acting {
    /// The acting user's name.
    pub fn name(&self) -> &UserName {
        &self.actor.name
    }
}
