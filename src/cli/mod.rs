//! The command line's side of the service: the client of the administrative
//! commands (`authledger tokens …`, `authledger users add`) that talk to a
//! running server over its HTTP API, and the progress bars of long commands.

pub mod client;
pub mod progress;
